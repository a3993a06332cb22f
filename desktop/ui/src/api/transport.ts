// The one way the UI talks to Flowkeep: Tauri `invoke` inside the desktop
// window, `fetch` to the local HTTP API (`flowkeep ui`) in a browser. Both
// carry the same command names, inputs and outputs (generated from Rust).

import type {
  CommandName,
  Commands,
  ErrorBody,
  Run,
  RunFilter,
  ExportFormat,
  RunCancelled,
  RunWorkflow,
} from "../generated/bindings";
import { ApiError } from "./errors";

type TauriInvoke = (cmd: string, args?: Record<string, unknown>) => Promise<unknown>;

interface TauriChannel {
  onmessage: (message: unknown) => void;
}

interface TauriGlobal {
  core?: { invoke?: TauriInvoke; Channel?: new () => TauriChannel };
}

function tauriInvoke(): TauriInvoke | undefined {
  const g = globalThis as unknown as { __TAURI__?: TauriGlobal };
  return g.__TAURI__?.core?.invoke;
}

/** Calls a Tauri command directly (inside the desktop window only). */
export async function desktopInvoke(cmd: string, args: Record<string, unknown>): Promise<unknown> {
  const invoke = tauriInvoke();
  if (!invoke) throw new ApiError({ code: "internal", message: "not in the desktop window", fields: [] });
  try {
    return await invoke(cmd, args);
  } catch (e) {
    throw ApiError.from(e);
  }
}

/**
 * Follows a run's output in the desktop window: `onEvent` hears the same
 * events a browser gets from `GET /api/runs/<ID>/output` (`output`, `end`,
 * `failed`, with their JSON text). Rejects when the output cannot be read
 * (an unknown run, another device's); resolves to the function that stops.
 */
export async function desktopFollowOutput(
  runId: string,
  from: number,
  onEvent: (name: string, data: string) => void,
): Promise<() => void> {
  const Channel = (globalThis as unknown as { __TAURI__?: TauriGlobal }).__TAURI__?.core?.Channel;
  if (!Channel) throw new ApiError({ code: "internal", message: "not in the desktop window", fields: [] });
  const channel = new Channel();
  channel.onmessage = (m) => {
    const { event, data } = m as { event: string; data: string };
    onEvent(event, data);
  };
  const follow = (await desktopInvoke("follow_run_output", { id: runId, from, onOutput: channel })) as number;
  return () => void desktopInvoke("stop_run_output", { follow }).catch(() => {});
}

/** True inside the desktop (Tauri) window. */
export function inDesktopWindow(): boolean {
  return tauriInvoke() !== undefined;
}

const TOKEN_KEY = "flowkeep.token";

/**
 * The per-launch token: taken from `?token=` of the URL `flowkeep ui` printed,
 * kept for this tab only, and removed from the address bar so it is not
 * shared by accident (screenshots, copied links).
 */
export function sessionToken(): string | null {
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get("token");
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl);
    url.searchParams.delete("token");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
    return fromUrl;
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

export type Input<C extends CommandName> = Commands[C]["input"];
export type Output<C extends CommandName> = Commands[C]["output"];

/** Runs a command; rejects with an `ApiError` carrying the error body. */
export async function call<C extends CommandName>(name: C, input: Input<C>): Promise<Output<C>> {
  return (await request(name, input)) as Output<C>;
}

/** One request by name: a command of the table, or `run` / `cancel_run`. */
async function request(name: string, input: unknown): Promise<unknown> {
  const invoke = tauriInvoke();
  if (invoke) {
    try {
      return await invoke("command", { name, input });
    } catch (e) {
      throw ApiError.from(e);
    }
  }
  let response: Response;
  try {
    response = await fetch(`/api/${name}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${sessionToken() ?? ""}` },
      body: JSON.stringify(input),
    });
  } catch (e) {
    throw new ApiError({
      code: "internal",
      message: `Flowkeep is not reachable (${String(e)}). Is \`flowkeep ui\` still running?`,
      fields: [],
    });
  }
  const text = await response.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const error = ApiError.from(body ?? { code: "internal", message: `HTTP ${response.status}: ${text}`, fields: [] });
    throw new ApiError(error.body, response.status);
  }
  return body;
}

/** Starts a workflow's command; resolves with the started run (it keeps going). */
export async function startRun(input: RunWorkflow): Promise<Run> {
  return (await request("run", input)) as Run;
}

/** Stops a run this app started; it is recorded as cancelled. */
export async function cancelRun(id: string): Promise<RunCancelled> {
  return (await request("cancel_run", { id })) as RunCancelled;
}

/** Exported runs as a file body (json, ndjson or csv), from the HTTP API. */
export async function exportRuns(filter: RunFilter, format: ExportFormat): Promise<Blob> {
  const params = new URLSearchParams({ format });
  for (const [k, v] of Object.entries(filter)) {
    if (v !== undefined && v !== null && v !== "") params.set(k, String(v));
  }
  const response = await fetch(`/api/export?${params}`, {
    headers: { Authorization: `Bearer ${sessionToken() ?? ""}` },
  });
  if (!response.ok) {
    const text = await response.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = { code: "internal", message: text, fields: [] } satisfies ErrorBody;
    }
    throw ApiError.from(body);
  }
  return response.blob();
}
