use adp_core::connection::{ConnectionKey, ExpiredReason, StoredConnection};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};

use super::config_log::{self, ConfigKind, connection_name};
use super::now;
use crate::entity::connection as row;
use crate::{Store, StoreError};

const KIND: &str = "connection";

/// A user's connections. Every write bumps `version`; refreshes compare-and-swap on it,
/// which is what keeps one refresh per connection across replicas.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionRepo<'a> {
    pub(crate) store: &'a Store,
}

/// What a successful consent or refresh stores.
#[derive(Clone)]
pub struct TokenWrite {
    pub sealed_tokens: Vec<u8>,
    pub granted_scopes: Vec<String>,
    pub access_expire_time: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for TokenWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenWrite")
            .field(
                "sealed_tokens",
                &format_args!("<{} sealed bytes>", self.sealed_tokens.len()),
            )
            .field("granted_scopes", &self.granted_scopes)
            .field("access_expire_time", &self.access_expire_time)
            .finish()
    }
}

/// Commits `txn` with a change-log row for the connection, so every replica's
/// proxies drop what they cached for it.
async fn announce(
    store: &Store,
    txn: sea_orm::DatabaseTransaction,
    key: &ConnectionKey,
) -> Result<(), StoreError> {
    config_log::commit(store, txn, ConfigKind::Connection, &connection_name(key)).await
}

fn by_key(key: &ConnectionKey) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(row::Column::Issuer.eq(key.issuer.clone()))
        .add(row::Column::Subject.eq(key.subject.clone()))
        .add(row::Column::ProviderName.eq(key.provider_name.clone()))
}

impl ConnectionRepo<'_> {
    pub async fn get(&self, key: &ConnectionKey) -> Result<Option<StoredConnection>, StoreError> {
        row::Entity::find()
            .filter(by_key(key))
            .all(&self.store.reader)
            .await?
            .into_iter()
            .next()
            .map(to_stored)
            .transpose()
    }

    pub async fn list_for_user(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Vec<StoredConnection>, StoreError> {
        row::Entity::find()
            .filter(row::Column::Issuer.eq(issuer))
            .filter(row::Column::Subject.eq(subject))
            .all(&self.store.reader)
            .await?
            .into_iter()
            .map(to_stored)
            .collect()
    }

    /// Stores the tokens from a completed consent: a new connection, or the same one
    /// updated in place (a scope upgrade or a reconnect after expiry).
    pub async fn save_consent(
        &self,
        key: &ConnectionKey,
        write: TokenWrite,
    ) -> Result<StoredConnection, StoreError> {
        let scopes = scopes_json(&write.granted_scopes)?;
        for _ in 0..3 {
            let time = now();
            let updated = row::Entity::update_many()
                .col_expr(
                    row::Column::SealedTokens,
                    Expr::value(write.sealed_tokens.clone()),
                )
                .col_expr(row::Column::GrantedScopes, Expr::value(scopes.clone()))
                .col_expr(
                    row::Column::ExpiredReason,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(row::Column::StatusReason, Expr::value(String::new()))
                .col_expr(row::Column::ConnectTime, Expr::value(time))
                .col_expr(row::Column::UpdateTime, Expr::value(time))
                .col_expr(
                    row::Column::AccessExpireTime,
                    Expr::value(write.access_expire_time),
                )
                .col_expr(
                    row::Column::RefreshLeaseUntil,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .col_expr(row::Column::Version, Expr::col(row::Column::Version).add(1))
                .filter(by_key(key))
                .exec(&self.store.writer)
                .await?;
            if updated.rows_affected == 0 {
                let model = row::ActiveModel {
                    issuer: Set(key.issuer.clone()),
                    subject: Set(key.subject.clone()),
                    provider_name: Set(key.provider_name.clone()),
                    sealed_tokens: Set(write.sealed_tokens.clone()),
                    granted_scopes: Set(scopes.clone()),
                    expired_reason: Set(None),
                    status_reason: Set(String::new()),
                    connect_time: Set(time),
                    update_time: Set(time),
                    access_expire_time: Set(write.access_expire_time),
                    version: Set(1),
                    refresh_lease_until: Set(None),
                };
                let inserted = row::Entity::insert(model)
                    .exec_without_returning(&self.store.writer)
                    .await;
                match inserted
                    .map_err(|error| StoreError::from_write(KIND, &key.provider_name, error))
                {
                    Ok(_) => {}
                    // a concurrent consent inserted first: update it instead
                    Err(StoreError::AlreadyExists { .. }) => continue,
                    Err(other) => return Err(other),
                }
            }
            return self.get(key).await?.ok_or_else(|| StoreError::NotFound {
                kind: KIND,
                name: key.provider_name.clone(),
            });
        }
        Err(StoreError::VersionConflict {
            kind: KIND,
            name: key.provider_name.clone(),
        })
    }

    /// Takes the right to refresh this connection until `lease_until`, if nobody
    /// changed it since `seen_version` and no live lease is held. One winner per version.
    pub async fn acquire_refresh_lease(
        &self,
        key: &ConnectionKey,
        seen_version: i64,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = row::Entity::update_many()
            .col_expr(
                row::Column::RefreshLeaseUntil,
                Expr::value(Some(lease_until)),
            )
            .filter(by_key(key))
            .filter(row::Column::Version.eq(seen_version))
            .filter(row::Column::ExpiredReason.is_null())
            .filter(
                sea_orm::Condition::any()
                    .add(row::Column::RefreshLeaseUntil.is_null())
                    .add(row::Column::RefreshLeaseUntil.lt(now())),
            )
            .exec(&self.store.writer)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Stores refreshed tokens (a rotated refresh token travels inside the same sealed
    /// set, so it replaces the old one in this one write) and drops the lease.
    pub async fn store_refresh(
        &self,
        key: &ConnectionKey,
        seen_version: i64,
        write: TokenWrite,
    ) -> Result<bool, StoreError> {
        let result = row::Entity::update_many()
            .col_expr(row::Column::SealedTokens, Expr::value(write.sealed_tokens))
            .col_expr(
                row::Column::GrantedScopes,
                Expr::value(scopes_json(&write.granted_scopes)?),
            )
            .col_expr(
                row::Column::AccessExpireTime,
                Expr::value(write.access_expire_time),
            )
            .col_expr(row::Column::UpdateTime, Expr::value(now()))
            .col_expr(
                row::Column::RefreshLeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(row::Column::Version, Expr::value(seen_version + 1))
            .filter(by_key(key))
            .filter(row::Column::Version.eq(seen_version))
            .exec(&self.store.writer)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Gives the lease back without changing anything (the refresh failed transiently).
    pub async fn release_lease(
        &self,
        key: &ConnectionKey,
        seen_version: i64,
    ) -> Result<(), StoreError> {
        row::Entity::update_many()
            .col_expr(
                row::Column::RefreshLeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(by_key(key))
            .filter(row::Column::Version.eq(seen_version))
            .exec(&self.store.writer)
            .await?;
        Ok(())
    }

    /// Ends the connection: it stays listed as EXPIRED with the reason until the user
    /// consents again or revokes it.
    pub async fn mark_expired(
        &self,
        key: &ConnectionKey,
        seen_version: i64,
        reason: ExpiredReason,
        text: &str,
    ) -> Result<bool, StoreError> {
        let txn = self.store.writer.begin().await?;
        let result = row::Entity::update_many()
            .col_expr(
                row::Column::ExpiredReason,
                Expr::value(Some(reason.as_str().to_owned())),
            )
            .col_expr(row::Column::StatusReason, Expr::value(text.to_owned()))
            .col_expr(row::Column::UpdateTime, Expr::value(now()))
            .col_expr(
                row::Column::RefreshLeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(row::Column::Version, Expr::value(seen_version + 1))
            .filter(by_key(key))
            .filter(row::Column::Version.eq(seen_version))
            .exec(&txn)
            .await?;
        if result.rows_affected != 1 {
            return Ok(false);
        }
        // proxies drop what they cached for it, on every replica
        announce(self.store, txn, key).await?;
        Ok(true)
    }

    /// Marks every working connection to `provider_name` as needing consent again,
    /// and tells proxies to drop every credential they cached for the provider. With
    /// `discard_tokens` the stored tokens are wiped too (every connection, expired or
    /// not), for when they belong to another client or authorization server and must
    /// never be sent to the provider's new endpoints, not even to revoke them.
    pub async fn require_reconsent(
        &self,
        provider_name: &str,
        text: &str,
        discard_tokens: bool,
    ) -> Result<u64, StoreError> {
        let txn = self.store.writer.begin().await?;
        if discard_tokens {
            row::Entity::update_many()
                .col_expr(row::Column::SealedTokens, Expr::value(Vec::<u8>::new()))
                .col_expr(row::Column::Version, Expr::col(row::Column::Version).add(1))
                .filter(row::Column::ProviderName.eq(provider_name))
                .exec(&txn)
                .await?;
        }
        let result = row::Entity::update_many()
            .col_expr(
                row::Column::ExpiredReason,
                Expr::value(Some(ExpiredReason::Revoked.as_str().to_owned())),
            )
            .col_expr(row::Column::StatusReason, Expr::value(text.to_owned()))
            .col_expr(row::Column::UpdateTime, Expr::value(now()))
            .col_expr(
                row::Column::RefreshLeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(row::Column::Version, Expr::col(row::Column::Version).add(1))
            .filter(row::Column::ProviderName.eq(provider_name))
            .filter(row::Column::ExpiredReason.is_null())
            .exec(&txn)
            .await?;
        let every = ConnectionKey {
            issuer: String::new(),
            subject: String::new(),
            provider_name: provider_name.to_owned(),
        };
        announce(self.store, txn, &every).await?;
        Ok(result.rows_affected)
    }

    /// Deletes the connection and returns what it held, so the caller can revoke it
    /// upstream; proxies are told to drop what they cached for it.
    pub async fn delete(
        &self,
        key: &ConnectionKey,
    ) -> Result<Option<StoredConnection>, StoreError> {
        let Some(existing) = self.get(key).await? else {
            return Ok(None);
        };
        let txn = self.store.writer.begin().await?;
        let result = row::Entity::delete_many()
            .filter(by_key(key))
            .filter(row::Column::Version.eq(existing.version))
            .exec(&txn)
            .await?;
        let deleted = if result.rows_affected == 0 {
            // changed under us (a refresh landed): delete whatever is there now
            let current = row::Entity::find()
                .filter(by_key(key))
                .all(&txn)
                .await?
                .into_iter()
                .next()
                .map(to_stored)
                .transpose()?;
            row::Entity::delete_many()
                .filter(by_key(key))
                .exec(&txn)
                .await?;
            current
        } else {
            Some(existing)
        };
        announce(self.store, txn, key).await?;
        Ok(deleted)
    }

    /// Working connections whose tokens were last stored before `before`, the oldest
    /// first: the ones whose refresh tokens an idle-timeout at the provider would end.
    pub async fn idle_since(
        &self,
        before: DateTime<Utc>,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<ConnectionKey>, StoreError> {
        let rows: Vec<(String, String, String)> = row::Entity::find()
            .select_only()
            .columns([
                row::Column::Issuer,
                row::Column::Subject,
                row::Column::ProviderName,
            ])
            .filter(row::Column::ExpiredReason.is_null())
            .filter(row::Column::UpdateTime.lt(before))
            .order_by_asc(row::Column::UpdateTime)
            .order_by_asc(row::Column::Issuer)
            .order_by_asc(row::Column::Subject)
            .order_by_asc(row::Column::ProviderName)
            .offset(offset)
            .limit(limit)
            .into_tuple()
            .all(&self.store.reader)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(issuer, subject, provider_name)| ConnectionKey {
                issuer,
                subject,
                provider_name,
            })
            .collect())
    }

    /// Every connection's key, version and sealed tokens, for re-wrapping under a new key.
    pub async fn all_sealed(&self) -> Result<Vec<(ConnectionKey, i64, Vec<u8>)>, StoreError> {
        let rows: Vec<(String, String, String, i64, Vec<u8>)> = row::Entity::find()
            .select_only()
            .columns([
                row::Column::Issuer,
                row::Column::Subject,
                row::Column::ProviderName,
                row::Column::Version,
            ])
            .column(row::Column::SealedTokens)
            .into_tuple()
            .all(&self.store.reader)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(issuer, subject, provider_name, version, sealed)| {
                (
                    ConnectionKey {
                        issuer,
                        subject,
                        provider_name,
                    },
                    version,
                    sealed,
                )
            })
            .collect())
    }

    /// Replaces the sealed tokens (same content, new key) if the row is still at
    /// `version` and nobody holds a live refresh lease on it: bumping the version under
    /// a refresh would make the refresh's store fail and drop a rotated refresh token.
    pub async fn rewrap(
        &self,
        key: &ConnectionKey,
        version: i64,
        sealed_tokens: Vec<u8>,
    ) -> Result<bool, StoreError> {
        let result = row::Entity::update_many()
            .col_expr(row::Column::SealedTokens, Expr::value(sealed_tokens))
            .col_expr(row::Column::Version, Expr::value(version + 1))
            .filter(by_key(key))
            .filter(row::Column::Version.eq(version))
            .filter(
                sea_orm::Condition::any()
                    .add(row::Column::RefreshLeaseUntil.is_null())
                    .add(row::Column::RefreshLeaseUntil.lt(now())),
            )
            .exec(&self.store.writer)
            .await?;
        Ok(result.rows_affected == 1)
    }
}

fn scopes_json(scopes: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(scopes).map_err(|source| StoreError::Corrupt {
        kind: KIND,
        name: String::new(),
        source,
    })
}

fn to_stored(model: row::Model) -> Result<StoredConnection, StoreError> {
    let granted_scopes =
        serde_json::from_str(&model.granted_scopes).map_err(|source| StoreError::Corrupt {
            kind: KIND,
            name: model.provider_name.clone(),
            source,
        })?;
    Ok(StoredConnection {
        expired: model
            .expired_reason
            .as_deref()
            .and_then(ExpiredReason::parse),
        key: ConnectionKey {
            issuer: model.issuer,
            subject: model.subject,
            provider_name: model.provider_name,
        },
        sealed_tokens: model.sealed_tokens,
        granted_scopes,
        status_reason: model.status_reason,
        connect_time: model.connect_time,
        update_time: model.update_time,
        access_expire_time: model.access_expire_time,
        version: model.version,
        refresh_lease_until: model.refresh_lease_until,
    })
}
