import { describe, expect, it } from "vitest";
import { pathOf, routeOf, runRefusal } from "./App";
import { ApiError } from "./api/errors";

describe("runRefusal", () => {
  it("words a refused run for a person using the UI", () => {
    const noCommand = new ApiError({
      code: "validation_failed",
      message: 'validation failed: run (required): this workflow has no command: add "run": {...}',
      fields: [{ field: "run", code: "required", message: "…" }],
    });
    expect(runRefusal(noCommand)).toMatch(/^this workflow has no command yet\. Set one under Run in Configuration/);
    expect(runRefusal(noCommand)).not.toMatch(/"run"|\{/);
    const unapproved = new ApiError({ code: "not_approved", message: "workflow x (id) will not run …", fields: [] });
    expect(runRefusal(unapproved)).toMatch(/will not run on this device: .*approve/);
    const broken = new ApiError({
      code: "validation_failed",
      message: "validation failed",
      fields: [{ field: "values.retries", code: "range", message: "must be at most 5" }],
    });
    expect(runRefusal(broken)).toBe("its configuration breaks its rules (retries). Fix it in Configuration, then save.");
  });
});

describe("routeOf and pathOf", () => {
  it("give every view its own address and read it back", () => {
    const views: [string | null, "config" | "runs" | "history", string | null, string][] = [
      [null, "config", null, "/"],
      [null, "runs", null, "/runs"],
      [null, "runs", "r 1", "/runs/r%201"],
      ["w1", "config", null, "/workflows/w1"],
      ["w1", "runs", null, "/workflows/w1/runs"],
      ["w1", "runs", "r1", "/workflows/w1/runs/r1"],
      ["w1", "history", null, "/workflows/w1/history"],
    ];
    for (const [id, tab, run, path] of views) {
      expect(pathOf(id, tab, run)).toBe(path);
      expect(routeOf(path)).toEqual({ id, tab, run });
    }
  });

  it("read an address that names nothing as the overview", () => {
    expect(routeOf("/nowhere")).toEqual({ id: null, tab: "config", run: null });
    expect(routeOf("/workflows/w1/history/r1")).toEqual({ id: null, tab: "config", run: null });
    expect(routeOf("/workflows/w1/nope")).toEqual({ id: null, tab: "config", run: null });
  });

  it("keep ids with any character and drop a run outside the Runs tab", () => {
    for (const [id, tab, run] of [["0190-x", "history", null], ["a b", "config", null], ["w", "runs", "r 2"]] as const) {
      expect(routeOf(pathOf(id, tab, run))).toEqual({ id, tab, run });
    }
    expect(pathOf("w", "config", "r1")).toBe("/workflows/w");
  });
});
