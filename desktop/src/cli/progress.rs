//! Progress of long CLI work (rebuild, import, export, prune) on a
//! terminal: a bar with rate and ETA on stderr. Quiet with `--json` or when
//! stderr is not a terminal, so scripts and logs see only the result.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone)]
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// A bar of `total` steps named `what`; `total` 0 is a spinner.
    pub fn new(json: bool, total: u64, what: &str) -> Progress {
        if json || !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = if total == 0 {
            ProgressBar::new_spinner()
        } else {
            ProgressBar::new(total)
        };
        bar.set_draw_target(ProgressDrawTarget::stderr());
        let template = if total == 0 {
            "{spinner} {msg} {pos} ({elapsed})"
        } else {
            "{msg} [{bar:30}] {pos}/{len} ({per_sec}, ETA {eta})"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_owned());
        Progress(Some(bar))
    }

    /// A spinner that keeps turning while one long step named `what` runs.
    pub fn working(json: bool, what: &str) -> Progress {
        let p = Progress::new(json, 0, what);
        if let Some(bar) = &p.0 {
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
        }
        p
    }

    /// Moves a bar that goes through named steps of their own lengths.
    pub fn step(&self, step: &str, done: u64, total: u64) {
        if let Some(bar) = &self.0 {
            if bar.message() != step {
                bar.set_message(step.to_owned());
            }
            bar.set_length(total);
            bar.set_position(done);
        }
    }

    pub fn set(&self, done: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(done);
        }
    }

    /// Removes the bar; the command's own output follows.
    pub fn finish(self) {
        if let Some(bar) = self.0 {
            bar.finish_and_clear();
        }
    }
}

/// A flag that Ctrl-C (SIGINT) and SIGTERM set, for work that stops cleanly
/// at its next step and keeps what it committed.
pub fn stop_on_signal() -> std::io::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    Ok(stop)
}
