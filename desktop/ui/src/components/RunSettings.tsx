import type { RetentionPolicy, RunSpec } from "../generated/bindings";
import { parseScheduleDraft, scheduleDraftOf, ScheduleSettings, type ScheduleDraft } from "./ScheduleSettings";

/** The run command and retention as the form edits them (text). */
export interface RunDraft {
  command: string;
  cwd: string;
  timeout: string;
  env: string;
  maxAge: string;
  maxCount: string;
  /** Names of flowkeep's environment variables passed on, one per line. */
  inheritEnv: string;
  schedule: ScheduleDraft;
}

export function runDraftOf(run: RunSpec | null | undefined, retention: RetentionPolicy | null | undefined): RunDraft {
  return {
    command: (run?.command ?? []).join("\n"),
    cwd: run?.cwd ?? "",
    timeout: run?.timeout_s != null ? String(run.timeout_s) : "",
    env: Object.entries(run?.env ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join("\n"),
    maxAge: retention?.max_age ?? "",
    maxCount: retention?.max_count != null ? String(retention.max_count) : "",
    inheritEnv: (run?.inherit_env ?? []).join("\n"),
    schedule: scheduleDraftOf(run?.schedule),
  };
}

export type Parsed<T> = { value: T; errors: Record<string, string> };

/** Back to the document's shape; problems a browser can see, by field. */
export function parseRunDraft(d: RunDraft): Parsed<{ run?: RunSpec; retention?: RetentionPolicy }> {
  const errors: Record<string, string> = {};
  const out: { run?: RunSpec; retention?: RetentionPolicy } = {};
  const command = d.command
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
  const env: Record<string, string> = {};
  for (const line of d.env.split("\n").map((l) => l.trim()).filter((l) => l !== "")) {
    const i = line.indexOf("=");
    if (i <= 0) errors.env = `"${line}" is not KEY=VALUE`;
    else env[line.slice(0, i).trim()] = line.slice(i + 1);
  }
  let timeout: number | undefined;
  if (d.timeout.trim() !== "") {
    timeout = Number(d.timeout);
    if (!Number.isInteger(timeout) || timeout < 1) errors.timeout_s = "must be a whole number of seconds, at least 1";
  }
  const inherit = d.inheritEnv
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
  const schedule = parseScheduleDraft(d.schedule);
  Object.assign(errors, schedule.errors);
  if (command.length > 0) {
    out.run = { command };
    if (d.cwd.trim()) out.run.cwd = d.cwd.trim();
    if (Object.keys(env).length) out.run.env = env;
    if (timeout !== undefined) out.run.timeout_s = timeout;
    if (inherit.length) out.run.inherit_env = inherit;
    if (schedule.value) out.run.schedule = schedule.value;
  } else if (d.cwd.trim() || Object.keys(env).length || timeout !== undefined || inherit.length || schedule.value) {
    errors.command = "is required when a working directory, timeout, environment or schedule is set";
  }
  let maxCount: number | undefined;
  if (d.maxCount.trim() !== "") {
    maxCount = Number(d.maxCount);
    if (!Number.isInteger(maxCount) || maxCount < 1) errors.max_count = "must be a whole number, at least 1";
  }
  if (d.maxAge.trim() || maxCount !== undefined) {
    out.retention = {};
    if (d.maxAge.trim()) out.retention.max_age = d.maxAge.trim();
    if (maxCount !== undefined) out.retention.max_count = maxCount;
  }
  return { value: out, errors };
}

/** What the workflow runs, and how long its runs are kept. */
export function RunSettings(props: {
  workflowId?: string;
  draft: RunDraft;
  errors: Record<string, string>;
  onChange: (d: RunDraft) => void;
}) {
  const { draft: d, errors, onChange } = props;
  const field = (key: Exclude<keyof RunDraft, "schedule">, label: string, errorKey: string, multiline: boolean, placeholder?: string) => (
    <label>
      {label}
      {multiline ? (
        <textarea className="code" rows={3} value={d[key]} placeholder={placeholder} aria-invalid={!!errors[errorKey]} onChange={(e) => onChange({ ...d, [key]: e.target.value })} />
      ) : (
        <input value={d[key]} placeholder={placeholder} aria-invalid={!!errors[errorKey]} onChange={(e) => onChange({ ...d, [key]: e.target.value })} />
      )}
      <span className="field-error" role={errors[errorKey] ? "alert" : undefined}>
        {errors[errorKey] ?? ""}
      </span>
    </label>
  );
  return (
    <fieldset className="run-settings">
      <legend>Run</legend>
      <p className="help">
        The command gets the config values as JSON on stdin and in the file named by <code>FLOWKEEP_CONFIG</code>.
      </p>
      <div className="grid">
        {field("command", "Command (one argument per line)", "command", true, "python3\n/path/to/job.py")}
        {field("env", "Environment (KEY=VALUE per line)", "env", true)}
        {field("cwd", "Working directory", "cwd", false, "default: where flowkeep runs")}
        {field("timeout", "Timeout (seconds)", "timeout_s", false, "none")}
        {field("maxAge", "Keep runs for (e.g. 30d, 12h)", "max_age", false, "the global policy")}
        {field("maxCount", "Keep at most (runs)", "max_count", false, "the global policy")}
        {field("inheritEnv", "Pass these variables of flowkeep's environment (one per line)", "inherit_env", true, "AWS_PROFILE")}
      </div>
      <ScheduleSettings
        workflowId={props.workflowId}
        draft={d.schedule}
        errors={errors}
        onChange={(schedule) => onChange({ ...d, schedule })}
      />
    </fieldset>
  );
}
