import { useEffect, useState } from "react";
import { call, desktopFollowOutput, inDesktopWindow } from "../api/transport";
import { messageOf } from "../api/errors";

/** The most of a log kept on the page; beyond it the start is dropped. */
const MAX_CHARS = 2_000_000;

export interface RunOutputState {
  text: string;
  /** The start of the text shown was dropped (the page keeps the last 2 MB). */
  trimmed: boolean;
  /** The log outgrew what is kept on disk: its middle is cut. */
  cut: boolean;
  /** The run ended and all of its output is here. */
  ended: boolean;
  /** Why there is no output (another device's run, a deleted run). */
  error: string | null;
}

const EMPTY: RunOutputState = { text: "", trimmed: false, cut: false, ended: false, error: null };

function append(s: RunOutputState, text: string, cut: boolean): RunOutputState {
  let all = s.text + (cut ? "\n[the output grew too long: its middle is cut; the end follows when the run ends]\n" : "") + text;
  let trimmed = s.trimmed;
  if (all.length > MAX_CHARS) {
    all = all.slice(all.length - MAX_CHARS);
    trimmed = true;
  }
  return { ...s, text: all, trimmed, cut: s.cut || cut };
}

/**
 * A run's output log, as it is written: streamed by the app, from the
 * server in a browser (`GET /api/runs/<ID>/output`, picking up where it left
 * off after a dropped connection), through a Tauri channel in the desktop
 * window. Both send the same events: `output`, `end`, `failed`.
 */
export function useRunOutput(runId: string | null): RunOutputState {
  const [state, setState] = useState<RunOutputState>(EMPTY);
  useEffect(() => {
    setState(EMPTY);
    if (!runId) return;
    let closed = false;
    let ended = false;
    let next = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let source: EventSource | null = null;
    let stopWindow: (() => void) | null = null;

    const heard = (name: string, data: string) => {
      if (closed) return;
      if (name === "output") {
        const p = JSON.parse(data) as { text: string; next: number; cut: boolean };
        next = p.next;
        setState((s) => append(s, p.text, p.cut));
      } else if (name === "end") {
        ended = true;
        source?.close();
        setState((s) => ({ ...s, ended: true }));
      } else if (name === "failed") {
        source?.close();
        setState((s) => ({ ...s, error: data }));
      }
    };

    // Why the stream could not start (EventSource does not say): ask once.
    const explain = async () => {
      try {
        await call("get_run_output", { id: runId, from: next, limit: 1 });
        return null;
      } catch (e) {
        return messageOf(e);
      }
    };

    const stream = () => {
      source = new EventSource(`/api/runs/${encodeURIComponent(runId)}/output?from=${next}`);
      for (const name of ["output", "end", "failed"]) {
        source.addEventListener(name, (m) => heard(name, (m as MessageEvent<string>).data));
      }
      source.onerror = () => {
        // Refused (not found, another device's run) or the connection
        // dropped: find out which; go on from where it was if it dropped.
        source?.close();
        if (ended) return;
        void explain().then((error) => {
          if (closed) return;
          if (error) setState((s) => ({ ...s, error }));
          else timer = setTimeout(stream, 1000);
        });
      };
    };

    if (inDesktopWindow()) {
      desktopFollowOutput(runId, 0, heard).then(
        (stop) => {
          if (closed) stop();
          else stopWindow = stop;
        },
        (e) => !closed && setState((s) => ({ ...s, error: messageOf(e) })),
      );
    } else stream();
    return () => {
      closed = true;
      source?.close();
      stopWindow?.();
      if (timer) clearTimeout(timer);
    };
  }, [runId]);
  return state;
}
