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

/**
 * A workflow's runs (or, with `workflowId` null, the runs of every workflow,
 * each with its workflow's name): filtered by status and date range, one keyset page at a
 * time with next/previous (the cursors of earlier pages are kept), plus
 * details, delete, bulk delete of old runs (count first) and export.
 */
export function useRunHistory(workflowId: string | null, pageSize = 20) {
  const [filters, setFilters] = useState<RunFilters>(NO_FILTERS);
  // cursors[i] is the cursor that loads page i (null for the first).
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
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

  const page = cursors.length - 1;

  // An answer for an older page or filter (a live reload that was still on
  // its way when the user paged on) must not replace a newer one.
  const generation = useRef(0);
  const load = useCallback(async () => {
    const gen = ++generation.current;
    setLoading(true);
    try {
      // The page and how many runs the filter matches in all.
      const [result, counted] = await Promise.all([
        call("list_runs", {
          ...filter(),
          limit: pageSize,
          cursor: cursors[cursors.length - 1] ?? undefined,
        }),
        // A count that fails only leaves the total out.
        call("count_runs", filter()).catch(() => null),
      ]);
      const named = workflowId ? null : await workflowNames(result.items.map((r) => r.workflow_id));
      if (gen !== generation.current) return;
      if (named) setNames(named);
      setTotal(counted?.count ?? null);
      setItems(result.items);
      setNextCursor(result.next_cursor);
      setError(null);
    } catch (e) {
      if (gen === generation.current) setError(messageOf(e));
    } finally {
      if (gen === generation.current) setLoading(false);
    }
  }, [workflowId, filter, pageSize, cursors]);

  useEffect(() => {
    void load();
  }, [load]);

  const applyFilters = useCallback((f: RunFilters) => {
    setFilters(f);
    setCursors([null]);
  }, []);

  const next = useCallback(() => {
    if (nextCursor) setCursors((c) => [...c, nextCursor]);
  }, [nextCursor]);

  const previous = useCallback(() => {
    setCursors((c) => (c.length > 1 ? c.slice(0, -1) : c));
  }, []);

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
      setCursors([null]);
      await load();
      return report.deleted;
    },
    [olderThan, load],
  );

  const exportAs = useCallback((format: ExportFormat) => exportRuns(filter(), format), [filter]);

  return {
    workflowId,
    names,
    filters,
    applyFilters,
    items,
    total,
    page,
    hasNext: nextCursor !== null,
    hasPrevious: page > 0,
    next,
    previous,
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
