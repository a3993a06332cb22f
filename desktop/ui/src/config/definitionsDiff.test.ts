import { describe, expect, it } from "vitest";
import { describeDefinitionsChange } from "./definitionsDiff";

describe("describeDefinitionsChange", () => {
  it("names added, removed, changed and moved fields", () => {
    const before = [
      { key: "a", type: "number", max: 5 },
      { key: "b", type: "text" },
      { key: "c", type: "boolean" },
    ];
    const after = [
      { key: "c", type: "boolean" },
      { key: "a", type: "number", max: 6, integer: true },
      { key: "d", type: "json" },
    ];
    expect(describeDefinitionsChange(before, after)).toEqual([
      "a: max 5 → 6, integer — → true",
      "added d (json)",
      "removed b",
      "order: c, a, d",
    ]);
  });

  it("from no fields, and for values that are not definition lists", () => {
    expect(describeDefinitionsChange(null, [{ key: "x", type: "text" }])).toEqual(["added x (text)"]);
    expect(describeDefinitionsChange("x", [])).toBeNull();
    expect(describeDefinitionsChange([{ nokey: 1 }], [])).toBeNull();
  });
});
