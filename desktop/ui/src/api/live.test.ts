import { describe, expect, it } from "vitest";
import { isRunChange, isWorkflowChange, liveAvailable, subscribe, type Change } from "./live";
import { pathOf, routeOf } from "../App";

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

describe("URLs", () => {
  it("name a workflow and its tab, and read back", () => {
    expect(routeOf("/")).toEqual({ id: null, tab: "config", run: null });
    expect(routeOf("/workflows/abc")).toEqual({ id: "abc", tab: "config", run: null });
    expect(routeOf("/workflows/abc/runs")).toEqual({ id: "abc", tab: "runs", run: null });
    expect(routeOf("/workflows/abc/runs/r1")).toEqual({ id: "abc", tab: "runs", run: "r1" });
    expect(routeOf("/workflows/abc/history/r1")).toEqual({ id: null, tab: "config", run: null });
    expect(routeOf("/workflows/abc/nope")).toEqual({ id: null, tab: "config", run: null });
    for (const [id, tab, run] of [["0190-x", "history", null], ["a b", "config", null], ["w", "runs", "r 2"]] as const) {
      expect(routeOf(pathOf(id, tab, run))).toEqual({ id, tab, run });
    }
    expect(pathOf(null, "runs")).toBe("/");
    expect(pathOf("w", "config", "r1")).toBe("/workflows/w");
  });
});
