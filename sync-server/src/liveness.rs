//! Whether a device is still there, on both of a connection's sides: the
//! server pings it and closes a connection that sends nothing for three
//! pings (a laptop asleep behind NAT), and gives up on one that takes
//! nothing: a message the device does not drain within three pings (and
//! the time its size takes at `MIN_DRAIN_BYTES_PER_SEC`) ends the
//! connection. Without that second rule a device that stops reading but
//! keeps its TCP connection open stalls the writer, and what samod queues
//! for it grows with every change its workspace makes, for as long as the
//! device keeps the socket (its pings are queued behind the stalled writes,
//! so silence is never noticed either).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Message as WsMessage;
use futures::channel::mpsc;
use futures::{Sink, SinkExt, StreamExt};

use crate::http::now_ms;

/// The slowest link a device may drain a large message over before it is
/// taken for gone: 64 KiB/s (a 16 MiB message gets over four minutes).
pub const MIN_DRAIN_BYTES_PER_SEC: u64 = 64 << 10;

/// How long a message of `len` bytes may take to leave: three pings, and
/// its size at the slowest link taken.
pub fn drain_limit(every: Duration, len: usize) -> Duration {
    3 * every + Duration::from_millis((len as u64).saturating_mul(1000) / MIN_DRAIN_BYTES_PER_SEC)
}

/// Writes `outgoing` to the device's socket, one message at a time, until
/// the channel ends (then closes the socket's writing side) or a message
/// takes longer than `drain_limit`: then it stops, and every sender on the
/// channel (samod's connection, the pinger) fails, which ends the
/// connection and drops what was queued for it.
pub async fn write_out<S>(mut outgoing: mpsc::Receiver<WsMessage>, mut sink: S, every: Duration)
where
    S: Sink<WsMessage> + Unpin,
{
    while let Some(m) = outgoing.next().await {
        let len = message_len(&m);
        let limit = drain_limit(every, len);
        match tokio::time::timeout(limit, sink.send(m)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                tracing::info!(
                    waited_ms = limit.as_millis() as u64,
                    bytes = len,
                    "device takes no data; connection closed"
                );
                return;
            }
        }
    }
    let _ = tokio::time::timeout(3 * every, sink.close()).await;
}

fn message_len(m: &WsMessage) -> usize {
    match m {
        WsMessage::Binary(b) => b.len(),
        WsMessage::Text(t) => t.len(),
        _ => 0,
    }
}

/// Pings the connection every `every`; resolves when the device has sent
/// nothing for three intervals (or the socket's writer is gone).
pub async fn pinger(mut out: mpsc::Sender<WsMessage>, heard: Arc<AtomicI64>, every: Duration) {
    let silence = 3 * every.as_millis() as i64;
    loop {
        tokio::time::sleep(every).await;
        // The writer gave up on the device (and said so): nothing to add.
        if out.is_closed() {
            return;
        }
        let quiet = now_ms() - heard.load(Ordering::Relaxed);
        if quiet > silence {
            tracing::info!(
                silent_ms = quiet,
                "device silent for three pings; connection closed"
            );
            return;
        }
        if out.send(WsMessage::Ping(Vec::new().into())).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A socket whose device reads nothing: the first message goes into
    /// its buffer, every later one waits for good.
    struct Stalled {
        took: usize,
    }

    impl Sink<WsMessage> for Stalled {
        type Error = ();
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            if self.took == 0 {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        }
        fn start_send(mut self: Pin<&mut Self>, _: WsMessage) -> Result<(), ()> {
            self.took += 1;
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn a_large_message_gets_longer_on_a_slow_link() {
        let every = Duration::from_secs(15);
        assert_eq!(drain_limit(every, 0), Duration::from_secs(45));
        assert_eq!(drain_limit(every, 16 << 20), Duration::from_secs(45 + 256));
        assert_eq!(
            drain_limit(every, usize::MAX),
            3 * every + Duration::from_millis(u64::MAX / MIN_DRAIN_BYTES_PER_SEC)
        );
    }

    #[tokio::test]
    async fn a_device_that_takes_nothing_fails_its_senders_after_the_limit() {
        let every = Duration::from_millis(100);
        let (mut out, outgoing) = mpsc::channel::<WsMessage>(0);
        let writer = tokio::spawn(write_out(outgoing, Stalled { took: 0 }, every));
        let start = tokio::time::Instant::now();
        // What samod would send: it blocks once the socket is stalled, and
        // fails (rather than waiting for good) once the writer gives up.
        let mut sent = 0;
        while out
            .send(WsMessage::Binary(vec![0; 10].into()))
            .await
            .is_ok()
        {
            sent += 1;
            assert!(sent < 10, "a stalled writer keeps taking messages");
        }
        writer.await.unwrap();
        let waited = start.elapsed();
        assert!(
            waited >= drain_limit(every, 10) && waited < drain_limit(every, 10) + 20 * every,
            "gave up after {waited:?}"
        );
    }
}
