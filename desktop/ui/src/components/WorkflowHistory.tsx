import { useEffect, useRef, useState } from "react";
import { format } from "date-fns";
import { useWorkflowHistory } from "../hooks/useWorkflowHistory";
import type { JsonValue } from "../generated/bindings";
import { describeDefinitionsChange } from "../config/definitionsDiff";
import { RestoreButton, RevisionCompare } from "./Versions";

const KINDS: Record<string, string> = {
  "workflow.created": "Created",
  "workflow.updated": "Edited",
  "workflow.deleted": "Deleted",
  "workflow.restored": "Restored",
  "config.updated": "Configuration changed",
  "remote.merged": "Merged from another device",
};

/** The audit trail: who changed what, when, on which device, old → new. */
export function WorkflowHistory(props: { workflowId: string; changeCount: number }) {
  const h = useWorkflowHistory(props.workflowId);
  const { reload } = h;
  // Up to two revisions picked to compare.
  const [picked, setPicked] = useState<number[]>([]);
  // Refresh when the workflow changed in this window.
  useReload(props.changeCount, reload);

  if (h.error) {
    return (
      <div role="alert" className="error">
        Could not load the history: {h.error}
      </div>
    );
  }
  if (h.loading && h.entries.length === 0) return <p>Loading history…</p>;
  const current = h.entries.length > 0 ? Math.max(...h.entries.map((e) => e.revision)) : 0;
  const pick = (revision: number, on: boolean) =>
    setPicked((p) => (on ? [...p.filter((r) => r !== revision), revision].slice(-2) : p.filter((r) => r !== revision)));
  return (
    <section className="workflow-history" aria-label="History">
      <RevisionCompare workflowId={props.workflowId} revisions={picked} />
      <ol className="timeline">
        {h.entries.map((e) => (
          <li key={e.event_id}>
            <div className="entry-head">
              <label className="pick">
                <input
                  type="checkbox"
                  checked={picked.includes(e.revision)}
                  onChange={(ev) => pick(e.revision, ev.target.checked)}
                  aria-label={`Compare revision ${e.revision}`}
                />
              </label>{" "}
              <strong>{KINDS[e.kind] ?? e.kind}</strong> <span className="meta">revision {e.revision}</span>
              {e.revision < current && e.kind !== "workflow.deleted" && (
                <>
                  {" "}
                  <RestoreButton workflowId={props.workflowId} revision={e.revision} current={current} onRestored={() => void reload()} />
                </>
              )}
              <span className="meta">
                {" "}
                by <span className="actor">{e.actor}</span> on device <code title={e.device_id}>{e.device_id.slice(0, 8)}</code>
                {e.origin !== "local" && <> ({e.origin})</>}
                <SentBy claimed={e.device_id} uploadedBy={e.uploaded_by} /> at <time dateTime={new Date(e.recorded_at).toISOString()}>{format(e.recorded_at, "yyyy-MM-dd HH:mm:ss")}</time>
              </span>
            </div>
            {e.changes.length > 0 && (
              <table className="changes" aria-label={`Changes in revision ${e.revision}`}>
                <thead>
                  <tr>
                    <th scope="col">Field</th>
                    <th scope="col">Old</th>
                    <th scope="col">New</th>
                  </tr>
                </thead>
                <tbody>
                  {e.changes.map((c) => {
                    const summary = c.field === "config.fields" ? describeDefinitionsChange(c.old, c.new) : null;
                    return (
                      <tr key={c.field}>
                        <td>
                          <code>{c.field}</code>
                        </td>
                        {summary ? (
                          <td colSpan={2} className="definitions-change">
                            {summary.map((line) => (
                              <div key={line}>{line}</div>
                            ))}
                          </td>
                        ) : (
                          <>
                            <td className="old">{show(c.old)}</td>
                            <td className="new">{show(c.new)}</td>
                          </>
                        )}
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            )}
            {e.conflicts && e.conflicts.length > 0 && (
              <p className="conflict">
                Concurrent edits:{" "}
                {e.conflicts.map((c) => (
                  <span key={c.field}>
                    <code>{c.field}</code>: {c.values.map(show).join(" vs ")}{" "}
                  </span>
                ))}
              </p>
            )}
          </li>
        ))}
      </ol>
    </section>
  );
}

function show(v: JsonValue): string {
  if (v === null) return "—";
  if (typeof v === "string") return v === "" ? "(empty)" : v;
  return JSON.stringify(v);
}

function useReload(changeCount: number, reload: () => Promise<void>) {
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    void reload();
  }, [changeCount, reload]);
}

/**
 * For a change from another device: what the sync server saw beside what
 * the change claims. The claim is written by the sending device; the
 * uploader is the device the server authenticated.
 */
export function SentBy(props: { claimed: string; uploadedBy: string | null }) {
  const { claimed, uploadedBy } = props;
  if (!uploadedBy) return null;
  if (uploadedBy === claimed) {
    return (
      <span className="sent-by confirmed" title="The sync server received this change from the device it names.">
        {" "}
        · confirmed by the sync server
      </span>
    );
  }
  return (
    <span
      className="sent-by differs"
      role="note"
      title="The change names one device, but the sync server received it from another (it relayed the change, or its claim is false)."
    >
      {" "}
      · sent by device <code title={uploadedBy}>{uploadedBy.length === 36 ? uploadedBy.slice(0, 8) : uploadedBy}</code>
    </span>
  );
}
