import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { ErrorBoundary } from "./ErrorBoundary";
import { forgetDraft, rememberDraft } from "../config/drafts";

function Broken(): never {
  throw new Error("Cannot read properties of undefined (reading '_f')");
}

describe("ErrorBoundary", () => {
  afterEach(() => {
    cleanup();
    forgetDraft("w1");
    vi.restoreAllMocks();
  });

  it("shows a failed view's error and hands back the unsaved draft instead of a blank page", () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    rememberDraft("w1", { fields: [{ key: "db_host", type: "text" }], values: { db_host: "10.0.0.1" } });
    render(
      <div>
        <header>still here</header>
        <ErrorBoundary resetKey="w1">
          <Broken />
        </ErrorBoundary>
      </div>,
    );
    expect(screen.getByText("still here")).toBeTruthy();
    expect(screen.getByRole("alert").textContent).toContain("This view stopped working");
    const draft = screen.getByLabelText("Unsaved configuration") as HTMLTextAreaElement;
    expect(JSON.parse(draft.value).values.db_host).toBe("10.0.0.1");
    expect(screen.getByRole("button", { name: "Copy unsaved configuration" })).toBeTruthy();
  });

  it("says when nothing unsaved was lost, and can try again", () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    let fail = true;
    function Sometimes() {
      if (fail) throw new Error("boom");
      return <p>back</p>;
    }
    render(
      <ErrorBoundary resetKey="w2">
        <Sometimes />
      </ErrorBoundary>,
    );
    expect(screen.getByText("No unsaved edits were lost.")).toBeTruthy();
    fail = false;
    fireEvent.click(screen.getByRole("button", { name: "Try again" }));
    expect(screen.getByText("back")).toBeTruthy();
  });
});
