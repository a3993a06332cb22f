import { useCallback, useEffect, useRef, useState } from "react";
import { call } from "../api/transport";
import { workflowNames } from "./workflowNames";
import { messageOf } from "../api/errors";
import { isRunChange, subscribeCoalesced } from "../api/live";
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

  // A burst of run changes asks several times; only the newest answer counts.
  const generation = useRef(0);
  const load = useCallback(async () => {
    const gen = ++generation.current;
    try {
      const [f, r] = await Promise.all([
        call("list_runs", { status: "failed", limit }),
        call("list_runs", { limit }),
      ]);
      const names = await workflowNames([...f.items, ...r.items].map((e) => e.workflow_id));
      if (gen !== generation.current) return;
      const named = (runs: Run[]) => runs.map((run) => ({ run, workflowName: names.get(run.workflow_id) ?? null }));
      setFailed(named(f.items));
      setRecent(named(r.items));
      setError(null);
    } catch (e) {
      if (gen === generation.current) setError(messageOf(e));
    } finally {
      if (gen === generation.current) setLoading(false);
    }
  }, [limit]);

  useEffect(() => {
    void load();
    const unsubscribe = subscribeCoalesced(
      (e) => isRunChange(e),
      () => void load(),
    );
    return unsubscribe ?? undefined;
  }, [load]);

  return { failed, recent, error, loading, reload: load };
}
