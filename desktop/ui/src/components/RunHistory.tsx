import { useEffect, useRef, useState } from "react";
import { useVirtualizer } from "@tanstack/react-virtual";
import { useRunOutput, type RunOutputState } from "../hooks/useRunOutput";
import { addDays, format, formatDistanceToNow, parse, startOfDay, subDays } from "date-fns";
import { When } from "./When";
import { useRunHistory, type RunFilters } from "../hooks/useRunHistory";
import { useRunActions } from "../hooks/useRunActions";
import { messageOf } from "../api/errors";
import { cancelRun } from "../api/transport";
import type { Run, RunFilter, RunStatus, ExportFormat } from "../generated/bindings";
import { ConfirmDialog, Dialog } from "./Dialog";
import { ChangesSinceRun } from "./Versions";
import { LoadError } from "./LoadError";

const STATUSES: RunStatus[] = ["queued", "running", "succeeded", "failed", "cancelled", "skipped"];

/**
 * A workflow's runs, or with `workflowId` null the runs of every workflow
 * (with a Workflow column): filter, scroll through (loaded page by page),
 * details, delete, bulk delete, export.
 */
export function RunHistory(props: {
  workflowId: string | null;
  workflowName: string | null;
  /** Opens a workflow (the Workflow column of the view across workflows). */
  onOpenWorkflow?: (id: string) => void;
  /** Bumped when something happened here that may add runs (Run now). */
  changeCount: number;
  /** Desktop window: a native save dialog writes the file (the path, or null if closed). */
  exportRuns?: (filter: RunFilter, format: ExportFormat) => Promise<string | null>;
  /** The run whose details the address names, if any. */
  openRunId?: string | null;
  /** Told which run's details are open (null when none), for the address. */
  onOpenRun?: (id: string | null) => void;
}) {
  const h = useRunHistory(props.workflowId);
  const all = props.workflowId === null;
  const [status, setStatus] = useState<RunStatus | "">("");
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [exportFormat, setExportFormat] = useState<ExportFormat>("csv");

  const apply = (e: React.FormEvent) => {
    e.preventDefault();
    const f: RunFilters = {
      status,
      since: from ? startOfDay(parse(from, "yyyy-MM-dd", new Date())).getTime() : null,
      until: to ? addDays(startOfDay(parse(to, "yyyy-MM-dd", new Date())), 1).getTime() : null,
    };
    h.applyFilters(f);
  };

  const {
    selected,
    setSelected,
    deleting,
    setDeleting,
    bulk,
    setBulk,
    busy,
    dialogError,
    setDialogError,
    notice,
    setNotice,
    showDetails,
    confirmDelete,
    confirmBulk,
    doExport,
  } = useRunActions(h, props, exportFormat);

  return (
    <section className="run-history" aria-label={all ? "All runs" : "Runs"}>
      {all && <h2>All runs</h2>}
      <form className="filters" onSubmit={apply} aria-label="Run filters">
        <label>
          Status
          <select aria-label="Status" value={status} onChange={(e) => setStatus(e.target.value as RunStatus | "")}>
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          From
          <input type="date" value={from} onChange={(e) => setFrom(e.target.value)} />
        </label>
        <label>
          To
          <input type="date" value={to} onChange={(e) => setTo(e.target.value)} />
        </label>
        <button type="submit">Apply filters</button>
        <span className="spacer" />
        <label>
          Export format
          <select aria-label="Export format" value={exportFormat} onChange={(e) => setExportFormat(e.target.value as ExportFormat)}>
            <option value="csv">CSV</option>
            <option value="json">JSON</option>
            <option value="ndjson">NDJSON</option>
          </select>
        </label>
        <button type="button" onClick={() => void doExport()}>
          Export
        </button>
        <button
          type="button"
          className="danger"
          onClick={() => {
            setDialogError(null);
            setBulk({ before: format(subDays(new Date(), 30), "yyyy-MM-dd"), count: null });
          }}
        >
          Delete old runs…
        </button>
      </form>
      <p className={notice?.error ? "notice error" : "notice"} role="status" aria-live="polite">
        {notice?.text ?? ""}
      </p>
      {h.error && (
        <LoadError what="runs" error={h.error} onRetry={() => void h.reload()} />
      )}
      {!h.loading && !h.error && h.items.length === 0 && (
        <p className="empty">{all ? "No runs match." : "No runs match. Start one with Run now (or `flowkeep run` in a terminal)."}</p>
      )}
      {h.items.length > 0 && (
        <RunTable
          runs={h.items}
          total={h.total}
          all={all}
          names={h.names}
          loading={h.loading}
          failed={h.error !== null}
          hasMore={h.hasMore}
          onMore={() => void h.loadMore()}
          onOpenWorkflow={props.onOpenWorkflow}
          onDetails={(id) => void showDetails(id)}
          onDelete={(x) => {
            setDialogError(null);
            setDeleting(x);
          }}
        />
      )}
      {h.total !== null && h.total > 0 && (
        <p className="count" aria-live="polite">
          {h.total === 1 ? "1 run" : `${h.total.toLocaleString()} runs`}
          {h.total > h.items.length && ` · ${h.items.length.toLocaleString()} loaded, more as you scroll`}
        </p>
      )}
      {h.hasMore && (
        <p className="pager">
          <button type="button" onClick={() => void h.loadMore()} disabled={h.loading}>
            Load more runs
          </button>
        </p>
      )}
      <Dialog title="Run details" open={selected !== null} onClose={() => setSelected(null)}>
        {selected && <RunDetails run={selected} />}
        <div className="actions">
          {selected?.status === "running" && (
            <button
              type="button"
              className="danger"
              onClick={async () => {
                try {
                  await cancelRun(selected.id);
                  // Answered once the run stopped and was recorded.
                  setNotice("Run cancelled.");
                  setSelected(await h.details(selected.id));
                } catch (e) {
                  setNotice(messageOf(e), true);
                }
              }}
            >
              Cancel run
            </button>
          )}
          <button type="button" onClick={() => setSelected(null)}>
            Close
          </button>
        </div>
      </Dialog>
      <ConfirmDialog
        title="Delete run"
        open={deleting !== null}
        message={deleting ? `Delete the ${deleting.status} run started ${format(deleting.started_at, "yyyy-MM-dd HH:mm:ss")}?` : ""}
        confirmLabel="Delete run"
        busy={busy}
        error={dialogError}
        onConfirm={() => void confirmDelete()}
        onClose={() => setDeleting(null)}
      />
      <Dialog title="Delete old runs" open={bulk !== null} onClose={() => setBulk(null)}>
        <label>
          Delete runs that started before
          <input type="date" value={bulk?.before ?? ""} onChange={(e) => setBulk({ before: e.target.value, count: null })} />
        </label>
        <p role="status">
          {bulk?.count == null
            ? "Counting…"
            : `${bulk.count} run${bulk.count === 1 ? "" : "s"}${h.filters.status ? ` with status ${h.filters.status}` : ""} will be deleted.`}
          {bulk?.count != null && all && " Runs of every workflow are counted."}
          {bulk?.count != null && !h.filters.status && " Runs still going are kept."}
        </p>
        {dialogError && (
          <p role="alert" className="error">
            {dialogError}
          </p>
        )}
        <div className="actions">
          <button type="button" onClick={() => setBulk(null)}>
            Cancel
          </button>
          <button type="button" className="danger" disabled={busy || !bulk?.count} onClick={() => void confirmBulk()}>
            {bulk?.count ? `Delete ${bulk.count} run${bulk.count === 1 ? "" : "s"}` : "Nothing to delete"}
          </button>
        </div>
      </Dialog>
    </section>
  );
}

/** Rows in the table's scroll box before it was measured (first paint). */
const ROW_ESTIMATE = 37;

/**
 * The runs loaded so far, in a box that scrolls: only the rows in view (and
 * a few around them) are in the document, between two spacer rows that keep
 * the scroll height; the next page is asked for as the end comes into view.
 */
function RunTable(props: {
  runs: Run[];
  total: number | null;
  all: boolean;
  names: Map<string, string | null>;
  loading: boolean;
  /** The last load failed: no more pages are asked for by scrolling (the
   * error offers Retry, and "Load more runs" still asks). */
  failed: boolean;
  hasMore: boolean;
  onMore: () => void;
  onOpenWorkflow?: (id: string) => void;
  onDetails: (id: string) => void;
  onDelete: (run: Run) => void;
}) {
  const box = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: props.runs.length,
    getScrollElement: () => box.current,
    estimateSize: () => ROW_ESTIMATE,
    overscan: 8,
    getItemKey: (i) => props.runs[i].id,
    initialRect: { width: 800, height: 480 },
  });
  const rows = virtualizer.getVirtualItems();
  const last = rows.at(-1)?.index ?? -1;
  const { hasMore, loading, failed, onMore } = props;
  useEffect(() => {
    if (hasMore && !loading && !failed && last >= props.runs.length - 10) onMore();
  }, [last, hasMore, loading, failed, onMore, props.runs.length]);
  const before = rows[0]?.start ?? 0;
  const after = virtualizer.getTotalSize() - (rows.at(-1)?.end ?? 0);
  const columns = props.all ? 7 : 6;
  return (
    <div className="run-scroll" ref={box}>
      <table aria-label="Run list" aria-busy={props.loading} aria-rowcount={(props.total ?? props.runs.length) + 1} data-rows={props.runs.length}>
        <thead>
          <tr aria-rowindex={1}>
            {props.all && <th scope="col">Workflow</th>}
            <th scope="col">Status</th>
            <th scope="col">Started</th>
            <th scope="col">Duration</th>
            <th scope="col">Exit</th>
            <th scope="col">Device</th>
            <th scope="col">
              <span className="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {before > 0 && (
            <tr className="spacer" aria-hidden="true">
              <td colSpan={columns} style={{ height: before }} />
            </tr>
          )}
          {rows.map((v) => {
            const x = props.runs[v.index];
            return (
              <tr key={x.id} data-index={v.index} aria-rowindex={v.index + 2} ref={virtualizer.measureElement}>
                {props.all && (
                  <td>
                    <WorkflowLink id={x.workflow_id} name={props.names.get(x.workflow_id)} onOpen={props.onOpenWorkflow} />
                  </td>
                )}
                <td>
                  <span className={`status status-${x.status}`} title={x.status === "skipped" ? (x.error ?? undefined) : undefined}>
                    {x.status}
                  </span>
                  {x.trigger === "schedule" && (
                    <span
                      className="trigger-schedule"
                      title={x.occurrence != null ? `scheduled for ${format(x.occurrence, "yyyy-MM-dd HH:mm:ss")}` : "started by its schedule"}
                    >
                      {" "}
                      ⏱ scheduled
                    </span>
                  )}
                </td>
                <td>
                  <When at={x.started_at} />
                </td>
                <td>{x.duration_ms != null ? formatDuration(x.duration_ms) : "—"}</td>
                <td>{x.exit_code ?? "—"}</td>
                <td>
                  <code>{x.device_id.slice(0, 8)}</code>
                </td>
                <td className="row-actions">
                  <button type="button" aria-label={`Details of the run started ${format(x.started_at, "yyyy-MM-dd HH:mm:ss")}`} onClick={() => props.onDetails(x.id)}>
                    Details
                  </button>
                  <button
                    type="button"
                    className="danger"
                    aria-label={`Delete the run started ${format(x.started_at, "yyyy-MM-dd HH:mm:ss")}`}
                    onClick={() => props.onDelete(x)}
                  >
                    Delete
                  </button>
                </td>
              </tr>
            );
          })}
          {after > 0 && (
            <tr className="spacer" aria-hidden="true">
              <td colSpan={columns} style={{ height: after }} />
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}

/** A run's workflow by name, opening it; a deleted one says so. */
function WorkflowLink(props: { id: string; name: string | null | undefined; onOpen?: (id: string) => void }) {
  if (props.name === null) return <span className="muted">deleted workflow</span>;
  const label = props.name ?? props.id.slice(0, 8);
  if (!props.onOpen) return <>{label}</>;
  return (
    <button type="button" className="link" onClick={() => props.onOpen?.(props.id)}>
      {label}
    </button>
  );
}

function RunDetails({ run: x }: { run: Run }) {
  const out = (x.output ?? {}) as Record<string, unknown>;
  const text = (k: string) => (typeof out[k] === "string" && out[k] !== "" ? (out[k] as string) : null);
  // The whole log, live while the run goes on, where this device ran it;
  // the tails the record carries otherwise (another device's run).
  const log = useRunOutput(x.id);
  const showLog = log.error === null;
  return (
    <div className="details">
      <dl>
        <dt>Status</dt>
        <dd>
          <span className={`status status-${x.status}`}>{x.status}</span>
        </dd>
        <dt>Started</dt>
        <dd>
          {format(x.started_at, "yyyy-MM-dd HH:mm:ss")} ({formatDistanceToNow(x.started_at, { addSuffix: true })})
        </dd>
        <dt>Finished</dt>
        <dd>{x.completed_at != null ? format(x.completed_at, "yyyy-MM-dd HH:mm:ss") : "—"}</dd>
        <dt>Duration</dt>
        <dd>{x.duration_ms != null ? formatDuration(x.duration_ms) : "—"}</dd>
        <dt>Exit code</dt>
        <dd>{x.exit_code ?? "—"}</dd>
        <dt>Trigger</dt>
        <dd>{x.trigger}</dd>
        {x.occurrence != null && (
          <>
            <dt>Scheduled for</dt>
            <dd>{format(x.occurrence, "yyyy-MM-dd HH:mm:ss")}</dd>
          </>
        )}
        {x.status === "skipped" && x.error && (
          <>
            <dt>Why skipped</dt>
            <dd>{x.error}</dd>
          </>
        )}
        <dt>Device</dt>
        <dd>
          <code>{x.device_id}</code>
        </dd>
        {x.workflow_revision != null && (
          <>
            <dt>Version it ran</dt>
            <dd>
              <a href={`/workflows/${x.workflow_id}/history`}>revision {x.workflow_revision}</a>
              {x.config_hash && (
                <>
                  {" "}
                  · config <code title="A hash of the configuration the run got">{x.config_hash}</code>
                </>
              )}
            </dd>
          </>
        )}
        {x.error && (
          <>
            <dt>Error</dt>
            <dd>{x.error}</dd>
          </>
        )}
        {text("log") && (
          <>
            <dt>Log file</dt>
            <dd>
              <code>{text("log")}</code>
            </dd>
          </>
        )}
      </dl>
      <ChangesSinceRun workflowId={x.workflow_id} runId={x.id} />
      {out.result != null && (
        <>
          <h3>Result</h3>
          <pre>{JSON.stringify(out.result, null, 2)}</pre>
        </>
      )}
      {showLog && <OutputLog log={log} running={x.status === "running" || x.status === "queued"} />}
      {!showLog && text("stdout_tail") !== null && (
        <>
          <h3>Output (last lines)</h3>
          <pre aria-label="Output tail">{text("stdout_tail")}</pre>
        </>
      )}
      {!showLog && text("stderr_tail") !== null && (
        <>
          <h3>Errors (last lines)</h3>
          <pre aria-label="Error output tail">{text("stderr_tail")}</pre>
        </>
      )}
      {x.output !== null && text("stdout_tail") === null && out.result == null && (
        <>
          <h3>Output</h3>
          <pre aria-label="Output">{JSON.stringify(x.output, null, 2)}</pre>
        </>
      )}
    </div>
  );
}

/** The output log, kept scrolled to its end while it grows (unless the
 * reader scrolled up). */
function OutputLog(props: { log: RunOutputState; running: boolean }) {
  const ref = useRef<HTMLPreElement>(null);
  const follow = useRef(true);
  useEffect(() => {
    const el = ref.current;
    if (el && follow.current) el.scrollTop = el.scrollHeight;
  }, [props.log.text]);
  return (
    <>
      <h3>Output</h3>
      {props.log.trimmed && <p className="muted">Only the last part is shown here; the whole log is in the log file.</p>}
      <pre
        ref={ref}
        className="output-log"
        aria-label="Output log"
        aria-busy={!props.log.ended}
        onScroll={(e) => {
          const el = e.currentTarget;
          follow.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 8;
        }}
      >
        {props.log.text || (props.log.ended ? "(no output)" : "")}
      </pre>
      {!props.log.ended && props.running && <p className="muted" role="status">Following the output as it is written…</p>}
    </>
  );
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}
