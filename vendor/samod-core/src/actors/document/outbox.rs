//! Sync messages held until the changes they advertise are on disk, for
//! repos built with `sync_after_storage`.
//!
//! A sync message carries the sender's heads, and a peer that sees its own
//! changes among them counts them as stored. Without this, an actor applied
//! a peer's change, answered at once and wrote the change afterwards: a
//! crash or a failed write in between left the peer believing in a change
//! the repo never stored. With it, every message generated while writes
//! are running waits until those writes (not later ones) have completed, so
//! a message never outruns the storage of what it advertises and a busy
//! document is never starved by the writes that follow.

use std::collections::VecDeque;

use super::DocActorResult;
use super::on_disk_state::OnDiskState;
use crate::actors::messages::SyncMessage;
use crate::io::IoTaskId;
use crate::{ConnectionId, DocumentId};

#[derive(Debug, Default)]
pub(super) struct Outbox {
    held: VecDeque<Held>,
}

#[derive(Debug)]
struct Held {
    connection_id: ConnectionId,
    message: SyncMessage,
    /// The last write running when the message was generated.
    after: Option<IoTaskId>,
}

impl Outbox {
    pub(super) fn hold(
        &mut self,
        connection_id: ConnectionId,
        message: SyncMessage,
        after: Option<IoTaskId>,
    ) {
        self.held.push_back(Held {
            connection_id,
            message,
            after,
        });
    }

    /// Sends what is stored now, in the order it was generated. Held
    /// messages wait for ever later writes, so the first one still waiting
    /// means every one behind it waits too.
    pub(super) fn release(
        &mut self,
        on_disk: &OnDiskState,
        document_id: &DocumentId,
        out: &mut DocActorResult,
    ) {
        while let Some(first) = self.held.front() {
            if first.after.is_some_and(|put| !on_disk.stored_through(put)) {
                break;
            }
            let Held {
                connection_id,
                message,
                ..
            } = self.held.pop_front().expect("front exists");
            out.send_sync_message(connection_id, document_id.clone(), message);
        }
    }

    pub(super) fn forget(&mut self, connection_id: ConnectionId) {
        self.held.retain(|h| h.connection_id != connection_id);
    }

    pub(super) fn len(&self) -> usize {
        self.held.len()
    }
}
