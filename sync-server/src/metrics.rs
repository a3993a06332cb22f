//! What an operator scrapes at `GET /metrics` (Prometheus / OpenMetrics
//! text): connections, workspaces loaded, messages and bytes each way,
//! refusals by a limit, how long storage calls take, and memory
//! (`memory.rs`). Totals only: no workspace or device appears in a label, so
//! the page reveals nothing about who syncs what.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use samod::storage::{Storage, StorageKey};

pub struct Metrics {
    registry: Registry,
    /// WebSocket connections open now: devices' sync connections, and
    /// their short ones (`/enrol`, `/devices`, `/uploads`) while open.
    pub connections: Gauge,
    /// Of those, passed on to the node serving their workspace.
    pub connections_proxied: Gauge,
    /// Workspaces whose repo is loaded (set when scraped).
    pub workspaces_loaded: Gauge,
    /// Documents in memory now, over all workspaces (`DocumentsLoaded`).
    pub documents_loaded: Gauge,
    pub messages_received: Counter,
    pub messages_sent: Counter,
    pub bytes_received: Counter,
    pub bytes_sent: Counter,
    /// Connections refused because a connection limit was reached.
    pub connections_refused: Counter,
    /// Open connections the server closed for what their device sent.
    pub connections_cut_off: Counter,
    /// Messages dropped: about more documents the workspace does not hold
    /// than it may hold, on one connection (`asks.rs`).
    pub messages_dropped: Counter,
    /// Documents whose processing panicked: each was unloaded and loads
    /// again on its next use, the rest of its workspace unaffected.
    pub documents_failed: Counter,
    /// Seconds a storage call (load, load_range, put, delete) took.
    pub storage_seconds: Histogram,
    /// Storage calls that failed (each stops its workspace's repo).
    pub storage_failures: Counter,
    /// Bytes held by live objects (set when scraped, see `memory.rs`).
    pub heap_allocated: Gauge,
    /// Bytes the allocator keeps resident (set when scraped).
    pub heap_resident: Gauge,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("flowkeep_sync");
        let m = Metrics {
            connections: Gauge::default(),
            connections_proxied: Gauge::default(),
            workspaces_loaded: Gauge::default(),
            documents_loaded: Gauge::default(),
            messages_received: Counter::default(),
            messages_sent: Counter::default(),
            bytes_received: Counter::default(),
            bytes_sent: Counter::default(),
            connections_refused: Counter::default(),
            connections_cut_off: Counter::default(),
            messages_dropped: Counter::default(),
            documents_failed: Counter::default(),
            // 50 µs … about 13 s.
            storage_seconds: Histogram::new(exponential_buckets(0.000_05, 4.0, 10)),
            storage_failures: Counter::default(),
            heap_allocated: Gauge::default(),
            heap_resident: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "connections",
            "WebSocket connections open now (sync, and enrol, devices and uploads while open)",
            m.connections.clone(),
        );
        registry.register(
            "connections_proxied",
            "Sync connections passed on to the node serving their workspace",
            m.connections_proxied.clone(),
        );
        registry.register(
            "workspaces_loaded",
            "Workspaces whose repo is loaded",
            m.workspaces_loaded.clone(),
        );
        registry.register(
            "documents_loaded",
            "Documents held in memory (loaded for a device, not yet unloaded as idle)",
            m.documents_loaded.clone(),
        );
        registry.register(
            "messages_received",
            "Sync messages received from devices",
            m.messages_received.clone(),
        );
        registry.register(
            "messages_sent",
            "Sync messages sent to devices",
            m.messages_sent.clone(),
        );
        registry.register(
            "received_bytes",
            "Bytes of sync messages received from devices",
            m.bytes_received.clone(),
        );
        registry.register(
            "sent_bytes",
            "Bytes of sync messages sent to devices",
            m.bytes_sent.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections refused because a connection limit was reached",
            m.connections_refused.clone(),
        );
        registry.register(
            "connections_cut_off",
            "Open connections closed for what their device sent (a message over --max-message-bytes, asks for more documents the workspace does not hold than it may hold)",
            m.connections_cut_off.clone(),
        );
        registry.register(
            "messages_dropped",
            "Messages from devices dropped because their connection named more documents the workspace does not hold than it may hold",
            m.messages_dropped.clone(),
        );
        registry.register(
            "documents_failed",
            "Documents whose processing panicked (logged at error); each was unloaded and loads again from storage on its next use",
            m.documents_failed.clone(),
        );
        registry.register(
            "storage_seconds",
            "How long a storage call (load, load_range, put, delete) took",
            m.storage_seconds.clone(),
        );
        registry.register(
            "storage_failures",
            "Storage calls that failed; the workspace's connections are closed and it is loaded afresh",
            m.storage_failures.clone(),
        );
        registry.register(
            "heap_allocated_bytes",
            "Bytes of memory held by the server's live objects (documents, connections, buffers)",
            m.heap_allocated.clone(),
        );
        registry.register(
            "heap_resident_bytes",
            "Bytes of memory the allocator keeps resident, including freed memory not yet returned",
            m.heap_resident.clone(),
        );
        Arc::new(Metrics { registry, ..m })
    }

    /// The text a scrape gets.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Counts the documents a repo loads and unloads into `documents_loaded`,
/// and those whose processing panicked into `documents_failed`.
pub struct DocumentsLoaded(pub Arc<Metrics>);

impl samod::RepoObserver for DocumentsLoaded {
    fn observe(&self, event: &samod::RepoEvent) {
        match event {
            samod::RepoEvent::DocumentOpened { .. } => {
                self.0.documents_loaded.inc();
            }
            samod::RepoEvent::DocumentClosed { .. } => {
                self.0.documents_loaded.dec();
            }
            samod::RepoEvent::DocumentFailed { .. } => {
                self.0.documents_failed.inc();
            }
            _ => {}
        }
    }
}

/// A storage that times each call into `storage_seconds`.
#[derive(Clone)]
pub struct Timed<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> Timed<S> {
    pub fn new(inner: S, metrics: Arc<Metrics>) -> Timed<S> {
        Timed { inner, metrics }
    }
}

impl<S: Storage> Storage for Timed<S> {
    fn load(&self, key: StorageKey) -> impl std::future::Future<Output = Option<Vec<u8>>> + Send {
        let (call, metrics) = (self.inner.load(key), self.metrics.clone());
        async move { timed(&metrics, call).await }
    }

    fn load_range(
        &self,
        prefix: StorageKey,
    ) -> impl std::future::Future<Output = std::collections::HashMap<StorageKey, Vec<u8>>> + Send
    {
        let (call, metrics) = (self.inner.load_range(prefix), self.metrics.clone());
        async move { timed(&metrics, call).await }
    }

    fn put(&self, key: StorageKey, data: Vec<u8>) -> impl std::future::Future<Output = ()> + Send {
        let (call, metrics) = (self.inner.put(key, data), self.metrics.clone());
        async move { timed(&metrics, call).await }
    }

    fn delete(&self, key: StorageKey) -> impl std::future::Future<Output = ()> + Send {
        let (call, metrics) = (self.inner.delete(key), self.metrics.clone());
        async move { timed(&metrics, call).await }
    }
}

async fn timed<T>(metrics: &Metrics, call: impl std::future::Future<Output = T>) -> T {
    let t = Instant::now();
    let out = call.await;
    metrics.storage_seconds.observe(t.elapsed().as_secs_f64());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_names_each_metric_with_its_type() {
        let m = Metrics::new();
        m.connections.set(2);
        m.messages_received.inc();
        m.storage_seconds.observe(0.001);
        let text = m.encode();
        assert!(
            text.contains("# TYPE flowkeep_sync_connections gauge"),
            "{text}"
        );
        assert!(text.contains("flowkeep_sync_connections 2"), "{text}");
        assert!(
            text.contains("flowkeep_sync_messages_received_total 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE flowkeep_sync_storage_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains("flowkeep_sync_storage_seconds_count 1"),
            "{text}"
        );
    }
}
