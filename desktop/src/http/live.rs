//! `GET /api/events`: what changed, pushed to the page as Server-Sent
//! Events, so a change made by the CLI, a job or a sync merge shows without
//! a reload. The follower (`follow.rs`) tells each change once; this fans
//! it out to every open page.
//!
//! Events: `ready` (on connect, with the log's position: a page that
//! reconnects reads everything again, it may have missed changes), `change`
//! (one per logged event: `{"seq", "kind", "workflow_id", "run_id"}`),
//! `sync` (this device's sync state, as `sync_status` answers, when it
//! changed) and `reload` (this page fell behind, or the log grew by more
//! than a page should hear about one by one, like an import of thousands
//! of runs: read everything again).

use std::convert::Infallible;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use flowkeep_app::Service;
use tokio::sync::{broadcast, watch};

use crate::follow::{self, News};

#[derive(Clone)]
pub struct Live {
    changes: broadcast::Sender<News>,
    stopped: watch::Receiver<bool>,
}

impl Live {
    /// Follows the log until `stop` is set.
    pub fn start(svc: Arc<Service>, stop: Arc<AtomicBool>) -> std::io::Result<Live> {
        let (changes, _) = broadcast::channel(1024);
        let (stopped_tx, stopped) = watch::channel(false);
        let tx = changes.clone();
        let follower = follow::spawn(svc, stop, move |news| {
            // No page open: nobody to tell.
            let _ = tx.send(news);
        })?;
        // Long streams end when the follower does, so a page left open
        // never holds a shutdown up.
        std::thread::spawn(move || {
            let _ = follower.join();
            let _ = stopped_tx.send(true);
        });
        Ok(Live { changes, stopped })
    }

    /// The stream one page gets; it ends when the server stops.
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
                    Ok(news) => {
                        let (name, data) = news.wire();
                        Event::default().event(name).data(data)
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => Event::default()
                        .event("reload")
                        .data(format!("\"{n} changes missed\"")),
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
