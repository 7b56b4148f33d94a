//! The deprecated 2024-11-05 HTTP+SSE transport, for upstreams registered with it: GET
//! opens an event stream whose first `endpoint` event names where to POST messages;
//! every answer arrives as a `message` event. rmcp 3 dropped its client for this
//! transport, so this builds one from channels rmcp accepts as a (sink, stream) pair.

use futures::{Stream, StreamExt};
use http::{HeaderName, HeaderValue};
use rmcp::RoleClient;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use tokio_stream::wrappers::ReceiverStream;

use crate::upstream_sessions::CallError;

type Sink = futures::channel::mpsc::Sender<TxJsonRpcMessage<RoleClient>>;

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
    let mut events = Box::pin(sse_events(response.bytes_stream()));
    let endpoint = match events.next().await {
        Some(event) if event.name == "endpoint" => event.data,
        other => {
            return Err(CallError::Unavailable(format!(
                "legacy SSE upstream sent no endpoint event first (got {:?})",
                other.map(|e| e.name)
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
        while let Some(event) = events.next().await {
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

/// Server-sent events from a byte stream (the parts of the format MCP uses: `event:`,
/// multi-line `data:`, comments, CRLF or LF line ends).
fn sse_events<S, B, E>(bytes: S) -> impl Stream<Item = Event>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
{
    futures::stream::unfold(
        (bytes, String::new()),
        |(mut bytes, mut buffer)| async move {
            loop {
                if let Some(event) = take_event(&mut buffer) {
                    return Some((event, (bytes, buffer)));
                }
                match bytes.next().await {
                    Some(Ok(chunk)) => buffer.push_str(&String::from_utf8_lossy(chunk.as_ref())),
                    _ => return None,
                }
            }
        },
    )
}

fn take_event(buffer: &mut String) -> Option<Event> {
    loop {
        let normalized = buffer.replace("\r\n", "\n");
        let end = normalized.find("\n\n")?;
        let block = normalized[..end].to_owned();
        *buffer = normalized[end + 2..].to_owned();
        let mut name = "message".to_owned();
        let mut data: Vec<&str> = Vec::new();
        for line in block.lines() {
            if let Some(value) = line.strip_prefix("event:") {
                name = value.trim().to_owned();
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push(value.strip_prefix(' ').unwrap_or(value));
            }
        }
        if !data.is_empty() {
            return Some(Event {
                name,
                data: data.join("\n"),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_on_blank_lines_across_chunks() {
        let mut buffer = String::from(
            ": ping\n\nevent: endpoint\r\ndata: /messages?sessionId=1\r\n\r\ndata: {\"a\":",
        );
        assert_eq!(
            take_event(&mut buffer),
            Some(Event {
                name: "endpoint".into(),
                data: "/messages?sessionId=1".into()
            })
        );
        assert_eq!(take_event(&mut buffer), None);
        buffer.push_str("1}\n\n");
        assert_eq!(
            take_event(&mut buffer).map(|e| e.data),
            Some("{\"a\":1}".into())
        );
    }
}
