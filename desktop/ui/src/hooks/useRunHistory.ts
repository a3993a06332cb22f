import { useCallback, useEffect, useRef, useState } from "react";
import { call, exportRuns } from "../api/transport";
import { messageOf } from "../api/errors";
import { workflowNames } from "./workflowNames";
import type { Run, RunFilter, RunStatus, ExportFormat } from "../generated/bindings";

export interface RunFilters {
  status: RunStatus | "";
  /** Started at or after (Unix ms). */
  since: number | null;
  /** Started before (Unix ms). */
  until: number | null;
}

export const NO_FILTERS: RunFilters = { status: "", since: null, until: null };

/** Most rows one live reload asks for: the rows scrolled through so far,
 * up to this (past it, the rows further down are kept as they are). */
const RELOAD_MAX = 500;

/**
 * A workflow's runs (or, with `workflowId` null, the runs of every workflow,
 * each with its workflow's name): filtered by status and date range, loaded
 * one keyset page at a time and appended as the list scrolls (`loadMore`),
 * plus details, delete, bulk delete of old runs (count first) and export.
 */
export function useRunHistory(workflowId: string | null, pageSize = 50) {
  const [filters, setFilters] = useState<RunFilters>(NO_FILTERS);
  const [items, setItems] = useState<Run[]>([]);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [total, setTotal] = useState<number | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  // Across all workflows: each run's workflow name (null: deleted since).
  const [names, setNames] = useState<Map<string, string | null>>(new Map());

  const filter = useCallback(
    (f: RunFilters = filters): RunFilter => ({
      workflow_id: workflowId ?? undefined,
      status: f.status || undefined,
      since: f.since ?? undefined,
      until: f.until ?? undefined,
    }),
    [filters, workflowId],
  );

  // The names known so far, not asked again for the next page.
  const namesRef = useRef(names);
  namesRef.current = names;
  // How many rows are loaded, read by a reload without making it change.
  const loaded = useRef(0);
  loaded.current = items.length;
  const cursorRef = useRef<string | null>(null);
  cursorRef.current = nextCursor;

  // An answer for an older filter, or a page asked for before a reload,
  // must not replace (or be appended to) a newer answer.
  const generation = useRef(0);
  // "first": one page, replacing what is loaded (a new filter); "more": the
  // next page, appended; "refresh": the loaded rows again from the top (a
  // live update; past RELOAD_MAX, the rows further down are kept as they
  // are, after the answer's last row).
  const fetchRuns = useCallback(
    async (mode: "first" | "more" | "refresh") => {
      const append = mode === "more";
      const cursor = append ? cursorRef.current : null;
      const limit = mode === "refresh" ? Math.min(Math.max(loaded.current, pageSize), Math.max(RELOAD_MAX, pageSize)) : pageSize;
      const keepTail = mode === "refresh" && loaded.current > limit;
      const gen = append ? generation.current : ++generation.current;
      setLoading(true);
      try {
        // How many runs the filter matches in all, shown when it comes (the
        // rows do not wait for it); a count that fails only leaves it out.
        if (!append)
          call("count_runs", filter()).then(
            (c) => gen === generation.current && setTotal(c.count),
            () => gen === generation.current && setTotal(null),
          );
        const result = await call("list_runs", { ...filter(), limit, cursor: cursor ?? undefined });
        const named = workflowId
          ? null
          : await workflowNames(
              result.items.map((r) => r.workflow_id),
              // A reload asks again (a workflow may have been renamed).
              append ? namesRef.current : undefined,
            );
        if (gen !== generation.current) return;
        if (named) setNames((old) => (append || keepTail ? new Map([...old, ...named]) : named));
        setItems((old) => {
          if (append) return [...old, ...result.items];
          if (!keepTail) return result.items;
          const last = result.items.at(-1)?.id;
          const at = last === undefined ? -1 : old.findIndex((r) => r.id === last);
          const shown = new Set(result.items.map((r) => r.id));
          const tail = (at >= 0 ? old.slice(at + 1) : old.slice(limit)).filter((r) => !shown.has(r.id));
          return [...result.items, ...tail];
        });
        // With the tail kept, the next page still follows the tail.
        if (!keepTail) setNextCursor(result.next_cursor);
        setError(null);
      } catch (e) {
        if (gen === generation.current) setError(messageOf(e));
      } finally {
        if (gen === generation.current) setLoading(false);
      }
    },
    [workflowId, filter, pageSize],
  );

  /** The rows loaded so far, again (a live update), from the top. */
  const load = useCallback(() => fetchRuns("refresh"), [fetchRuns]);

  // A new filter (or workflow) starts again with one page.
  useEffect(() => {
    void fetchRuns("first");
  }, [fetchRuns]);

  const applyFilters = useCallback((f: RunFilters) => setFilters(f), []);

  const loadingRef = useRef(false);
  loadingRef.current = loading;
  /** The next page, appended (nothing when all are loaded or a load is on its way). */
  const loadMore = useCallback(() => {
    const cursor = cursorRef.current;
    if (!cursor || loadingRef.current) return Promise.resolve();
    loadingRef.current = true;
    return fetchRuns("more");
  }, [fetchRuns]);

  const details = useCallback((id: string) => call("get_run", { id }), []);

  const remove = useCallback(
    async (id: string) => {
      await call("delete_run", { id });
      await load();
    },
    [load],
  );

  /**
   * How many runs a bulk delete of runs started before `before` would remove.
   * A prune never deletes runs still going (queued, running), so they are
   * not counted either.
   */
  const olderThan = useCallback((before: number) => ({ ...filter(), since: undefined, until: before }), [filter]);

  const countOlderThan = useCallback(
    async (before: number) => {
      const f = olderThan(before);
      if (f.status === "running" || f.status === "queued") return 0;
      const all = (await call("count_runs", f)).count;
      if (f.status) return all;
      const going = await Promise.all(
        (["running", "queued"] as const).map((status) => call("count_runs", { ...f, status })),
      );
      return all - going.reduce((n, r) => n + r.count, 0);
    },
    [olderThan],
  );

  /** Deletes what `countOlderThan` counted: a prune takes the list's filter. */
  const deleteOlderThan = useCallback(
    async (before: number) => {
      const report = await call("prune_runs", olderThan(before));
      await fetchRuns("first");
      return report.deleted;
    },
    [olderThan, fetchRuns],
  );

  const exportAs = useCallback((format: ExportFormat) => exportRuns(filter(), format), [filter]);

  return {
    workflowId,
    names,
    filters,
    applyFilters,
    items,
    total,
    hasMore: nextCursor !== null,
    loadMore,
    loading,
    error,
    reload: load,
    details,
    remove,
    countOlderThan,
    deleteOlderThan,
    exportAs,
    currentFilter: filter,
  };
}
