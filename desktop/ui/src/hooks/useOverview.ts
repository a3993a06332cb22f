import { useCallback, useEffect, useState } from "react";
import { call } from "../api/transport";
import { messageOf } from "../api/errors";
import { isRunChange, subscribe } from "../api/live";
import type { Run } from "../generated/bindings";

export interface RecentRun {
  run: Run;
  workflowName: string | null;
}

/**
 * What the app shows when no workflow is open: the latest failed runs
 * across every workflow, then the latest runs; kept current as runs change.
 */
export function useOverview(limit = 10) {
  const [failed, setFailed] = useState<RecentRun[]>([]);
  const [recent, setRecent] = useState<RecentRun[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);

  const load = useCallback(async () => {
    try {
      const [f, r] = await Promise.all([
        call("list_runs", { status: "failed", limit }),
        call("list_runs", { limit }),
      ]);
      const ids = [...new Set([...f.items, ...r.items].map((e) => e.workflow_id))];
      const names = new Map<string, string | null>();
      await Promise.all(
        ids.map(async (id) => {
          try {
            names.set(id, (await call("get_workflow", { id })).name);
          } catch {
            names.set(id, null); // deleted since
          }
        }),
      );
      const named = (runs: Run[]) => runs.map((run) => ({ run, workflowName: names.get(run.workflow_id) ?? null }));
      setFailed(named(f.items));
      setRecent(named(r.items));
      setError(null);
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setLoading(false);
    }
  }, [limit]);

  useEffect(() => {
    void load();
    const unsubscribe = subscribe((e) => {
      if (isRunChange(e)) void load();
    });
    if (unsubscribe) return unsubscribe;
    const t = setInterval(() => void load(), 5000);
    return () => clearInterval(t);
  }, [load]);

  return { failed, recent, error, loading, reload: load };
}
