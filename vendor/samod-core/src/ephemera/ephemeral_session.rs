use std::collections::HashMap;

use crate::ephemera::{EphemeralMessage, EphemeralSessionId, OutgoingSessionDetails};

/// Sessions whose last count is kept; past it they are all forgotten (at
/// worst a message seen before passes once more). Each peer makes up its
/// session ids, so without a bound one peer could fill the memory.
const MAX_SESSIONS: usize = 4096;

/// Longer than any session id a peer makes (a UUID, 36 characters): such
/// a message is dropped.
const MAX_SESSION_ID_LEN: usize = 128;

pub(crate) struct EphemeralSession {
    counter: u64,
    session_id: EphemeralSessionId,
    session_counts: HashMap<EphemeralSessionId, u64>,
}

impl EphemeralSession {
    pub(crate) fn new<R: rand::Rng>(rng: &mut R) -> Self {
        let session_id = EphemeralSessionId::new_from_rng(rng);
        Self {
            counter: 0,
            session_id,
            session_counts: HashMap::new(),
        }
    }

    pub(crate) fn next_message_session_details(&mut self) -> OutgoingSessionDetails {
        self.counter += 1;
        OutgoingSessionDetails {
            counter: self.counter,
            session_id: self.session_id.clone(),
        }
    }

    pub(crate) fn receive_message(&mut self, msg: EphemeralMessage) -> Option<EphemeralMessage> {
        let EphemeralMessage {
            sender_id: _,
            session_id,
            count,
            data: _,
        } = &msg;
        // This logic exists to prevent gossiped messages from echoing forever in loopy
        // topologies. The idea is that each peer has a unique session ID which they tag
        // their messages with, then each time they send a message they increment the counter
        // they send with locally. This means that we can ignore messages with smaller counters
        // than the largest one we've seen from that session. This does mean we might miss
        // messages if they are sent out of order, but that's okay, ephemeral messages are
        // not guaranteed to be delivered in order, or at all.
        if session_id.len() > MAX_SESSION_ID_LEN {
            return None;
        }
        if let Some(current_count) = self.session_counts.get_mut(session_id) {
            if *current_count < *count {
                *current_count = *count;
            } else {
                return None;
            }
        } else {
            if self.session_counts.len() >= MAX_SESSIONS {
                self.session_counts.clear();
            }
            self.session_counts.insert(session_id.clone(), *count);
        }
        Some(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn from(session: String, count: u64) -> EphemeralMessage {
        EphemeralMessage {
            sender_id: "peer".into(),
            session_id: session.into(),
            count,
            data: Vec::new(),
        }
    }

    #[test]
    fn made_up_sessions_take_bounded_memory_and_counts_still_dedupe() {
        let mut s = EphemeralSession::new(&mut rand::rngs::StdRng::seed_from_u64(1));
        assert!(s.receive_message(from("a".into(), 2)).is_some());
        assert!(s.receive_message(from("a".into(), 2)).is_none(), "seen");
        for i in 0..(MAX_SESSIONS * 3) {
            assert!(s.receive_message(from(format!("made-up-{i}"), 1)).is_some());
            assert!(s.session_counts.len() <= MAX_SESSIONS);
        }
        assert!(
            s.receive_message(from("x".repeat(MAX_SESSION_ID_LEN + 1), 1))
                .is_none(),
            "an id longer than any peer makes"
        );
        assert!(s.session_counts.len() <= MAX_SESSIONS);
    }
}
