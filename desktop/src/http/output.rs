//! `GET /api/runs/<RUN_ID>/output?from=N`: a run's output as it is written,
//! as Server-Sent Events: `output` (`{"text", "from", "next", "cut"}`, the
//! pieces in order) and one `end` once the run has ended and all of its
//! output was sent. The log is read through `get_run_output` every 250 ms
//! while the run goes on; the stream ends when the server stops.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use flowkeep_app::Service;
use flowkeep_core::commands::{GetRunOutput, RunOutput};
use tokio::sync::watch;

const POLL: Duration = Duration::from_millis(250);
/// The most one event carries.
const PIECE: u32 = 256 * 1024;

/// Reads one piece off the async threads. The handler reads the first one
/// before answering, so an unknown run, or one whose output is on another
/// device, is an error response rather than a stream.
pub async fn read(
    svc: &Arc<Service>,
    id: &str,
    from: u64,
) -> Result<RunOutput, flowkeep_app::Error> {
    let (svc, input) = (
        svc.clone(),
        GetRunOutput {
            id: id.to_owned(),
            from: Some(from),
            limit: Some(PIECE),
        },
    );
    match tokio::task::spawn_blocking(move || svc.runs().output(input)).await {
        Ok(r) => r,
        Err(_) => Err(flowkeep_app::Error::Corrupt(
            "reading the output panicked".into(),
        )),
    }
}

fn output_event(p: &RunOutput) -> Event {
    Event::default().event("output").data(
        serde_json::json!({ "text": p.text, "from": p.from, "next": p.next, "cut": p.cut })
            .to_string(),
    )
}

struct State {
    svc: Arc<Service>,
    id: String,
    next: u64,
    /// The first piece, not sent yet.
    pending: Option<RunOutput>,
    ended: bool,
    stopped: watch::Receiver<bool>,
}

/// The stream, starting with `first`.
pub fn stream(
    svc: Arc<Service>,
    id: String,
    first: RunOutput,
    stopped: watch::Receiver<bool>,
) -> Response {
    let state = State {
        svc,
        id,
        next: first.next,
        pending: Some(first),
        ended: false,
        stopped,
    };
    let events = futures::stream::unfold(state, |mut s| async move {
        if s.ended || *s.stopped.borrow() {
            return None;
        }
        loop {
            let piece = match s.pending.take() {
                Some(p) => p,
                None => {
                    tokio::select! {
                        _ = tokio::time::sleep(POLL) => {}
                        _ = s.stopped.changed() => return None,
                    }
                    match read(&s.svc, &s.id, s.next).await {
                        Ok(p) => p,
                        Err(e) => {
                            // Deleted meanwhile, or the disk failed: say so and end.
                            s.ended = true;
                            let event = Event::default().event("failed").data(e.to_string());
                            return Some((Ok::<_, Infallible>(event), s));
                        }
                    }
                }
            };
            s.next = piece.next;
            if piece.finished && piece.text.is_empty() {
                s.ended = true;
                // Data it must have: an event without data is never dispatched.
                return Some((Ok(Event::default().event("end").data("{}")), s));
            }
            if !piece.text.is_empty() || piece.cut {
                // A last piece is followed by `end` on the next turn.
                if piece.finished {
                    s.pending = Some(RunOutput {
                        text: String::new(),
                        from: piece.next,
                        cut: false,
                        ..piece.clone()
                    });
                }
                return Some((Ok(output_event(&piece)), s));
            }
        }
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
