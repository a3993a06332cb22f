import { describe, expect, it } from "vitest";
import type { Workflow } from "../generated/bindings";
import { unapprovedChanges } from "./unapproved";

function workflow(run: unknown, approvedRun: unknown, approved: boolean): Workflow {
  return {
    id: "w",
    name: "job",
    description: "",
    version: "1.0.0",
    tags: [],
    config: { fields: [], values: {}, run } as Workflow["config"],
    created_at: 0,
    updated_at: 0,
    revision: 3,
    approval: { approved, approved_spec: { run: approvedRun, retention: null } as Workflow["approval"]["approved_spec"] },
  } as Workflow;
}

describe("unapprovedChanges", () => {
  it("names the run spec with what was approved and what is in effect", () => {
    const changes = unapprovedChanges(workflow({ command: ["touch", "pwned"] }, { command: ["echo", "hi"] }, false));
    expect(changes).toEqual([
      { field: "config.run", approved: { command: ["echo", "hi"] }, now: { command: ["touch", "pwned"] } },
    ]);
  });

  it("finds nothing when the run spec is the approved one, whatever the key order", () => {
    const now = { command: ["a"], timeout_s: 5 };
    const approved = { timeout_s: 5, command: ["a"] };
    expect(unapprovedChanges(workflow(now, approved, true))).toEqual([]);
  });

  it("treats a run spec that arrived where none was approved as a change", () => {
    expect(unapprovedChanges(workflow({ command: ["x"] }, null, false))[0].approved).toBeNull();
  });
});
