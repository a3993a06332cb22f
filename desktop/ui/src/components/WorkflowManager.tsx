import { lazy, Suspense, useEffect, useRef, useState } from "react";
import { When } from "./When";
import { useWorkflowManager } from "../hooks/useWorkflowManager";
import { useTagSuggestions } from "../hooks/useTagSuggestions";
import { call } from "../api/transport";
import { messageOf } from "../api/errors";
import type { Workflow, WorkflowSort, WorkflowSummary } from "../generated/bindings";
import { ConfirmDialog } from "./Dialog";
import type { WorkflowDraft } from "./WorkflowDialog";
import { LoadError } from "./LoadError";

// The dialog and its form validation load when first opened: the list opens
// without them.
const WorkflowDialog = lazy(() => import("./WorkflowDialog").then((m) => ({ default: m.WorkflowDialog })));

type Editing = { mode: "create" } | { mode: "edit"; workflow: Workflow } | null;

/**
 * All workflows: search, tag filter, sort, pages loaded as the list scrolls;
 * create and edit in a dialog, duplicate, delete after confirming.
 */
export function WorkflowManager(props: {
  selectedId: string | null;
  onSelect: (id: string | null) => void;
  /** Bumped by the parent when a workflow changed elsewhere (config saved). */
  changeCount: number;
}) {
  const wm = useWorkflowManager();
  const [editing, setEditing] = useState<Editing>(null);
  const [deleting, setDeleting] = useState<WorkflowSummary | null>(null);
  const [deleteError, setDeleteError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const sentinel = useRef<HTMLLIElement>(null);
  const { refresh, loadMore } = wm;
  const [menuFor, setMenuFor] = useState<string | null>(null);
  // Tags in use, suggested as the filter is typed (any prefix).
  const tagSuggestions = useTagSuggestions(wm.query.tag, props.changeCount);

  // When the first rows were shown, for the browser benchmark (and anyone
  // looking at the page's performance timeline).
  const hasRows = wm.items.length > 0;
  useEffect(() => {
    if (hasRows && typeof performance.mark === "function" && performance.getEntriesByName("flowkeep:first-rows").length === 0)
      performance.mark("flowkeep:first-rows");
  }, [hasRows]);

  useEffect(() => {
    if (props.changeCount > 0) void refresh();
  }, [props.changeCount, refresh]);

  // Next page when the end of the list scrolls into view.
  useEffect(() => {
    const el = sentinel.current;
    if (!el || typeof IntersectionObserver === "undefined") return;
    const io = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) void loadMore();
    });
    io.observe(el);
    return () => io.disconnect();
  }, [loadMore, wm.items.length]);

  const openEdit = async (id: string) => {
    try {
      setEditing({ mode: "edit", workflow: await call("get_workflow", { id }) });
    } catch (e) {
      setNotice(messageOf(e));
    }
  };

  const submit = async (draft: WorkflowDraft) => {
    if (editing?.mode === "edit") {
      const wf = editing.workflow;
      await wm.update({
        id: wf.id,
        expected_revision: wf.revision,
        name: draft.name,
        description: draft.description,
        version: draft.version || undefined,
        tags: draft.tags,
      });
      setNotice(`Saved ${draft.name}`);
      props.onSelect(wf.id);
    } else {
      const wf = await wm.create({
        name: draft.name,
        description: draft.description || undefined,
        version: draft.version || undefined,
        tags: draft.tags,
      });
      setNotice(`Created ${wf.name}`);
      props.onSelect(wf.id);
    }
    setEditing(null);
  };

  const duplicate = async (w: WorkflowSummary) => {
    try {
      const copy = await wm.duplicate(w.id);
      setNotice(`Duplicated as ${copy.name}`);
      props.onSelect(copy.id);
    } catch (e) {
      setNotice(messageOf(e));
    }
  };

  const confirmDelete = async () => {
    if (!deleting) return;
    setBusy(true);
    try {
      await wm.remove(deleting.id, deleting.revision);
      setNotice(`Deleted ${deleting.name}`);
      if (props.selectedId === deleting.id) props.onSelect(null);
      setDeleting(null);
    } catch (e) {
      setDeleteError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };

  const q = wm.query;
  return (
    <section className="workflow-manager" aria-label="Workflows">
      <div className="toolbar">
        <h2>Workflows</h2>
        <button type="button" className="primary" onClick={() => setEditing({ mode: "create" })}>
          New workflow
        </button>
      </div>
      <div className="filters">
        <label>
          Search
          <input type="search" value={q.search} placeholder="name or description" onChange={(e) => wm.setQuery({ ...q, search: e.target.value })} />
        </label>
        <label>
          Tag
          <input value={q.tag} placeholder="any" list="tags-in-use" onChange={(e) => wm.setQuery({ ...q, tag: e.target.value })} />
          <datalist id="tags-in-use">
            {tagSuggestions.map((t) => (
              <option key={t} value={t} />
            ))}
          </datalist>
        </label>
        <label>
          Sort by
          <select aria-label="Sort by" value={q.sort} onChange={(e) => wm.setQuery({ ...q, sort: e.target.value as WorkflowSort })}>
            <option value="name">Name</option>
            <option value="created">Created</option>
            <option value="updated">Updated</option>
          </select>
        </label>
        <label className="inline">
          <input type="checkbox" checked={q.desc} onChange={(e) => wm.setQuery({ ...q, desc: e.target.checked })} />
          Descending
        </label>
      </div>
      {wm.total !== null && (
        <p className="count">
          {wm.total === 1 ? "1 workflow" : `${wm.total.toLocaleString()} workflows`}
          {(q.search || q.tag) && " match"}
        </p>
      )}
      <p className="notice" role="status" aria-live="polite">
        {notice ?? ""}
      </p>
      {wm.error && (
        <LoadError what="workflows" error={wm.error} onRetry={() => void wm.refresh()} />
      )}
      {!wm.loading && !wm.error && wm.items.length === 0 && (
        <p className="empty">{q.search || q.tag ? "No workflow matches." : "No workflows yet. Create the first one."}</p>
      )}
      <ul className="workflow-list" aria-label="Workflow list" aria-busy={wm.loading}>
        {wm.items.map((w) => (
          <li key={w.id} className={w.id === props.selectedId ? "selected" : undefined}>
            <button type="button" className="select" aria-current={w.id === props.selectedId} onClick={() => props.onSelect(w.id)}>
              <span className="name">{w.name}</span>
              {w.version && <span className="version">v{w.version}</span>}
              {!w.approved && <span className="needs-approval">needs approval</span>}
              {w.last_run ? (
                <span className={`run-badge status-${w.last_run.status}`}>
                  last run {w.last_run.status} <When at={w.last_run.started_at} />
                </span>
              ) : (
                <span className="run-badge never">never run</span>
              )}
              <span className="meta">
                updated <When at={w.updated_at} />
              </span>
              {w.tags.length > 0 && (
                <span className="tags">
                  {w.tags.map((t) => (
                    <span key={t} className="tag">
                      {t}
                    </span>
                  ))}
                </span>
              )}
            </button>
            <span className="row-menu">
              <button
                type="button"
                aria-label={`Actions for ${w.name}`}
                aria-haspopup="menu"
                aria-expanded={menuFor === w.id}
                onClick={() => setMenuFor(menuFor === w.id ? null : w.id)}
                onKeyDown={(e) => e.key === "Escape" && setMenuFor(null)}
              >
                ⋯
              </button>
              {menuFor === w.id && (
                <span role="menu" className="menu" aria-label={`Actions for ${w.name}`} onKeyDown={(e) => e.key === "Escape" && setMenuFor(null)}>
                  <button type="button" role="menuitem" aria-label={`Edit ${w.name}`} onClick={() => (setMenuFor(null), void openEdit(w.id))}>
                    Edit
                  </button>
                  <button type="button" role="menuitem" aria-label={`Duplicate ${w.name}`} onClick={() => (setMenuFor(null), void duplicate(w))}>
                    Duplicate
                  </button>
                  <button
                    type="button"
                    role="menuitem"
                    className="danger"
                    aria-label={`Delete ${w.name}`}
                    onClick={() => {
                      setMenuFor(null);
                      setDeleteError(null);
                      setDeleting(w);
                    }}
                  >
                    Delete
                  </button>
                </span>
              )}
            </span>
          </li>
        ))}
        <li ref={sentinel} className="sentinel" aria-hidden={!wm.hasMore}>
          {wm.loading ? "Loading…" : wm.hasMore ? (
            <button type="button" onClick={() => void wm.loadMore()}>
              Load more
            </button>
          ) : null}
        </li>
      </ul>
      {editing !== null && (
        <Suspense fallback={null}>
          <WorkflowDialog
            open
            workflow={editing.mode === "edit" ? editing.workflow : null}
            onClose={() => setEditing(null)}
            onSubmit={submit}
          />
        </Suspense>
      )}
      <ConfirmDialog
        title="Delete workflow"
        open={deleting !== null}
        message={
          <>
            Delete <strong>{deleting?.name}</strong>? Its config goes with it; its runs stay in the history.
          </>
        }
        confirmLabel="Delete"
        busy={busy}
        error={deleteError}
        onConfirm={() => void confirmDelete()}
        onClose={() => setDeleting(null)}
      />
    </section>
  );
}
