//! The config feed behind `WatchConfig`: one pump per process turns committed change-log
//! rows into deltas and broadcasts them to every subscriber. It wakes on this process's
//! own writes, on PostgreSQL notifications from other replicas, and on a periodic poll,
//! so a missed notification only delays a change.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use adp_api::v1 as pb;
use adp_core::provider::OAuthProvider;
use adp_core::server::{McpServer, Source, Transport};
use adp_store::{ConfigChange, ConfigKind, Store, StoreError};
use tokio::sync::{broadcast, watch};

/// How often the pump looks for changes nobody told it about.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Events a subscriber may fall behind before it is resynchronised with a snapshot.
const BROADCAST_CAPACITY: usize = 256;
/// Change-log rows read per pump round and at most replayed to a resuming proxy.
const MAX_REPLAY: u64 = 1000;
/// Revisions kept for resuming proxies.
const RETAINED_REVISIONS: i64 = 10_000;

pub type SharedEvent = Arc<pb::ConfigEvent>;

/// Told of every change the pump sees (this replica's or another's) before any
/// subscriber is, so caches of this process drop the object first.
pub type OnChange = Box<dyn Fn(&ConfigChange) + Send + Sync>;

pub struct ConfigFeed {
    store: Store,
    events: broadcast::Sender<SharedEvent>,
    on_change: OnChange,
}

impl std::fmt::Debug for ConfigFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigFeed").finish_non_exhaustive()
    }
}

impl ConfigFeed {
    /// Starts the pump; it stops when `shutdown` turns true.
    pub fn start(
        store: Store,
        on_change: OnChange,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<ConfigFeed> {
        let (events, _) = broadcast::channel(BROADCAST_CAPACITY);
        let feed = Arc::new(ConfigFeed {
            store,
            events,
            on_change,
        });
        tokio::spawn(pump(feed.clone(), shutdown));
        feed
    }

    /// Subscribe before reading the first event, so nothing between them is lost.
    pub fn subscribe(&self) -> broadcast::Receiver<SharedEvent> {
        self.events.subscribe()
    }

    /// What a new subscriber gets first: the changes after `resume_revision` when the
    /// log still holds all of them, else a full snapshot.
    pub async fn first_event(&self, resume_revision: i64) -> Result<pb::ConfigEvent, StoreError> {
        if resume_revision > 0 {
            let log = self.store.config_log();
            let current = log.current_revision().await?;
            let oldest = log.oldest_retained().await?;
            let contiguous = match oldest {
                Some(oldest) => oldest <= resume_revision + 1,
                None => resume_revision == current,
            };
            if resume_revision <= current && contiguous {
                let changes = log.changes_after(resume_revision, MAX_REPLAY + 1).await?;
                if changes.len() as u64 <= MAX_REPLAY {
                    let revision = changes.last().map_or(resume_revision, |c| c.revision);
                    return self.delta(revision, &changes).await;
                }
            }
        }
        self.snapshot().await
    }

    /// Everything, labelled with a revision read before the objects: the objects are
    /// at least that new, and re-applying a later delta to them is harmless.
    pub async fn snapshot(&self) -> Result<pb::ConfigEvent, StoreError> {
        let revision = self.store.config_log().current_revision().await?;
        let servers = self.store.servers().all().await?;
        let providers = self.store.providers().all().await?;
        Ok(pb::ConfigEvent {
            revision,
            kind: Some(pb::config_event::Kind::Snapshot(pb::ConfigSnapshot {
                servers: servers.iter().map(server_config).collect(),
                providers: providers.iter().map(provider_config).collect(),
            })),
        })
    }

    /// The current state of every object the changes touch; gone objects are removals.
    async fn delta(
        &self,
        revision: i64,
        changes: &[ConfigChange],
    ) -> Result<pb::ConfigEvent, StoreError> {
        let touched: BTreeSet<(ConfigKind, &str)> =
            changes.iter().map(|c| (c.kind, c.name.as_str())).collect();
        let mut delta = pb::ConfigDelta::default();
        for (kind, name) in touched {
            match kind {
                ConfigKind::Server => match self.store.servers().get(name).await {
                    Ok(stored) => delta.upserted_servers.push(server_config(&stored.spec)),
                    Err(StoreError::NotFound { .. }) => delta.removed_servers.push(name.into()),
                    Err(error) => return Err(error),
                },
                ConfigKind::Provider => match self.store.providers().get(name).await {
                    Ok(stored) => delta.upserted_providers.push(provider_config(&stored.spec)),
                    Err(StoreError::NotFound { .. }) => delta.removed_providers.push(name.into()),
                    Err(error) => return Err(error),
                },
                ConfigKind::Connection => {
                    if let Some(key) = adp_store::parse_connection_name(name) {
                        delta.revoked_connections.push(pb::ConnectionRevoked {
                            issuer: key.issuer,
                            subject: key.subject,
                            provider_name: key.provider_name,
                        });
                    }
                }
            }
        }
        Ok(pb::ConfigEvent {
            revision,
            kind: Some(pb::config_event::Kind::Delta(delta)),
        })
    }
}

async fn pump(feed: Arc<ConfigFeed>, mut shutdown: watch::Receiver<bool>) {
    let log = feed.store.config_log();
    let mut last = loop {
        match log.current_revision().await {
            Ok(revision) => break revision,
            Err(error) => {
                tracing::warn!(%error, "config feed cannot read the current revision; retrying");
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
    };
    let mut listener = None;
    let mut poll = tokio::time::interval(POLL_INTERVAL);
    let mut rounds: u64 = 0;
    loop {
        if listener.is_none() {
            listener = match log.listen().await {
                Ok(Some(l)) => Some(l),
                Ok(None) => None,
                Err(error) => {
                    tracing::warn!(%error, "cannot LISTEN for config changes; polling only");
                    None
                }
            };
        }
        let notified = async {
            match listener.as_mut() {
                Some(l) => l.recv().await.map(|_| ()),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = log.local_write() => {}
            result = notified => {
                if let Err(error) = result {
                    tracing::warn!(%error, "config LISTEN connection failed; reconnecting");
                    listener = None;
                }
            }
            _ = poll.tick() => {
                rounds += 1;
                if rounds.is_multiple_of(600) && let Err(error) = log.prune(RETAINED_REVISIONS).await {
                    tracing::warn!(%error, "cannot prune the config change log");
                }
            }
            _ = shutdown.changed() => return,
        }
        // drain everything committed so far, in bounded rounds
        loop {
            let changes = match log.changes_after(last, MAX_REPLAY).await {
                Ok(changes) => changes,
                Err(error) => {
                    tracing::warn!(%error, "config feed cannot read the change log");
                    break;
                }
            };
            let Some(newest) = changes.last().map(|c| c.revision) else {
                break;
            };
            for change in &changes {
                (feed.on_change)(change);
            }
            match feed.delta(newest, &changes).await {
                Ok(event) => {
                    last = newest;
                    // no subscribers is not an error: the next one starts from a snapshot
                    let _ = feed.events.send(Arc::new(event));
                }
                Err(error) => {
                    tracing::warn!(%error, "config feed cannot load changed objects");
                    break;
                }
            }
            if (changes.len() as u64) < MAX_REPLAY {
                break;
            }
        }
    }
}

pub fn server_config(server: &McpServer) -> pb::ServerConfig {
    let (upstream_url, transport) = match &server.source {
        Source::Remote { url, transport } => (url.clone(), *transport),
        // the managed catalog carries no endpoints in this deployment
        Source::Managed { .. } => (String::new(), Transport::StreamableHttp),
    };
    pb::ServerConfig {
        server: Some(pb::McpServer::from(server)),
        upstream_url,
        transport: match transport {
            Transport::StreamableHttp => pb::Transport::StreamableHttp as i32,
            Transport::Sse => pb::Transport::Sse as i32,
        },
    }
}

pub fn provider_config(provider: &OAuthProvider) -> pb::ProviderConfig {
    let public = pb::OAuthProvider::from(provider);
    pb::ProviderConfig {
        name: public.name,
        display_name: public.display_name,
        scopes: public.scopes,
        grant_types: public.grant_types,
        enabled: public.enabled,
    }
}
