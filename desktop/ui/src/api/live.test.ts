import { describe, expect, it } from "vitest";
import { isRunChange, isWorkflowChange, liveAvailable, subscribe, type Change } from "./live";

const change = (kind: string, workflow_id: string | null): Change => ({ seq: 1, kind, workflow_id, run_id: null });

describe("live changes", () => {
  it("tell workflow changes from run changes, per workflow", () => {
    expect(isWorkflowChange(change("workflow.updated", "w1"))).toBe(true);
    expect(isWorkflowChange(change("config.updated", "w1"))).toBe(true);
    expect(isWorkflowChange(change("execution.started", "w1"))).toBe(false);
    expect(isWorkflowChange("reload")).toBe(true);
    expect(isRunChange(change("execution.finished", "w1"), "w1")).toBe(true);
    expect(isRunChange(change("execution.finished", "w2"), "w1")).toBe(false);
    expect(isRunChange(change("execution.finished", "w2"), null)).toBe(true);
    expect(isRunChange(change("workflow.updated", "w1"), "w1")).toBe(false);
    expect(isRunChange("reload", "w1")).toBe(true);
  });

  it("are not offered where there is no EventSource (views poll instead)", () => {
    expect(liveAvailable()).toBe(typeof EventSource !== "undefined");
    if (!liveAvailable()) expect(subscribe(() => {})).toBeNull();
  });
});
