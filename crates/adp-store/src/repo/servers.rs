use adp_core::listing::ListQuery;
use adp_core::resource::{Meta, Stored};
use adp_core::server::{Auth, McpServer};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, EntityTrait, QueryOrder, TransactionTrait};

use super::config_log::{self, ConfigKind};
use super::{
    Page, decode, delete_versioned, encode, list_rows, meta, next_meta, now, update_versioned,
};
use crate::entity::mcp_server as row;
use crate::{Store, StoreError};

const KIND: &str = "mcp server";

#[derive(Clone, Copy, Debug)]
pub struct ServerRepo<'a> {
    pub(crate) store: &'a Store,
}

impl ServerRepo<'_> {
    /// Fails with `MissingReference` if the provider or static key does not exist.
    pub async fn create(&self, spec: &McpServer) -> Result<Stored<McpServer>, StoreError> {
        let created = now();
        let model = row::ActiveModel {
            name: Set(spec.name.clone()),
            description: Set(spec.description.clone()),
            provider_name: Set(spec.auth.provider_name().map(str::to_owned)),
            secret_ref: Set(secret_ref(spec)),
            spec: Set(encode(KIND, &spec.name, spec)?),
            create_time: Set(created),
            update_time: Set(created),
            version: Set(1),
        };
        let txn = self.store.writer.begin().await?;
        row::Entity::insert(model)
            .exec_without_returning(&txn)
            .await
            .map_err(|e| StoreError::from_write(KIND, &spec.name, e))?;
        config_log::commit(self.store, txn, ConfigKind::Server, &spec.name).await?;
        Ok(Stored {
            spec: spec.clone(),
            meta: meta(created, created, 1),
        })
    }

    pub async fn get(&self, name: &str) -> Result<Stored<McpServer>, StoreError> {
        let model = row::Entity::find_by_id(name.to_owned())
            .all(&self.store.reader)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::NotFound {
                kind: KIND,
                name: name.to_owned(),
            })?;
        to_stored(model)
    }

    pub async fn list(&self, query: &ListQuery) -> Result<Page<Stored<McpServer>>, StoreError> {
        let page = list_rows::<row::Entity>(&self.store.reader, query).await?;
        let items = page
            .items
            .into_iter()
            .map(to_stored)
            .collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            total: page.total,
        })
    }

    /// Every row, by name: for config snapshots and per-user views that need them all.
    pub async fn all(&self) -> Result<Vec<McpServer>, StoreError> {
        row::Entity::find()
            .order_by_asc(row::Column::Name)
            .all(&self.store.reader)
            .await?
            .into_iter()
            .map(|model| to_stored(model).map(|stored| stored.spec))
            .collect()
    }

    /// Replaces the spec if the row is still at `current.version`.
    pub async fn update(
        &self,
        spec: &McpServer,
        current: &Meta,
    ) -> Result<Stored<McpServer>, StoreError> {
        let next = next_meta(current);
        let columns = vec![
            ("description", Expr::value(spec.description.clone())),
            (
                "provider_name",
                Expr::value(spec.auth.provider_name().map(str::to_owned)),
            ),
            ("secret_ref", Expr::value(secret_ref(spec))),
            ("spec", Expr::value(encode(KIND, &spec.name, spec)?)),
        ];
        let txn = self.store.writer.begin().await?;
        update_versioned::<row::Entity, _>(&txn, KIND, &spec.name, current.version, &next, columns)
            .await?;
        config_log::commit(self.store, txn, ConfigKind::Server, &spec.name).await?;
        Ok(Stored {
            spec: spec.clone(),
            meta: next,
        })
    }

    pub async fn delete(
        &self,
        name: &str,
        expected_version: Option<i64>,
    ) -> Result<(), StoreError> {
        let txn = self.store.writer.begin().await?;
        delete_versioned::<row::Entity, _>(&txn, KIND, name, expected_version).await?;
        config_log::commit(self.store, txn, ConfigKind::Server, name).await
    }
}

fn secret_ref(spec: &McpServer) -> Option<String> {
    match &spec.auth {
        Auth::StaticKey { key_ref, .. } => Some(key_ref.clone()),
        _ => None,
    }
}

fn to_stored(model: row::Model) -> Result<Stored<McpServer>, StoreError> {
    Ok(Stored {
        spec: decode(KIND, &model.name, &model.spec)?,
        meta: meta(model.create_time, model.update_time, model.version),
    })
}
