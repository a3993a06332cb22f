//! `flowkeep sync …`.

use flowkeep_app::{Service, SyncOptions};

use super::args::{ConnectArgs, SyncCmd};
use super::{done, render, time_arg, Failure, Out};

pub(super) fn sync(svc: &Service, c: SyncCmd, json: bool) -> Out {
    // A first sync of many documents can take a while: show how far it is.
    if matches!(
        c,
        SyncCmd::Watch { .. } | SyncCmd::Status | SyncCmd::Devices
    ) {
        return run(svc, c, json);
    }
    let bar = super::progress::Progress::new(json, 1, "connecting");
    let b = bar.clone();
    svc.on_sync_progress(Box::new(move |step, done, total| b.step(step, done, total)));
    let out = run(svc, c, json);
    bar.finish();
    out
}

fn run(svc: &Service, c: SyncCmd, json: bool) -> Out {
    let summary = |r: &flowkeep_app::SyncReport| {
        if r.by_running_watch {
            let mut text = format!(
                "Synced with {} by the `sync watch` (or the app) already running on this data dir: \
                 it sent the changes made here up to now, and merges the other devices' as they arrive.\n",
                r.server
            );
            if let Some(why) = r.passed_over_sentence() {
                text.push_str(&format!("Note: {why}.\n"));
            }
            return text;
        }
        let mut text = format!(
            "Synced with {}: sent {} workflow(s), merged {} from other devices ({} documents).\n",
            r.server, r.pushed, r.merged, r.documents
        );
        if let Some(why) = &r.server_limit {
            text.push_str(&format!("The sync server says: {why}.\n"));
        }
        if r.unconfirmed > 0 {
            let why = if r.server_limit.is_some() {
                "see what it says above"
            } else {
                "it is busy, or the connection dropped"
            };
            text.push_str(&format!(
                "{} document(s) not yet confirmed by the server ({why}); \
                 they are kept here and sent again by the next `flowkeep sync now`.\n",
                r.unconfirmed
            ));
        }
        if let Some(why) = r.passed_over_sentence() {
            text.push_str(&format!("Note: {why}.\n"));
        }
        text
    };
    match c {
        SyncCmd::Init {
            server,
            token,
            connect,
        } => {
            let r = svc.sync().init_with(&server, &token, &options(connect)?)?;
            let text = format!(
                "{}On your other devices, with the same token:\n  flowkeep sync join JOIN --token TOKEN\nJoin string:\n{}\n",
                summary(&r),
                r.join
            );
            done(&r, text)
        }
        SyncCmd::Join {
            join,
            token,
            secrets_key,
            connect,
        } => {
            let given = secrets_key.is_some();
            if let Some(key) = secrets_key {
                add_key(svc, super::key_arg("--secrets-key", key)?)?;
            }
            let r = svc.sync().join_with(&join, &token, &options(connect)?)?;
            let mut text = summary(&r);
            let missing = svc.unopened_secrets()?;
            if !missing.is_empty() && !given {
                // The key never comes through the server: ask for it here,
                // or say how to add it later.
                use std::io::IsTerminal;
                if !json && std::io::stdin().is_terminal() {
                    eprint!(
                        "{} secret value(s) in this workspace are sealed with a key this device does not have.\nPaste the key (`flowkeep secrets key` on a device that has it), or press Enter to skip: ",
                        missing.len()
                    );
                    let mut line = String::new();
                    let _ = std::io::stdin().read_line(&mut line);
                    if !line.trim().is_empty() {
                        add_key(svc, line.trim().to_owned())?;
                    }
                }
                let still = svc.unopened_secrets()?.len();
                if still > 0 {
                    text.push_str(&format!(
                        "{still} secret value(s) are not available on this device: add the workspace's key with `flowkeep secrets key --add KEY`.\n"
                    ));
                }
            }
            done(&r, text)
        }
        SyncCmd::Now { ca_file } => {
            if let Some(pem) = read_ca(ca_file)? {
                svc.sync().set_ca(&pem)?;
            }
            let r = svc.sync().now()?;
            done(&r, summary(&r))
        }
        SyncCmd::Devices => {
            let d = svc.sync().devices()?;
            done(&d, render::sync_devices(&d))
        }
        SyncCmd::Watch { interval_ms } => {
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::flag::register(sig, stop.clone())
                    .map_err(|e| Failure::Other(e.into()))?;
            }
            eprintln!("flowkeep: syncing until Ctrl-C");
            svc.sync().watch(
                &stop,
                // At most a minute: the wait is also how soon Ctrl-C is
                // noticed while nothing changes.
                std::time::Duration::from_millis(interval_ms.clamp(20, 60_000)),
                |r| {
                    let line = if json {
                        serde_json::to_string(r).unwrap_or_default()
                    } else {
                        format!(
                            "{} sent {}, merged {}",
                            time_arg::show(chrono::Utc::now().timestamp_millis()),
                            r.pushed,
                            r.merged
                        )
                    };
                    println!("{line}");
                },
            )?;
            Ok(None)
        }
        SyncCmd::Status => {
            let s = svc.sync().status(Default::default())?;
            done(&s, render::sync_status(&s))
        }
    }
}

fn options(c: ConnectArgs) -> Result<SyncOptions, Failure> {
    Ok(SyncOptions {
        allow_insecure: c.allow_insecure,
        ca_pem: read_ca(c.ca_file)?,
    })
}

/// The PEM text of `--ca-file`, or a clear error naming the flag.
fn read_ca(path: Option<std::path::PathBuf>) -> Result<Option<String>, Failure> {
    let Some(path) = path else { return Ok(None) };
    match std::fs::read_to_string(&path) {
        Ok(pem) => Ok(Some(pem)),
        Err(e) => Err(super::input_error(
            "ca_file",
            "readable",
            &format!("cannot read {}: {e}", path.display()),
        )),
    }
}

/// Adds the workspace's secret key given on this device.
fn add_key(svc: &Service, key: String) -> Result<(), Failure> {
    flowkeep_app::call::<flowkeep_app::commands::SecretKeyCmd>(
        svc,
        flowkeep_core::commands::SecretKey {
            key: Some(key),
            ..Default::default()
        },
    )?;
    Ok(())
}
