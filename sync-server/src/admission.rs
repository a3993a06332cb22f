//! Connection limits: at most so many WebSocket connections in total and
//! per workspace (devices' sync connections, and their short ones to
//! `/enrol`, `/devices` and `/uploads`). A connection is admitted before its
//! WebSocket upgrade and holds a `Permit` for as long as it is open; the
//! next one past a limit is refused with a sentence the client shows as it
//! is.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::metrics::Metrics;

pub struct Admission {
    max_total: usize,
    max_per_workspace: usize,
    open: Mutex<Open>,
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct Open {
    total: usize,
    per_workspace: HashMap<String, usize>,
}

/// One admitted connection; dropping it (the connection ended) frees its
/// place and, once it was `connected`, logs how long it was open.
pub struct Permit {
    admission: Arc<Admission>,
    workspace_id: String,
    device_id: String,
    /// When the WebSocket opened; `None` while the dial may still be turned
    /// away (the workspace cannot be served now), which an operator should
    /// not read as a device that came and went.
    since: Option<Instant>,
}

impl Admission {
    pub fn new(
        max_total: usize,
        max_per_workspace: usize,
        metrics: Arc<Metrics>,
    ) -> Arc<Admission> {
        Arc::new(Admission {
            max_total,
            max_per_workspace,
            open: Mutex::new(Open::default()),
            metrics,
        })
    }

    /// A place for one more connection of `device_id` to the workspace, or
    /// why not (one sentence, for the device's user).
    pub fn admit(
        self: &Arc<Self>,
        workspace_id: &str,
        workspace_name: &str,
        device_id: &str,
    ) -> Result<Permit, String> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let in_workspace = open.per_workspace.get(workspace_id).copied().unwrap_or(0);
        let refusal = if in_workspace >= self.max_per_workspace {
            Some(format!(
                "workspace {workspace_name} already has {in_workspace} devices connected, this server's limit \
                 (--max-connections-per-workspace {}); try again when one disconnects",
                self.max_per_workspace
            ))
        } else if open.total >= self.max_total {
            // Not how many are open: that would tell a device of one
            // workspace about the others.
            Some(format!(
                "the sync server is full: it has reached its limit of connections (--max-connections {}); \
                 try again later",
                self.max_total
            ))
        } else {
            None
        };
        if let Some(why) = refusal {
            drop(open);
            self.metrics.connections_refused.inc();
            tracing::info!(
                workspace = workspace_id,
                device = device_id,
                "connection refused: limit reached"
            );
            return Err(why);
        }
        open.total += 1;
        *open
            .per_workspace
            .entry(workspace_id.to_owned())
            .or_default() += 1;
        drop(open);
        self.metrics.connections.inc();
        Ok(Permit {
            admission: self.clone(),
            workspace_id: workspace_id.to_owned(),
            device_id: device_id.to_owned(),
            since: None,
        })
    }

    /// Connections open now: in total, and to one workspace.
    pub fn open(&self, workspace_id: &str) -> (usize, usize) {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        (
            open.total,
            open.per_workspace.get(workspace_id).copied().unwrap_or(0),
        )
    }
}

impl Permit {
    /// The device's WebSocket is open: one log line now, one when it ends.
    pub fn connected(&mut self) {
        self.since = Some(Instant::now());
        tracing::info!(
            workspace = self.workspace_id.as_str(),
            device = self.device_id.as_str(),
            "device connected"
        );
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let a = &self.admission;
        {
            let mut open = a.open.lock().unwrap_or_else(|p| p.into_inner());
            open.total = open.total.saturating_sub(1);
            if let Some(n) = open.per_workspace.get_mut(&self.workspace_id) {
                *n -= 1;
                if *n == 0 {
                    open.per_workspace.remove(&self.workspace_id);
                }
            }
        }
        a.metrics.connections.dec();
        if let Some(since) = self.since {
            tracing::info!(
                workspace = self.workspace_id.as_str(),
                device = self.device_id.as_str(),
                seconds = since.elapsed().as_secs(),
                "device disconnected"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_refuses_the_next_connection_with_why_and_frees_up_when_one_ends() {
        let metrics = Metrics::new();
        let a = Admission::new(3, 2, metrics.clone());
        let one = a.admit("w1", "team", "d1").unwrap();
        let _two = a.admit("w1", "team", "d2").unwrap();
        let why = a.admit("w1", "team", "d3").err().unwrap();
        assert!(
            why.contains("workspace team already has 2 devices connected"),
            "{why}"
        );
        assert!(why.contains("--max-connections-per-workspace 2"), "{why}");
        // Another workspace still gets in, up to the total.
        let _three = a.admit("w2", "other", "d4").unwrap();
        let why = a.admit("w2", "other", "d5").err().unwrap();
        assert!(why.contains("the sync server is full"), "{why}");
        assert!(why.contains("--max-connections 3"), "{why}");
        assert_eq!(a.open("w1"), (3, 2));
        assert_eq!(metrics.connections.get(), 3);
        assert_eq!(metrics.connections_refused.get(), 2);

        drop(one);
        assert_eq!(a.open("w1"), (2, 1));
        assert_eq!(metrics.connections.get(), 2);
        a.admit("w1", "team", "d3").expect("a place is free again");
    }
}
