import { afterEach, describe, expect, it } from "vitest";
import { cleanup, render, screen } from "@testing-library/react";
import { SentBy } from "./WorkflowHistory";

const claimed = "01a23b60-d1ea-7725-89aa-d505e2f68b1e";

afterEach(cleanup);

describe("SentBy: what the sync server saw beside what a change claims", () => {
  it("says nothing when the server did not say", () => {
    const { container } = render(<SentBy claimed={claimed} uploadedBy={null} />);
    expect(container.textContent).toBe("");
  });

  it("confirms a change the server received from the device it names", () => {
    const { container } = render(<SentBy claimed={claimed} uploadedBy={claimed} />);
    expect(container.textContent).toContain("confirmed by the sync server");
    expect(screen.queryByRole("note")).toBeNull();
  });

  it("names the device that really sent a change claiming another", () => {
    render(<SentBy claimed={claimed} uploadedBy="device-0a1b2c3d4e5f6a7b" />);
    const note = screen.getByRole("note");
    expect(note.textContent).toContain("sent by device device-0a1b2c3d4e5f6a7b");
    expect(note.textContent).not.toContain("confirmed");
  });
});
