//! The server's TCP listener.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// Connections the kernel completes and queues before the server accepts
/// them (capped by `net.core.somaxconn`). tokio's `TcpListener::bind` asks
/// for 128: when more devices than that connect at once (a server restart,
/// the network coming back), the kernel drops the rest's SYNs and they wait
/// for its first retransmission, a full second.
pub const BACKLOG: u32 = 4096;

/// Listens on `addr` with room for a burst of connections (`BACKLOG`).
/// Must be called inside a tokio runtime.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // As `TcpListener::bind` does: a restarted server can listen again at
    // once while connections of the last one are in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_burst_of_connections_is_queued_before_the_server_accepts_them() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        // Nobody accepts: the kernel completes each handshake on loopback in
        // microseconds if the queue has room, and drops the SYN otherwise;
        // a dropped SYN is sent again only after a second, so all connecting
        // well inside a second means none was dropped. 128 (tokio's
        // default) drops the 130th and later.
        let burst = 300;
        let connects = (0..burst).map(|_| tokio::net::TcpStream::connect(addr));
        let connected = tokio::time::timeout(
            Duration::from_millis(900),
            futures::future::join_all(connects),
        )
        .await
        .expect("some connections waited for a SYN retransmission");
        assert_eq!(connected.iter().filter(|c| c.is_ok()).count(), burst);
        drop(listener);
    }
}
