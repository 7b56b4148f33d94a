//! The preamble deadline: a connection that has not said which protocol it speaks in
//! time is closed. Neither hyper-util's protocol detection nor the HTTP/2 handshake has
//! a timeout of its own, so without this a client that connects and sends nothing, or
//! one byte a second, holds its connection (and its slot) for ever.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Sleep;

const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The error a connection's reads end with when its preamble came too late.
#[derive(Debug, thiserror::Error)]
#[error("the client did not start a request within {} s", .0.as_secs_f64())]
pub struct PreambleTimeout(pub Duration);

/// A connection until its preamble is in: the whole HTTP/2 preface, or the first byte
/// that is not part of one (HTTP/1, whose request heads hyper then times itself).
/// Holds the connection's slot, freed when it is dropped.
#[derive(Debug)]
pub struct GuardedIo<T> {
    inner: T,
    remote: Option<SocketAddr>,
    pending: Option<Preamble>,
    _slot: Option<OwnedSemaphorePermit>,
}

#[derive(Debug)]
struct Preamble {
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
    /// Bytes of the HTTP/2 preface seen so far.
    matched: usize,
}

impl<T> GuardedIo<T> {
    pub fn new(
        inner: T,
        remote: Option<SocketAddr>,
        timeout: Duration,
        slot: impl Into<Option<OwnedSemaphorePermit>>,
    ) -> Self {
        GuardedIo {
            inner,
            remote,
            pending: Some(Preamble {
                deadline: Box::pin(tokio::time::sleep(timeout)),
                timeout,
                matched: 0,
            }),
            _slot: slot.into(),
        }
    }

    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

impl Preamble {
    /// Whether `read` completes the preamble.
    fn complete_with(&mut self, read: &[u8]) -> bool {
        for &byte in read {
            if byte != H2_PREFACE[self.matched] {
                return true;
            }
            self.matched += 1;
            if self.matched == H2_PREFACE.len() {
                return true;
            }
        }
        false
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for GuardedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(preamble) = &mut this.pending else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        if preamble.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                PreambleTimeout(preamble.timeout),
            )));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let read = &buf.filled()[before..];
        // end of stream ends the connection anyway
        if read.is_empty() || preamble.complete_with(read) {
            this.pending = None;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GuardedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const TIMEOUT: Duration = Duration::from_millis(200);

    fn guarded() -> (GuardedIo<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
        let (server, client) = tokio::io::duplex(1024);
        (GuardedIo::new(server, None, TIMEOUT, None), client)
    }

    #[tokio::test]
    async fn silence_ends_the_connection_at_the_deadline() {
        let (mut server, _client) = guarded();
        let started = tokio::time::Instant::now();
        let mut buf = [0u8; 16];
        let error = server.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(
            error.to_string().contains("did not start a request"),
            "{error}"
        );
        assert!(started.elapsed() >= TIMEOUT);
    }

    #[tokio::test]
    async fn a_preface_trickled_past_the_deadline_ends_the_connection() {
        let (mut server, mut client) = guarded();
        tokio::spawn(async move {
            for &byte in H2_PREFACE.iter() {
                if client.write_all(&[byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        });
        let mut buf = [0u8; 64];
        let mut got = 0;
        let error = loop {
            match server.read(&mut buf).await {
                Ok(n) => got += n,
                Err(error) => break error,
            }
        };
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(got < H2_PREFACE.len());
    }

    #[tokio::test]
    async fn after_the_preamble_a_quiet_connection_stays_open() {
        for opening in [&b"GET / HTTP/1.1\r\n"[..], &H2_PREFACE[..]] {
            let (mut server, mut client) = guarded();
            client.write_all(opening).await.unwrap();
            let mut buf = [0u8; 64];
            assert_eq!(server.read(&mut buf).await.unwrap(), opening.len());
            // past the deadline: the protocol's own timers take over from here
            tokio::time::sleep(TIMEOUT * 2).await;
            client.write_all(b"more").await.unwrap();
            assert_eq!(server.read(&mut buf).await.unwrap(), 4);
        }
    }
}
