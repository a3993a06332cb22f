import { lazy, Suspense, useCallback, useEffect, useRef, useState } from "react";
import { call, inDesktopWindow, sessionToken, startRun } from "./api/transport";
import { ApiError, messageOf } from "./api/errors";
import { isWorkflowChange, subscribe } from "./api/live";
import type { Workflow } from "./generated/bindings";
import { WorkflowManager } from "./components/WorkflowManager";
import { SyncStatus } from "./components/SyncStatus";
import { ApprovalBanner } from "./components/ApprovalBanner";
import { ConfirmDialog } from "./components/Dialog";
import { ErrorBoundary } from "./components/ErrorBoundary";
import { Overview } from "./components/Overview";
import { forgetDraft } from "./config/drafts";
import { desktopHooks } from "./desktop";
import { mark } from "./hooks/useWorkflowManager";

// The views of an open workflow load when first shown, so the script the app
// opens with (the list and the overview) is smaller: it shows its first rows
// sooner. The form, schema and validation code come with the editor.
const ConfigEditor = lazy(() => import("./components/ConfigEditor").then((m) => ({ default: m.ConfigEditor })));
const RunHistory = lazy(() => import("./components/RunHistory").then((m) => ({ default: m.RunHistory })));
const WorkflowHistory = lazy(() => import("./components/WorkflowHistory").then((m) => ({ default: m.WorkflowHistory })));
const loadingView = <p aria-busy="true">Loading…</p>;

type Tab = "config" | "runs" | "history";
const TABS: { id: Tab; label: string }[] = [
  { id: "config", label: "Configuration" },
  { id: "runs", label: "Runs" },
  { id: "history", label: "History" },
];

/**
 * The workflow, tab and run a browser URL names:
 * `/workflows/<ID>[/runs[/<RUN_ID>]|/history]`, or `/runs[/<RUN_ID>]` for
 * the runs of every workflow (no workflow, tab `runs`).
 */
export function routeOf(path: string): { id: string | null; tab: Tab; run: string | null } {
  const all = /^\/runs(?:\/([^/]+))?\/?$/.exec(path);
  if (all) return { id: null, tab: "runs", run: all[1] ? decodeURIComponent(all[1]) : null };
  const m = /^\/workflows\/([^/]+)(?:\/(config|runs|history)(?:\/([^/]+))?)?\/?$/.exec(path);
  if (!m || (m[3] && m[2] !== "runs")) return { id: null, tab: "config", run: null };
  return {
    id: decodeURIComponent(m[1]),
    tab: (m[2] as Tab | undefined) ?? "config",
    run: m[3] ? decodeURIComponent(m[3]) : null,
  };
}

export function pathOf(id: string | null, tab: Tab, run: string | null = null): string {
  if (!id) return tab === "runs" ? `/runs${run ? `/${encodeURIComponent(run)}` : ""}` : "/";
  const base = `/workflows/${encodeURIComponent(id)}${tab === "config" ? "" : `/${tab}`}`;
  return tab === "runs" && run ? `${base}/${encodeURIComponent(run)}` : base;
}

// In a browser each workflow and tab has its own URL (back and forward
// work, a link opens the same view); the desktop window has one page.
const routed = !inDesktopWindow();

export function App() {
  const initial = routed ? routeOf(window.location.pathname) : { id: null, tab: "config" as Tab, run: null };
  const [selectedId, setSelectedId] = useState<string | null>(initial.id);
  const selectedIdRef = useRef(selectedId);
  selectedIdRef.current = selectedId;
  const [workflow, setWorkflow] = useState<Workflow | null>(null);
  const [workflowError, setWorkflowError] = useState<string | null>(null);
  const [tab, setTab] = useState<Tab>(initial.tab);
  const [openRun, setOpenRun] = useState<string | null>(initial.run);
  // A tab opened from a link (or kept open across a restart) has no launch
  // token but may have the session cookie: ask the server once.
  const [access, setAccess] = useState<"ok" | "checking" | "refused">(() =>
    inDesktopWindow() || sessionToken() ? "ok" : "checking",
  );
  useEffect(() => mark("flowkeep:app-mounted"), []);
  useEffect(() => {
    if (access !== "checking") return;
    call("get_settings", {}).then(
      () => setAccess("ok"),
      (e) => setAccess(ApiError.from(e).status === 401 ? "refused" : "ok"),
    );
  }, [access]);

  useEffect(() => {
    if (!routed) return;
    const path = pathOf(selectedId, tab, openRun);
    if (window.location.pathname !== path) window.history.pushState(null, "", path + window.location.hash);
  }, [selectedId, tab, openRun]);
  // Unsaved configuration edits: leaving the form (another workflow,
  // another tab, back, closing the page) asks first.
  const [configEdited, setConfigEdited] = useState(false);
  const [leaving, setLeaving] = useState<{ id: string | null; tab: Tab } | null>(null);
  const editedRef = useRef(false);
  editedRef.current = configEdited && tab === "config";
  const go = (id: string | null, next: Tab) => {
    if (editedRef.current && (id !== selectedId || next !== "config")) {
      setLeaving({ id, tab: next });
      return;
    }
    setSelectedId(id);
    setTab(next);
    setOpenRun(null);
  };
  useEffect(() => {
    if (!configEdited) return;
    const ask = (e: BeforeUnloadEvent) => {
      e.preventDefault();
      e.returnValue = "";
    };
    window.addEventListener("beforeunload", ask);
    return () => window.removeEventListener("beforeunload", ask);
  }, [configEdited]);

  useEffect(() => {
    if (!routed) return;
    const back = () => {
      const r = routeOf(window.location.pathname);
      if (editedRef.current) {
        // Stay, and ask: the address goes back to what is shown.
        window.history.pushState(null, "", pathOf(selectedIdRef.current, "config"));
        setLeaving(r);
        return;
      }
      setSelectedId(r.id);
      setTab(r.tab);
      setOpenRun(r.run);
    };
    window.addEventListener("popstate", back);
    return () => window.removeEventListener("popstate", back);
  }, []);
  const [changeCount, setChangeCount] = useState(0);
  const [runNotice, setRunNotice] = useState<{ text: string; error: boolean } | null>(null);

  const runNow = async () => {
    if (!workflow) return;
    setRunNotice(null);
    try {
      const run = await startRun({ workflow_id: workflow.id });
      setRunNotice({ text: `Run started at ${new Date(run.started_at).toLocaleTimeString()}.`, error: false });
      setTab("runs");
      setChangeCount((n) => n + 1);
    } catch (e) {
      setRunNotice({ text: `Cannot run: ${runRefusal(e)}`, error: true });
    }
  };

  const loadWorkflow = useCallback(async (id: string | null) => {
    if (!id) {
      setWorkflow(null);
      return;
    }
    try {
      setWorkflow(await call("get_workflow", { id }));
      setWorkflowError(null);
    } catch (e) {
      setWorkflow(null);
      setWorkflowError(messageOf(e));
    }
  }, []);

  useEffect(() => {
    void loadWorkflow(selectedId);
  }, [selectedId, loadWorkflow]);

  // Another device (through sync) or another process (the CLI) may change
  // the workflow while it is open: show the news when it is pushed.
  const revision = workflow?.revision;
  useEffect(() => {
    if (!selectedId || revision === undefined) return;
    const look = async () => {
      try {
        const latest = await call("get_workflow", { id: selectedId });
        if (latest.revision !== revision) {
          setWorkflow(latest);
          setChangeCount((n) => n + 1);
        }
      } catch {
        // Deleted elsewhere or the server is gone: the next action says so.
      }
    };
    const unsubscribe = subscribe((e) => {
      if (e === "reload" || (isWorkflowChange(e) && e.workflow_id === selectedId)) void look();
    });
    return unsubscribe ?? undefined;
  }, [selectedId, revision]);

  const select = (id: string | null) => {
    go(id, id ? tab : "config");
    // Reselecting the same workflow still shows its latest state.
    if (id === selectedId) void loadWorkflow(id);
    setRunNotice(null);
  };

  const changed = () => {
    setChangeCount((n) => n + 1);
    void loadWorkflow(selectedId);
  };

  if (access === "checking") return null;
  if (access === "refused") {
    return (
      <main className="no-token">
        <h1>Flowkeep</h1>
        <p role="alert">
          This page needs the address <code>flowkeep ui</code> printed (it carries a token that changes every launch). Open that
          address, or run <code>flowkeep ui</code> again.
        </p>
      </main>
    );
  }

  return (
    <div className="app">
      <header>
        <h1>Flowkeep</h1>
        <nav className="views" aria-label="Views">
          <button
            type="button"
            className="link"
            aria-current={!selectedId && tab !== "runs" ? "page" : undefined}
            onClick={() => go(null, "config")}
          >
            Overview
          </button>
          <button
            type="button"
            className="link"
            aria-current={!selectedId && tab === "runs" ? "page" : undefined}
            onClick={() => go(null, "runs")}
          >
            All runs
          </button>
        </nav>
        <SyncStatus />
      </header>
      <div className="layout">
        <aside>
          <WorkflowManager selectedId={selectedId} onSelect={select} changeCount={changeCount} />
        </aside>
        <main>
          <ConfirmDialog
            title="Discard unsaved changes?"
            message={`The configuration${workflow ? ` of ${workflow.name}` : ""} has changes that are not saved. Leave and lose them?`}
            confirmLabel="Discard changes"
            open={leaving !== null}
            onClose={() => setLeaving(null)}
            onConfirm={() => {
              const to = leaving;
              setLeaving(null);
              setConfigEdited(false);
              editedRef.current = false;
              if (selectedId) forgetDraft(selectedId);
              if (to) {
                setSelectedId(to.id);
                setTab(to.tab);
                setOpenRun(null);
              }
            }}
          />
          <ErrorBoundary resetKey={selectedId}>
          {workflowError && (
            <p role="alert" className="error">
              {workflowError}
            </p>
          )}
          {!selectedId && tab !== "runs" && <Overview onOpen={(id) => go(id, "runs")} />}
          {!selectedId && tab === "runs" && (
            <Suspense fallback={loadingView}>
            <RunHistory
              key="all"
              workflowId={null}
              workflowName={null}
              onOpenWorkflow={(id) => go(id, "runs")}
              changeCount={changeCount}
              exportRuns={desktopHooks.exportRuns}
              openRunId={openRun}
              onOpenRun={setOpenRun}
            />
            </Suspense>
          )}
          {workflow && (
            <>
              <div className="workflow-head">
                <h2>{workflow.name}</h2>
                {workflow.version && <span className="version">v{workflow.version}</span>}
                <button type="button" className="primary run" onClick={() => void runNow()}>
                  Run now
                </button>
                {workflow.description && <p className="description">{workflow.description}</p>}
                {runNotice && (
                  <p className={runNotice.error ? "error" : "notice"} role={runNotice.error ? "alert" : "status"}>
                    {runNotice.text}
                  </p>
                )}
                <ApprovalBanner workflow={workflow} onApproved={changed} />
              </div>
              <div role="tablist" aria-label="Workflow views" className="tabs">
                {TABS.map((t) => (
                  <button
                    key={t.id}
                    type="button"
                    role="tab"
                    id={`tab-${t.id}`}
                    aria-selected={tab === t.id}
                    aria-controls={`panel-${t.id}`}
                    tabIndex={tab === t.id ? 0 : -1}
                    onClick={() => go(selectedId, t.id)}
                    onKeyDown={(e) => {
                      const i = TABS.findIndex((x) => x.id === tab);
                      const by = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? TABS.length - 1 : 0;
                      if (!by) return;
                      const next = TABS[(i + by) % TABS.length].id;
                      go(selectedId, next);
                      document.getElementById(`tab-${next}`)?.focus();
                    }}
                  >
                    {t.label}
                  </button>
                ))}
              </div>
              <div role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`} className="panel">
                <Suspense fallback={loadingView}>
                {tab === "config" && (
                  <ConfigEditor
                    key={workflow.id}
                    workflowId={workflow.id}
                    conflicts={workflow.conflicts ?? []}
                    mergeErrors={workflow.validation_errors ?? []}
                    revision={workflow.revision}
                    onSaved={changed}
                    onBrowse={desktopHooks.pickFile}
                    onEditedChange={setConfigEdited}
                  />
                )}
                {tab === "runs" && (
                  <RunHistory
                    key={workflow.id}
                    workflowId={workflow.id}
                    workflowName={workflow.name}
                    changeCount={changeCount}
                    exportRuns={desktopHooks.exportRuns}
                    openRunId={openRun}
                    onOpenRun={setOpenRun}
                  />
                )}
                {tab === "history" && <WorkflowHistory key={workflow.id} workflowId={workflow.id} changeCount={changeCount} />}
                </Suspense>
              </div>
            </>
          )}
          </ErrorBoundary>
        </main>
      </div>
    </div>
  );
}

/** Why a run was refused, in the UI's words (the server's are for every front end). */
export function runRefusal(e: unknown): string {
  const err = ApiError.from(e);
  if (err.fields.some((f) => f.field === "run" && f.code === "required")) {
    return "this workflow has no command yet. Set one under Run in Configuration, then save.";
  }
  if (err.code === "not_approved") {
    return "it will not run on this device: its command was changed on another device. Review the change in the banner above and approve it to run it here.";
  }
  if (err.code === "validation_failed") {
    const where = err.fields.map((f) => f.field.replace(/^values\./, "")).join(", ");
    return `its configuration breaks its rules (${where}). Fix it in Configuration, then save.`;
  }
  return err.message;
}
