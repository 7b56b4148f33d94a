//! The request-body deadline: a body must arrive in full within a bound of its
//! request's head, so a client trickling one cannot hold a task for ever.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::BoxError;

/// What a [`TimedBody`] fails with once its deadline passes; find it with
/// `error.downcast_ref::<BodyTimeout>()` to answer 408.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} s", .0.as_secs_f64())]
pub struct BodyTimeout(pub Duration);

/// A request body that fails with [`BodyTimeout`] when it is not over by its deadline.
/// The timer is only started when a read has to wait.
#[derive(Debug)]
pub struct TimedBody<B> {
    inner: B,
    deadline: Instant,
    timeout: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<B> TimedBody<B> {
    /// Due `timeout` from now.
    pub fn new(inner: B, timeout: Duration) -> Self {
        // a setting of a hundred years must not overflow the clock
        let timeout = timeout.min(Duration::from_secs(365 * 24 * 3600));
        TimedBody {
            inner,
            deadline: Instant::now() + timeout,
            timeout,
            sleep: None,
        }
    }
}

impl<B> Body for TimedBody<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(this.timeout))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, StreamBody};

    fn trickle(every: Duration) -> impl Body<Data = Bytes, Error = std::io::Error> + Unpin {
        let chunks = futures::stream::unfold((), move |()| async move {
            tokio::time::sleep(every).await;
            Some((Ok(Frame::data(Bytes::from_static(b"x"))), ()))
        });
        StreamBody::new(Box::pin(chunks))
    }

    #[tokio::test]
    async fn a_trickling_body_fails_at_its_deadline() {
        let timeout = Duration::from_millis(300);
        let started = Instant::now();
        let error = TimedBody::new(trickle(Duration::from_millis(20)), timeout)
            .collect()
            .await
            .unwrap_err();
        let elapsed = started.elapsed();
        assert!(error.downcast_ref::<BodyTimeout>().is_some(), "{error}");
        assert!(elapsed >= timeout && elapsed < timeout * 3, "{elapsed:?}");
    }

    #[tokio::test]
    async fn a_body_in_time_is_passed_through() {
        let body = http_body_util::Full::new(Bytes::from_static(b"{}"));
        let collected = TimedBody::new(body, Duration::from_millis(10))
            .collect()
            .await
            .unwrap();
        assert_eq!(collected.to_bytes(), Bytes::from_static(b"{}"));
    }
}
