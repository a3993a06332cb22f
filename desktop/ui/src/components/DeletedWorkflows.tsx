import { useCallback, useEffect, useState } from "react";
import { call } from "../api/transport";
import { messageOf } from "../api/errors";
import type { WorkflowSummary } from "../generated/bindings";
import { When } from "./When";

/**
 * Deleted workflows (newest change first), each with Undelete: it comes
 * back with its history and runs. Shown in place of the list when the
 * "Deleted" filter is on.
 */
export function DeletedWorkflows(props: { changeCount: number; onUndeleted: (id: string) => void }) {
  const [items, setItems] = useState<WorkflowSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const load = useCallback(async () => {
    try {
      const page = await call("list_workflows", { deleted: true, sort: "updated", desc: true, limit: 500 });
      setItems(page.items);
      setError(null);
    } catch (e) {
      setError(messageOf(e));
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load, props.changeCount]);
  const undelete = async (w: WorkflowSummary) => {
    setBusy(w.id);
    try {
      await call("undelete_workflow", { id: w.id });
      setItems((all) => all?.filter((x) => x.id !== w.id) ?? null);
      props.onUndeleted(w.id);
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(null);
    }
  };
  if (items === null && !error) return <p>Loading deleted workflows…</p>;
  return (
    <section aria-label="Deleted workflows" className="deleted-workflows">
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {items?.length === 0 && <p className="empty">No deleted workflows.</p>}
      <ul className="plain-list">
        {items?.map((w) => (
          <li key={w.id}>
            <span className="name">{w.name}</span>{" "}
            <span className="meta">
              deleted <When at={w.updated_at} />
            </span>{" "}
            <button type="button" className="small" disabled={busy === w.id} onClick={() => void undelete(w)} aria-label={`Undelete ${w.name}`}>
              Undelete
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}
