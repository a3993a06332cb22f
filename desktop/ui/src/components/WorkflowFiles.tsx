import { useState } from "react";
import { call } from "../api/transport";
import { ApiError, messageOf } from "../api/errors";
import type { FieldError, WorkflowImport, ImportItem } from "../generated/bindings";
import { Dialog } from "./Dialog";
import { desktopHooks } from "../desktop";

const FOLDER_KEY = "flowkeep.files.folder";

function lastFolder(): string {
  try {
    return localStorage.getItem(FOLDER_KEY) ?? "";
  } catch {
    return "";
  }
}

function rememberFolder(dir: string) {
  try {
    localStorage.setItem(FOLDER_KEY, dir);
  } catch {
    // Private mode: the field just starts empty next time.
  }
}

const short = (v: unknown) => {
  const t = JSON.stringify(v) ?? "—";
  return t.length > 80 ? `${t.slice(0, 80)}…` : t;
};

/** What an import did or would do, one row per file. */
export function ImportPlan(props: { report: WorkflowImport }) {
  const label: Record<ImportItem["action"], string> = {
    create: "create",
    update: "update",
    unchanged: "unchanged",
    conflict: "conflict",
  };
  return (
    <table aria-label="Import plan" className="import-plan">
      <thead>
        <tr>
          <th>File</th>
          <th>Workflow</th>
          <th>Action</th>
          <th>What changes</th>
        </tr>
      </thead>
      <tbody>
        {props.report.items.map((i) => (
          <tr key={i.file} className={`action-${i.action}`}>
            <td>
              <code>{i.file}</code>
            </td>
            <td>{i.name}</td>
            <td>{label[i.action]}</td>
            <td>
              {i.action === "update" && (
                <ul>
                  {i.changes.map((c) => (
                    <li key={c.field}>
                      <code>{c.field}</code>: {short(c.old)} → {short(c.new)}
                    </li>
                  ))}
                </ul>
              )}
              {i.conflicts.length > 0 && (
                <ul>
                  {i.conflicts.map((c) => (
                    <li key={c.field}>
                      <code>{c.field}</code> changed on both sides: here {short(c.local)}, in the file {short(c.file)}
                    </li>
                  ))}
                </ul>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Problems(props: { errors: FieldError[] }) {
  if (props.errors.length === 0) return null;
  return (
    <ul className="problems" role="alert" aria-label="Problems in the files">
      {props.errors.map((e, i) => (
        <li key={i}>
          <code>{e.field}</code>: {e.message}
        </li>
      ))}
    </ul>
  );
}

/** Export and Import on the workflow list: a folder on this machine. */
export function WorkflowFiles(props: { onImported: () => void }) {
  const [mode, setMode] = useState<"export" | "import" | null>(null);
  const [dir, setDir] = useState(lastFolder);
  const [status, setStatus] = useState<{ text: string; error: boolean } | null>(null);
  const [errors, setErrors] = useState<FieldError[]>([]);
  const [plan, setPlan] = useState<WorkflowImport | null>(null);
  const [prefer, setPrefer] = useState<"" | "file" | "local">("");
  const [busy, setBusy] = useState(false);

  const open = (m: "export" | "import") => {
    setMode(m);
    setStatus(null);
    setErrors([]);
    setPlan(null);
  };
  const fail = (e: unknown) => {
    setErrors(e instanceof ApiError ? e.fields : []);
    setStatus({ text: messageOf(e), error: true });
  };
  const exportNow = async () => {
    setBusy(true);
    try {
      const out = await call("export_workflows", { dir });
      rememberFolder(dir);
      setStatus({ text: `Wrote ${out.files.length} workflow file(s) to ${out.dir}.`, error: false });
      setErrors([]);
    } catch (e) {
      fail(e);
    } finally {
      setBusy(false);
    }
  };
  const importNow = async (dryRun: boolean) => {
    setBusy(true);
    try {
      const report = await call("import_workflows", { dir, dry_run: dryRun, ...(prefer ? { prefer } : {}) });
      rememberFolder(dir);
      setErrors([]);
      setPlan(report);
      const count = (a: ImportItem["action"]) => report.items.filter((i) => i.action === a).length;
      const summary = `${count("create")} to create, ${count("update")} to update, ${count("unchanged")} unchanged, ${count("conflict")} in conflict`;
      setStatus({
        text: dryRun ? `Checked: ${summary}. Nothing written yet.` : `Imported: ${summary}.`,
        error: !dryRun && count("conflict") > 0,
      });
      if (!dryRun) props.onImported();
    } catch (e) {
      setPlan(null);
      fail(e);
    } finally {
      setBusy(false);
    }
  };
  const { pickFolder } = desktopHooks;
  const folder = (
    <label>
      Folder on this machine
      <span className="file-input">
        <input value={dir} placeholder="/home/you/flowkeep-workflows" onChange={(e) => setDir(e.target.value)} />
        {pickFolder && (
          <button
            type="button"
            onClick={async () => {
              const picked = await pickFolder(mode === "export" ? "Export workflows to" : "Import workflows from");
              if (picked) setDir(picked);
            }}
          >
            Choose…
          </button>
        )}
      </span>
    </label>
  );
  return (
    <>
      <button type="button" onClick={() => open("export")}>
        Export workflows…
      </button>
      <button type="button" onClick={() => open("import")}>
        Import workflows…
      </button>
      <Dialog title="Export workflows" open={mode === "export"} onClose={() => setMode(null)}>
        <p className="help">One file per workflow (name.flowkeep.yaml), the same bytes for the same workflow: keep them in git.</p>
        {folder}
        {status && <p className={status.error ? "notice error" : "notice"} role="status">{status.text}</p>}
        <Problems errors={errors} />
        <div className="actions">
          <button type="button" onClick={() => setMode(null)}>
            Close
          </button>
          <button type="button" className="primary" disabled={busy || !dir.trim()} onClick={() => void exportNow()}>
            Export
          </button>
        </div>
      </Dialog>
      <Dialog title="Import workflows" open={mode === "import"} onClose={() => setMode(null)}>
        <p className="help">
          Every *.flowkeep.yaml in the folder. It is checked first: a file with a problem changes nothing. A field changed both in a file and here since
          the last export or import is a conflict, unless you choose who wins.
        </p>
        {folder}
        <label>
          Changed on both sides
          <select aria-label="Changed on both sides" value={prefer} onChange={(e) => setPrefer(e.target.value as "" | "file" | "local")}>
            <option value="">stop and show the conflict</option>
            <option value="file">take the file's value</option>
            <option value="local">keep the value here</option>
          </select>
        </label>
        {status && <p className={status.error ? "notice error" : "notice"} role="status">{status.text}</p>}
        <Problems errors={errors} />
        {plan && <ImportPlan report={plan} />}
        <div className="actions">
          <button type="button" onClick={() => setMode(null)}>
            Close
          </button>
          <button type="button" disabled={busy || !dir.trim()} onClick={() => void importNow(true)}>
            Check
          </button>
          <button type="button" className="primary" disabled={busy || !plan || plan.applied} onClick={() => void importNow(false)}>
            Import
          </button>
        </div>
      </Dialog>
    </>
  );
}
