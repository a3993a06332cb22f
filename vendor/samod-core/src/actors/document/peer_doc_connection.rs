#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use automerge::{
    Automerge, AutomergeError,
    sync::{self, SyncDoc},
};

use crate::actors::messages::SyncMessage;
use crate::inflate_bound;
use crate::{ConnectionId, PeerId, ShareConfig, UnixTimestamp, network::PeerDocState};

/// Why a peer's sync message was not applied.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReceiveError {
    #[error(transparent)]
    Automerge(#[from] AutomergeError),
    #[error(transparent)]
    Inflate(#[from] inflate_bound::InflateError),
}

#[derive(Debug)]
pub(crate) struct PeerDocConnection {
    pub(super) connection_id: ConnectionId,
    pub(super) peer_id: PeerId,
    pub(super) sync_state: sync::State,
    // Remember inbound requests or sync attempts, even while denied/paused,
    // so that granting access can answer them without proactive announcement.
    pub(super) has_requested: bool,
    // Whether this state has changed since the last pop
    dirty: bool,
    state: PeerDocState,
    pub(super) share_policy: SharePolicyState,
    last_share_config: Option<ShareConfig>,
    // Preserve message ordering while the asynchronous policy lookup is pending.
    pub(super) pending_sync_messages: Vec<(SyncMessage, UnixTimestamp)>,
    // The document epoch (`DocumentActor::doc_epoch`) at which generating
    // for this peer last produced nothing, if its sync state has not changed
    // since. Generating depends only on the document and the sync state, so
    // it would produce nothing again and is skipped: without this every
    // message from one peer made the actor generate for every peer, which
    // is quadratic in the peers of a document for each change.
    quiet_at: Option<u64>,
    // The exchange restarts when the share policy answers (`resync`).
    resync: bool,
    // How many times a sync message was generated for this peer (what the
    // quiet-peer tests count).
    #[cfg(test)]
    pub(super) generate_calls: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SharePolicyState {
    Unknown,
    Loading,
    Ready(ShareConfig),
}

impl PeerDocConnection {
    pub(super) fn new(peer_id: PeerId, connection_id: ConnectionId) -> Self {
        Self {
            connection_id,
            peer_id,
            sync_state: sync::State::new_read_only(),
            has_requested: false,
            state: PeerDocState::empty(),
            dirty: false,
            share_policy: SharePolicyState::Unknown,
            last_share_config: None,
            pending_sync_messages: Vec::new(),
            quiet_at: None,
            resync: false,
            #[cfg(test)]
            generate_calls: 0,
        }
    }

    pub(super) fn reset_sync_state(&mut self) {
        self.quiet_at = None;
        self.sync_state = if self.can_write() {
            sync::State::new()
        } else {
            sync::State::new_read_only()
        };
        if self.resync && self.can_write() {
            // As `prepare_request`: the first message asks the peer to
            // forget what it counts as sent (automerge's sync reset, or empty
            // heads for a peer that has not said it understands one).
            // Read-only for now, it is kept for the next reset: what the
            // peer sends is not taken anyway until it may write.
            self.sync_state.set_read_only(true);
            self.sync_state.set_read_only(false);
            self.resync = false;
        }
    }

    /// This connection's peer synced the document with an actor that
    /// failed: it counts what it sent that actor as delivered, although the
    /// actor may not have stored it, and would never send it again. The
    /// exchange restarts once the share policy has answered (which resets
    /// the sync state of a connection that has exchanged nothing yet).
    pub(super) fn resync(&mut self) {
        self.resync = true;
    }

    pub(super) fn prepare_request(&mut self) {
        // Initial requests already have a fresh state. Automerge has no explicit
        // API to restart synchronization, so for retries we force a read-only to
        // read-write transition. This resets local bookkeeping and tells the
        // remote to resend changes; replacing the state alone would not do that.
        if self.state.last_sent.is_some() || self.state.last_received.is_some() {
            self.quiet_at = None;
            self.sync_state.set_read_only(true);
            self.sync_state.set_read_only(false);
            self.state.shared_heads = Some(self.sync_state.shared_heads.clone());
            self.state.their_heads = self.sync_state.their_heads.clone();
            self.state.peer_read_only = self.sync_state.is_peer_read_only();
            self.dirty = true;
        }
    }

    pub(super) fn mark_requested(&mut self) {
        if !self.has_requested {
            self.has_requested = true;
            self.dirty = true; // Mark as dirty since the request status changed
        }
    }

    /// Applies `msg`; the caller advances the document epoch when the
    /// message carried changes (`carries_changes`), applied or queued. A
    /// message that would cost automerge more than an
    /// [`inflate_bound::Budget`] allows (bytes inflated, items decoded) is
    /// refused unread.
    pub(super) fn receive_sync_message(
        &mut self,
        now: UnixTimestamp,
        doc: &mut Automerge,
        msg: sync::Message,
    ) -> Result<Duration, ReceiveError> {
        let start = Instant::now();
        // As automerge reads them: joined (a message of one part, the
        // usual one, is already), and only when it loads changes.
        if !self.sync_state.read_only && !msg.changes.is_empty() {
            let mut parts = msg.changes.iter();
            match (parts.next(), parts.next()) {
                (Some(one), None) => inflate_bound::check_sync_changes(one)?,
                _ => inflate_bound::check_sync_changes(
                    &msg.changes.iter().collect::<Vec<_>>().concat(),
                )?,
            }
        }
        self.quiet_at = None;
        doc.receive_sync_message(&mut self.sync_state, msg)?;
        let duration = start.elapsed();
        self.dirty = true;
        self.state.last_received = Some(now);
        self.state.last_acked_heads = self.sync_state.their_heads.clone();
        self.state.shared_heads = Some(self.sync_state.shared_heads.clone());
        self.state.their_heads = self.sync_state.their_heads.clone();
        self.state.peer_read_only = self.sync_state.is_peer_read_only();
        Ok(duration)
    }

    /// Generate messages in wire order, with timing for each message.
    pub(super) fn generate_sync_messages(
        &mut self,
        now: UnixTimestamp,
        doc: &Automerge,
    ) -> Vec<(sync::Message, Duration)> {
        self.generate(now, doc, None)
    }

    /// As `generate_sync_messages`, skipped when this peer was quiet at
    /// `doc_epoch`, the document's epoch (see `quiet_at`).
    pub(super) fn generate_unless_quiet(
        &mut self,
        now: UnixTimestamp,
        doc: &Automerge,
        doc_epoch: u64,
    ) -> Vec<(sync::Message, Duration)> {
        if self.quiet_at == Some(doc_epoch) {
            return Vec::new();
        }
        self.generate(now, doc, Some(doc_epoch))
    }

    fn generate(
        &mut self,
        now: UnixTimestamp,
        doc: &Automerge,
        doc_epoch: Option<u64>,
    ) -> Vec<(sync::Message, Duration)> {
        let heads = doc.get_heads();
        let mut messages = Vec::new();
        loop {
            let start = Instant::now();
            #[cfg(test)]
            {
                self.generate_calls += 1;
            }
            let Some(msg) = doc.generate_sync_message(&mut self.sync_state) else {
                self.quiet_at = doc_epoch;
                break;
            };
            self.quiet_at = None;
            let duration = start.elapsed();
            let follow_up = msg.heads != heads;
            if follow_up {
                // Automerge 0.12's fallback reset advertises empty heads but
                // records the real heads as sent. An empty peer may not reply.
                // Correct the bookkeeping to what we actually advertised, then
                // immediately generate the real-heads follow-up in this batch.
                self.sync_state.last_sent_heads.clone_from(&msg.heads);
            }
            self.state.last_sent = Some(now);
            self.state.last_sent_heads = Some(msg.heads.clone());
            self.state.shared_heads = Some(self.sync_state.shared_heads.clone());
            self.dirty = true;
            messages.push((msg, duration));
            if !follow_up {
                break;
            }
        }
        messages
    }

    pub(super) fn their_heads(&self) -> Option<Vec<automerge::ChangeHash>> {
        self.sync_state.their_heads.clone()
    }

    pub(super) fn pop(&mut self) -> Option<PeerDocState> {
        if self.dirty {
            self.dirty = false;
            Some(self.state.clone())
        } else {
            None
        }
    }

    pub(super) fn state(&self) -> &PeerDocState {
        &self.state
    }

    /// Bound buffering while an application-provided policy future is pending.
    /// Permit one oversized message so a legitimate full-document sync is not
    /// limited by this queue's byte budget; transports should bound frame size.
    pub(super) fn buffer_sync_message(
        &mut self,
        msg: SyncMessage,
        received_at: UnixTimestamp,
    ) -> bool {
        const MAX_MESSAGES: usize = 64;
        const MAX_BYTES: usize = 16 * 1024 * 1024;
        let message_bytes = |msg: &SyncMessage| match msg {
            SyncMessage::Sync { data } | SyncMessage::Request { data } => data.len(),
            SyncMessage::DocUnavailable => 0,
        };
        let queued_bytes = self
            .pending_sync_messages
            .iter()
            .fold(0usize, |bytes, (msg, _)| {
                bytes.saturating_add(message_bytes(msg))
            });
        if self.pending_sync_messages.len() >= MAX_MESSAGES
            || (!self.pending_sync_messages.is_empty()
                && queued_bytes.saturating_add(message_bytes(&msg)) > MAX_BYTES)
        {
            return false;
        }
        self.pending_sync_messages.push((msg, received_at));
        true
    }

    pub(super) fn share_config(&self) -> Option<ShareConfig> {
        match self.share_policy {
            SharePolicyState::Ready(config) => Some(config),
            _ => None,
        }
    }

    pub(super) fn can_read(&self) -> bool {
        self.share_config().is_some_and(|config| config.can_read())
    }

    pub(super) fn can_write(&self) -> bool {
        self.share_config().is_some_and(|config| config.can_write())
    }

    pub(super) fn can_send(&self) -> bool {
        self.can_read()
            && (self.has_requested
                || self.sync_state.their_heads.is_some()
                || self.share_config().is_some_and(|config| config.announce))
    }

    pub(super) fn set_share_config(&mut self, config: ShareConfig) -> Option<ShareConfig> {
        let previous = self.last_share_config.replace(config);
        self.share_policy = SharePolicyState::Ready(config);
        self.quiet_at = None;
        if self.state.last_sent.is_none() && self.state.last_received.is_none() {
            // Initialize sessions which have not exchanged any sync messages yet.
            self.reset_sync_state();
        } else {
            if previous.is_some_and(|old| !old.can_read()) && config.can_read() {
                // Denial may have dropped messages; restart the exchange on re-grant.
                self.sync_state.set_read_only(false);
            }
            self.sync_state.set_read_only(!config.can_write());
            self.state.shared_heads = Some(self.sync_state.shared_heads.clone());
            self.state.their_heads = self.sync_state.their_heads.clone();
            self.state.peer_read_only = self.sync_state.is_peer_read_only();
        }
        self.state.share_config = Some(config);
        self.dirty = true;
        previous
    }
}
