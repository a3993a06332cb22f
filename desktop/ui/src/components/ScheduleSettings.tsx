import { useEffect, useState } from "react";
import type { Missed, Overlap, Schedule } from "../generated/bindings";
import { call } from "../api/transport";
import { ApiError } from "../api/errors";

/** A workflow's schedule as the form edits it (text). */
export interface ScheduleDraft {
  kind: "none" | "interval" | "cron";
  interval: string;
  cron: string;
  timezone: string;
  missed: Missed;
  catchUp: string;
  overlap: Overlap;
  jitter: string;
  paused: boolean;
  /** Kept as it is: ownership moves with `schedule own`, not this form. */
  owner: string | null;
}

export function scheduleDraftOf(s: Schedule | null | undefined): ScheduleDraft {
  return {
    kind: s?.cron ? "cron" : s?.interval ? "interval" : "none",
    interval: s?.interval ?? "",
    cron: s?.cron ?? "",
    timezone: s?.timezone ?? "",
    missed: s?.missed ?? "skip",
    catchUp: s?.catch_up ?? "",
    overlap: s?.overlap ?? "skip",
    jitter: s?.jitter ?? "",
    paused: s?.paused ?? false,
    owner: s?.owner ?? null,
  };
}

/** Back to the document's shape; what a browser can tell is missing, by
 * field (`schedule.cron`). The rest (a cron's syntax, a zone's name) the
 * app checks and reports by the same names. */
export function parseScheduleDraft(d: ScheduleDraft): { value?: Schedule; errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  if (d.kind === "none") return { errors };
  const s: Schedule = {};
  if (d.kind === "interval") {
    if (!d.interval.trim()) errors["schedule.interval"] = "is required, like 15m or 1h";
    s.interval = d.interval.trim();
  } else {
    if (!d.cron.trim()) errors["schedule.cron"] = "is required, like 0 3 * * *";
    s.cron = d.cron.trim();
    if (d.timezone.trim()) s.timezone = d.timezone.trim();
  }
  if (d.missed !== "skip") s.missed = d.missed;
  if (d.catchUp.trim()) s.catch_up = d.catchUp.trim();
  if (d.overlap !== "skip") s.overlap = d.overlap;
  if (d.jitter.trim()) s.jitter = d.jitter.trim();
  if (d.paused) s.paused = true;
  if (d.owner) s.owner = d.owner;
  return { value: s, errors };
}

/** The zone the user's clock shows, for a new cron schedule's default. */
export function localZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

/** The next five times, asked of the app (the same rule the agent uses),
 * shown in the user's zone. */
function NextRuns(props: { schedule: Schedule | undefined }) {
  const [state, setState] = useState<{ times: number[]; error: string | null }>({ times: [], error: null });
  const key = JSON.stringify(props.schedule ?? null);
  useEffect(() => {
    if (!props.schedule) {
      setState({ times: [], error: null });
      return;
    }
    let live = true;
    const timer = setTimeout(() => {
      call("preview_schedule", { schedule: JSON.parse(key), count: 5 })
        .then((p) => live && setState({ times: p.times, error: null }))
        .catch((e: unknown) => live && setState({ times: [], error: e instanceof ApiError ? e.message : String(e) }));
    }, 250);
    return () => {
      live = false;
      clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
  if (!props.schedule) return null;
  if (state.error) return <p className="field-error" role="alert">{state.error}</p>;
  return (
    <div className="next-runs" aria-label="Next runs">
      <span>Next runs ({localZone()}):</span>
      <ol>
        {state.times.map((t) => (
          <li key={t}>
            <time dateTime={new Date(t).toISOString()}>{new Date(t).toLocaleString()}</time>
          </li>
        ))}
      </ol>
    </div>
  );
}

/** When the workflow runs on its own (`flowkeep agent`). */
export function ScheduleSettings(props: {
  workflowId?: string;
  draft: ScheduleDraft;
  errors: Record<string, string>;
  onChange: (d: ScheduleDraft) => void;
}) {
  const { draft: d, errors, onChange } = props;
  const [state, setState] = useState<string | null>(null);
  const { workflowId } = props;
  useEffect(() => {
    if (!workflowId) return;
    let live = true;
    call("list_schedules", { workflow_id: workflowId })
      .then((rows) => live && setState(rows[0]?.state ?? null))
      .catch(() => live && setState(null));
    return () => {
      live = false;
    };
  }, [workflowId, d.owner]);
  const parsed = parseScheduleDraft(d);
  const err = (k: string) => (
    <span className="field-error" role={errors[`schedule.${k}`] ? "alert" : undefined}>
      {errors[`schedule.${k}`] ?? ""}
    </span>
  );
  const text = (k: keyof ScheduleDraft, label: string, placeholder: string) => (
    <label>
      {label}
      <input
        value={String(d[k] ?? "")}
        placeholder={placeholder}
        aria-invalid={!!errors[`schedule.${k === "catchUp" ? "catch_up" : k}`]}
        onChange={(e) => onChange({ ...d, [k]: e.target.value })}
      />
      {err(k === "catchUp" ? "catch_up" : k)}
    </label>
  );
  return (
    <fieldset className="schedule-settings">
      <legend>Schedule</legend>
      <label>
        Runs on its own
        <select
          aria-label="Schedule kind"
          value={d.kind}
          onChange={(e) => {
            const kind = e.target.value as ScheduleDraft["kind"];
            onChange({ ...d, kind, timezone: kind === "cron" && !d.timezone ? localZone() : d.timezone });
          }}
        >
          <option value="none">never (only when started)</option>
          <option value="interval">every … (interval)</option>
          <option value="cron">at times (cron)</option>
        </select>
      </label>
      {d.kind !== "none" && (
        <>
          <div className="grid">
            {d.kind === "interval" && text("interval", "Every", "15m, 1h, 1d")}
            {d.kind === "cron" && text("cron", "Cron expression", "0 3 * * *")}
            {d.kind === "cron" && text("timezone", "Time zone", "Europe/Berlin")}
            <label>
              Missed while no agent ran
              <select aria-label="Missed runs" value={d.missed} onChange={(e) => onChange({ ...d, missed: e.target.value as Missed })}>
                <option value="skip">record as skipped</option>
                <option value="run_once">run the latest once</option>
                <option value="run_all">run all</option>
              </select>
            </label>
            {text("catchUp", "Catch up at most (run_once, run_all)", "1d")}
            <label>
              If the last run is still going
              <select aria-label="Overlap" value={d.overlap} onChange={(e) => onChange({ ...d, overlap: e.target.value as Overlap })}>
                <option value="skip">skip this one</option>
                <option value="queue">run after it</option>
                <option value="cancel_previous">cancel it, then run</option>
                <option value="allow">run alongside</option>
              </select>
            </label>
            {text("jitter", "Spread starts by up to", "none")}
            <label className="checkbox">
              <input type="checkbox" checked={d.paused} onChange={(e) => onChange({ ...d, paused: e.target.checked })} />
              Paused
            </label>
          </div>
          <p className="help" aria-label="Where it runs">
            {state === "runs here"
              ? "Runs on this device while `flowkeep agent` runs."
              : state
                ? `${state[0].toUpperCase()}${state.slice(1)}.${state.startsWith("runs on") ? " Take it here with `flowkeep schedule own`." : ""}`
                : "Runs on this device once saved, while `flowkeep agent` runs."}
          </p>
          {Object.keys(parsed.errors).length === 0 && !d.paused && <NextRuns schedule={parsed.value} />}
        </>
      )}
    </fieldset>
  );
}
