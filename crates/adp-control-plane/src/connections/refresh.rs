//! Tokens that are usable now: refreshed ahead of expiry, at most one refresh per
//! connection at a time — one per process through a per-connection mutex, one across
//! replicas through a lease taken by compare-and-swap on the row's version.

use std::sync::Arc;
use std::time::Duration;

use adp_core::ApiError;
use adp_core::connection::{ConnectionKey, ExpiredReason, StoredConnection};
use adp_oauth::{FlowError, TokenSet};
use adp_store::TokenWrite;
use chrono::Utc;

use super::Connections;
use crate::errors::store_error;

/// How a user's tokens turned out.
#[derive(Debug)]
pub enum Usable {
    Tokens(TokenSet),
    /// The connection has ended; the user must consent again.
    Expired(ExpiredReason),
}

impl Connections {
    fn refresh_lock(&self, key: &ConnectionKey) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .refresh_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if locks.len() > 10_000 {
            // drop locks nobody holds so the map stays bounded
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        locks.entry(key.clone()).or_default().clone()
    }

    /// Whether the access token should be refreshed now.
    fn due(&self, connection: &StoredConnection) -> bool {
        let Some(expires) = connection.access_expire_time else {
            return false;
        };
        let jitter_ms = u64::try_from(self.settings.refresh_jitter.as_millis()).unwrap_or(0);
        let jitter = Duration::from_millis(if jitter_ms == 0 {
            0
        } else {
            rand::random::<u64>() % jitter_ms
        });
        let window =
            chrono::Duration::from_std(self.settings.refresh_ahead + jitter).unwrap_or_default();
        expires - Utc::now() <= window
    }

    /// Tokens for this stored connection, refreshing first when they are due.
    pub async fn usable_tokens(&self, connection: StoredConnection) -> Result<Usable, ApiError> {
        if let Some(reason) = connection.expired {
            return Ok(Usable::Expired(reason));
        }
        if !self.due(&connection) {
            return Ok(Usable::Tokens(self.open_tokens(&connection)?));
        }
        let lock = self.refresh_lock(&connection.key);
        let _guard = lock.lock().await;
        // a caller ahead of us in this process may have refreshed already
        let Some(current) = self
            .store
            .connections()
            .get(&connection.key)
            .await
            .map_err(store_error)?
        else {
            return Ok(Usable::Expired(ExpiredReason::Revoked));
        };
        if let Some(reason) = current.expired {
            return Ok(Usable::Expired(reason));
        }
        if current.version != connection.version && !self.due(&current) {
            return Ok(Usable::Tokens(self.open_tokens(&current)?));
        }
        self.refresh(current).await
    }

    async fn refresh(&self, current: StoredConnection) -> Result<Usable, ApiError> {
        let key = current.key.clone();
        let lease_until = Utc::now()
            + chrono::Duration::from_std(self.settings.refresh_lease).unwrap_or_default();
        let old = self.open_tokens(&current)?;
        // the provider is read before the lease: an admin moving its token endpoint
        // discards the tokens first (bumping the version), so a lease taken on this
        // version means these endpoints are the ones the tokens belong to
        let provider = self.provider(&key.provider_name).await?;
        let endpoints = self.endpoints(&provider).await?;
        if !self
            .store
            .connections()
            .acquire_refresh_lease(&key, current.version, lease_until)
            .await
            .map_err(store_error)?
        {
            return self.wait_for_peer(current, old).await;
        }
        let Some(refresh_token) = old.refresh_token.clone() else {
            if still_valid(&old) {
                self.store
                    .connections()
                    .release_lease(&key, current.version)
                    .await
                    .map_err(store_error)?;
                return Ok(Usable::Tokens(old));
            }
            self.expire(
                &key,
                current.version,
                ExpiredReason::NoRefreshToken,
                "the access token expired and the provider issued no refresh token",
            )
            .await?;
            return Ok(Usable::Expired(ExpiredReason::NoRefreshToken));
        };
        match self.oauth.refresh(&endpoints, &refresh_token).await {
            Ok(mut fresh) => {
                // no refresh token in the answer means the old one stays valid
                if fresh.refresh_token.is_none() {
                    fresh.refresh_token = Some(refresh_token);
                }
                let write = TokenWrite {
                    sealed_tokens: self.seal_tokens(&key, &fresh)?,
                    granted_scopes: fresh
                        .scopes
                        .clone()
                        .unwrap_or_else(|| current.granted_scopes.clone()),
                    access_expire_time: fresh.expires_at,
                };
                if !self
                    .store
                    .connections()
                    .store_refresh(&key, current.version, write)
                    .await
                    .map_err(store_error)?
                {
                    tracing::warn!(provider = %key.provider_name, "refreshed tokens lost a race with another write");
                }
                tracing::info!(provider = %key.provider_name, subject = %key.subject, "connection refreshed");
                self.notify(&key);
                Ok(Usable::Tokens(fresh))
            }
            Err(FlowError::InvalidGrant { .. }) => {
                self.expire(
                    &key,
                    current.version,
                    ExpiredReason::RefreshRejected,
                    "the provider rejected the refresh token (invalid_grant)",
                )
                .await?;
                Ok(Usable::Expired(ExpiredReason::RefreshRejected))
            }
            Err(error) => {
                // 5xx, timeouts, network, odd answers: keep everything, let a later call retry
                tracing::warn!(provider = %key.provider_name, %error, "refresh failed; keeping the current token");
                self.store
                    .connections()
                    .release_lease(&key, current.version)
                    .await
                    .map_err(store_error)?;
                if still_valid(&old) {
                    Ok(Usable::Tokens(old))
                } else {
                    Ok(Usable::Expired(ExpiredReason::UpstreamUnavailable))
                }
            }
        }
    }

    /// Another replica holds the lease: use the current token while it is valid,
    /// otherwise wait (bounded by the lease) for the peer's refresh to land.
    async fn wait_for_peer(
        &self,
        current: StoredConnection,
        old: TokenSet,
    ) -> Result<Usable, ApiError> {
        if still_valid(&old) {
            return Ok(Usable::Tokens(old));
        }
        let deadline = tokio::time::Instant::now() + self.settings.refresh_lease;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let Some(latest) = self
                .store
                .connections()
                .get(&current.key)
                .await
                .map_err(store_error)?
            else {
                return Ok(Usable::Expired(ExpiredReason::Revoked));
            };
            if let Some(reason) = latest.expired {
                return Ok(Usable::Expired(reason));
            }
            if latest.version != current.version {
                return Ok(Usable::Tokens(self.open_tokens(&latest)?));
            }
        }
        Ok(Usable::Expired(ExpiredReason::UpstreamUnavailable))
    }

    async fn expire(
        &self,
        key: &ConnectionKey,
        version: i64,
        reason: ExpiredReason,
        text: &str,
    ) -> Result<(), ApiError> {
        self.store
            .connections()
            .mark_expired(key, version, reason, text)
            .await
            .map_err(store_error)?;
        tracing::info!(provider = %key.provider_name, subject = %key.subject, reason = reason.as_str(), "connection expired");
        self.notify(key);
        Ok(())
    }
}

fn still_valid(tokens: &TokenSet) -> bool {
    tokens
        .expires_at
        .is_none_or(|at| at > Utc::now() + chrono::Duration::seconds(5))
}
