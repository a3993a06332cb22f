import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { isRunChange, isWorkflowChange, liveAvailable, subscribe, subscribeCoalesced, type Change } from "./live";

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

/** A stand-in for the browser's EventSource: the test sends the events. */
class FakeSource {
  static last: FakeSource | null = null;
  listeners = new Map<string, ((m: MessageEvent<string>) => void)[]>();
  constructor(public url: string) {
    FakeSource.last = this;
  }
  addEventListener(name: string, fn: (m: MessageEvent<string>) => void) {
    this.listeners.set(name, [...(this.listeners.get(name) ?? []), fn]);
  }
  close() {}
  send(name: string, data: unknown) {
    for (const fn of this.listeners.get(name) ?? []) fn({ data: JSON.stringify(data) } as MessageEvent<string>);
  }
}

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
