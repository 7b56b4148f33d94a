//! The config change log: every provider or server write appends `(revision, kind,
//! name)` in its own transaction, so proxies can resume from a revision and replicas
//! learn of each other's writes through the database.

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use adp_core::connection::ConnectionKey;

use super::now;
use crate::entity::{config_change, config_revision};
use crate::{Backend, Store, StoreError};

/// The PostgreSQL channel a committed config write notifies.
const CHANNEL: &str = "adp_config";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigKind {
    Server,
    Provider,
    /// A connection stopped being usable; `name` is [`connection_name`] of its key.
    Connection,
}

impl ConfigKind {
    fn as_str(self) -> &'static str {
        match self {
            ConfigKind::Server => "server",
            ConfigKind::Provider => "provider",
            ConfigKind::Connection => "connection",
        }
    }

    fn parse(text: &str) -> Option<ConfigKind> {
        match text {
            "server" => Some(ConfigKind::Server),
            "provider" => Some(ConfigKind::Provider),
            "connection" => Some(ConfigKind::Connection),
            _ => None,
        }
    }
}

/// How a connection is named in the change log: its key as a JSON array, which no
/// issuer or subject can break out of. Empty issuer and subject stand for every
/// connection of the provider.
pub fn connection_name(key: &ConnectionKey) -> String {
    serde_json::json!([key.issuer, key.subject, key.provider_name]).to_string()
}

/// The key [`connection_name`] made; `None` for anything else.
pub fn parse_connection_name(name: &str) -> Option<ConnectionKey> {
    let [issuer, subject, provider_name]: [String; 3] = serde_json::from_str(name).ok()?;
    Some(ConnectionKey {
        issuer,
        subject,
        provider_name,
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigChange {
    pub revision: i64,
    pub kind: ConfigKind,
    pub name: String,
}

#[derive(Clone, Copy, Debug)]
pub struct ConfigLogRepo<'a> {
    pub(crate) store: &'a Store,
}

impl ConfigLogRepo<'_> {
    /// The latest committed revision; 0 before any config write.
    pub async fn current_revision(&self) -> Result<i64, StoreError> {
        Ok(config_revision::Entity::find_by_id(1)
            .all(&self.store.reader)
            .await?
            .first()
            .map_or(0, |row| row.revision))
    }

    /// The oldest revision still in the log, if any.
    pub async fn oldest_retained(&self) -> Result<Option<i64>, StoreError> {
        Ok(config_change::Entity::find()
            .select_only()
            .column(config_change::Column::Revision)
            .order_by_asc(config_change::Column::Revision)
            .limit(1)
            .into_tuple::<i64>()
            .all(&self.store.reader)
            .await?
            .first()
            .copied())
    }

    /// Changes after `revision`, oldest first, at most `limit`.
    pub async fn changes_after(
        &self,
        revision: i64,
        limit: u64,
    ) -> Result<Vec<ConfigChange>, StoreError> {
        let rows = config_change::Entity::find()
            .filter(config_change::Column::Revision.gt(revision))
            .order_by_asc(config_change::Column::Revision)
            .limit(limit)
            .all(&self.store.reader)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                Some(ConfigChange {
                    revision: row.revision,
                    kind: ConfigKind::parse(&row.kind)?,
                    name: row.name,
                })
            })
            .collect())
    }

    /// Forgets all but the newest `keep` revisions; a proxy resuming from before
    /// them gets a snapshot instead of deltas.
    pub async fn prune(&self, keep: i64) -> Result<u64, StoreError> {
        let current = self.current_revision().await?;
        let result = config_change::Entity::delete_many()
            .filter(config_change::Column::Revision.lte(current - keep))
            .exec(&self.store.writer)
            .await?;
        Ok(result.rows_affected)
    }

    /// Resolves when a config write has committed in this process since the last
    /// call (a write before anyone waits is remembered, never lost).
    pub async fn local_write(&self) {
        self.store.config_written.notified().await;
    }

    /// Wakes on config writes committed by any replica sharing this PostgreSQL
    /// database; `None` on SQLite, where this process is the only writer.
    pub async fn listen(&self) -> Result<Option<ConfigListener>, StoreError> {
        if self.store.backend() != Backend::Postgres {
            return Ok(None);
        }
        let pool = self.store.writer.get_postgres_connection_pool();
        let mut listener = sea_orm::sqlx::postgres::PgListener::connect_with(pool)
            .await
            .map_err(|e| StoreError::Database(sea_orm::DbErr::Custom(e.to_string())))?;
        listener
            .listen(CHANNEL)
            .await
            .map_err(|e| StoreError::Database(sea_orm::DbErr::Custom(e.to_string())))?;
        Ok(Some(ConfigListener { listener }))
    }
}

/// A LISTEN on the config channel. A dropped connection is re-established by the
/// next `recv`; notifications sent meanwhile are lost, so callers also poll.
#[derive(Debug)]
pub struct ConfigListener {
    listener: sea_orm::sqlx::postgres::PgListener,
}

impl ConfigListener {
    /// The revision a committed write announced.
    pub async fn recv(&mut self) -> Result<i64, StoreError> {
        let notification = self
            .listener
            .recv()
            .await
            .map_err(|e| StoreError::Database(sea_orm::DbErr::Custom(e.to_string())))?;
        Ok(notification.payload().parse().unwrap_or_default())
    }
}

/// Appends the change to `txn`, commits it, and wakes this process's config feed.
pub(crate) async fn commit(
    store: &Store,
    txn: DatabaseTransaction,
    kind: ConfigKind,
    name: &str,
) -> Result<(), StoreError> {
    record(&txn, store.backend(), kind, name).await?;
    txn.commit().await?;
    store.config_written.notify_one();
    Ok(())
}

/// Appends a change inside the caller's transaction and returns its revision. The
/// row lock taken by the increment serialises config writers, so revisions commit
/// in order; on PostgreSQL the NOTIFY is delivered only if the transaction commits.
async fn record<C: ConnectionTrait>(
    txn: &C,
    backend: Backend,
    kind: ConfigKind,
    name: &str,
) -> Result<i64, StoreError> {
    config_revision::Entity::update_many()
        .col_expr(
            config_revision::Column::Revision,
            Expr::col(config_revision::Column::Revision).add(1),
        )
        .filter(config_revision::Column::Id.eq(1))
        .exec(txn)
        .await?;
    let revision = config_revision::Entity::find_by_id(1)
        .all(txn)
        .await?
        .first()
        .map(|row| row.revision)
        .ok_or_else(|| {
            StoreError::Database(sea_orm::DbErr::Custom("config_revision row missing".into()))
        })?;
    config_change::Entity::insert(config_change::ActiveModel {
        revision: Set(revision),
        kind: Set(kind.as_str().to_owned()),
        name: Set(name.to_owned()),
        change_time: Set(now()),
    })
    .exec_without_returning(txn)
    .await?;
    if backend == Backend::Postgres {
        // the payload is a number we formatted: nothing user-controlled reaches the SQL
        txn.execute_unprepared(&format!("NOTIFY {CHANNEL}, '{revision}'"))
            .await?;
    }
    Ok(revision)
}
