//! The feed: the control plane's data-plane config (`WatchConfig`) kept current as a
//! routing table by one background task feeding a `watch` channel, reconnecting with
//! back-off and resuming from the last applied revision. Until a new config arrives the
//! last good one keeps serving. (The proxy's own process settings are `settings`.)

use std::sync::Arc;
use std::time::Duration;

use adp_core::backoff::Backoff;
use tokio::sync::watch;

use crate::control_plane_client::ControlPlaneClient;
use crate::credential_cache::Revocations;
use crate::routes::RoutingTable;

/// The control plane sends a heartbeat every 5 s; three missed means the stream is dead.
const SILENCE_LIMIT: Duration = Duration::from_secs(15);
/// Reconnecting to the control plane: 100–200 ms after the first failure, then 5–10 s
/// at most (a fleet of proxies must not hammer a control plane that is coming back).
const RECONNECT: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedStatus {
    /// A stream to the control plane is open.
    pub connected: bool,
    /// At least one config has been applied since start.
    pub has_config: bool,
    pub revision: i64,
    pub last_error: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Feed {
    pub table: watch::Receiver<Arc<RoutingTable>>,
    pub status: watch::Receiver<FeedStatus>,
}

pub fn spawn(
    control_plane: ControlPlaneClient,
    node_id: String,
    revocations: Arc<Revocations>,
    mut shutdown: watch::Receiver<bool>,
) -> Feed {
    let (table_tx, table) = watch::channel(Arc::new(RoutingTable::default()));
    let (status_tx, status) = watch::channel(FeedStatus::default());
    tokio::spawn(async move {
        tokio::select! {
            () = run(control_plane, node_id, revocations, table_tx, status_tx) => {}
            _ = shutdown.wait_for(|stop| *stop) => {}
        }
    });
    Feed { table, status }
}

async fn run(
    control_plane: ControlPlaneClient,
    node_id: String,
    revocations: Arc<Revocations>,
    table: watch::Sender<Arc<RoutingTable>>,
    status: watch::Sender<FeedStatus>,
) {
    let mut failures = 0;
    loop {
        let resume = {
            let s = status.borrow();
            if s.has_config { s.revision } else { 0 }
        };
        match control_plane.watch_config(&node_id, resume).await {
            Ok(mut stream) => loop {
                match tokio::time::timeout(SILENCE_LIMIT, stream.message()).await {
                    Ok(Ok(Some(message))) => {
                        let Some(event) = message.event else { continue };
                        drop_revoked(&revocations, &event);
                        let current = table.borrow().clone();
                        let next = current.apply(&event);
                        let revision = next.revision;
                        if revision != current.revision || !status.borrow().has_config {
                            tracing::info!(
                                revision,
                                servers = next.servers.len(),
                                "config applied"
                            );
                        }
                        if revision != current.revision || event_changes_config(&event) {
                            table.send_replace(Arc::new(next));
                        }
                        status.send_modify(|s| {
                            if !s.connected {
                                tracing::info!(revision, "config stream connected");
                            }
                            s.connected = true;
                            s.has_config = true;
                            s.revision = revision;
                            s.last_error = None;
                        });
                        failures = 0;
                    }
                    Ok(Ok(None)) => {
                        disconnected(&status, "the control plane closed the config stream".into());
                        break;
                    }
                    Ok(Err(error)) => {
                        disconnected(
                            &status,
                            format!("config stream failed: {}", error.message()),
                        );
                        break;
                    }
                    Err(_) => {
                        disconnected(&status, "no config event or heartbeat for 15 s".into());
                        break;
                    }
                }
            },
            Err(error) => disconnected(&status, format!("cannot subscribe to config: {error}")),
        }
        failures += 1;
        tokio::time::sleep(RECONNECT.delay(failures)).await;
    }
}

/// Control-plane replicas remember a server or provider for up to a second (their
/// `SPEC_CACHE_TTL`); a credential fetched from one that has not noticed a change yet
/// must not stay cached for the token's whole life.
const REPLICA_SPEC_STALENESS: Duration = Duration::from_millis(1500);

/// Cached credentials the event says are no longer good: those of ended connections;
/// all of them when a provider or server changed (say, disabled) or the proxy had to
/// start over from a snapshot and may have missed revocations. After a config change
/// everything is dropped once more when no replica can still answer from before it.
fn drop_revoked(revocations: &Arc<Revocations>, event: &adp_api::v1::ConfigEvent) {
    use adp_api::v1::config_event::Kind;
    match &event.kind {
        Some(Kind::Snapshot(_)) => revocations.revoke_all(),
        Some(Kind::Delta(delta)) => {
            let config_changed = !delta.upserted_providers.is_empty()
                || !delta.removed_providers.is_empty()
                || !delta.upserted_servers.is_empty()
                || !delta.removed_servers.is_empty();
            if config_changed {
                revocations.revoke_all();
                let later = revocations.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(REPLICA_SPEC_STALENESS).await;
                    later.revoke_all();
                });
            }
            for ended in &delta.revoked_connections {
                if ended.issuer.is_empty() && ended.subject.is_empty() {
                    revocations.revoke_all();
                } else {
                    revocations.revoke(&ended.issuer, &ended.subject, &ended.provider_name);
                }
                tracing::info!(provider = %ended.provider_name, "connection ended: cached credentials dropped");
            }
        }
        Some(Kind::Heartbeat(_)) | None => {}
    }
}

fn event_changes_config(event: &adp_api::v1::ConfigEvent) -> bool {
    !matches!(
        event.kind,
        Some(adp_api::v1::config_event::Kind::Heartbeat(_)) | None
    )
}

fn disconnected(status: &watch::Sender<FeedStatus>, error: String) {
    status.send_modify(|s| {
        if s.connected || s.last_error.as_deref() != Some(error.as_str()) {
            tracing::warn!(revision = s.revision, %error, "config stream down; serving the last good config");
        }
        s.connected = false;
        s.last_error = Some(error);
    });
}
