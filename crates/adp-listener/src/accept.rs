//! Accepting under a connection limit.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::preamble::GuardedIo;
use crate::{Limits, TCP_KEEPALIVE};

/// How often "connection limit reached" is logged at most.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The connections one limit allows; listeners that share it (the proxy's workers,
/// each with its own `SO_REUSEPORT` socket) share the limit.
#[derive(Clone, Debug)]
pub struct ConnectionSlots {
    free: Arc<Semaphore>,
    limit: usize,
    last_warned: Arc<Mutex<Option<Instant>>>,
}

impl ConnectionSlots {
    pub fn new(limit: usize) -> Self {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        ConnectionSlots {
            free: Arc::new(Semaphore::new(limit)),
            limit,
            last_warned: Arc::default(),
        }
    }

    /// Connections open now.
    pub fn in_use(&self) -> usize {
        self.limit - self.free.available_permits()
    }

    fn warn_at_limit(&self, listener: &str) {
        let mut last = self
            .last_warned
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if last.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(
                listener,
                limit = self.limit,
                "connection limit reached (ADP_MAX_CONNECTIONS): new connections wait in the listen backlog until one closes"
            );
        }
    }
}

/// A TCP listener that holds at most its slots' worth of connections open.
#[derive(Debug)]
pub struct Listener {
    tcp: TcpListener,
    limits: Limits,
    slots: ConnectionSlots,
    name: &'static str,
}

/// A connection that got a slot; the slot is freed when the connection (its
/// [`GuardedIo`]) is dropped.
#[derive(Debug)]
pub struct Accepted {
    pub tcp: TcpStream,
    pub remote: SocketAddr,
    slot: OwnedSemaphorePermit,
}

impl Listener {
    /// `name` labels log lines (`http`, `grpc`, `proxy`).
    pub fn new(
        tcp: TcpListener,
        limits: Limits,
        slots: ConnectionSlots,
        name: &'static str,
    ) -> Self {
        Listener {
            tcp,
            limits,
            slots,
            name,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// The next connection with a free slot. At the limit this holds one accepted
    /// connection unserved and stops accepting, so the rest wait in the kernel's
    /// backlog; whichever listener gets a freed slot first serves its waiting one.
    /// Cancel-safe.
    pub async fn accept(&mut self) -> Accepted {
        loop {
            let (tcp, remote) = match self.tcp.accept().await {
                Ok(accepted) => accepted,
                // a client that gave up before we accepted: nothing to wait for
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::ConnectionRefused
                    ) =>
                {
                    continue;
                }
                Err(error) => {
                    // out of descriptors and the like: pause rather than spin
                    tracing::warn!(listener = self.name, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let slot = match self.slots.free.clone().try_acquire_owned() {
                Ok(slot) => slot,
                Err(_) => {
                    self.slots.warn_at_limit(self.name);
                    match self.slots.free.clone().acquire_owned().await {
                        Ok(slot) => slot,
                        // never closed
                        Err(_) => continue,
                    }
                }
            };
            // small answers must not wait out the client's delayed ACK
            let _ = tcp.set_nodelay(true);
            let keepalive = socket2::TcpKeepalive::new()
                .with_time(TCP_KEEPALIVE)
                .with_interval(Duration::from_secs(10));
            let _ = socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive);
            return Accepted { tcp, remote, slot };
        }
    }
}

impl Accepted {
    /// The connection, closed if its preamble does not arrive within `timeout`.
    pub fn guarded(self, timeout: Duration) -> GuardedIo<TcpStream> {
        GuardedIo::new(self.tcp, Some(self.remote), timeout, self.slot)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn at_the_limit_a_connection_waits_until_one_closes() {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let slots = ConnectionSlots::new(1);
        let mut listener = Listener::new(tcp, Limits::default(), slots.clone(), "test");
        let (served_tx, mut served) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let accepted = listener.accept().await;
                let _ = served_tx.send(accepted.guarded(Duration::from_secs(10)));
            }
        });
        let mut first = TcpStream::connect(addr).await.unwrap();
        let first_io = served.recv().await.unwrap();
        assert_eq!(slots.in_use(), 1);
        // the kernel completes the handshake; the listener does not serve it yet
        let _second = TcpStream::connect(addr).await.unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(300), served.recv()).await;
        assert!(waited.is_err(), "a second connection got past a limit of 1");
        drop(first_io);
        let second_io = tokio::time::timeout(Duration::from_secs(5), served.recv())
            .await
            .expect("the waiting connection is served once a slot frees")
            .unwrap();
        assert_eq!(slots.in_use(), 1);
        // the first connection was closed by dropping its io
        let mut byte = [0u8; 1];
        first.write_all(b"x").await.ok();
        assert_eq!(first.read(&mut byte).await.unwrap_or(0), 0);
        drop(second_io);
        assert_eq!(slots.in_use(), 0);
    }
}
