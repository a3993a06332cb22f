import { describe, expect, it } from "vitest";
import { runRefusal } from "./App";
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
