use adp_core::listing::ListQuery;
use adp_core::provider::OAuthProvider;
use adp_core::resource::{Meta, Stored};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, EntityTrait, QueryOrder, TransactionTrait};

use super::config_log::{self, ConfigKind};
use super::{
    Page, decode, delete_versioned, encode, list_rows, meta, names_where, next_meta, now,
    update_versioned,
};
use crate::entity::{mcp_server, oauth_provider as row};
use crate::{Store, StoreError};

const KIND: &str = "oauth provider";

#[derive(Clone, Copy, Debug)]
pub struct ProviderRepo<'a> {
    pub(crate) store: &'a Store,
}

impl ProviderRepo<'_> {
    pub async fn create(&self, spec: &OAuthProvider) -> Result<Stored<OAuthProvider>, StoreError> {
        let created = now();
        let model = row::ActiveModel {
            name: Set(spec.name.clone()),
            display_name: Set(spec.display_name.clone()),
            client_secret_ref: Set(secret_ref(spec)),
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
        config_log::commit(self.store, txn, ConfigKind::Provider, &spec.name).await?;
        Ok(Stored {
            spec: spec.clone(),
            meta: meta(created, created, 1),
        })
    }

    pub async fn get(&self, name: &str) -> Result<Stored<OAuthProvider>, StoreError> {
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

    pub async fn list(&self, query: &ListQuery) -> Result<Page<Stored<OAuthProvider>>, StoreError> {
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
    pub async fn all(&self) -> Result<Vec<OAuthProvider>, StoreError> {
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
        spec: &OAuthProvider,
        current: &Meta,
    ) -> Result<Stored<OAuthProvider>, StoreError> {
        let next = next_meta(current);
        let columns = vec![
            ("display_name", Expr::value(spec.display_name.clone())),
            ("client_secret_ref", Expr::value(secret_ref(spec))),
            ("spec", Expr::value(encode(KIND, &spec.name, spec)?)),
        ];
        let txn = self.store.writer.begin().await?;
        update_versioned::<row::Entity, _>(&txn, KIND, &spec.name, current.version, &next, columns)
            .await?;
        config_log::commit(self.store, txn, ConfigKind::Provider, &spec.name).await?;
        Ok(Stored {
            spec: spec.clone(),
            meta: next,
        })
    }

    /// Deletes unless MCP servers still use the provider (or the version moved).
    pub async fn delete(
        &self,
        name: &str,
        expected_version: Option<i64>,
    ) -> Result<(), StoreError> {
        let users =
            names_where::<mcp_server::Entity>(&self.store.reader, "provider_name", name).await?;
        if !users.is_empty() {
            return Err(StoreError::StillReferenced {
                kind: KIND,
                name: name.to_owned(),
                referenced_by: users,
            });
        }
        let txn = self.store.writer.begin().await?;
        delete_versioned::<row::Entity, _>(&txn, KIND, name, expected_version).await?;
        config_log::commit(self.store, txn, ConfigKind::Provider, name).await
    }
}

fn secret_ref(spec: &OAuthProvider) -> Option<String> {
    Some(spec.client_secret_ref.clone()).filter(|s| !s.is_empty())
}

fn to_stored(model: row::Model) -> Result<Stored<OAuthProvider>, StoreError> {
    Ok(Stored {
        spec: decode(KIND, &model.name, &model.spec)?,
        meta: meta(model.create_time, model.update_time, model.version),
    })
}
