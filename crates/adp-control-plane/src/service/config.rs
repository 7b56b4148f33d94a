use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use adp_api::v1 as pb;
use adp_api::v1::config_discovery_service_server::ConfigDiscoveryService;
use adp_core::resource::timestamp;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::RpcResult;
use crate::config_feed::ConfigFeed;
use crate::errors::store_error;
use crate::state::SharedState;

/// A proxy that hears nothing for three of these reconnects.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// Events queued for one subscriber; a full queue stalls only that subscriber.
const SUBSCRIBER_QUEUE: usize = 16;

#[derive(Debug)]
pub struct ConfigApi {
    pub state: SharedState,
    pub feed: Arc<ConfigFeed>,
    /// Ends every stream on shutdown, so graceful shutdown need not wait them out.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::WatchConfigResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ConfigDiscoveryService for ConfigApi {
    type WatchConfigStream = EventStream;

    async fn watch_config(
        &self,
        request: Request<pb::WatchConfigRequest>,
    ) -> RpcResult<Self::WatchConfigStream> {
        let proxy = self.state.auth.authenticate_proxy(&request).await?;
        let request = request.into_inner();
        self.state.validator.validate(&request)?;
        let events = self.feed.subscribe();
        let first = self
            .feed
            .first_event(request.resume_revision)
            .await
            .map_err(store_error)?;
        tracing::info!(
            node_id = %request.node_id,
            subject = %proxy.subject,
            resume_revision = request.resume_revision,
            revision = first.revision,
            snapshot = matches!(first.kind, Some(pb::config_event::Kind::Snapshot(_))),
            "proxy subscribed to config"
        );
        let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE);
        tokio::spawn(forward(
            self.feed.clone(),
            events,
            first,
            tx,
            self.shutdown.clone(),
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

type Sender = mpsc::Sender<Result<pb::WatchConfigResponse, Status>>;

async fn send(tx: &Sender, event: pb::ConfigEvent) -> bool {
    tx.send(Ok(pb::WatchConfigResponse { event: Some(event) }))
        .await
        .is_ok()
}

/// Copies broadcast events to one subscriber, skipping what its first event already
/// covered; a subscriber that fell out of the broadcast window is resynchronised with
/// a snapshot rather than handed a gap.
async fn forward(
    feed: Arc<ConfigFeed>,
    mut events: tokio::sync::broadcast::Receiver<crate::config_feed::SharedEvent>,
    first: pb::ConfigEvent,
    tx: Sender,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut revision = first.revision;
    if !send(&tx, first).await {
        return;
    }
    let mut heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
    heartbeat.tick().await;
    loop {
        let next = tokio::select! {
            () = tx.closed() => return,
            _ = async { shutdown.wait_for(|stop| *stop).await.map(|_| ()) } => return,
            event = events.recv() => match event {
                Ok(event) if event.revision <= revision => continue,
                Ok(event) => event.as_ref().clone(),
                Err(RecvError::Lagged(skipped)) => {
                    tracing::info!(skipped, "config subscriber fell behind; sending a snapshot");
                    match feed.snapshot().await {
                        Ok(snapshot) => snapshot,
                        Err(error) => {
                            let _ = tx.send(Err(store_error(error).into())).await;
                            return;
                        }
                    }
                }
                Err(RecvError::Closed) => return,
            },
            _ = heartbeat.tick() => pb::ConfigEvent {
                revision,
                kind: Some(pb::config_event::Kind::Heartbeat(pb::Heartbeat {
                    time: Some(timestamp(chrono::Utc::now())),
                })),
            },
        };
        revision = revision.max(next.revision);
        if !send(&tx, next).await {
            return;
        }
    }
}
