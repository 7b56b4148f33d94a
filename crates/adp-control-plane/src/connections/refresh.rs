//! Tokens that are usable now: refreshed ahead of expiry, at most one refresh per
//! connection at a time — one per process through a shared in-flight refresh, one
//! across replicas through a lease taken by compare-and-swap on the row's version.
//!
//! A refresh never loses a rotated refresh token to its caller: it runs in its own
//! task, which a caller that hangs up or runs out of deadline cannot abort between the
//! provider rotating the token and the store keeping the new one; callers only wait
//! on its result. The lease outlives the slowest refresh the OAuth client can make.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use adp_core::ApiError;
use adp_core::backoff::Backoff;
use adp_core::connection::{ConnectionKey, ExpiredReason, StoredConnection};
use adp_oauth::{FlowError, TokenSet};
use adp_store::TokenWrite;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use super::Connections;
use crate::errors::store_error;

/// How a user's tokens turned out.
#[derive(Clone, Debug)]
pub enum Usable {
    Tokens(TokenSet),
    /// The connection has ended; the user must consent again.
    Expired(ExpiredReason),
}

/// One connection's refresh, awaited by every caller that needs it.
pub(super) type Flight = Shared<BoxFuture<'static, Result<Usable, ApiError>>>;

/// A flight with the id that tells it apart from a later flight of the same connection.
pub(super) type Flights = std::collections::HashMap<ConnectionKey, (u64, Flight)>;

/// How long before its lease ends a refresh stops trying to store its answer: past the
/// lease a peer may refresh, so the answer is kept in memory instead (see `unsaved`).
const STORE_BEFORE_LEASE_ENDS: Duration = Duration::from_secs(2);
/// Storing a refreshed token while the database is away: 50–100 ms, up to 2 s.
const STORE_RETRY: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));

/// How often a replica waiting on a peer's lease looks at the row again.
const PEER_POLL: Duration = Duration::from_millis(100);

/// How far ahead of expiry a token is refreshed: `ahead`, or half the token's
/// lifetime when that is shorter, plus a share `roll` (0..1) of `jitter`, itself at
/// most an eighth of the lifetime. A token is thus never due on arrival, and one that
/// lives 30 s is refreshed once per 15 s of use whatever the settings say.
pub(crate) fn refresh_window(
    lifetime: Duration,
    ahead: Duration,
    jitter: Duration,
    roll: f64,
) -> Duration {
    ahead.min(lifetime / 2) + jitter.min(lifetime / 8).mul_f64(roll.clamp(0.0, 1.0))
}

/// A share in 0..1 fixed per connection and version: every caller and replica
/// decides alike whether one token is due, and users' refreshes spread out.
fn jitter_roll(connection: &StoredConnection) -> f64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (&connection.key, connection.version).hash(&mut hasher);
    (hasher.finish() % 10_000) as f64 / 10_000.0
}

/// What became of tokens a refresh could not store in time.
enum Unsaved {
    None,
    Stored,
    Pending(TokenSet),
}

/// Removes its own flight from the map however its task ends (a panic, or a runtime
/// shutting down, included), so the next caller starts a new one instead of joining a
/// dead one.
struct Landed {
    connections: Arc<Connections>,
    key: ConnectionKey,
    id: u64,
}

impl Drop for Landed {
    fn drop(&mut self) {
        let mut flights = self.connections.flights();
        if flights.get(&self.key).is_some_and(|(id, _)| *id == self.id) {
            flights.remove(&self.key);
        }
    }
}

impl Connections {
    fn flights(&self) -> std::sync::MutexGuard<'_, Flights> {
        self.refresh_flights
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the access token should be refreshed at `now`.
    fn due_at(&self, connection: &StoredConnection, now: DateTime<Utc>) -> bool {
        let Some(expires) = connection.access_expire_time else {
            return false;
        };
        // stored with the token, so its lifetime is the time between the two
        let lifetime = (expires - connection.update_time)
            .to_std()
            .unwrap_or_default();
        let window = refresh_window(
            lifetime,
            self.settings.refresh_ahead,
            self.settings.refresh_jitter,
            jitter_roll(connection),
        );
        expires - now <= chrono::Duration::from_std(window).unwrap_or_default()
    }

    fn due(&self, connection: &StoredConnection) -> bool {
        self.due_at(connection, Utc::now())
    }

    /// Tokens for this stored connection, refreshing first when they are due.
    pub async fn usable_tokens(
        self: &Arc<Self>,
        connection: StoredConnection,
    ) -> Result<Usable, ApiError> {
        if let Some(reason) = connection.expired {
            return Ok(Usable::Expired(reason));
        }
        if !self.due(&connection) {
            return Ok(Usable::Tokens(self.open_tokens(&connection)?));
        }
        self.refresh_flight(connection.key.clone(), None).await
    }

    /// Refreshes the connection if its tokens were last stored before `idle_before`
    /// (or are due): the background refresher keeping an idle grant alive. Checked
    /// again on the row the refresh reads, so replicas sweeping together refresh once.
    pub async fn refresh_idle(
        self: &Arc<Self>,
        key: ConnectionKey,
        idle_before: DateTime<Utc>,
    ) -> Result<Usable, ApiError> {
        self.refresh_flight(key, Some(idle_before)).await
    }

    /// The refresh of this connection in flight on this replica, or a new one.
    fn refresh_flight(
        self: &Arc<Self>,
        key: ConnectionKey,
        idle_before: Option<DateTime<Utc>>,
    ) -> Flight {
        let (id, flight, answer) = {
            let mut flights = self.flights();
            if let Some((_, flight)) = flights.get(&key) {
                return flight.clone();
            }
            let id = self
                .flight_ids
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (answer, answered) = tokio::sync::oneshot::channel();
            let flight = async move {
                answered.await.unwrap_or_else(|_| {
                    tracing::error!("a refresh task ended without an answer");
                    Err(ApiError::internal("the token refresh failed"))
                })
            }
            .boxed()
            .shared();
            flights.insert(key.clone(), (id, flight.clone()));
            (id, flight, answer)
        };
        // spawned after the lock is released: a runtime shutting down drops the task at
        // once, and its `Landed` takes the lock
        let landed = Landed {
            connections: self.clone(),
            key,
            id,
        };
        tokio::spawn(async move {
            let result = landed
                .connections
                .refresh_now(&landed.key, idle_before)
                .await;
            drop(landed);
            let _ = answer.send(result);
        });
        flight
    }

    /// Waits, up to `within`, for the refreshes running on this replica to store what
    /// they got (a shutdown must not end the process between a provider rotating a
    /// refresh token and the vault keeping it). Returns how many were still running.
    pub async fn drain_refreshes(&self, within: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let running = self.flights().len();
            if running == 0 || tokio::time::Instant::now() >= deadline {
                return running;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn current(&self, key: &ConnectionKey) -> Result<Option<StoredConnection>, ApiError> {
        self.store.connections().get(key).await.map_err(store_error)
    }

    /// The refresh itself, from a fresh read of the row: a refresh that landed since
    /// the caller read it (here or on a peer), or one whose answer was lost, shows there.
    async fn refresh_now(
        &self,
        key: &ConnectionKey,
        idle_before: Option<DateTime<Utc>>,
    ) -> Result<Usable, ApiError> {
        // a few rounds: a peer's lease or write can land between our read and our swap
        for _ in 0..3 {
            let Some(row) = self.current(key).await? else {
                return Ok(Usable::Expired(ExpiredReason::Revoked));
            };
            if let Some(reason) = row.expired {
                return Ok(Usable::Expired(reason));
            }
            match self.store_unsaved(&row).await {
                Unsaved::None => {}
                // stored: look at the row it made, which may itself be due by now
                Unsaved::Stored => continue,
                Unsaved::Pending(kept) if still_valid(&kept) => {
                    return Ok(Usable::Tokens(kept));
                }
                Unsaved::Pending(_) => {
                    return Err(ApiError::unavailable(
                        "refreshed tokens wait to be stored; the database is unavailable",
                    ));
                }
            }
            let idle = idle_before.is_some_and(|before| row.update_time < before);
            if !idle && !self.due(&row) {
                return Ok(Usable::Tokens(self.open_tokens(&row)?));
            }
            if let Some(until) = row.refresh_lease_until.filter(|until| *until > Utc::now()) {
                let old = self.open_tokens(&row)?;
                if still_valid(&old) {
                    return Ok(Usable::Tokens(old));
                }
                match self.wait_for_peer(&row, until).await? {
                    Some(outcome) => return Ok(outcome),
                    None => continue,
                }
            }
            // the provider is read before the lease: an admin moving its token
            // endpoint discards the tokens first (bumping the version), so a lease
            // taken on this version means these endpoints are the ones the tokens
            // belong to
            let provider = self.provider(&key.provider_name).await?;
            let endpoints = self.endpoints(&provider).await?;
            let lease_until =
                Utc::now() + chrono::Duration::from_std(self.refresh_lease).unwrap_or_default();
            if self
                .store
                .connections()
                .acquire_refresh_lease(key, row.version, lease_until)
                .await
                .map_err(store_error)?
            {
                return self.refresh_leased(row, &endpoints, lease_until).await;
            }
        }
        Ok(Usable::Expired(ExpiredReason::UpstreamUnavailable))
    }

    /// Refreshes under the lease this replica holds on `current.version`.
    async fn refresh_leased(
        &self,
        current: StoredConnection,
        endpoints: &adp_oauth::ProviderEndpoints,
        lease_until: DateTime<Utc>,
    ) -> Result<Usable, ApiError> {
        let key = current.key.clone();
        let old = self.open_tokens(&current)?;
        let Some(refresh_token) = old.refresh_token.clone() else {
            self.release(&current).await?;
            if still_valid(&old) {
                return Ok(Usable::Tokens(old));
            }
            self.expire(
                &current,
                ExpiredReason::NoRefreshToken,
                "the access token expired and the provider issued no refresh token",
            )
            .await?;
            return Ok(Usable::Expired(ExpiredReason::NoRefreshToken));
        };
        match self.oauth.refresh(endpoints, &refresh_token).await {
            Ok(mut fresh) => {
                // no refresh token in the answer means the old one stays valid
                if fresh.refresh_token.is_none() {
                    fresh.refresh_token = Some(refresh_token);
                }
                self.store_refreshed(&current, &fresh, lease_until).await?;
                tracing::info!(provider = %key.provider_name, subject = %key.subject, "connection refreshed");
                self.notify(&key);
                Ok(Usable::Tokens(fresh))
            }
            Err(FlowError::InvalidGrant { .. }) => {
                // a peer whose lease ran out may have refreshed meanwhile, with a
                // newer refresh token than the one the provider just refused
                if let Some(latest) = self.current(&key).await?
                    && latest.version != current.version
                {
                    return Ok(match latest.expired {
                        Some(reason) => Usable::Expired(reason),
                        None => Usable::Tokens(self.open_tokens(&latest)?),
                    });
                }
                if !self
                    .expire(
                        &current,
                        ExpiredReason::RefreshRejected,
                        "the provider rejected the refresh token (invalid_grant): access was revoked or has expired there, or an earlier refresh's answer was lost and the provider treated the retry as refresh-token reuse",
                    )
                    .await?
                    && let Some(latest) = self.current(&key).await?
                    && latest.expired.is_none()
                {
                    // a write landed between our read and our expiry: it wins
                    return Ok(Usable::Tokens(self.open_tokens(&latest)?));
                }
                Ok(Usable::Expired(ExpiredReason::RefreshRejected))
            }
            Err(error) => {
                // 5xx, timeouts, network, odd answers: keep everything, let a later call retry
                tracing::warn!(provider = %key.provider_name, %error, "refresh failed; keeping the current token");
                self.release(&current).await?;
                if still_valid(&old) {
                    Ok(Usable::Tokens(old))
                } else {
                    Ok(Usable::Expired(ExpiredReason::UpstreamUnavailable))
                }
            }
        }
    }

    /// Stores what the provider answered. The old refresh token is spent at a rotating
    /// provider, so a database hiccup is retried while the lease lasts, and after that
    /// the answer is kept in memory, served, and stored before any further refresh.
    async fn store_refreshed(
        &self,
        current: &StoredConnection,
        fresh: &TokenSet,
        lease_until: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let key = &current.key;
        let write = TokenWrite {
            sealed_tokens: self.seal_tokens(key, fresh)?,
            granted_scopes: fresh
                .scopes
                .clone()
                .unwrap_or_else(|| current.granted_scopes.clone()),
            access_expire_time: fresh.expires_at,
        };
        let left = (lease_until - Utc::now()).to_std().unwrap_or_default();
        let give_up = tokio::time::Instant::now() + left.saturating_sub(STORE_BEFORE_LEASE_ENDS);
        let mut failures = 0;
        loop {
            failures += 1;
            let delay = STORE_RETRY.delay(failures);
            match self
                .store
                .connections()
                .store_refresh(key, current.version, write.clone())
                .await
            {
                Ok(true) => return Ok(()),
                Ok(false) => {
                    // a consent, revocation or admin change superseded this grant
                    tracing::warn!(provider = %key.provider_name, "refreshed tokens lost a race with another write");
                    return Ok(());
                }
                Err(error) if tokio::time::Instant::now() + delay < give_up => {
                    tracing::warn!(provider = %key.provider_name, %error, "cannot store refreshed tokens yet; retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(error) => {
                    tracing::error!(provider = %key.provider_name, %error, "refreshed tokens could not be stored before the lease ended; keeping them in memory");
                    self.unsaved()
                        .insert(key.clone(), (current.version, fresh.clone()));
                    return Ok(());
                }
            }
        }
    }

    fn unsaved(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<ConnectionKey, (i64, TokenSet)>> {
        self.unsaved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores tokens a refresh on this replica got but could not store, on the row
    /// they belong to. Until the database takes them they are served as they are.
    async fn store_unsaved(&self, row: &StoredConnection) -> Unsaved {
        let Some((version, tokens)) = self.unsaved().get(&row.key).cloned() else {
            return Unsaved::None;
        };
        if version != row.version {
            // a consent, revocation or admin change superseded them
            self.unsaved().remove(&row.key);
            return Unsaved::None;
        }
        let Ok(sealed_tokens) = self.seal_tokens(&row.key, &tokens) else {
            return Unsaved::Pending(tokens);
        };
        let write = TokenWrite {
            sealed_tokens,
            granted_scopes: tokens
                .scopes
                .clone()
                .unwrap_or_else(|| row.granted_scopes.clone()),
            access_expire_time: tokens.expires_at,
        };
        match self
            .store
            .connections()
            .store_refresh(&row.key, version, write)
            .await
        {
            Ok(stored) => {
                self.unsaved().remove(&row.key);
                if stored {
                    tracing::info!(provider = %row.key.provider_name, "refreshed tokens kept in memory are stored");
                    self.notify(&row.key);
                }
                Unsaved::Stored
            }
            Err(_) => Unsaved::Pending(tokens),
        }
    }

    /// Another replica holds the lease until `until` and our token is spent: wait for
    /// the peer's refresh to land. `None` when the lease ended with nothing stored (the
    /// peer gave up or died), so the caller may try itself.
    async fn wait_for_peer(
        &self,
        current: &StoredConnection,
        until: DateTime<Utc>,
    ) -> Result<Option<Usable>, ApiError> {
        let left = (until - Utc::now()).to_std().unwrap_or_default();
        let deadline = tokio::time::Instant::now() + left.min(self.refresh_lease) + PEER_POLL;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(PEER_POLL).await;
            let Some(latest) = self.current(&current.key).await? else {
                return Ok(Some(Usable::Expired(ExpiredReason::Revoked)));
            };
            if let Some(reason) = latest.expired {
                return Ok(Some(Usable::Expired(reason)));
            }
            if latest.version != current.version {
                return Ok(Some(Usable::Tokens(self.open_tokens(&latest)?)));
            }
            if latest.refresh_lease_until.is_none() {
                break;
            }
        }
        Ok(None)
    }

    async fn release(&self, current: &StoredConnection) -> Result<(), ApiError> {
        self.store
            .connections()
            .release_lease(&current.key, current.version)
            .await
            .map_err(store_error)
    }

    async fn expire(
        &self,
        current: &StoredConnection,
        reason: ExpiredReason,
        text: &str,
    ) -> Result<bool, ApiError> {
        let key = &current.key;
        let expired = self
            .store
            .connections()
            .mark_expired(key, current.version, reason, text)
            .await
            .map_err(store_error)?;
        if expired {
            tracing::info!(provider = %key.provider_name, subject = %key.subject, reason = reason.as_str(), "connection expired");
            self.notify(key);
        }
        Ok(expired)
    }
}

fn still_valid(tokens: &TokenSet) -> bool {
    tokens
        .expires_at
        .is_none_or(|at| at > Utc::now() + chrono::Duration::seconds(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn the_window_is_the_setting_for_long_tokens_and_half_the_life_for_short_ones() {
        assert_eq!(refresh_window(S(3600), S(60), S(15), 0.0), S(60));
        assert_eq!(refresh_window(S(3600), S(60), S(15), 1.0), S(75));
        assert_eq!(refresh_window(S(30), S(60), S(0), 0.7), S(15));
        // jitter is bounded by the lifetime too, so a short token is never due on arrival
        assert_eq!(
            refresh_window(S(30), S(60), S(15), 1.0),
            S(15) + Duration::from_millis(3750)
        );
        for lifetime in [0, 1, 2, 10, 30, 61, 120] {
            assert!(refresh_window(S(lifetime), S(600), S(600), 1.0) <= S(lifetime) * 5 / 8);
        }
    }
}
