import { useState } from "react";
import { call } from "../api/transport";
import { messageOf } from "../api/errors";
import type { Workflow } from "../generated/bindings";
import { unapprovedChanges } from "../approval/unapproved";

const LABELS: Record<string, string> = {
  "config.run": "Run command and settings",
  "config.retention": "Run retention",
};

/**
 * Shown while the workflow's run spec or retention policy was changed on
 * another device and is not approved here: what changed (approved → now)
 * and an Approve button that approves exactly the revision shown.
 */
export function ApprovalBanner(props: { workflow: Workflow; onApproved: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const wf = props.workflow;
  if (wf.approval.approved) return null;
  const changes = unapprovedChanges(wf);

  const approve = async () => {
    setBusy(true);
    setError(null);
    try {
      await call("approve_workflow", { id: wf.id, expected_revision: wf.revision });
      props.onApproved();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="approval" role="alert" aria-label="Needs approval">
      <p>
        <strong>Changed on another device.</strong> This workflow will not run on this device, and its retention will not
        delete runs here, until you approve what it does now.
      </p>
      <dl>
        {changes.map((c) => (
          <div key={c.field}>
            <dt>{LABELS[c.field] ?? c.field}</dt>
            <dd>
              <span className="old">
                approved here: {c.approved === null ? "nothing yet" : <code>{JSON.stringify(c.approved)}</code>}
              </span>
              <span className="new">
                now: {c.now === null ? "none" : <code>{JSON.stringify(c.now)}</code>}
              </span>
            </dd>
          </div>
        ))}
      </dl>
      <button type="button" className="primary" disabled={busy} onClick={() => void approve()}>
        Approve on this device
      </button>
      {error && <p className="error">{error}</p>}
    </section>
  );
}
