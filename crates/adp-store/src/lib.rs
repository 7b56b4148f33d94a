//! Persistence for ADP: sea-orm entities, one migrator for SQLite and PostgreSQL,
//! and the repositories the control plane uses. No SQL is written per database.
//!
//! ```ignore
//! let store = adp_store::Store::connect("sqlite://./adp-data/adp.db?mode=rwc").await?;
//! store.migrate().await?;
//! let server = store.servers().get("tickets").await?;
//! ```
#![forbid(unsafe_code)]

mod connect;
pub mod entity;
mod error;
pub mod migration;
pub mod repo;

pub use connect::{Backend, Store};
pub use error::StoreError;
pub use repo::{
    ConfigChange, ConfigKind, ConfigListener, ConfigLogRepo, ConnectionRepo, ConsentRepo, Page,
    ProviderRepo, SecretRepo, ServerRepo, SessionRepo, TokenWrite, connection_name,
    parse_connection_name,
};
pub use sea_orm::DbErr;
