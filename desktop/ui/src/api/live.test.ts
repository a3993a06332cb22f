import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { isRunChange, isWorkflowChange, liveAvailable, subscribe, subscribeCoalesced, subscribeSync, type Change } from "./live";
import type { SyncStatus } from "../generated/bindings";
import { FakeSource } from "./fakeEventSource";

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

  it("are not offered where there is neither EventSource nor the desktop window's events", () => {
    expect(liveAvailable()).toBe(typeof EventSource !== "undefined");
    if (!liveAvailable()) expect(subscribe(() => {})).toBeNull();
  });
});

describe("subscribeCoalesced", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.stubGlobal("EventSource", FakeSource);
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it("reads again once for a burst of matching changes, and again for a later one", () => {
    const reread = vi.fn();
    const stop = subscribeCoalesced((e) => isRunChange(e, "w1"), reread, 250);
    expect(stop).not.toBeNull();
    const source = FakeSource.last!;
    source.send("ready", { seq: 0 });
    for (let i = 0; i < 1000; i++) source.send("change", { ...change("execution.recorded", "w1"), seq: i + 1 });
    source.send("change", change("execution.recorded", "w2"));
    expect(reread).not.toHaveBeenCalled();
    vi.advanceTimersByTime(250);
    expect(reread).toHaveBeenCalledTimes(1);
    source.send("change", change("workflow.updated", "w1"));
    vi.advanceTimersByTime(1000);
    expect(reread).toHaveBeenCalledTimes(1);
    source.send("change", change("execution.finished", "w1"));
    vi.advanceTimersByTime(250);
    expect(reread).toHaveBeenCalledTimes(2);
    stop!();
    source.send("change", change("execution.finished", "w1"));
    vi.advanceTimersByTime(250);
    expect(reread).toHaveBeenCalledTimes(2);
  });
});

describe("sync state", () => {
  afterEach(() => vi.unstubAllGlobals());
  const status = { configured: true, pending_local_changes: 2 } as SyncStatus;

  it("arrives pushed in a browser", () => {
    vi.stubGlobal("EventSource", FakeSource);
    const heard: SyncStatus[] = [];
    const stop = subscribeSync((s) => heard.push(s));
    FakeSource.last!.send("sync", status);
    expect(heard).toEqual([status]);
    stop!();
  });

  it("and changes arrive as Tauri events in the desktop window, through the same listeners", async () => {
    let handler: ((e: { payload: unknown }) => void) | null = null;
    let unlistened = false;
    vi.stubGlobal("__TAURI__", {
      core: { invoke: async () => null },
      event: {
        listen: async (name: string, h: (e: { payload: unknown }) => void) => {
          expect(name).toBe("flowkeep:live");
          handler = h;
          return () => (unlistened = true);
        },
      },
    });
    expect(liveAvailable()).toBe(true);
    const changes: unknown[] = [];
    const syncs: SyncStatus[] = [];
    const stopChanges = subscribe((e) => changes.push(e));
    const stopSync = subscribeSync((s) => syncs.push(s));
    await Promise.resolve();
    handler!({ payload: { event: "change", data: JSON.stringify(change("workflow.created", "w1")) } });
    handler!({ payload: { event: "sync", data: JSON.stringify(status) } });
    handler!({ payload: { event: "reload", data: "\"many changes at once\"" } });
    expect(changes).toEqual([change("workflow.created", "w1"), "reload"]);
    expect(syncs).toEqual([status]);
    stopChanges!();
    expect(unlistened).toBe(false);
    stopSync!();
    expect(unlistened).toBe(true);
  });
});
