//! Repositories: the only code that reads and writes rows. Each returns domain
//! types with their metadata; versions make every update a compare-and-swap.

use std::str::FromStr;

use adp_core::listing::{Direction, ListQuery};
use adp_core::resource::Meta;
use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::StoreError;

mod providers;
mod secrets;
mod servers;

pub use providers::ProviderRepo;
pub use secrets::SecretRepo;
pub use servers::ServerRepo;

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
    let column = |field: &str| {
        E::Column::from_str(field)
            .map_err(|_| StoreError::Database(sea_orm::DbErr::Custom(format!("no column {field}"))))
    };
    let mut select = E::find();
    if let Some(needle) = &query.name_contains {
        let escaped = needle
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        select = select.filter(
            Expr::expr(Func::lower(Expr::col(column("name")?)))
                .like(LikeExpr::new(format!("%{escaped}%")).escape('\\')),
        );
    }
    let total = select.clone().count(db).await?;
    for (field, direction) in &query.order_by {
        let order = match direction {
            Direction::Asc => Order::Asc,
            Direction::Desc => Order::Desc,
        };
        select = select.order_by(column(field)?, order);
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
