//! Several server processes ("nodes") on one PostgreSQL. Each workspace is
//! served by one node at a time: the one holding its lease (a row in
//! `leases`, renewed every third of its length while the node serves it).
//! A device that reaches another node is proxied to the owner; when the
//! owner dies, its leases run out and the next node a device reaches takes
//! the workspace over, loading it from the shared storage.
//!
//! Why one owner: samod keeps a loaded document in memory and does not see
//! what another process writes to storage, so two nodes serving one
//! workspace would each miss the other's devices' changes until reloaded.
//! Storage itself stays consistent even then (samod's keys are content
//! hashes; a compaction deletes only what its snapshot holds), so a lease
//! that is briefly held twice (a paused node) costs latency, not data.

use std::sync::Arc;
use std::time::Duration;

/// This process, as the other nodes see it.
#[derive(Debug, Clone)]
pub struct Node {
    /// New for every start, so a restarted node is a different holder.
    pub id: String,
    /// Where the other nodes reach this one (`ws://host:port` or
    /// `wss://…`, without a path).
    pub url: String,
    /// How long a lease lasts without renewal: how long a dead node's
    /// workspaces wait before another node takes them.
    pub lease: Duration,
    /// How this node verifies another's `wss://` certificate: the system's
    /// roots and `--node-ca-file` (None: the system's roots only).
    pub peer_tls: Option<Arc<rustls::ClientConfig>>,
}

impl Node {
    pub fn new(url: &str, lease: Duration) -> Node {
        Node {
            id: format!("node-{}", crate::token::random_hex(8)),
            url: url.trim_end_matches('/').to_owned(),
            lease,
            peer_tls: None,
        }
    }

    /// Trusts `config`'s roots when dialling other nodes over `wss://`.
    pub fn with_peer_tls(self, config: rustls::ClientConfig) -> Node {
        Node {
            peer_tls: Some(Arc::new(config)),
            ..self
        }
    }

    /// How often leases are renewed.
    pub fn renew_every(&self) -> Duration {
        self.lease / 3
    }
}

/// The URL other nodes reach a node listening on `listen` at, when none is
/// given: its own address, unless that is a wildcard (no other machine can
/// use 0.0.0.0).
pub fn default_url(listen: std::net::SocketAddr, tls: bool) -> Option<String> {
    if listen.ip().is_unspecified() {
        return None;
    }
    let scheme = if tls { "wss" } else { "ws" };
    Some(format!("{scheme}://{listen}"))
}

/// Whether a node URL names this machine only (`localhost`, a loopback
/// address).
pub fn is_loopback_url(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_are_told_from_addresses_other_machines_reach() {
        for local in [
            "ws://127.0.0.1:7780",
            "ws://localhost:7780",
            "wss://[::1]:7780",
            "ws://127.0.0.2:1",
        ] {
            assert!(is_loopback_url(local), "{local}");
        }
        for reachable in ["ws://10.0.0.5:7780", "wss://sync.example.com", "not a url"] {
            assert!(!is_loopback_url(reachable), "{reachable}");
        }
    }

    #[test]
    fn a_node_is_reached_at_its_own_address_unless_it_listens_everywhere() {
        let at = |s: &str| s.parse().unwrap();
        assert_eq!(
            default_url(at("127.0.0.1:7780"), false).as_deref(),
            Some("ws://127.0.0.1:7780")
        );
        assert_eq!(
            default_url(at("[::1]:7780"), true).as_deref(),
            Some("wss://[::1]:7780")
        );
        assert_eq!(default_url(at("0.0.0.0:7780"), false), None);
        let a = Node::new("ws://10.0.0.1:7780/", Duration::from_secs(15));
        let b = Node::new("ws://10.0.0.1:7780", Duration::from_secs(15));
        assert_eq!(a.url, "ws://10.0.0.1:7780");
        assert_ne!(a.id, b.id, "every start is a new holder");
        assert_eq!(a.renew_every(), Duration::from_secs(5));
    }
}
