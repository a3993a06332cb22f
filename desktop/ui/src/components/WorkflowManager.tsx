import { lazy, Suspense, useEffect, useLayoutEffect, useRef, useState } from "react";
import { useVirtualizer } from "@tanstack/react-virtual";
import { WorkflowRow } from "./WorkflowRow";
import { mark, useWorkflowManager } from "../hooks/useWorkflowManager";
import { useTagSuggestions } from "../hooks/useTagSuggestions";
import { call } from "../api/transport";
import { messageOf } from "../api/errors";
import type { Workflow, WorkflowSort, WorkflowSummary } from "../generated/bindings";
import { ConfirmDialog } from "./Dialog";
import type { WorkflowDraft } from "./WorkflowDialog";
import { LoadError } from "./LoadError";
import { DeletedWorkflows } from "./DeletedWorkflows";
import { WorkflowFiles } from "./WorkflowFiles";

// The dialog and its form validation load when first opened: the list opens
// without them.
const WorkflowDialog = lazy(() => import("./WorkflowDialog").then((m) => ({ default: m.WorkflowDialog })));

/** A row's height before it is measured (one line of tags). */
const ROW_ESTIMATE = 78;

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
  // The deleted workflows (to undelete one) shown above the list.
  const [showDeleted, setShowDeleted] = useState(false);
  const sentinel = useRef<HTMLDivElement>(null);
  const listRef = useRef<HTMLUListElement>(null);
  const { refresh, loadMore } = wm;
  const [menuFor, setMenuFor] = useState<string | null>(null);
  // Tags in use, suggested as the filter is typed (any prefix).
  const tagSuggestions = useTagSuggestions(wm.query.tag, props.changeCount);

  // When the first rows were shown, for the browser benchmark (and anyone
  // looking at the page's performance timeline).
  const hasRows = wm.items.length > 0;
  useEffect(() => {
    if (hasRows) mark("flowkeep:first-rows");
  }, [hasRows]);

  useEffect(() => {
    if (props.changeCount > 0) void refresh();
  }, [props.changeCount, refresh]);

  // Only the rows in view (and a few around them) are in the document, so
  // a list scrolled through thousands of workflows stays as quick as the
  // first page. The list scrolls with the sidebar around it.
  const scroller = () => listRef.current?.closest<HTMLElement>("aside, .workflows-pane") ?? null;
  const [scrollMargin, setScrollMargin] = useState(0);
  useLayoutEffect(() => {
    const list = listRef.current;
    const box = scroller();
    if (!list || !box) return;
    const at = list.getBoundingClientRect().top - box.getBoundingClientRect().top + box.scrollTop;
    if (Math.abs(at - scrollMargin) > 1) setScrollMargin(at);
  });
  const virtualizer = useVirtualizer({
    count: wm.items.length,
    getScrollElement: scroller,
    estimateSize: () => ROW_ESTIMATE,
    overscan: 8,
    scrollMargin,
    getItemKey: (i) => wm.items[i].id,
    // Rows on the first paint, before the sidebar was measured.
    initialRect: { width: 400, height: typeof window === "undefined" ? 800 : window.innerHeight },
  });

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
        <div className="toolbar-actions">
          <WorkflowFiles onImported={() => void wm.refresh()} />
          <button type="button" className="primary" onClick={() => setEditing({ mode: "create" })}>
            New workflow
          </button>
        </div>
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
        <label className="inline">
          <input type="checkbox" checked={showDeleted} onChange={(e) => setShowDeleted(e.target.checked)} />
          Deleted
        </label>
      </div>
      {showDeleted && (
        <DeletedWorkflows
          changeCount={props.changeCount}
          onUndeleted={(id) => {
            setShowDeleted(false);
            void wm.refresh();
            props.onSelect(id);
          }}
        />
      )}
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
      <ul
        ref={listRef}
        className="workflow-list"
        aria-label="Workflow list"
        aria-busy={wm.loading}
        data-rows={wm.items.length}
        style={{ height: virtualizer.getTotalSize(), position: "relative" }}
      >
        {virtualizer.getVirtualItems().map((v) => {
          const w = wm.items[v.index];
          return (
            <WorkflowRow
              key={w.id}
              ref={virtualizer.measureElement}
              index={v.index}
              setSize={wm.total ?? wm.items.length}
              top={v.start - virtualizer.options.scrollMargin}
              workflow={w}
              selected={w.id === props.selectedId}
              menuOpen={menuFor === w.id}
              onSelect={() => props.onSelect(w.id)}
              onMenu={(open) => setMenuFor(open ? w.id : null)}
              onEdit={() => void openEdit(w.id)}
              onDuplicate={() => void duplicate(w)}
              onDelete={() => {
                setDeleteError(null);
                setDeleting(w);
              }}
            />
          );
        })}
      </ul>
      <div ref={sentinel} className="sentinel" aria-hidden={!wm.hasMore}>
        {wm.loading ? "Loading…" : wm.hasMore ? (
          <button type="button" onClick={() => void wm.loadMore()}>
            Load more
          </button>
        ) : null}
      </div>
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
