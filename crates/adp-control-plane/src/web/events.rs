//! `GET /connections/events`: a server-sent event whenever one of the visitor's cards
//! may have changed, so the page refreshes its cards without polling. Changes made on
//! this replica arrive at once; a periodic re-read catches those made elsewhere
//! (another replica, an admin adding a required scope).

use std::convert::Infallible;
use std::time::Duration;

use adp_core::identity::Identity;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::session;
use crate::connections::Connections;
use crate::state::SharedState;

/// How often the stream re-reads the cards (and checks the session is still live).
const RESYNC: Duration = Duration::from_secs(5);

pub async fn stream(AxumState(state): AxumState<SharedState>, headers: HeaderMap) -> Response {
    let visitor = match session::visitor(&state, &headers).await {
        Ok(Some(visitor)) => visitor,
        Ok(None) => return (StatusCode::UNAUTHORIZED, "sign in first\n").into_response(),
        Err(page) => return page,
    };
    let (tx, rx) = mpsc::channel::<Result<Event, Infallible>>(4);
    tokio::spawn(announce_changes(state.clone(), visitor, tx));
    Sse::new(ReceiverStream::new(rx))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// What the page shows of each card, to tell whether a re-read changed anything.
async fn fingerprint(state: &SharedState, identity: &Identity) -> Option<Vec<String>> {
    let cards = state.connections.cards(identity).await.ok()?;
    Some(
        cards
            .iter()
            .map(|card| {
                let key = Connections::key(identity, &card.provider.name);
                format!(
                    "{}|{:?}|{:?}|{}",
                    card.provider.name,
                    card.status(),
                    card.connection
                        .as_ref()
                        .map(|c| (c.version, &c.granted_scopes)),
                    state.connections.pending_device(&key).is_some()
                )
            })
            .collect(),
    )
}

/// Runs until the page goes away, or its session ends (sign-out, expiry).
async fn announce_changes(
    state: SharedState,
    visitor: session::Visitor,
    tx: mpsc::Sender<Result<Event, Infallible>>,
) {
    let identity = visitor.identity();
    let mut changes = state.connections.subscribe();
    let mut last = fingerprint(&state, &identity).await;
    let mut resync = tokio::time::interval(RESYNC);
    resync.tick().await;
    let expires = (visitor.session.expire_time - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    let expired = tokio::time::sleep(expires);
    tokio::pin!(expired);
    loop {
        tokio::select! {
            () = tx.closed() => return,
            () = &mut expired => return,
            _ = resync.tick() => {
                let live = match &state.sign_in {
                    Some(sign_in) => sign_in.session(visitor.cookie()).await.ok().flatten().is_some(),
                    None => false,
                };
                if !live {
                    return;
                }
            }
            change = changes.recv() => match change {
                // an empty key means "many connections changed"
                Ok(key) if !key.provider_name.is_empty()
                    && (key.issuer != identity.issuer || key.subject != identity.subject) => continue,
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            },
        }
        let current = fingerprint(&state, &identity).await;
        if current.is_some() && current != last {
            last = current;
            if tx
                .send(Ok(Event::default().event("change").data("cards")))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}
