//! A run's output as it is written, for both front ends: the local HTTP
//! server streams it to a page as Server-Sent Events
//! (`GET /api/runs/<ID>/output`, `http/output.rs`), the desktop window
//! through a Tauri channel (`app/mod.rs`). One loop reads the log through
//! `runs().output` and tells each piece, then the end.

use std::time::Duration;

use flowkeep_app::Service;
use flowkeep_core::commands::{GetRunOutput, RunOutput};

/// How often a going run's log is looked at.
const POLL: Duration = Duration::from_millis(250);
/// The most one piece carries.
pub const PIECE: u32 = 256 * 1024;

/// What a follower of one run's output hears.
#[derive(Debug)]
pub enum OutputNews {
    /// Text written (`{"text", "from", "next", "cut"}` on the wire).
    Piece(RunOutput),
    /// The run ended and all of its output was told.
    End,
    /// The log could not be read any more (the run was deleted meanwhile,
    /// the disk failed): why.
    Failed(String),
}

impl OutputNews {
    /// The event's name and its JSON text, as both front ends send it.
    pub fn wire(&self) -> (&'static str, String) {
        match self {
            OutputNews::Piece(p) => (
                "output",
                serde_json::json!({ "text": p.text, "from": p.from, "next": p.next, "cut": p.cut })
                    .to_string(),
            ),
            // Data it must have: an SSE event without data is never dispatched.
            OutputNews::End => ("end", "{}".to_owned()),
            OutputNews::Failed(why) => ("failed", why.clone()),
        }
    }
}

/// Reads one piece of run `id`'s log from byte `from`. A front end reads
/// the first one before it answers, so an unknown run, or one whose output
/// is on another device, is an error answer rather than a stream.
pub fn read(svc: &Service, id: &str, from: u64) -> Result<RunOutput, flowkeep_app::Error> {
    svc.runs().output(GetRunOutput {
        id: id.to_owned(),
        from: Some(from),
        limit: Some(PIECE),
    })
}

/// Tells `first` and what follows it in run `id`'s log, then `End` (or
/// `Failed`). Returns then, as soon as `tell` returns false, or when
/// `stopped` says so (the front end stops, nobody listens any more: looked
/// at between reads, so a quiet run's follower does not linger).
pub fn follow(
    svc: &Service,
    id: &str,
    first: RunOutput,
    stopped: impl Fn() -> bool,
    mut tell: impl FnMut(OutputNews) -> bool,
) {
    let mut piece = first;
    loop {
        let next = piece.next;
        let finished = piece.finished;
        if (!piece.text.is_empty() || piece.cut) && !tell(OutputNews::Piece(piece)) {
            return;
        }
        if finished {
            tell(OutputNews::End);
            return;
        }
        std::thread::sleep(POLL);
        if stopped() {
            return;
        }
        piece = match read(svc, id, next) {
            Ok(p) => p,
            Err(e) => {
                tell(OutputNews::Failed(e.to_string()));
                return;
            }
        };
    }
}
