//! `GET /api/events`: what changed, pushed to the page as Server-Sent
//! Events, so a change made by the CLI, a job or a sync merge shows without
//! a reload. One task follows the event log (whichever process wrote it)
//! and fans each change out to every open page.
//!
//! Events: `ready` (on connect, with the log's position: a page that
//! reconnects reads everything again, it may have missed changes), `change`
//! (one per logged event: `{"seq", "kind", "workflow_id", "run_id"}`)
//! and `reload` (this page fell behind, or the log grew by more than a
//! page should hear about one by one, like an import of thousands of runs:
//! read everything again).

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use flowkeep_app::{Change, Service};
use tokio::sync::{broadcast, watch};

/// How often the log is looked at: a change shows within this (plus the
/// page's own read).
const POLL: Duration = Duration::from_millis(200);
/// Changes read at once; more than this and pages catch up next poll.
const BATCH: u32 = 500;

/// What the follower tells pages.
#[derive(Clone, Debug)]
enum News {
    Change(Change),
    /// More changed at once than `BATCH`: one reload instead of each.
    Burst,
}

#[derive(Clone)]
pub struct Live {
    changes: broadcast::Sender<News>,
    stopped: watch::Receiver<bool>,
}

impl Live {
    /// Follows the log until `stop` is set. Call inside the runtime.
    pub fn start(svc: Arc<Service>, stop: Arc<AtomicBool>) -> Live {
        let (changes, _) = broadcast::channel(1024);
        let (stopped_tx, stopped) = watch::channel(false);
        let tx = changes.clone();
        tokio::spawn(async move {
            let latest = {
                let svc = svc.clone();
                tokio::task::spawn_blocking(move || svc.latest_seq()).await
            };
            let mut seen = latest.ok().and_then(Result::ok).unwrap_or(0);
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(POLL).await;
                let reader = svc.clone();
                let read =
                    tokio::task::spawn_blocking(move || reader.changes_since(seen, BATCH)).await;
                match read {
                    // A burst (an import, a first sync): skip to the end of
                    // the log and tell pages once, so a page does not
                    // reload once per change and the follower keeps up.
                    Ok(Ok(changes)) if changes.len() >= BATCH as usize => {
                        let svc = svc.clone();
                        if let Ok(Ok(latest)) =
                            tokio::task::spawn_blocking(move || svc.latest_seq()).await
                        {
                            seen = latest;
                        }
                        let _ = tx.send(News::Burst);
                    }
                    Ok(Ok(changes)) => {
                        for c in changes {
                            seen = c.seq;
                            // No page open: nobody to tell.
                            let _ = tx.send(News::Change(c));
                        }
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "live changes: reading the log failed")
                    }
                    Err(_) => tracing::warn!("live changes: the read panicked"),
                }
            }
            let _ = stopped_tx.send(true);
        });
        Live { changes, stopped }
    }

    /// Turns true when the server stops: long streams end with it.
    pub fn stopped(&self) -> watch::Receiver<bool> {
        self.stopped.clone()
    }

    /// The stream one page gets; it ends when the server stops, so a page
    /// left open never holds a shutdown up.
    pub fn stream(&self, seq: i64) -> Response {
        let first = Event::default()
            .event("ready")
            .data(serde_json::json!({ "seq": seq }).to_string());
        let state = (self.changes.subscribe(), self.stopped.clone(), Some(first));
        let stream = futures::stream::unfold(state, |(mut rx, mut stopped, first)| async move {
            if let Some(first) = first {
                return Some((Ok::<_, Infallible>(first), (rx, stopped, None)));
            }
            if *stopped.borrow() {
                return None;
            }
            let event = tokio::select! {
                got = rx.recv() => match got {
                    Ok(News::Change(c)) => Event::default()
                        .event("change")
                        .data(serde_json::to_string(&c).unwrap_or_default()),
                    Ok(News::Burst) => Event::default()
                        .event("reload")
                        .data("many changes at once"),
                    Err(broadcast::error::RecvError::Lagged(n)) => Event::default()
                        .event("reload")
                        .data(format!("{n} changes missed")),
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = stopped.changed() => return None,
            };
            Some((Ok(event), (rx, stopped, None)))
        });
        Sse::new(stream)
            .keep_alive(KeepAlive::default())
            .into_response()
    }
}
