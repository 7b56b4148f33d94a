use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;

use crate::StoreError;
use crate::error::connect_error;
use crate::migration::Migrator;
use crate::repo::{
    ConfigLogRepo, ConnectionRepo, ConsentRepo, ProviderRepo, SecretRepo, ServerRepo, SessionRepo,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on the database. Cheap to clone.
///
/// SQLite allows one writer at a time, so on SQLite writes go through a pool of
/// one connection (no lock contention, no busy-wait sleeps) while reads use a
/// pool of several WAL readers. On PostgreSQL both are the same pool.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) reader: DatabaseConnection,
    pub(crate) writer: DatabaseConnection,
    backend: Backend,
    /// Signalled after each committed config write, so this process's config feed
    /// need not wait for its next poll.
    pub(crate) config_written: Arc<tokio::sync::Notify>,
}

impl Store {
    /// Connects to `sqlite://path?mode=rwc` or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        if url.starts_with("sqlite:") {
            let reader = Database::connect(sqlite_options(url, 8))
                .await
                .map_err(|e| connect_error(url, e))?;
            let writer = Database::connect(sqlite_options(url, 1))
                .await
                .map_err(|e| connect_error(url, e))?;
            Ok(Store {
                reader,
                writer,
                backend: Backend::Sqlite,
                config_written: Arc::default(),
            })
        } else {
            let mut options = ConnectOptions::new(url.to_owned());
            options
                .max_connections(16)
                .min_connections(1)
                .connect_timeout(Duration::from_secs(10))
                .acquire_timeout(Duration::from_secs(10))
                .sqlx_logging(false);
            let pool = Database::connect(options)
                .await
                .map_err(|e| connect_error(url, e))?;
            Ok(Store {
                reader: pool.clone(),
                writer: pool,
                backend: Backend::Postgres,
                config_written: Arc::default(),
            })
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Brings the schema up to date; safe to run on every start and from several
    /// replicas (the migrator records what it applied).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        Migrator::up(&self.writer, None).await?;
        Ok(())
    }

    pub fn providers(&self) -> ProviderRepo<'_> {
        ProviderRepo { store: self }
    }

    pub fn servers(&self) -> ServerRepo<'_> {
        ServerRepo { store: self }
    }

    pub fn secrets(&self) -> SecretRepo<'_> {
        SecretRepo { store: self }
    }

    pub fn connections(&self) -> ConnectionRepo<'_> {
        ConnectionRepo { store: self }
    }

    pub fn config_log(&self) -> ConfigLogRepo<'_> {
        ConfigLogRepo { store: self }
    }

    pub fn consents(&self) -> ConsentRepo<'_> {
        ConsentRepo { store: self }
    }

    pub fn sessions(&self) -> SessionRepo<'_> {
        SessionRepo { store: self }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.reader.ping().await?;
        Ok(())
    }

    pub async fn close(self) {
        let _ = self.reader.close().await;
        let _ = self.writer.close().await;
    }
}

fn sqlite_options(url: &str, connections: u32) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(connections)
        .min_connections(1)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                .create_if_missing(true)
        });
    options
}
