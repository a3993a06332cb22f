import { useCallback, useEffect, useState } from "react";
import { call } from "../api/transport";
import { messageOf } from "../api/errors";
import type { HistoryEntry } from "../generated/bindings";

/** A workflow's audit trail, newest first. */
export function useWorkflowHistory(workflowId: string | null) {
  const [entries, setEntries] = useState<HistoryEntry[]>([]);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    if (!workflowId) return;
    setLoading(true);
    try {
      const all = await call("workflow_history", { workflow_id: workflowId });
      setEntries([...all].sort((a, b) => b.seq - a.seq));
      setError(null);
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setLoading(false);
    }
  }, [workflowId]);

  useEffect(() => {
    void load();
  }, [load]);

  return { entries, loading, error, reload: load };
}
