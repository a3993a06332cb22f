import { useCallback, useEffect, useState } from "react";
import { call, inDesktopWindow, sessionToken, startRun } from "./api/transport";
import { messageOf } from "./api/errors";
import type { Workflow } from "./generated/bindings";
import { WorkflowManager } from "./components/WorkflowManager";
import { ConfigEditor } from "./components/ConfigEditor";
import { ExecutionHistory } from "./components/ExecutionHistory";
import { WorkflowHistory } from "./components/WorkflowHistory";
import { SyncStatus } from "./components/SyncStatus";
import { ApprovalBanner } from "./components/ApprovalBanner";
import { desktopHooks } from "./desktop";

type Tab = "config" | "runs" | "history";
const REFRESH_MS = 3000;
const TABS: { id: Tab; label: string }[] = [
  { id: "config", label: "Configuration" },
  { id: "runs", label: "Runs" },
  { id: "history", label: "History" },
];

export function App() {
  const [selectedId, setSelectedId] = useState<string | null>(null);
  const [workflow, setWorkflow] = useState<Workflow | null>(null);
  const [workflowError, setWorkflowError] = useState<string | null>(null);
  const [tab, setTab] = useState<Tab>("config");
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
      setRunNotice({ text: `Cannot run: ${messageOf(e)}`, error: true });
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
  // the workflow while it is open: look every few seconds and show the news.
  const revision = workflow?.revision;
  useEffect(() => {
    if (!selectedId || revision === undefined) return;
    const t = setInterval(async () => {
      try {
        const latest = await call("get_workflow", { id: selectedId });
        if (latest.revision !== revision) {
          setWorkflow(latest);
          setChangeCount((n) => n + 1);
        }
      } catch {
        // Deleted elsewhere or the server is gone: the next action says so.
      }
    }, REFRESH_MS);
    return () => clearInterval(t);
  }, [selectedId, revision]);

  const select = (id: string | null) => {
    setSelectedId(id);
    // Reselecting the same workflow still shows its latest state.
    if (id === selectedId) void loadWorkflow(id);
    setRunNotice(null);
  };

  const changed = () => {
    setChangeCount((n) => n + 1);
    void loadWorkflow(selectedId);
  };

  if (!inDesktopWindow() && !sessionToken()) {
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
        <SyncStatus />
      </header>
      <div className="layout">
        <aside>
          <WorkflowManager selectedId={selectedId} onSelect={select} changeCount={changeCount} />
        </aside>
        <main>
          {workflowError && (
            <p role="alert" className="error">
              {workflowError}
            </p>
          )}
          {!workflow && !workflowError && <p className="empty">Select a workflow, or create one.</p>}
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
                    onClick={() => setTab(t.id)}
                    onKeyDown={(e) => {
                      const i = TABS.findIndex((x) => x.id === tab);
                      const by = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? TABS.length - 1 : 0;
                      if (!by) return;
                      const next = TABS[(i + by) % TABS.length].id;
                      setTab(next);
                      document.getElementById(`tab-${next}`)?.focus();
                    }}
                  >
                    {t.label}
                  </button>
                ))}
              </div>
              <div role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`} className="panel">
                {tab === "config" && (
                  <ConfigEditor
                    key={workflow.id}
                    workflowId={workflow.id}
                    conflicts={workflow.conflicts ?? []}
                    mergeErrors={workflow.validation_errors ?? []}
                    revision={workflow.revision}
                    onSaved={changed}
                    onBrowse={desktopHooks.pickFile}
                  />
                )}
                {tab === "runs" && (
                  <ExecutionHistory
                    key={workflow.id}
                    workflowId={workflow.id}
                    workflowName={workflow.name}
                    changeCount={changeCount}
                    exportRuns={desktopHooks.exportRuns}
                  />
                )}
                {tab === "history" && <WorkflowHistory key={workflow.id} workflowId={workflow.id} changeCount={changeCount} />}
              </div>
            </>
          )}
        </main>
      </div>
    </div>
  );
}
