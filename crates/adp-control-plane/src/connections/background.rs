//! The optional background refresher (`ADP_BACKGROUND_REFRESH`): providers that end a
//! refresh token nobody used for a while (an idle lifetime) would end the connection of
//! a user who simply did not call for a week. Every replica sweeps; the refresh lease
//! and the idle check on the row the refresh reads make it one refresh per connection.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use super::{Connections, Usable};

/// Connections looked at per sweep; the rest wait for the next one.
const SWEEP_BATCH: u64 = 1000;

/// Sweeps every quarter of `idle` (between 1 s and 5 min, with ±20% jitter so
/// replicas drift apart) and refreshes, one at a time, connections whose tokens were
/// last stored more than `idle` ago.
pub async fn run(
    connections: Arc<Connections>,
    idle: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let period = (idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(300));
    tracing::info!(
        idle_s = idle.as_secs(),
        "background refresh of idle connections is on"
    );
    loop {
        let pause = period.mul_f64(0.8 + 0.4 * rand::random::<f64>());
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let before = Utc::now() - chrono::Duration::from_std(idle).unwrap_or_default();
        let keys = match connections
            .store
            .connections()
            .idle_since(before, SWEEP_BATCH)
            .await
        {
            Ok(keys) => keys,
            Err(error) => {
                tracing::warn!(%error, "background refresh cannot list idle connections");
                continue;
            }
        };
        for key in keys {
            if *shutdown.borrow() {
                return;
            }
            let provider = key.provider_name.clone();
            match connections.refresh_idle(key, before).await {
                Ok(Usable::Tokens(_)) => {}
                Ok(Usable::Expired(reason)) => {
                    tracing::info!(%provider, reason = reason.as_str(), "an idle connection had ended");
                }
                Err(error) => tracing::warn!(%provider, %error, "background refresh failed"),
            }
        }
    }
}
