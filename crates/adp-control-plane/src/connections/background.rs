//! The optional background refresher (`ADP_BACKGROUND_REFRESH`): providers that end a
//! refresh token nobody used for a while (an idle lifetime) would end the connection of
//! a user who simply did not call for a week. Every replica sweeps; the refresh lease
//! and the idle check on the row the refresh reads make it one refresh per connection.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use adp_core::connection::ConnectionKey;
use chrono::Utc;
use tokio::sync::watch;

use super::{Connections, Usable};

/// Rows read per page of a sweep.
const PAGE: u64 = 500;

/// Sweeps every quarter of `idle` (between 1 s and 5 min, with ±20% jitter so
/// replicas drift apart) and refreshes, one at a time, connections whose tokens were
/// last stored more than `idle` ago. A connection whose refresh stored nothing (no
/// refresh token, a failing provider) is not tried again for `idle`, so such rows never
/// hold up the rest.
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
    let mut attempted: HashMap<ConnectionKey, Instant> = HashMap::new();
    loop {
        let pause = period.mul_f64(0.8 + 0.4 * rand::random::<f64>());
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        attempted.retain(|_, at| at.elapsed() < idle);
        let before = Utc::now() - chrono::Duration::from_std(idle).unwrap_or_default();
        let mut offset = 0;
        loop {
            let page = match connections
                .store
                .connections()
                .idle_since(before, offset, PAGE)
                .await
            {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(%error, "background refresh cannot list idle connections");
                    break;
                }
            };
            let full = page.len() as u64 == PAGE;
            offset += PAGE;
            for key in page {
                if *shutdown.borrow() {
                    return;
                }
                if attempted.contains_key(&key) {
                    continue;
                }
                attempted.insert(key.clone(), Instant::now());
                let provider = key.provider_name.clone();
                match connections.refresh_idle(key, before).await {
                    Ok(Usable::Tokens(_)) => {}
                    Ok(Usable::Expired(reason)) => {
                        tracing::info!(%provider, reason = reason.as_str(), "an idle connection had ended");
                    }
                    Err(error) => tracing::warn!(%provider, %error, "background refresh failed"),
                }
            }
            if !full {
                break;
            }
        }
    }
}
