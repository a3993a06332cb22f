// Live changes pushed by `flowkeep ui` (`GET /api/events`, Server-Sent
// Events): a change made anywhere (this page, the CLI, a job, another
// device through sync) reaches every open page within a fraction of a
// second, without polling. Inside the desktop window there is no HTTP
// server: `liveAvailable()` is false there and views keep polling.

import { inDesktopWindow } from "./transport";

/** One event of the log, as the server describes it. */
export interface Change {
  seq: number;
  kind: string;
  workflow_id: string | null;
  run_id: string | null;
}

/** A change, or "reload": the page may have missed changes (it reconnected
 * or fell behind) and should read what it shows again. */
export type LiveEvent = Change | "reload";

type Listener = (e: LiveEvent) => void;

const listeners = new Set<Listener>();
let source: EventSource | null = null;
let connectedOnce = false;

export function liveAvailable(): boolean {
  return typeof EventSource !== "undefined" && !inDesktopWindow();
}

function emit(e: LiveEvent) {
  for (const l of listeners) l(e);
}

function open() {
  // Same origin: the session cookie goes along.
  source = new EventSource("/api/events");
  source.addEventListener("ready", () => {
    // A reconnect (the server restarted, the laptop slept) may have missed
    // changes.
    if (connectedOnce) emit("reload");
    connectedOnce = true;
  });
  source.addEventListener("reload", () => emit("reload"));
  source.addEventListener("change", (m) => {
    try {
      emit(JSON.parse((m as MessageEvent<string>).data) as Change);
    } catch {
      emit("reload");
    }
  });
}

/** Calls `listener` for every live event until the returned function is
 * called. Returns null where live events are not available. */
export function subscribe(listener: Listener): (() => void) | null {
  if (!liveAvailable()) return null;
  listeners.add(listener);
  if (!source) open();
  return () => {
    listeners.delete(listener);
    if (listeners.size === 0 && source) {
      source.close();
      source = null;
      connectedOnce = false;
    }
  };
}

/** Whether a change concerns workflow definitions (names, config, tags). */
export function isWorkflowChange(e: LiveEvent): boolean {
  return e === "reload" || /^(workflow|config|remote)\./.test(e.kind);
}

/** Whether a change concerns the runs of `workflowId` (or of any workflow). */
export function isRunChange(e: LiveEvent, workflowId?: string | null): boolean {
  if (e === "reload") return true;
  if (!e.kind.startsWith("execution") && e.kind !== "remote.merged") return false;
  return !workflowId || e.workflow_id === workflowId || e.workflow_id === null;
}

/**
 * `subscribe` for views that read again on news: `reread` is called once
 * `ms` after the first matching event of a burst, however many follow in
 * that time (an import of thousands of runs is one read, not thousands).
 * Returns null where live events are not available.
 */
export function subscribeCoalesced(
  matches: (e: LiveEvent) => boolean,
  reread: () => void,
  ms = 250,
): (() => void) | null {
  let pending: ReturnType<typeof setTimeout> | null = null;
  const unsubscribe = subscribe((e) => {
    if (!matches(e) || pending) return;
    pending = setTimeout(() => {
      pending = null;
      reread();
    }, ms);
  });
  if (!unsubscribe) return null;
  return () => {
    unsubscribe();
    if (pending) clearTimeout(pending);
  };
}
