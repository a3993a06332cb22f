import { afterEach, describe, expect, it } from "vitest";
import { takeInlineFirstPage } from "./useWorkflowManager";

function block(text: string) {
  const s = document.createElement("script");
  s.type = "application/json";
  s.id = "flowkeep-first-page";
  s.textContent = text;
  document.head.appendChild(s);
}

afterEach(() => document.getElementById("flowkeep-first-page")?.remove());

describe("the first page written into the page by flowkeep ui", () => {
  it("is read once, then gone", () => {
    block(JSON.stringify({ items: [{ id: "w1", name: "a \u003c/script> b" }], next_cursor: null }));
    const page = takeInlineFirstPage();
    expect(page?.items.map((w) => w.name)).toEqual(["a </script> b"]);
    expect(document.getElementById("flowkeep-first-page")).toBeNull();
    expect(takeInlineFirstPage()).toBeNull();
  });

  it("is ignored when it does not read as a page", () => {
    block("{not json");
    expect(takeInlineFirstPage()).toBeNull();
    block(JSON.stringify({ rows: [] }));
    expect(takeInlineFirstPage()).toBeNull();
  });
});
