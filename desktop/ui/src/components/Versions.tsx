import { useEffect, useState } from "react";
import { call } from "../api/transport";
import { messageOf } from "../api/errors";
import type { FieldChange, JsonValue, WorkflowDiff } from "../generated/bindings";
import { Dialog } from "./Dialog";

/** What differs between two versions of a workflow, loaded when shown. */
function useDiff(workflowId: string, from: number | null, to: number | null) {
  const [diff, setDiff] = useState<WorkflowDiff | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (from === null || to === null) {
      setDiff(null);
      return;
    }
    let live = true;
    setError(null);
    call("diff_workflow", { id: workflowId, from: String(from), to: String(to) })
      .then((d) => live && setDiff(d))
      .catch((e) => live && setError(messageOf(e)));
    return () => {
      live = false;
    };
  }, [workflowId, from, to]);
  return { diff, error };
}

/** Field by field, the older version beside the newer one. */
export function ChangesTable(props: { changes: FieldChange[]; label: string; oldTitle: string; newTitle: string }) {
  if (props.changes.length === 0) return <p>No differences.</p>;
  return (
    <table className="changes side-by-side" aria-label={props.label}>
      <thead>
        <tr>
          <th scope="col">Field</th>
          <th scope="col">{props.oldTitle}</th>
          <th scope="col">{props.newTitle}</th>
        </tr>
      </thead>
      <tbody>
        {props.changes.map((c) => (
          <tr key={c.field}>
            <td>
              <code>{c.field}</code>
            </td>
            <td className="old">{show(c.old)}</td>
            <td className="new">{show(c.new)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Two revisions picked in the history, compared. */
export function RevisionCompare(props: { workflowId: string; revisions: number[] }) {
  const [a, b] = [...props.revisions].sort((x, y) => x - y);
  const { diff, error } = useDiff(props.workflowId, a ?? null, b ?? null);
  if (props.revisions.length < 2) {
    return <p className="meta">Pick two revisions to compare them.</p>;
  }
  return (
    <section className="revision-compare" aria-label="Compare revisions">
      <h3>
        Revision {a} → revision {b}
      </h3>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {diff && (
        <ChangesTable
          changes={diff.changes}
          label={`Changes from revision ${a} to revision ${b}`}
          oldTitle={`Revision ${a}`}
          newTitle={`Revision ${b}`}
        />
      )}
    </section>
  );
}

/** Restore an earlier version: shows what will change, then asks. */
export function RestoreButton(props: {
  workflowId: string;
  revision: number;
  current: number;
  onRestored: () => void;
}) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const { diff, error: diffError } = useDiff(props.workflowId, open ? props.current : null, open ? props.revision : null);
  const restore = async () => {
    setBusy(true);
    setError(null);
    try {
      await call("restore_workflow", {
        id: props.workflowId,
        to: String(props.revision),
        expected_revision: props.current,
      });
      setOpen(false);
      props.onRestored();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" className="small" onClick={() => setOpen(true)} aria-label={`Restore revision ${props.revision}`}>
        Restore…
      </button>
      <Dialog title={`Restore revision ${props.revision}`} open={open} onClose={() => setOpen(false)}>
        <p>
          The workflow goes back to how it was at revision {props.revision}, as one new change (revision{" "}
          {props.current + 1}); its history keeps everything.
        </p>
        {diff && (
          <ChangesTable
            changes={diff.changes}
            label="What the restore changes"
            oldTitle="Now"
            newTitle={`Revision ${props.revision}`}
          />
        )}
        {(error ?? diffError) && (
          <p role="alert" className="error">
            {error ?? diffError}
          </p>
        )}
        <div className="actions">
          <button type="button" onClick={() => setOpen(false)}>
            Cancel
          </button>
          <button type="button" className="primary" disabled={busy || diff === null} onClick={() => void restore()}>
            Restore
          </button>
        </div>
      </Dialog>
    </>
  );
}

function show(v: JsonValue): string {
  if (v === null) return "—";
  if (typeof v === "string") return v === "" ? "(empty)" : v;
  return JSON.stringify(v);
}

/** What changed in the workflow since a run started: "why did it work then". */
export function ChangesSinceRun(props: { workflowId: string; runId: string }) {
  const [diff, setDiff] = useState<WorkflowDiff | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    call("diff_workflow", { id: props.workflowId, from: `run:${props.runId}` })
      .then((d) => live && setDiff(d))
      .catch((e) => live && setError(messageOf(e)));
    return () => {
      live = false;
    };
  }, [props.workflowId, props.runId]);
  return (
    <section aria-label="Changes since this run">
      <h3>Changes since this run</h3>
      {error && <p className="meta">{error}</p>}
      {diff && (
        <ChangesTable
          changes={diff.changes}
          label={`Changes from revision ${diff.from.revision} to now`}
          oldTitle={`When it ran (revision ${diff.from.revision})`}
          newTitle={`Now (revision ${diff.to.revision})`}
        />
      )}
    </section>
  );
}
