//! Human-readable output. `--json` bypasses all of this.

use std::fmt::Write;

use flowkeep_core::commands::{
    ConfigOut, ExportedWorkflows, HistoryEntry, ImportAction, Page, SchedulePreview, ScheduleRow,
    ValidationReport, WorkflowDiff, WorkflowImport,
};
use flowkeep_core::config::{ConfigDocument, FieldDef};
use flowkeep_core::run::Run;
use flowkeep_core::versions::WorkflowVersion;
use flowkeep_core::workflow::{Workflow, WorkflowSummary};
use flowkeep_core::ErrorBody;
use serde_json::Value;

use super::time_arg::show;

pub fn error(body: &ErrorBody) -> String {
    let mut s = String::new();
    let headline = match body.code {
        flowkeep_core::ErrorCode::ValidationFailed => "validation failed".to_owned(),
        flowkeep_core::ErrorCode::InvalidInput => "invalid input".to_owned(),
        _ => body.message.clone(),
    };
    let _ = writeln!(s, "error: {headline}");
    for f in &body.fields {
        let _ = writeln!(s, "  {} ({}): {}", f.field, f.code, f.message);
    }
    s
}

pub fn workflow(wf: &Workflow) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}  [{}]", wf.spec.name, wf.id);
    let tags = if wf.spec.tags.is_empty() {
        "-".to_owned()
    } else {
        wf.spec.tags.join(", ")
    };
    let _ = writeln!(
        s,
        "  version {}  revision {}  tags {}",
        wf.spec.version, wf.revision, tags
    );
    let _ = writeln!(
        s,
        "  created {}  updated {}",
        show(wf.created_at),
        show(wf.updated_at)
    );
    if !wf.spec.description.is_empty() {
        let _ = writeln!(s, "  {}", wf.spec.description);
    }
    if !wf.approval.approved {
        let _ = writeln!(
            s,
            "  NOT APPROVED on this device: changed on another device; it will not run until `flowkeep workflow approve {}`",
            wf.id
        );
        for c in wf.approval.approved_spec.unapproved_changes(&wf.spec) {
            let _ = writeln!(s, "    {}: {} → {}", c.field, c.old, c.new);
        }
    }
    s.push_str(&config_doc(&wf.spec.config));
    s
}

/// A past version: what `workflow get --at` shows.
pub fn workflow_version(v: &WorkflowVersion) -> String {
    let mut s = String::new();
    let deleted = if v.deleted { "  (deleted)" } else { "" };
    let _ = writeln!(s, "{}  [{}]{deleted}", v.spec.name, v.id);
    let tags = if v.spec.tags.is_empty() {
        "-".to_owned()
    } else {
        v.spec.tags.join(", ")
    };
    let _ = writeln!(
        s,
        "  version {}  at revision {} ({})  tags {}",
        v.spec.version,
        v.revision,
        show(v.updated_at),
        tags
    );
    if !v.spec.description.is_empty() {
        let _ = writeln!(s, "  {}", v.spec.description);
    }
    s.push_str(&config_doc(&v.spec.config));
    s
}

/// `workflow diff`: field by field, old → new.
pub fn workflow_diff(d: &WorkflowDiff) -> String {
    let mut s = format!(
        "workflow {}: revision {} ({}) → revision {} ({})\n",
        d.id,
        d.from.revision,
        show(d.from.recorded_at),
        d.to.revision,
        show(d.to.recorded_at)
    );
    if d.changes.is_empty() {
        s.push_str("  no differences\n");
    }
    for c in &d.changes {
        let _ = writeln!(s, "  {}: {} → {}", c.field, short(&c.old), short(&c.new));
    }
    s
}

pub fn config(c: &ConfigOut) -> String {
    format!(
        "config of {} (revision {})\n{}",
        c.workflow_id,
        c.revision,
        config_doc(&c.config)
    )
}

fn config_doc(doc: &ConfigDocument) -> String {
    let mut s = String::new();
    if doc.fields.is_empty() {
        s.push_str("  no config fields\n");
    }
    let width = doc.fields.iter().map(|f| f.key.len()).max().unwrap_or(0);
    for f in &doc.fields {
        let value = match doc.values.get(&f.key) {
            Some(v) => short(v),
            None => match &f.default {
                Some(d) => format!("{} (default)", short(d)),
                None => "-".to_owned(),
            },
        };
        let _ = writeln!(
            s,
            "  {:width$}  {:7}  {:24}  {}",
            f.key,
            f.kind.as_str(),
            value,
            rules(f)
        );
    }
    for r in &doc.rules {
        let _ = writeln!(s, "  rule {}", serde_json::to_string(r).unwrap_or_default());
    }
    if let Some(run) = &doc.run {
        let _ = writeln!(s, "  runs: {}", run.command.join(" "));
    }
    s
}

fn rules(f: &FieldDef) -> String {
    let mut r = Vec::new();
    if f.required {
        r.push("required".to_owned());
    }
    if f.integer {
        r.push("integer".to_owned());
    }
    match (&f.min, &f.max) {
        (Some(a), Some(b)) => r.push(format!("{a}..{b}")),
        (Some(a), None) => r.push(format!(">= {a}")),
        (None, Some(b)) => r.push(format!("<= {b}")),
        _ => {}
    }
    if let Some(o) = &f.options {
        r.push(format!("one of {}", o.join("|")));
    }
    if let Some(x) = &f.format {
        r.push(format!("format {x}"));
    }
    if let Some(x) = &f.pattern {
        r.push(format!("pattern {x}"));
    }
    if let Some(x) = &f.rule {
        r.push(format!("rule {x}"));
    }
    if let Some(x) = &f.extensions {
        r.push(format!(".{}", x.join("|.")));
    }
    r.join(", ")
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(39).collect::<String>())
    } else {
        s
    }
}

pub fn workflow_list(page: &Page<WorkflowSummary>) -> String {
    let mut s = String::new();
    if page.items.is_empty() {
        s.push_str("No workflows.\n");
        return s;
    }
    let width = page
        .items
        .iter()
        .map(|w| w.name.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 40);
    let _ = writeln!(
        s,
        "{:36}  {:width$}  {:9}  {:19}  TAGS",
        "ID", "NAME", "VERSION", "UPDATED"
    );
    for w in &page.items {
        let name: String = w.name.chars().take(40).collect();
        let _ = writeln!(
            s,
            "{:36}  {:width$}  {:9}  {:19}  {}",
            w.id,
            name,
            w.version,
            show(w.updated_at),
            w.tags.join(","),
        );
        if !w.approved {
            s.pop();
            s.push_str("  [needs approval]\n");
        }
    }
    if let Some(c) = &page.next_cursor {
        let _ = writeln!(s, "more: --cursor {c}");
    }
    s
}

pub fn validation(r: &ValidationReport) -> String {
    if r.valid {
        return "valid\n".to_owned();
    }
    let mut s = format!("invalid: {} problem(s)\n", r.errors.len());
    for e in &r.errors {
        let _ = writeln!(s, "  {} ({}): {}", e.field, e.code, e.message);
    }
    s
}

fn duration(ms: Option<i64>) -> String {
    match ms {
        None => "-".to_owned(),
        Some(ms) if ms < 1000 => format!("{ms}ms"),
        Some(ms) if ms < 60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        Some(ms) => format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

pub fn run_list(page: &Page<Run>) -> String {
    let mut s = String::new();
    if page.items.is_empty() {
        s.push_str("No runs.\n");
        return s;
    }
    let _ = writeln!(
        s,
        "{:36}  {:9}  {:19}  {:>8}  {:>4}  TRIGGER",
        "ID", "STATUS", "STARTED", "DURATION", "EXIT"
    );
    for e in &page.items {
        let exit = e
            .exit_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            s,
            "{:36}  {:9}  {:19}  {:>8}  {:>4}  {}",
            e.id,
            e.status.as_str(),
            show(e.started_at),
            duration(e.duration_ms),
            exit,
            e.trigger
        );
    }
    if let Some(c) = &page.next_cursor {
        let _ = writeln!(s, "more: --cursor {c}");
    }
    s
}

pub fn run(e: &Run) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "run {}", e.id);
    let _ = writeln!(s, "  workflow  {}", e.workflow_id);
    let _ = writeln!(s, "  status    {}", e.status);
    let _ = writeln!(s, "  started   {}", show(e.started_at));
    if let Some(c) = e.completed_at {
        let _ = writeln!(s, "  finished  {}  ({})", show(c), duration(e.duration_ms));
    }
    if let Some(c) = e.exit_code {
        let _ = writeln!(s, "  exit code {c}");
    }
    if let Some(err) = &e.error {
        let _ = writeln!(s, "  error     {err}");
    }
    let _ = writeln!(s, "  trigger   {}  device {}", e.trigger, e.device_id);
    if let Some(o) = e.occurrence {
        let _ = writeln!(s, "  scheduled for {}", show(o));
    }
    if let Some(r) = e.workflow_revision {
        let _ = writeln!(s, "  ran       revision {r} of the workflow");
    }
    if let Some(h) = &e.config_hash {
        let _ = writeln!(s, "  config    hash {h}");
    }
    match &e.output {
        Some(Value::Object(o)) if o.contains_key("log") => {
            let _ = writeln!(s, "  log       {}", o["log"].as_str().unwrap_or(""));
            if let Some(r) = o.get("result").filter(|r| !r.is_null()) {
                let _ = writeln!(s, "  result    {r}");
            }
            for (key, name) in [("stdout_tail", "stdout"), ("stderr_tail", "stderr")] {
                let text = o.get(key).and_then(Value::as_str).unwrap_or("");
                if !text.is_empty() {
                    let bytes = o
                        .get(&format!("{name}_bytes"))
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    let _ = writeln!(s, "  {name} ({bytes} bytes in all; the end):");
                    for line in text.lines() {
                        let _ = writeln!(s, "    | {line}");
                    }
                }
            }
        }
        Some(o) => {
            let pretty = serde_json::to_string_pretty(o).unwrap_or_default();
            let _ = writeln!(s, "  output    {}", pretty.replace('\n', "\n            "));
        }
        None => {}
    }
    s
}

/// The line printed on stderr after `flowkeep run`.
pub fn run_summary(e: &Run) -> String {
    let how = match (&e.status, &e.error) {
        (flowkeep_core::run::RunStatus::Succeeded, _) => "succeeded".to_owned(),
        (status, Some(err)) => format!("{status}: {err}"),
        (status, None) => status.to_string(),
    };
    format!(
        "flowkeep: run {} {how} after {} (details: flowkeep exec get {})\n",
        e.id,
        duration(e.duration_ms),
        e.id
    )
}

pub fn history(entries: &[HistoryEntry]) -> String {
    let mut s = String::new();
    // UUIDv7 starts with the time; the random tail tells devices apart.
    let tail = |id: &str| -> String {
        let chars: Vec<char> = id.chars().collect();
        chars[chars.len().saturating_sub(8)..].iter().collect()
    };
    for h in entries {
        // What the server saw beside what the change claims.
        let sent = match &h.uploaded_by {
            Some(by) if *by == h.device_id => ", confirmed by the sync server".to_owned(),
            Some(by) => format!(", sent by device {}", tail(by)),
            None => String::new(),
        };
        let _ = writeln!(
            s,
            "{}  {}  rev {}  by {} on device {} ({}{sent})",
            show(h.recorded_at),
            h.kind,
            h.revision,
            h.actor,
            tail(&h.device_id),
            h.origin
        );
        for c in &h.changes {
            let _ = writeln!(s, "    {}: {} → {}", c.field, short(&c.old), short(&c.new));
        }
        for c in &h.conflicts {
            let values: Vec<String> = c.values.iter().map(short).collect();
            let _ = writeln!(
                s,
                "    conflict on {}: {} (first one in effect)",
                c.field,
                values.join(" vs ")
            );
        }
    }
    s
}

/// `sync status`: where this device syncs, what waits to go, and what other
/// devices sent that was not merged. The token is never shown, only its
/// fingerprint.
pub fn sync_status(s: &flowkeep_app::SyncStatus) -> String {
    if !s.configured {
        return "This device does not sync. Start: flowkeep sync init --server ws://HOST:PORT/sync --token TOKEN\n".to_owned();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "server          {}",
        s.server.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        out,
        "last sync       {}",
        s.last_sync.map(show).unwrap_or_else(|| "never".into())
    );
    if let Some(e) = &s.last_error {
        let _ = writeln!(out, "last error      {} {}", show(e.at), e.message);
    }
    if let Some(limit) = &s.server_limit {
        let _ = writeln!(out, "server limit    {limit}");
    }
    let _ = writeln!(out, "pending changes {}", s.pending_local_changes);
    if s.unconfirmed > 0 {
        let _ = writeln!(
            out,
            "not confirmed   {} document(s) the server had not taken when the last sync ended; sent again by the next",
            s.unconfirmed
        );
    }
    let _ = writeln!(out, "this device     {}", s.device_id);
    let _ = writeln!(
        out,
        "credential      fingerprint {}",
        s.token_fingerprint.as_deref().unwrap_or("-")
    );
    let _ = writeln!(out, "join string     {}", s.join.as_deref().unwrap_or("-"));
    if s.rejected == 0 {
        let _ = writeln!(out, "rejected        none");
        return out;
    }
    let _ = writeln!(
        out,
        "rejected        {} rejected from other devices, not merged (latest first):",
        s.rejected
    );
    for r in &s.rejections {
        let from = r
            .device_id
            .as_deref()
            .map(|d| format!(" from device {}", tail(d)))
            .unwrap_or_default();
        let subject = r.subject.as_deref().unwrap_or(&r.document);
        // Reasons quote remote text escaped already; control characters
        // are escaped once more in case an older version recorded them raw.
        let reason: String = r
            .reason
            .chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_debug().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect();
        let _ = writeln!(
            out,
            "  {}  {} {}{}: {}",
            show(r.at),
            r.what,
            subject,
            from,
            reason
        );
    }
    out
}

/// The random tail of a UUIDv7: enough to tell devices apart.
fn tail(id: &str) -> String {
    let n = id.chars().count();
    id.chars().skip(n.saturating_sub(8)).collect()
}

/// `sync devices`: one line per device, this one marked.
pub fn sync_devices(d: &flowkeep_app::SyncDevices) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<38} {:<24} {:<22} {:<22} STATUS",
        "DEVICE", "NAME", "FIRST SEEN", "LAST SEEN"
    );
    for dev in &d.devices {
        let mut status = match dev.revoked_at {
            Some(t) => format!("revoked {}", show(t)),
            None => "active".to_owned(),
        };
        if dev.device_id == d.this_device {
            status.push_str(" (this device)");
        }
        let _ = writeln!(
            out,
            "{:<38} {:<24} {:<22} {:<22} {status}",
            dev.device_id,
            dev.name,
            show(dev.first_seen),
            show(dev.last_seen)
        );
    }
    let _ = writeln!(
        out,
        "{} device(s) in workspace {}",
        d.devices.len(),
        d.workspace
    );
    out
}

pub fn schedule_list(rows: &[ScheduleRow], me: &str) -> String {
    let mut s = String::new();
    if rows.is_empty() {
        s.push_str("No schedules. Add one to a workflow's config: \"run\": {\"command\": [...], \"schedule\": {\"interval\": \"1h\"}}\n");
        return s;
    }
    let _ = writeln!(
        s,
        "{:36}  {:20}  {:40}  {:19}  {:28}  STATE",
        "WORKFLOW", "NAME", "SCHEDULE", "NEXT RUN", "LAST RUN"
    );
    for r in rows {
        let last = r
            .last_run
            .as_ref()
            .map(|l| format!("{} {}", show(l.occurrence), l.status))
            .unwrap_or_else(|| "-".into());
        let policy = format!(
            "{} (missed {}, overlap {})",
            r.describe,
            r.missed.as_str(),
            r.overlap.as_str()
        );
        let state = match &r.owner {
            Some(o) if o == me => r.state.replace(o, "this device"),
            _ => r.state.clone(),
        };
        let _ = writeln!(
            s,
            "{:36}  {:20}  {:40}  {:19}  {:28}  {}",
            r.workflow_id,
            r.name.chars().take(20).collect::<String>(),
            policy,
            r.next_run.map(show).unwrap_or_else(|| "-".into()),
            last,
            state
        );
    }
    s
}

pub fn schedule_preview(p: &SchedulePreview) -> String {
    let mut s = format!("{}: next runs\n", p.describe);
    for t in &p.times {
        let _ = writeln!(s, "  {}", show(*t));
    }
    s
}

pub fn exported(out: &ExportedWorkflows) -> String {
    let mut s = format!(
        "Wrote {} workflow file(s) to {}:\n",
        out.files.len(),
        out.dir
    );
    for f in &out.files {
        let _ = writeln!(s, "  {}  {}", f.file, f.workflow_id);
    }
    s
}

fn short_json(v: &Value) -> String {
    let t = v.to_string();
    if t.chars().count() > 120 {
        format!("{}…", t.chars().take(120).collect::<String>())
    } else {
        t
    }
}

pub fn imported(r: &WorkflowImport) -> String {
    let mut s = String::new();
    let count = |a: ImportAction| r.items.iter().filter(|i| i.action == a).count();
    for i in &r.items {
        let what = match i.action {
            ImportAction::Create => "create",
            ImportAction::Update => "update",
            ImportAction::Unchanged => "unchanged",
            ImportAction::Conflict => "CONFLICT",
        };
        let _ = writeln!(s, "{what:9}  {}  {} ({})", i.file, i.name, i.workflow_id);
        if i.action == ImportAction::Update {
            for c in &i.changes {
                let _ = writeln!(
                    s,
                    "             {}: {} → {}",
                    c.field,
                    short_json(&c.old),
                    short_json(&c.new)
                );
            }
        }
        for c in &i.conflicts {
            let _ = writeln!(
                s,
                "             {} changed on both sides: here {}, in the file {} (was {})",
                c.field,
                short_json(&c.local),
                short_json(&c.file),
                short_json(&c.base)
            );
        }
    }
    let verb = if r.applied {
        "Imported"
    } else {
        "Dry run, nothing written"
    };
    let _ = writeln!(
        s,
        "{verb}: {} to create, {} to update, {} unchanged, {} in conflict.",
        count(ImportAction::Create),
        count(ImportAction::Update),
        count(ImportAction::Unchanged),
        count(ImportAction::Conflict)
    );
    if count(ImportAction::Conflict) > 0 {
        s.push_str("Workflows in conflict were not imported: settle them, or choose with --prefer file|local.\n");
    }
    if r.created_without_id > 0 {
        let _ = writeln!(
            s,
            "{} file(s) have no id: importing them again creates more workflows: add each one's id (printed above) to its file as `id:`, or import with --match name.",
            r.created_without_id
        );
    }
    s
}
