use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use adp_api::v1 as pb;
use adp_api::v1::connection_service_server::ConnectionService;
use adp_core::identity::Identity;
use adp_core::resource::timestamp;
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::RpcResult;
use crate::connections::{Card, CardStatus, Connections};
use crate::consent_errors::to_proto_reason;
use crate::state::SharedState;

/// How often a watch re-reads the database, so changes made through another
/// replica arrive too (changes on this replica arrive at once).
const WATCH_RESYNC: Duration = Duration::from_secs(2);
/// Every this many resyncs a watcher reads the whole card (provider, servers' scopes),
/// not only its connection row.
const WATCH_CARD_EVERY: u32 = 15;

#[derive(Debug)]
pub struct ConnectionApi {
    pub state: SharedState,
}

pub(crate) fn to_proto(card: &Card) -> pb::Connection {
    let mut out = pb::Connection {
        provider_name: card.provider.name.clone(),
        provider_display_name: card.display_name().to_owned(),
        requested_scopes: card.requested_scopes.clone(),
        status: pb::ConnectionStatus::NotConnected as i32,
        ..Default::default()
    };
    let Some(connection) = &card.connection else {
        return out;
    };
    out.granted_scopes = connection.granted_scopes.clone();
    out.connect_time = Some(timestamp(connection.connect_time));
    out.expire_time = connection.access_expire_time.map(timestamp);
    (out.status, out.status_reason) = match card.status() {
        CardStatus::NotConnected => (pb::ConnectionStatus::NotConnected as i32, String::new()),
        CardStatus::Connected => (pb::ConnectionStatus::Connected as i32, String::new()),
        CardStatus::Expired { reason, detail } => (
            pb::ConnectionStatus::Expired as i32,
            if detail.is_empty() {
                to_proto_reason(reason).as_str_name().to_owned()
            } else {
                detail
            },
        ),
        CardStatus::ScopeUpgradeRequired { missing } => (
            pb::ConnectionStatus::ScopeUpgradeRequired as i32,
            format!("servers now need {}", missing.join(" ")),
        ),
    };
    out
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchConnectionResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ConnectionService for ConnectionApi {
    async fn list_connections(
        &self,
        request: Request<pb::ListConnectionsRequest>,
    ) -> RpcResult<pb::ListConnectionsResponse> {
        let identity = self.state.auth.authenticate(&request).await?;
        let cards = self.state.connections.cards(&identity).await?;
        Ok(Response::new(pb::ListConnectionsResponse {
            connections: cards.iter().map(to_proto).collect(),
        }))
    }

    async fn connect(
        &self,
        request: Request<pb::ConnectRequest>,
    ) -> RpcResult<pb::ConnectResponse> {
        let identity = self.state.auth.authenticate(&request).await?;
        let request = request.into_inner();
        self.state.validator.validate(&request)?;
        let start = self
            .state
            .connections
            .start_consent(&identity, &request.provider_name, &request.scopes, None)
            .await?;
        tracing::info!(provider = %request.provider_name, subject = %identity.subject, device = start.device.is_some(), "consent started");
        Ok(Response::new(pb::ConnectResponse {
            authorize_url: start.authorize_url,
            expire_time: Some(timestamp(start.expire_time)),
            device_code: start.device.map(|d| pb::DeviceCode {
                user_code: d.user_code,
                verification_uri: d.verification_uri,
                verification_uri_complete: d.verification_uri_complete.unwrap_or_default(),
                interval: i32::try_from(d.interval.as_secs()).unwrap_or(i32::MAX),
            }),
        }))
    }

    async fn revoke_connection(
        &self,
        request: Request<pb::RevokeConnectionRequest>,
    ) -> RpcResult<pb::RevokeConnectionResponse> {
        let identity = self.state.auth.authenticate(&request).await?;
        let request = request.into_inner();
        self.state.validator.validate(&request)?;
        let (upstream_revoked, upstream_revocation_error) = self
            .state
            .connections
            .revoke(&identity, &request.provider_name)
            .await?;
        let card = self
            .state
            .connections
            .card(&identity, &request.provider_name)
            .await?;
        Ok(Response::new(pb::RevokeConnectionResponse {
            upstream_revoked,
            upstream_revocation_error,
            connection: Some(to_proto(&card)),
        }))
    }

    type WatchConnectionStream = WatchStream;

    async fn watch_connection(
        &self,
        request: Request<pb::WatchConnectionRequest>,
    ) -> RpcResult<Self::WatchConnectionStream> {
        let identity = self.state.auth.authenticate(&request).await?;
        let request = request.into_inner();
        self.state.validator.validate(&request)?;
        let permit = self.state.connections.admit_watch(&identity)?;
        let first = self
            .state
            .connections
            .card(&identity, &request.provider_name)
            .await?;
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(watch(
            self.state.connections.clone(),
            identity,
            request.provider_name,
            first,
            tx,
            permit,
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

async fn watch(
    connections: Arc<Connections>,
    identity: Identity,
    provider_name: String,
    mut card: Card,
    tx: mpsc::Sender<Result<pb::WatchConnectionResponse, Status>>,
    _permit: crate::connections::WatchPermit,
) {
    let key = Connections::key(&identity, &provider_name);
    let mut changes = connections.subscribe();
    let mut last = to_proto(&card);
    if tx
        .send(Ok(pb::WatchConnectionResponse {
            connection: Some(last.clone()),
        }))
        .await
        .is_err()
    {
        return;
    }
    let mut resync = tokio::time::interval(WATCH_RESYNC);
    let mut rounds = 0u32;
    loop {
        // an empty key means "many connections changed": the provider or the servers
        // asking for its scopes may have, so the whole card is read again
        let mut whole_card = false;
        tokio::select! {
            () = tx.closed() => return,
            change = changes.recv() => match change {
                Ok(changed) if changed == key => {}
                Ok(changed) if !changed.provider_name.is_empty() && !changed.issuer.is_empty() => continue,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => whole_card = true,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            _ = resync.tick() => {
                // the row every tick (a peer replica's consent is seen within one); the
                // provider and the servers' scopes only now and then
                rounds += 1;
                whole_card = rounds.is_multiple_of(WATCH_CARD_EVERY);
            }
        }
        let read = if whole_card {
            connections.card(&identity, &provider_name).await
        } else {
            connections
                .connection(&identity, &provider_name)
                .await
                .map(|connection| Card {
                    connection,
                    ..card.clone()
                })
        };
        match read {
            Ok(fresh) => {
                card = fresh;
                let current = to_proto(&card);
                if current != last {
                    last = current.clone();
                    if tx
                        .send(Ok(pb::WatchConnectionResponse {
                            connection: Some(current),
                        }))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
            Err(error) => {
                let _ = tx.send(Err(error.into())).await;
                return;
            }
        }
    }
}
