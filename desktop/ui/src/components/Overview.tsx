import { useOverview, type RecentRun } from "../hooks/useOverview";
import { LoadError } from "./LoadError";
import { When } from "./When";

/** The main pane when no workflow is open: failures first, then recent runs. */
export function Overview(props: { onOpen: (workflowId: string) => void }) {
  const o = useOverview();
  if (o.error) return <LoadError what="recent runs" error={o.error} onRetry={() => void o.reload()} />;
  if (o.loading) return <p aria-busy="true">Loading recent runs…</p>;
  return (
    <section className="overview" aria-label="Overview">
      <h2>Overview</h2>
      {o.recent.length === 0 ? (
        <p className="empty">No runs yet. Select a workflow on the left (or create one) and press Run now.</p>
      ) : (
        <>
          <RunTable title="Recent failures" runs={o.failed} empty="No failed runs." onOpen={props.onOpen} />
          <RunTable title="Recent runs" runs={o.recent} empty="" onOpen={props.onOpen} />
        </>
      )}
    </section>
  );
}

function RunTable(props: { title: string; runs: RecentRun[]; empty: string; onOpen: (workflowId: string) => void }) {
  return (
    <>
      <h3>{props.title}</h3>
      {props.runs.length === 0 ? (
        <p className="empty">{props.empty}</p>
      ) : (
        <table aria-label={props.title}>
          <thead>
            <tr>
              <th>Workflow</th>
              <th>Status</th>
              <th>Started</th>
            </tr>
          </thead>
          <tbody>
            {props.runs.map(({ run, workflowName }) => (
              <tr key={run.id}>
                <td>
                  {workflowName ? (
                    <button type="button" className="link" onClick={() => props.onOpen(run.workflow_id)}>
                      {workflowName}
                    </button>
                  ) : (
                    <span className="muted">deleted workflow</span>
                  )}
                </td>
                <td>
                  <span className={`run-badge status-${run.status}`}>{run.status}</span>
                </td>
                <td>
                  <When at={run.started_at} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
