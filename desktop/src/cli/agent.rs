//! `flowkeep agent`: run schedules in the foreground, install it as a
//! systemd user service, or say whether one runs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use flowkeep_app::agent::{self, Agent, AgentLock, Note};
use flowkeep_app::Service;
use serde_json::json;

use super::args::AgentCmd;
use super::{Failure, Rendered};

type Out = Result<Option<Rendered>, Failure>;

pub fn agent(svc: Service, data_dir: &Path, cmd: Option<AgentCmd>, json: bool) -> Out {
    match cmd.unwrap_or(AgentCmd::Run) {
        AgentCmd::Run => run(svc, data_dir, json),
        AgentCmd::Install { no_start } => systemd_only().and_then(|_| install(data_dir, no_start)),
        AgentCmd::Uninstall => systemd_only().and_then(|_| uninstall(data_dir)),
        AgentCmd::Status => status(data_dir),
    }
}

fn run(svc: Service, data_dir: &Path, json: bool) -> Out {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| Failure::Other(e.into()))?;
    }
    let say = move |line: String| {
        if !json {
            let mut e = std::io::stderr().lock();
            let _ = writeln!(
                e,
                "{} {}",
                super::time_arg::show(chrono::Utc::now().timestamp_millis()),
                super::printable(&line)
            );
        }
    };
    let waiting = say;
    let Some(_lock) = AgentLock::acquire(data_dir, &stop, |pid| {
        waiting(format!(
            "another agent runs for {} (pid {}); waiting to take over when it stops",
            data_dir.display(),
            pid.map_or("?".to_owned(), |p| p.to_string())
        ))
    })?
    else {
        return Ok(None);
    };
    // Runs the agent before us left behind are recorded before we plan:
    // a dead run must not look like one still going (overlap).
    svc.runs().recover_interrupted()?;
    let svc = Arc::new(svc);
    let sync = crate::ui_runs::background_sync(&svc, &stop);
    let owned = svc
        .schedules()
        .list(Default::default())?
        .iter()
        .filter(|r| r.owned_here)
        .count();
    say(format!(
        "agent started (pid {}): {owned} schedule(s) owned by this device{}",
        std::process::id(),
        if sync.is_some() { "; syncing" } else { "" }
    ));
    let names: std::collections::HashMap<String, String> = svc
        .schedules()
        .list(Default::default())?
        .into_iter()
        .map(|r| (r.workflow_id, r.name))
        .collect();
    let tell = say;
    let mut a = Agent::new(svc.clone(), stop.clone()).on_note(move |n| {
        let name = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_owned());
        tell(match n {
            Note::Started {
                workflow_id,
                run_id,
                occurrence,
            } => format!(
                "started {} for {} (run {run_id})",
                name(&workflow_id),
                super::time_arg::show(occurrence)
            ),
            Note::Skipped {
                workflow_id,
                occurrence,
                reason,
            } => format!(
                "skipped {} for {}: {reason}",
                name(&workflow_id),
                super::time_arg::show(occurrence)
            ),
            Note::Failed {
                workflow_id,
                occurrence,
                error,
            } => format!(
                "could not record {} for {}: {error}",
                name(&workflow_id),
                super::time_arg::show(occurrence)
            ),
        })
    });
    a.run()?;
    if let Some(h) = sync {
        let _ = h.join();
    }
    say("agent stopped".to_owned());
    Ok(None)
}

/// `agent install` writes a systemd unit; elsewhere it says so instead of
/// writing a file nothing reads.
fn systemd_only() -> Result<(), Failure> {
    if cfg!(target_os = "linux") {
        return Ok(());
    }
    Err(Failure::Other(anyhow::anyhow!(
        "agent install writes a systemd user unit, which this system does not have; run `flowkeep agent` from a launchd agent instead (README, Schedules: macOS)"
    )))
}

/// The unit's name: one per data dir, so two data dirs get two agents.
fn unit_name(data_dir: &Path) -> String {
    let default = dirs::data_dir().map(|d| d.join("flowkeep"));
    if default.as_deref() == Some(data_dir) {
        return "flowkeep-agent.service".to_owned();
    }
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
    let short: String = h.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("flowkeep-agent-{short}.service")
}

fn unit_path(data_dir: &Path) -> Result<PathBuf, Failure> {
    let base = dirs::config_dir().ok_or_else(|| {
        Failure::Other(anyhow::anyhow!(
            "no config directory on this system for a systemd user unit"
        ))
    })?;
    Ok(base.join("systemd/user").join(unit_name(data_dir)))
}

/// A unit file's value with systemd's quoting: the path may hold spaces.
fn quoted(p: &Path) -> String {
    let s = p.display().to_string();
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn install(data_dir: &Path, no_start: bool) -> Out {
    let exe = std::env::current_exe().map_err(|e| Failure::Other(e.into()))?;
    let data_dir = std::path::absolute(data_dir).map_err(|e| Failure::Other(e.into()))?;
    let path = unit_path(&data_dir)?;
    let unit = format!(
        "[Unit]\nDescription=Flowkeep agent: schedules and sync for {dir}\n\n[Service]\nExecStart={exe} --data-dir {qdir} agent\nRestart=on-failure\nRestartSec=5\n# The agent stops its runs (recorded cancelled) on SIGTERM.\nTimeoutStopSec=30\n\n[Install]\nWantedBy=default.target\n",
        dir = data_dir.display(),
        exe = quoted(&exe),
        qdir = quoted(&data_dir),
    );
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Failure::Other(e.into()))?;
    }
    std::fs::write(&path, unit).map_err(|e| Failure::Other(e.into()))?;
    let name = unit_name(&data_dir);
    let mut text = format!("Wrote {}.\n", path.display());
    let mut enabled = false;
    if !no_start {
        match systemctl(&["daemon-reload"]).and_then(|_| systemctl(&["enable", "--now", &name])) {
            Ok(()) => {
                enabled = true;
                text.push_str(&format!(
                    "Enabled and started {name}: it runs now and at every login (`systemctl --user status {name}`).\n"
                ));
            }
            Err(e) => text.push_str(&format!(
                "Could not enable it: {e}\nStart it yourself with `systemctl --user enable --now {name}`, or run `flowkeep agent` in a terminal.\n"
            )),
        }
    }
    super::done(
        &json!({"unit": path, "name": name, "enabled": enabled}),
        text,
    )
}

fn uninstall(data_dir: &Path) -> Out {
    let data_dir = std::path::absolute(data_dir).map_err(|e| Failure::Other(e.into()))?;
    let path = unit_path(&data_dir)?;
    let name = unit_name(&data_dir);
    if !path.exists() {
        return super::done(
            &json!({"unit": path, "removed": false}),
            format!("No unit at {}; nothing to remove.\n", path.display()),
        );
    }
    let stopped = systemctl(&["disable", "--now", &name]);
    std::fs::remove_file(&path).map_err(|e| Failure::Other(e.into()))?;
    let _ = systemctl(&["daemon-reload"]);
    let note = match stopped {
        Ok(()) => String::new(),
        Err(e) => format!(" (systemctl: {e})"),
    };
    super::done(
        &json!({"unit": path, "removed": true}),
        format!("Stopped and removed {name}{note}.\n"),
    )
}

fn status(data_dir: &Path) -> Out {
    let s = agent::status(data_dir)?;
    let data_dir = std::path::absolute(data_dir).map_err(|e| Failure::Other(e.into()))?;
    let unit = unit_path(&data_dir).ok().filter(|p| p.exists());
    let mut text = if s.running {
        format!(
            "An agent runs for {} (pid {}).\n",
            data_dir.display(),
            s.pid.map_or("?".to_owned(), |p| p.to_string())
        )
    } else {
        format!(
            "No agent runs for {}: schedules do not run. Start one with `flowkeep agent` or `flowkeep agent install`.\n",
            data_dir.display()
        )
    };
    match &unit {
        Some(p) => text.push_str(&format!("systemd user unit: {}\n", p.display())),
        None => text.push_str("No systemd user unit installed.\n"),
    }
    let out = Rendered::ok(
        json!({"running": s.running, "pid": s.pid, "unit": unit}),
        text,
    );
    // Exit 1 when none runs, so scripts can test it.
    Ok(Some(Rendered {
        exit: if s.running { 0 } else { 1 },
        ..out
    }))
}

fn systemctl(args: &[&str]) -> Result<(), String> {
    let out = Command::new("systemctl")
        .arg("--user")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run systemctl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}
