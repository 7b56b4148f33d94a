//! Repositories: the only code that reads and writes rows. Each returns domain
//! types with their metadata; versions make every update a compare-and-swap.
//!
//! Single-row reads use `.all()` and take the first row rather than `.one()`: `.one()`
//! binds `LIMIT ?`, which makes SQLite re-prepare the statement on every call (about
//! 20% of a GetMCPServer in the admin benchmark). Primary-key lookups return one row anyway.

use std::str::FromStr;

use adp_core::listing::{Direction, ListQuery};
use adp_core::resource::Meta;
use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, Order, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use crate::StoreError;

mod config_log;
mod connections;
mod consent;
mod providers;
mod secrets;
mod servers;
mod sessions;

pub use config_log::{
    ConfigChange, ConfigKind, ConfigListener, ConfigLogRepo, connection_name, parse_connection_name,
};
pub use connections::{ConnectionRepo, TokenWrite};
pub use consent::ConsentRepo;
pub use providers::ProviderRepo;
pub use secrets::SecretRepo;
pub use servers::ServerRepo;
pub use sessions::SessionRepo;

/// One page of a list, with the total matching the filter.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// Timestamps are cut to microseconds so what a write returns equals what a later
/// read returns on PostgreSQL, whose timestamps hold microseconds.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

pub(crate) fn meta(create_time: DateTime<Utc>, update_time: DateTime<Utc>, version: i64) -> Meta {
    Meta {
        create_time,
        update_time,
        version,
    }
}

/// The metadata a successful compare-and-swap update leaves behind.
pub(crate) fn next_meta(current: &Meta) -> Meta {
    Meta {
        create_time: current.create_time,
        update_time: now(),
        version: current.version + 1,
    }
}

/// Runs a filtered, ordered, paged select over any entity with a `name` column.
pub(crate) async fn list_rows<E>(
    db: &DatabaseConnection,
    query: &ListQuery,
) -> Result<Page<E::Model>, StoreError>
where
    E: EntityTrait,
    E::Column: FromStr + ColumnTrait,
    E::Model: Sync,
{
    let mut select = E::find();
    if let Some(needle) = &query.name_contains {
        let escaped = needle
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        select = select.filter(
            Expr::expr(Func::lower(Expr::col(column::<E>("name")?)))
                .like(LikeExpr::new(format!("%{escaped}%")).escape('\\')),
        );
    }
    let total = select.clone().count(db).await?;
    for (field, direction) in &query.order_by {
        let order = match direction {
            Direction::Asc => Order::Asc,
            Direction::Desc => Order::Desc,
        };
        select = select.order_by(column::<E>(field)?, order);
    }
    let items = select
        .offset(query.offset)
        .limit(query.limit)
        .all(db)
        .await?;
    Ok(Page { items, total })
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    kind: &'static str,
    name: &str,
    spec: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(spec).map_err(|source| StoreError::Corrupt {
        kind,
        name: name.to_owned(),
        source,
    })
}

pub(crate) fn encode<T: serde::Serialize>(
    kind: &'static str,
    name: &str,
    spec: &T,
) -> Result<String, StoreError> {
    serde_json::to_string(spec).map_err(|source| StoreError::Corrupt {
        kind,
        name: name.to_owned(),
        source,
    })
}

fn column<E: EntityTrait>(field: &str) -> Result<E::Column, StoreError>
where
    E::Column: FromStr,
{
    E::Column::from_str(field)
        .map_err(|_| StoreError::Database(sea_orm::DbErr::Custom(format!("no column {field}"))))
}

/// Sets `columns` (plus `update_time` and `version` from `next`) on the row named
/// `name` only if it is still at `current_version`: the compare-and-swap every
/// update goes through.
pub(crate) async fn update_versioned<E, C>(
    db: &C,
    kind: &'static str,
    name: &str,
    current_version: i64,
    next: &Meta,
    columns: Vec<(&str, SimpleExpr)>,
) -> Result<(), StoreError>
where
    E: EntityTrait,
    E::Column: FromStr + ColumnTrait,
    E::Model: Sync,
    C: ConnectionTrait,
{
    let mut update = E::update_many()
        .col_expr(column::<E>("update_time")?, Expr::value(next.update_time))
        .col_expr(column::<E>("version")?, Expr::value(next.version));
    for (field, value) in columns {
        update = update.col_expr(column::<E>(field)?, value);
    }
    let result = update
        .filter(column::<E>("name")?.eq(name))
        .filter(column::<E>("version")?.eq(current_version))
        .exec(db)
        .await
        .map_err(|e| StoreError::from_write(kind, name, e))?;
    if result.rows_affected == 0 {
        return Err(missing_or_moved::<E, C>(db, kind, name).await);
    }
    Ok(())
}

/// Deletes the row named `name`, only at `expected_version` when one is given.
pub(crate) async fn delete_versioned<E, C>(
    db: &C,
    kind: &'static str,
    name: &str,
    expected_version: Option<i64>,
) -> Result<(), StoreError>
where
    E: EntityTrait,
    E::Column: FromStr + ColumnTrait,
    E::Model: Sync,
    C: ConnectionTrait,
{
    let mut delete = E::delete_many().filter(column::<E>("name")?.eq(name));
    if let Some(version) = expected_version {
        delete = delete.filter(column::<E>("version")?.eq(version));
    }
    let result =
        delete
            .exec(db)
            .await
            .map_err(|e| match StoreError::from_write(kind, name, e) {
                // something started referring to the row between the caller's check and the delete
                StoreError::MissingReference => StoreError::StillReferenced {
                    kind,
                    name: name.to_owned(),
                    referenced_by: Vec::new(),
                },
                other => other,
            })?;
    if result.rows_affected == 0 {
        return Err(missing_or_moved::<E, C>(db, kind, name).await);
    }
    Ok(())
}

/// Why a versioned write touched no row: the row is gone, or its version moved.
async fn missing_or_moved<E, C>(db: &C, kind: &'static str, name: &str) -> StoreError
where
    E: EntityTrait,
    E::Column: FromStr + ColumnTrait,
    E::Model: Sync,
    C: ConnectionTrait,
{
    let exists = match column::<E>("name") {
        Ok(name_column) => E::find().filter(name_column.eq(name)).count(db).await,
        Err(error) => return error,
    };
    match exists {
        Ok(0) => StoreError::NotFound {
            kind,
            name: name.to_owned(),
        },
        Ok(_) => StoreError::VersionConflict {
            kind,
            name: name.to_owned(),
        },
        Err(error) => StoreError::Database(error),
    }
}

/// Names of rows of `E` whose `column` equals `value`, at most 20, for "still used by" errors.
pub(crate) async fn names_where<E>(
    db: &DatabaseConnection,
    field: &str,
    value: &str,
) -> Result<Vec<String>, StoreError>
where
    E: EntityTrait,
    E::Column: FromStr + ColumnTrait,
{
    Ok(E::find()
        .select_only()
        .column(column::<E>("name")?)
        .filter(column::<E>(field)?.eq(value))
        .limit(20)
        .into_tuple::<String>()
        .all(db)
        .await?)
}
