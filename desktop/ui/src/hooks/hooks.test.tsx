import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { act, renderHook, waitFor } from "@testing-library/react";
import { useWorkflowManager } from "./useWorkflowManager";
import { useConfigEditor } from "./useConfigEditor";
import { useRunHistory } from "./useRunHistory";
import { workflowNames } from "./workflowNames";
import { useRunOutput } from "./useRunOutput";
import { FakeSource } from "../api/fakeEventSource";
import { call } from "../api/transport";
import { ApiError } from "../api/errors";

type Handler = (input: Record<string, unknown>) => unknown | Promise<unknown>;

/** A stand-in for the HTTP API: records calls, answers per command. */
function fakeApi(handlers: Record<string, Handler>) {
  const calls: { name: string; input: Record<string, unknown>; auth: string | null }[] = [];
  const fetchMock = vi.fn(async (url: string, init: RequestInit) => {
    const name = url.replace("/api/", "");
    const input = JSON.parse(String(init.body));
    const auth = new Headers(init.headers).get("Authorization");
    calls.push({ name, input, auth });
    const handler = handlers[name];
    if (!handler) return new Response(JSON.stringify({ code: "not_found", message: name, fields: [] }), { status: 404 });
    try {
      return new Response(JSON.stringify(await handler(input)), { status: 200 });
    } catch (e) {
      return new Response(JSON.stringify((e as { body: unknown }).body), { status: 422 });
    }
  });
  vi.stubGlobal("fetch", fetchMock);
  return calls;
}

const summary = (i: number) => ({
  id: `w${i}`,
  name: `wf ${String(i).padStart(3, "0")}`,
  description: "",
  version: "",
  tags: [],
  created_at: i,
  updated_at: i,
  revision: 1,
});

/** Keyset paging over `n` workflows, like the real command. */
function pagedWorkflows(n: number): Handler {
  const all = Array.from({ length: n }, (_, i) => summary(i));
  return (input) => {
    const search = (input.search as string | undefined) ?? "";
    const rows = all.filter((w) => w.name.includes(search));
    const start = input.cursor ? Number(input.cursor) : 0;
    const limit = Number(input.limit ?? 50);
    const items = rows.slice(start, start + limit);
    return { items, next_cursor: start + limit < rows.length ? String(start + limit) : null };
  };
}

beforeEach(() => {
  sessionStorage.setItem("flowkeep.token", "secret-token");
});
afterEach(() => {
  vi.unstubAllGlobals();
  sessionStorage.clear();
});

describe("transport", () => {
  it("sends the token and turns error bodies into ApiError with fields", async () => {
    const calls = fakeApi({
      get_workflow: () => {
        throw { body: { code: "validation_failed", message: "bad", fields: [{ field: "id", code: "length", message: "too long" }] } };
      },
    });
    const err = await call("get_workflow", { id: "x" }).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.code).toBe("validation_failed");
    expect(err.fields).toEqual([{ field: "id", code: "length", message: "too long" }]);
    expect(calls[0].auth).toBe("Bearer secret-token");
  });

  it("says when flowkeep ui is gone", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => Promise.reject(new TypeError("Failed to fetch"))));
    const err = await call("list_workflows", {}).catch((e) => e);
    expect(err.message).toMatch(/not reachable/);
  });
});

describe("useWorkflowManager", () => {
  it("loads one page, appends the next with its cursor, and resets on a new query", async () => {
    const calls = fakeApi({ list_workflows: pagedWorkflows(120), count_workflows: () => ({ count: 120 }) });
    const lists = () => calls.filter((c) => c.name === "list_workflows");
    const { result } = renderHook(() => useWorkflowManager(50, 0));
    await waitFor(() => expect(result.current.items.length).toBe(50));
    await waitFor(() => expect(result.current.total).toBe(120));
    expect(result.current.hasMore).toBe(true);
    await act(() => result.current.loadMore());
    expect(result.current.items.length).toBe(100);
    expect(lists().at(-1)!.input.cursor).toBe("50");
    await act(() => result.current.loadMore());
    expect(result.current.items.length).toBe(120);
    expect(result.current.hasMore).toBe(false);
    expect(new Set(result.current.items.map((w) => w.id)).size).toBe(120);

    act(() => result.current.setQuery({ ...result.current.query, search: "wf 01" }));
    await waitFor(() => expect(result.current.items.length).toBe(10));
    expect(lists().at(-1)!.input).toMatchObject({ search: "wf 01", sort: "name", desc: false });
    expect(lists().at(-1)!.input.cursor).toBeUndefined();
    // The count is asked with the same search.
    await waitFor(() => expect(calls.filter((c) => c.name === "count_workflows").at(-1)!.input).toEqual({ search: "wf 01" }));
  });

  it("an older, slower answer does not overwrite a newer one", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const pages = pagedWorkflows(30);
    const calls = fakeApi({
      list_workflows: async (input) => {
        if (!input.search) await gate; // the first (unfiltered) load is slow
        return pages(input);
      },
    });
    const { result } = renderHook(() => useWorkflowManager(50, 0));
    await waitFor(() => expect(calls.length).toBe(1)); // the slow one is in flight
    act(() => result.current.setQuery({ ...result.current.query, search: "wf 02" }));
    await waitFor(() => expect(result.current.items.length).toBe(10));
    release();
    await new Promise((r) => setTimeout(r, 20));
    expect(result.current.items.length).toBe(10);
  });

  it("create, duplicate and delete refresh the list; errors are shown", async () => {
    const rows = [summary(1)];
    fakeApi({
      list_workflows: () => ({ items: [...rows], next_cursor: null }),
      create_workflow: (input) => {
        const w = { ...summary(rows.length + 1), name: input.name as string };
        rows.push(w);
        return { ...w, config: { fields: [], values: {} } };
      },
      delete_workflow: (input) => {
        rows.splice(rows.findIndex((w) => w.id === input.id), 1);
        return { id: input.id, deleted: true };
      },
    });
    const { result } = renderHook(() => useWorkflowManager(50, 0));
    await waitFor(() => expect(result.current.items.length).toBe(1));
    await act(async () => {
      await result.current.create({ name: "new one", tags: [] });
    });
    expect(result.current.items.map((w) => w.name)).toContain("new one");
    await act(() => result.current.remove("w1", 1));
    expect(result.current.items.map((w) => w.id)).toEqual(["w2"]);
    const err = await result.current.duplicate("w2").catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
  });
});

describe("useConfigEditor", () => {
  it("saves values and definitions at the loaded revision; returns the server's field errors", async () => {
    let revision = 4;
    const calls = fakeApi({
      get_config: () => ({ workflow_id: "w1", revision, fields: [{ key: "n", type: "number", max: 5 }], values: { n: 1 }, run: { command: ["true"] } }),
      update_config: (input) => {
        const values = (input.config as { values: { n: number } }).values;
        if (values.n > 5) {
          throw { body: { code: "validation_failed", message: "validation failed", fields: [{ field: "values.n", code: "range", message: "must be at most 5, got 9" }] } };
        }
        revision += 1;
        return { workflow_id: "w1", revision, ...(input.config as object) };
      },
    });
    const { result } = renderHook(() => useConfigEditor("w1"));
    await waitFor(() => expect(result.current.config?.revision).toBe(4));

    let outcome: Awaited<ReturnType<typeof result.current.save>> | undefined;
    await act(async () => {
      outcome = await result.current.save([{ key: "n", type: "number", max: 5 }], { n: 9 });
    });
    expect(outcome).toEqual({ ok: false, conflict: false, message: "validation failed", errors: [{ field: "values.n", code: "range", message: "must be at most 5, got 9" }] });
    expect(result.current.config?.revision).toBe(4);

    await act(async () => {
      outcome = await result.current.save([{ key: "n", type: "number", max: 5 }], { n: 2 });
    });
    expect(outcome?.ok).toBe(true);
    const sent = calls.at(-1)!.input;
    expect(sent.expected_revision).toBe(4);
    // The run spec it did not edit goes back unchanged.
    expect(sent.config).toMatchObject({ values: { n: 2 }, run: { command: ["true"] } });
    expect(result.current.config?.revision).toBe(5);
  });
});

describe("workflowNames", () => {
  it("asks the names it does not know in one request; a deleted workflow is null", async () => {
    const calls = fakeApi({
      workflow_names: (input) => (input.ids as string[]).map((id) => ({ id, name: id === "gone" ? null : `name of ${id}` })),
    });
    const names = await workflowNames(["a", "b", "a", "gone", "c"], new Map([["c", "C"]]));
    expect(calls.map((c) => c.name)).toEqual(["workflow_names"]);
    expect(calls[0].input).toEqual({ ids: ["a", "b", "gone"] });
    expect(Object.fromEntries(names)).toEqual({ a: "name of a", b: "name of b", gone: null, c: "C" });
  });
});

describe("useRunHistory", () => {
  const run = (i: number) => ({ id: `e${i}`, workflow_id: "w1", status: "succeeded", output: null, started_at: 1000 - i, completed_at: null, duration_ms: null, exit_code: null, error: null, trigger: "cli", device_id: "d" });

  it("appends keyset pages as the list scrolls; filters start again with one page", async () => {
    const calls = fakeApi({
      list_runs: (input) => {
        const start = input.cursor ? Number(input.cursor) : 0;
        const end = Math.min(start + Number(input.limit), 45);
        const items = Array.from({ length: Math.max(end - start, 0) }, (_, i) => run(start + i));
        return { items, next_cursor: end < 45 ? String(end) : null };
      },
      count_runs: () => ({ count: 45 }),
    });
    const { result } = renderHook(() => useRunHistory("w1", 20));
    await waitFor(() => expect(result.current.items.length).toBe(20));
    await waitFor(() => expect(result.current.total).toBe(45));
    await act(() => result.current.loadMore());
    expect(result.current.items.map((r) => r.id).slice(18, 22)).toEqual(["e18", "e19", "e20", "e21"]);
    await act(() => result.current.loadMore());
    expect(result.current.items.length).toBe(45);
    expect(result.current.hasMore).toBe(false);
    // Nothing more to ask for.
    const pages = () => calls.filter((c) => c.name === "list_runs");
    const asked = pages().length;
    await act(() => result.current.loadMore());
    expect(pages().length).toBe(asked);

    // A live reload reads again the rows loaded so far, from the top.
    await act(() => result.current.reload());
    expect(pages().at(-1)!.input).toEqual({ workflow_id: "w1", limit: 45 });
    expect(result.current.items.length).toBe(45);

    act(() => result.current.applyFilters({ status: "failed", since: 100, until: 200 }));
    await waitFor(() => expect(pages().at(-1)!.input).toEqual({ workflow_id: "w1", status: "failed", since: 100, until: 200, limit: 20 }));
    await waitFor(() => expect(result.current.items.length).toBe(20));
    // The total the filter matches is asked with the same filter.
    await waitFor(() =>
      expect(calls.filter((c) => c.name === "count_runs").at(-1)!.input).toEqual({ workflow_id: "w1", status: "failed", since: 100, until: 200 }),
    );
  });

  it("a live reload with more than 500 rows loaded reads the first 500 again and keeps the rest in place", async () => {
    // Runs e0 (newest) … e649; `fresh` new ones arrive on top later.
    let fresh = 0;
    const all = () => [...Array.from({ length: fresh }, (_, i) => ({ ...run(0), id: `n${i}` })), ...Array.from({ length: 650 }, (_, i) => run(i))];
    const calls = fakeApi({
      list_runs: (input) => {
        const start = input.cursor ? Number(input.cursor) : 0;
        const end = Math.min(start + Number(input.limit), all().length);
        return { items: all().slice(start, end), next_cursor: end < all().length ? String(end) : null };
      },
      count_runs: () => ({ count: all().length }),
    });
    const { result } = renderHook(() => useRunHistory("w1", 200));
    await waitFor(() => expect(result.current.items.length).toBe(200));
    await act(() => result.current.loadMore());
    await act(() => result.current.loadMore());
    expect(result.current.items.length).toBe(600);

    fresh = 1;
    await act(() => result.current.reload());
    expect(calls.filter((c) => c.name === "list_runs").at(-1)!.input).toEqual({ workflow_id: "w1", limit: 500 });
    const ids = result.current.items.map((r) => r.id);
    expect(ids.length).toBe(601);
    expect(new Set(ids).size).toBe(601);
    expect(ids.slice(0, 2)).toEqual(["n0", "e0"]);
    expect(ids.at(-1)).toBe("e599");
    // The next page still follows the last row shown.
    expect(result.current.hasMore).toBe(true);
    await act(() => result.current.loadMore());
    expect(result.current.items.at(-1)?.id).toBe("e649");
  });

  it("a page asked for before a reload is not appended to the reload's answer", async () => {
    let releaseSecond: () => void = () => {};
    const secondHeld = new Promise<void>((r) => (releaseSecond = r));
    fakeApi({
      list_runs: async (input) => {
        const start = input.cursor ? Number(input.cursor) : 0;
        if (start === 20) await secondHeld; // page 2's answer arrives last
        return { items: Array.from({ length: Number(input.limit) }, (_, i) => run(start + i)), next_cursor: String(start + Number(input.limit)) };
      },
    });
    const { result } = renderHook(() => useRunHistory("w1", 20));
    await waitFor(() => expect(result.current.items.length).toBe(20));
    // Page 2 is on its way when a live update reloads the list.
    let more: Promise<void> = Promise.resolve();
    act(() => {
      more = result.current.loadMore();
    });
    await act(() => result.current.reload());
    expect(result.current.items.length).toBe(20);
    await act(async () => {
      releaseSecond();
      await more;
    });
    expect(result.current.items.length).toBe(20);
    expect(result.current.loading).toBe(false);
  });

  it("the bulk delete count leaves out runs still going, as the prune does", async () => {
    const calls = fakeApi({
      list_runs: () => ({ items: [], next_cursor: null }),
      count_runs: (input) => ({ count: input.status === "running" ? 2 : input.status === "queued" ? 1 : 10 }),
    });
    const { result } = renderHook(() => useRunHistory("w1", 20));
    let count = 0;
    await act(async () => {
      count = await result.current.countOlderThan(5000);
    });
    expect(count).toBe(7);
    // (The list's own count has no `until`.)
    const bulkCounts = calls.filter((c) => c.name === "count_runs" && c.input.until !== undefined);
    expect(bulkCounts.map((c) => c.input.status ?? "any").sort()).toEqual(["any", "queued", "running"]);
    act(() => result.current.applyFilters({ status: "running", since: null, until: null }));
    await waitFor(() => expect(result.current.filters.status).toBe("running"));
    await act(async () => {
      count = await result.current.countOlderThan(5000);
    });
    expect(count).toBe(0);
  });

  it("bulk delete counts, then prunes, with the same filter", async () => {
    const calls = fakeApi({
      list_runs: () => ({ items: [], next_cursor: null }),
      count_runs: () => ({ count: 7 }),
      prune_runs: () => ({ deleted: 7 }),
    });
    const { result } = renderHook(() => useRunHistory("w1", 20));
    act(() => result.current.applyFilters({ status: "failed", since: 5, until: null }));
    await waitFor(() => expect(result.current.filters.status).toBe("failed"));
    let count = 0;
    await act(async () => {
      count = await result.current.countOlderThan(5000);
    });
    expect(count).toBe(7);
    expect(calls.find((c) => c.name === "count_runs" && c.input.until !== undefined)!.input).toEqual({ workflow_id: "w1", status: "failed", until: 5000 });
    await act(async () => {
      await result.current.deleteOlderThan(5000);
    });
    // The very filter it counted with.
    expect(calls.find((c) => c.name === "prune_runs")!.input).toEqual({ workflow_id: "w1", status: "failed", until: 5000 });
  });
});

describe("useRunOutput", () => {
  afterEach(() => vi.unstubAllGlobals());

  /** The desktop window's IPC: `follow_run_output` hands its channel to the test. */
  function fakeWindow(follow: (input: Record<string, unknown>) => number) {
    const invoked: { cmd: string; args: Record<string, unknown> }[] = [];
    let channel: { onmessage: (m: unknown) => void } | null = null;
    class Channel {
      onmessage: (m: unknown) => void = () => {};
      constructor() {
        channel = this;
      }
    }
    vi.stubGlobal("__TAURI__", {
      core: {
        Channel,
        invoke: async (cmd: string, args: Record<string, unknown>) => {
          invoked.push({ cmd, args });
          if (cmd === "follow_run_output") return follow(args);
          return null;
        },
      },
    });
    const send = (event: string, data: unknown) =>
      act(() => channel!.onmessage({ event, data: typeof data === "string" ? data : JSON.stringify(data) }));
    return { invoked, send };
  }

  it("in the window, appends what the app sends in order, ends, and stops following when closed", async () => {
    const w = fakeWindow(() => 7);
    const { result, unmount } = renderHook(() => useRunOutput("r1"));
    await waitFor(() => expect(w.invoked.map((c) => c.cmd)).toEqual(["follow_run_output"]));
    expect(w.invoked[0].args).toMatchObject({ id: "r1", from: 0 });
    w.send("output", { text: "first\n", from: 0, next: 6, cut: false });
    w.send("output", { text: "last\n", from: 6, next: 11, cut: false });
    expect(result.current.ended).toBe(false);
    w.send("end", {});
    expect(result.current.ended).toBe(true);
    expect(result.current.text).toBe("first\nlast\n");
    unmount();
    await waitFor(() => expect(w.invoked.at(-1)).toEqual({ cmd: "stop_run_output", args: { follow: 7 } }));
  });

  it("in the window, says why when there is no output here", async () => {
    fakeWindow(() => {
      throw { code: "not_found", message: "output of run r2 (its output is kept on the device that ran it) not found", fields: [] };
    });
    const { result } = renderHook(() => useRunOutput("r2"));
    await waitFor(() => expect(result.current.error).toMatch(/kept on the device that ran it/));
    expect(result.current.text).toBe("");
  });

  it("in a browser, reads the server's stream", () => {
    vi.stubGlobal("EventSource", FakeSource);
    const { result } = renderHook(() => useRunOutput("r3"));
    expect(FakeSource.last!.url).toBe("/api/runs/r3/output?from=0");
    act(() => FakeSource.last!.send("output", { text: "hello\n", from: 0, next: 6, cut: false }));
    act(() => FakeSource.last!.send("end", {}));
    expect(result.current).toMatchObject({ text: "hello\n", ended: true, error: null });
  });
});
