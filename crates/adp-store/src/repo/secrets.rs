use adp_core::listing::ListQuery;
use adp_core::resource::{Meta, Stored};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, EntityTrait, QuerySelect};

use super::{
    Page, delete_versioned, list_rows, meta, names_where, next_meta, now, update_versioned,
};
use crate::entity::{mcp_server, oauth_provider, secret as row};
use crate::{Store, StoreError};

const KIND: &str = "secret";

/// A secret's name; the value is only ever handled sealed here.
pub type SecretName = String;

#[derive(Clone, Copy, Debug)]
pub struct SecretRepo<'a> {
    pub(crate) store: &'a Store,
}

impl SecretRepo<'_> {
    pub async fn create(
        &self,
        name: &str,
        sealed_value: Vec<u8>,
    ) -> Result<Stored<SecretName>, StoreError> {
        let created = now();
        let model = row::ActiveModel {
            name: Set(name.to_owned()),
            sealed_value: Set(sealed_value),
            create_time: Set(created),
            update_time: Set(created),
            version: Set(1),
        };
        row::Entity::insert(model)
            .exec_without_returning(&self.store.writer)
            .await
            .map_err(|e| StoreError::from_write(KIND, name, e))?;
        Ok(Stored {
            spec: name.to_owned(),
            meta: meta(created, created, 1),
        })
    }

    /// Metadata only.
    pub async fn get(&self, name: &str) -> Result<Stored<SecretName>, StoreError> {
        let (name, create_time, update_time, version): (String, _, _, i64) =
            row::Entity::find_by_id(name.to_owned())
                .select_only()
                .columns([
                    row::Column::Name,
                    row::Column::CreateTime,
                    row::Column::UpdateTime,
                    row::Column::Version,
                ])
                .into_tuple()
                .all(&self.store.reader)
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| StoreError::NotFound {
                    kind: KIND,
                    name: name.to_owned(),
                })?;
        Ok(Stored {
            spec: name,
            meta: meta(create_time, update_time, version),
        })
    }

    /// The sealed value, for the one caller that opens it with the vault.
    pub async fn sealed_value(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        row::Entity::find_by_id(name.to_owned())
            .all(&self.store.reader)
            .await?
            .into_iter()
            .next()
            .map(|model| model.sealed_value)
            .ok_or_else(|| StoreError::NotFound {
                kind: KIND,
                name: name.to_owned(),
            })
    }

    pub async fn list(&self, query: &ListQuery) -> Result<Page<Stored<SecretName>>, StoreError> {
        let page = list_rows::<row::Entity>(&self.store.reader, query).await?;
        let items = page
            .items
            .into_iter()
            .map(|m| Stored {
                meta: meta(m.create_time, m.update_time, m.version),
                spec: m.name,
            })
            .collect();
        Ok(Page {
            items,
            total: page.total,
        })
    }

    /// Replaces the sealed value if the row is still at `current.version`.
    pub async fn update(
        &self,
        name: &str,
        sealed_value: Vec<u8>,
        current: &Meta,
    ) -> Result<Stored<SecretName>, StoreError> {
        let next = next_meta(current);
        let columns = vec![("sealed_value", Expr::value(sealed_value))];
        update_versioned::<row::Entity, _>(
            &self.store.writer,
            KIND,
            name,
            current.version,
            &next,
            columns,
        )
        .await?;
        Ok(Stored {
            spec: name.to_owned(),
            meta: next,
        })
    }

    /// Deletes unless a provider or server still refers to the secret.
    pub async fn delete(
        &self,
        name: &str,
        expected_version: Option<i64>,
    ) -> Result<(), StoreError> {
        let providers =
            names_where::<oauth_provider::Entity>(&self.store.reader, "client_secret_ref", name)
                .await?;
        let servers =
            names_where::<mcp_server::Entity>(&self.store.reader, "secret_ref", name).await?;
        let users: Vec<String> = providers
            .into_iter()
            .map(|n| format!("oauth provider {n}"))
            .chain(servers.into_iter().map(|n| format!("mcp server {n}")))
            .collect();
        if !users.is_empty() {
            return Err(StoreError::StillReferenced {
                kind: KIND,
                name: name.to_owned(),
                referenced_by: users,
            });
        }
        delete_versioned::<row::Entity, _>(&self.store.writer, KIND, name, expected_version).await
    }
}
