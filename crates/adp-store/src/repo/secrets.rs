use adp_core::listing::ListQuery;
use adp_core::resource::{Meta, Stored};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use super::{Page, list_rows, meta, next_meta, now};
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
                .one(&self.store.reader)
                .await?
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
            .one(&self.store.reader)
            .await?
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
        let result = row::Entity::update_many()
            .col_expr(row::Column::SealedValue, Expr::value(sealed_value))
            .col_expr(row::Column::UpdateTime, Expr::value(next.update_time))
            .col_expr(row::Column::Version, Expr::value(next.version))
            .filter(row::Column::Name.eq(name))
            .filter(row::Column::Version.eq(current.version))
            .exec(&self.store.writer)
            .await?;
        if result.rows_affected == 0 {
            self.get(name).await?;
            return Err(StoreError::VersionConflict {
                kind: KIND,
                name: name.to_owned(),
            });
        }
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
        let mut users: Vec<String> = oauth_provider::Entity::find()
            .select_only()
            .column(oauth_provider::Column::Name)
            .filter(oauth_provider::Column::ClientSecretRef.eq(name))
            .limit(20)
            .into_tuple::<String>()
            .all(&self.store.reader)
            .await?
            .into_iter()
            .map(|n| format!("oauth provider {n}"))
            .collect();
        let servers: Vec<String> = mcp_server::Entity::find()
            .select_only()
            .column(mcp_server::Column::Name)
            .filter(mcp_server::Column::SecretRef.eq(name))
            .limit(20)
            .into_tuple()
            .all(&self.store.reader)
            .await?;
        users.extend(servers.into_iter().map(|n| format!("mcp server {n}")));
        if !users.is_empty() {
            return Err(StoreError::StillReferenced {
                kind: KIND,
                name: name.to_owned(),
                referenced_by: users,
            });
        }
        let mut delete = row::Entity::delete_many().filter(row::Column::Name.eq(name));
        if let Some(version) = expected_version {
            delete = delete.filter(row::Column::Version.eq(version));
        }
        let result =
            delete.exec(&self.store.writer).await.map_err(|e| {
                match StoreError::from_write(KIND, name, e) {
                    StoreError::MissingReference => StoreError::StillReferenced {
                        kind: KIND,
                        name: name.to_owned(),
                        referenced_by: Vec::new(),
                    },
                    other => other,
                }
            })?;
        if result.rows_affected == 0 {
            self.get(name).await?;
            return Err(StoreError::VersionConflict {
                kind: KIND,
                name: name.to_owned(),
            });
        }
        Ok(())
    }
}
