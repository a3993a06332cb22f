// Live changes: a change made anywhere (this page, the CLI, a job, another
// device through sync) reaches every open view within a fraction of a
// second, without polling. In a browser they come from `flowkeep ui` as
// Server-Sent Events (`GET /api/events`); in the desktop window as Tauri
// events (`flowkeep:live`) with the same names and data.

import type { SyncStatus } from "../generated/bindings";
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
type SyncListener = (s: SyncStatus) => void;

const listeners = new Set<Listener>();
const syncListeners = new Set<SyncListener>();
let source: { close: () => void } | null = null;

interface TauriEvents {
  listen: (event: string, handler: (e: { payload: unknown }) => void) => Promise<() => void>;
}

function tauriEvents(): TauriEvents | undefined {
  return (globalThis as unknown as { __TAURI__?: { event?: TauriEvents } }).__TAURI__?.event;
}

export function liveAvailable(): boolean {
  return inDesktopWindow() ? tauriEvents() !== undefined : typeof EventSource !== "undefined";
}

function emit(e: LiveEvent) {
  for (const l of listeners) l(e);
}

/** One event as both sources name it: `change`, `sync`, `reload`. */
function heard(name: string, data: string) {
  if (name === "reload") return emit("reload");
  try {
    const parsed: unknown = JSON.parse(data);
    if (name === "change") emit(parsed as Change);
    else if (name === "sync") for (const l of syncListeners) l(parsed as SyncStatus);
  } catch {
    emit("reload");
  }
}

function openEventSource() {
  // Same origin: the session cookie goes along.
  const es = new EventSource("/api/events");
  let connectedOnce = false;
  es.addEventListener("ready", () => {
    // A reconnect (the server restarted, the laptop slept) may have missed
    // changes.
    if (connectedOnce) emit("reload");
    connectedOnce = true;
  });
  for (const name of ["change", "sync", "reload"]) {
    es.addEventListener(name, (m) => heard(name, (m as MessageEvent<string>).data));
  }
  return es;
}

function openWindowEvents(events: TauriEvents) {
  let closed = false;
  let unlisten: (() => void) | null = null;
  void events
    .listen("flowkeep:live", (e) => {
      const { event, data } = e.payload as { event: string; data: string };
      heard(event, data);
    })
    .then((stop) => {
      if (closed) stop();
      else unlisten = stop;
    });
  return {
    close: () => {
      closed = true;
      unlisten?.();
    },
  };
}

function ensureOpen() {
  if (source) return;
  const events = inDesktopWindow() ? tauriEvents() : undefined;
  source = events ? openWindowEvents(events) : openEventSource();
}

function closeWhenUnused() {
  if (listeners.size === 0 && syncListeners.size === 0 && source) {
    source.close();
    source = null;
  }
}

/** Adds `listener` to `set` (opening the stream) until the returned
 * function is called; null where live events are not available. */
function listen<L>(set: Set<L>, listener: L): (() => void) | null {
  if (!liveAvailable()) return null;
  set.add(listener);
  ensureOpen();
  return () => {
    set.delete(listener);
    closeWhenUnused();
  };
}

/** Calls `listener` for every live event until the returned function is
 * called. Returns null where live events are not available. */
export function subscribe(listener: Listener): (() => void) | null {
  return listen(listeners, listener);
}

/** Calls `listener` with this device's sync state whenever it changes
 * (what `sync_status` answers). Returns null where live events are not
 * available. */
export function subscribeSync(listener: SyncListener): (() => void) | null {
  return listen(syncListeners, listener);
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
