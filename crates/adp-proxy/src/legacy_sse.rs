//! The deprecated 2024-11-05 HTTP+SSE transport, for upstreams registered with it: GET
//! opens an event stream whose first `endpoint` event names where to POST messages;
//! every answer arrives as a `message` event. rmcp 3 dropped its client for this
//! transport, so this builds one from channels rmcp accepts as a (sink, stream) pair.
//!
//! Events are parsed by the `sse-stream` crate (lines are split as bytes and decoded
//! whole, so a character split between chunks arrives intact). No event may grow past
//! [`MAX_EVENT_BYTES`]: one that does, or a malformed stream, ends the session with a
//! logged reason. When rmcp lets go of the session (closed, evicted or reaped as
//! idle), the GET is hung up at once rather than at the upstream's next event.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::{HeaderName, HeaderValue};
use rmcp::RoleClient;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use sse_stream::SseStream;
use tokio_stream::wrappers::ReceiverStream;

use crate::upstream_sessions::CallError;

type Sink = futures::channel::mpsc::Sender<TxJsonRpcMessage<RoleClient>>;

/// The most bytes a legacy SSE upstream may send for one event (counted from the end of
/// the previous one). Answers larger than this end the session.
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;
/// Opens the event stream and waits for the endpoint; messages then flow both ways
/// until either side closes.
pub async fn connect(
    http: &reqwest013::Client,
    url: &str,
    header: Option<(HeaderName, HeaderValue)>,
) -> Result<(Sink, ReceiverStream<RxJsonRpcMessage<RoleClient>>), CallError> {
    let unavailable = |what: &str, e: &dyn std::fmt::Display| {
        CallError::Unavailable(format!("legacy SSE upstream: {what}: {e}"))
    };
    let mut get = http
        .get(url)
        .header(http::header::ACCEPT, "text/event-stream");
    if let Some((name, value)) = &header {
        get = get.header(name.clone(), value.clone());
    }
    let response = get
        .send()
        .await
        .and_then(reqwest013::Response::error_for_status)
        .map_err(|e| unavailable("cannot open the event stream", &e))?;
    let mut events = Box::pin(sse_events(response.bytes_stream(), MAX_EVENT_BYTES));
    let endpoint = match events.next().await {
        Some(Ok(event)) if event.name == "endpoint" => event.data,
        Some(Err(error)) => return Err(unavailable("reading the endpoint event", &error)),
        other => {
            return Err(CallError::Unavailable(format!(
                "legacy SSE upstream sent no endpoint event first (got {:?})",
                other.map(|e| e.map(|e| e.name))
            )));
        }
    };
    let base = url::Url::parse(url).map_err(|e| unavailable("bad URL", &e))?;
    let post_url = base
        .join(endpoint.trim())
        .map_err(|e| unavailable("bad endpoint", &e))?;
    // the user's credential goes only where the admin pointed the server
    if post_url.origin() != base.origin() {
        return Err(CallError::Unavailable(
            "legacy SSE upstream named an endpoint on another origin; refusing to send credentials there".into(),
        ));
    }

    let (incoming_tx, incoming) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                // rmcp let go of the session: hang up the GET now (dropping the body
                // closes its connection), not whenever the upstream next speaks
                () = incoming_tx.closed() => return,
                event = events.next() => event,
            };
            let event = match event {
                Some(Ok(event)) => event,
                Some(Err(error)) => {
                    tracing::warn!(%error, "legacy SSE upstream: ending the session");
                    return;
                }
                None => return,
            };
            if event.name != "message" {
                continue;
            }
            let Ok(message) = serde_json::from_str::<RxJsonRpcMessage<RoleClient>>(&event.data)
            else {
                tracing::warn!("legacy SSE upstream sent a message that is not JSON-RPC");
                continue;
            };
            if incoming_tx.send(message).await.is_err() {
                return;
            }
        }
    });

    let (outgoing, mut outgoing_rx) =
        futures::channel::mpsc::channel::<TxJsonRpcMessage<RoleClient>>(64);
    let http = http.clone();
    tokio::spawn(async move {
        while let Some(message) = outgoing_rx.next().await {
            let Ok(body) = serde_json::to_vec(&message) else {
                continue;
            };
            let mut post = http
                .post(post_url.clone())
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body);
            if let Some((name, value)) = &header {
                post = post.header(name.clone(), value.clone());
            }
            match post.send().await {
                Ok(response) if response.status().is_success() => {}
                // the session is unusable; dropping the receiver ends it for rmcp
                _ => return,
            }
        }
    });
    Ok((outgoing, ReceiverStream::new(incoming)))
}

#[derive(Debug, PartialEq, Eq)]
struct Event {
    name: String,
    data: String,
}

/// Why an event stream ended early.
#[derive(Debug, thiserror::Error)]
enum StreamError {
    #[error("an event grew past {0} bytes without ending")]
    TooLarge(usize),
    #[error("the event stream broke off: {0}")]
    Body(String),
    #[error("the event stream is malformed: {0}")]
    Malformed(String),
}

/// The events of `bytes` (an SSE body) that carry data; the stream fails once more than
/// `max_event` bytes arrive without an event ending (so memory stays within about
/// `max_event` plus one chunk).
fn sse_events<S, E>(
    bytes: S,
    max_event: usize,
) -> impl Stream<Item = Result<Event, StreamError>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::fmt::Display,
{
    let since_event = Arc::new(AtomicUsize::new(0));
    let counted = {
        let since_event = since_event.clone();
        bytes.map(move |chunk| {
            let chunk = chunk.map_err(|e| StreamError::Body(e.to_string()))?;
            let unfinished = since_event.fetch_add(chunk.len(), Ordering::Relaxed) + chunk.len();
            if unfinished > max_event {
                return Err(StreamError::TooLarge(max_event));
            }
            Ok(chunk)
        })
    };
    SseStream::from_bytes_stream(counted).filter_map(move |parsed| {
        let event = match parsed {
            Ok(sse) => {
                since_event.store(0, Ordering::Relaxed);
                // an event without data is not dispatched (`retry:`, a bare `id:`)
                sse.data.map(|data| {
                    Ok(Event {
                        name: sse.event.unwrap_or_else(|| "message".to_owned()),
                        data,
                    })
                })
            }
            Err(sse_stream::Error::Body(error)) => {
                Some(Err(match error.downcast::<StreamError>() {
                    Ok(ours) => *ours,
                    Err(other) => StreamError::Body(other.to_string()),
                }))
            }
            Err(other) => Some(Err(StreamError::Malformed(other.to_string()))),
        };
        std::future::ready(event)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn chunks(
        parts: Vec<&'static [u8]>,
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static {
        futures::stream::iter(parts.into_iter().map(|p| Ok(Bytes::from_static(p))))
    }

    async fn all(
        stream: impl Stream<Item = Result<Event, StreamError>>,
    ) -> Vec<Result<Event, StreamError>> {
        stream.collect().await
    }

    #[tokio::test]
    async fn events_split_on_blank_lines_across_chunks() {
        let events = all(sse_events(
            chunks(vec![
                b": ping\n\nevent: endpoint\r\ndata: /messages?sessionId=1\r\n\r\ndata: {\"a\":",
                b"1}\n\nretry: 10\n\ndata: two\ndata: lines\n\n",
            ]),
            1024,
        ))
        .await;
        let events: Vec<Event> = events.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            events,
            vec![
                Event {
                    name: "endpoint".into(),
                    data: "/messages?sessionId=1".into()
                },
                Event {
                    name: "message".into(),
                    data: "{\"a\":1}".into()
                },
                Event {
                    name: "message".into(),
                    data: "two\nlines".into()
                },
            ]
        );
    }

    #[tokio::test]
    async fn a_character_split_between_chunks_arrives_whole() {
        // "é" is C3 A9, "😀" F0 9F 98 80: each cut between two chunks
        let events = all(sse_events(
            chunks(vec![
                b"data: caf\xC3",
                b"\xA9 \xF0\x9F",
                b"\x98",
                b"\x80\n\n",
            ]),
            1024,
        ))
        .await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].as_ref().unwrap().data, "café 😀");
    }

    /// An endless supply of `chunk`, counting how many were read.
    fn endless(
        chunk: &'static [u8],
        read: Arc<AtomicUsize>,
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static {
        futures::stream::repeat_with(move || {
            read.fetch_add(1, Ordering::Relaxed);
            Ok(Bytes::from_static(chunk))
        })
    }

    #[tokio::test]
    async fn an_event_that_never_ends_is_cut_at_the_limit() {
        const LIMIT: usize = 64 * 1024;
        // one endless line, and endless data lines with no blank line between
        for chunk in [&[b'x'; 1024][..], b"data: 0123456789abcdef\n"] {
            let read = Arc::new(AtomicUsize::new(0));
            let mut stream = Box::pin(sse_events(endless(chunk, read.clone()), LIMIT));
            let first = stream.next().await.unwrap();
            assert!(
                matches!(first, Err(StreamError::TooLarge(LIMIT))),
                "{first:?}"
            );
            assert!(first.unwrap_err().to_string().contains("65536 bytes"));
            // it stopped reading right after the limit
            let bytes_read = read.load(Ordering::Relaxed) * chunk.len();
            assert!(bytes_read <= LIMIT + chunk.len(), "{bytes_read}");
        }
    }

    #[tokio::test]
    async fn the_limit_is_per_event_not_per_stream() {
        let read = Arc::new(AtomicUsize::new(0));
        let events: Vec<_> = sse_events(endless(b"data: {\"ok\":true}\n\n", read), 256)
            .take(1_000)
            .collect()
            .await;
        assert!(events.iter().all(Result::is_ok));
    }

    #[tokio::test]
    async fn a_malformed_stream_is_an_error() {
        let events = all(sse_events(chunks(vec![b"no colon here\n\n"]), 1024)).await;
        assert!(
            matches!(events[0], Err(StreamError::Malformed(_))),
            "{events:?}"
        );
    }
}
