//! `GET /api/runs/<RUN_ID>/output?from=N`: a run's output as it is written,
//! as Server-Sent Events: `output` (`{"text", "from", "next", "cut"}`, the
//! pieces in order), one `end` once the run has ended and all of its output
//! was sent, or `failed` (why). The log is followed by `follow_output.rs`
//! on a thread of its own; the stream ends when the server stops.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use flowkeep_app::Service;
use flowkeep_core::commands::RunOutput;
use tokio::sync::mpsc;

use crate::follow_output::{self, OutputNews};

/// Reads the first piece off the async threads (see `follow_output::read`).
pub async fn read(
    svc: &Arc<Service>,
    id: &str,
    from: u64,
) -> Result<RunOutput, flowkeep_app::Error> {
    let (svc, id) = (svc.clone(), id.to_owned());
    match tokio::task::spawn_blocking(move || follow_output::read(&svc, &id, from)).await {
        Ok(r) => r,
        Err(_) => Err(flowkeep_app::Error::Corrupt(
            "reading the output panicked".into(),
        )),
    }
}

/// The stream, starting with `first`; it ends with the run, when the page
/// goes away, or when `stop` is set.
pub fn stream(svc: Arc<Service>, id: String, first: RunOutput, stop: Arc<AtomicBool>) -> Response {
    let (tx, mut rx) = mpsc::channel::<OutputNews>(16);
    let follower = std::thread::Builder::new()
        .name("flowkeep-output".into())
        .spawn(move || {
            let stopped = || stop.load(Ordering::SeqCst) || tx.is_closed();
            follow_output::follow(&svc, &id, first, stopped, |news| {
                tx.blocking_send(news).is_ok()
            });
        });
    if let Err(e) = follower {
        tracing::warn!(error = %e, "could not start following a run's output");
    }
    let events = futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|news| {
            news.map(|n| {
                let (name, data) = n.wire();
                Ok::<_, Infallible>(Event::default().event(name).data(data))
            })
        })
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
