use adp_core::listing::ListQuery;
use adp_core::provider::OAuthProvider;
use adp_core::resource::{Meta, Stored};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use super::{Page, decode, encode, list_rows, meta, next_meta, now};
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
        row::Entity::insert(model)
            .exec_without_returning(&self.store.writer)
            .await
            .map_err(|e| StoreError::from_write(KIND, &spec.name, e))?;
        Ok(Stored {
            spec: spec.clone(),
            meta: meta(created, created, 1),
        })
    }

    pub async fn get(&self, name: &str) -> Result<Stored<OAuthProvider>, StoreError> {
        let model = row::Entity::find_by_id(name.to_owned())
            .one(&self.store.reader)
            .await?
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

    /// Replaces the spec if the row is still at `current.version`.
    pub async fn update(
        &self,
        spec: &OAuthProvider,
        current: &Meta,
    ) -> Result<Stored<OAuthProvider>, StoreError> {
        let next = next_meta(current);
        let result = row::Entity::update_many()
            .col_expr(
                row::Column::DisplayName,
                Expr::value(spec.display_name.clone()),
            )
            .col_expr(row::Column::ClientSecretRef, Expr::value(secret_ref(spec)))
            .col_expr(
                row::Column::Spec,
                Expr::value(encode(KIND, &spec.name, spec)?),
            )
            .col_expr(row::Column::UpdateTime, Expr::value(next.update_time))
            .col_expr(row::Column::Version, Expr::value(next.version))
            .filter(row::Column::Name.eq(spec.name.clone()))
            .filter(row::Column::Version.eq(current.version))
            .exec(&self.store.writer)
            .await
            .map_err(|e| StoreError::from_write(KIND, &spec.name, e))?;
        if result.rows_affected == 0 {
            self.get(&spec.name).await?;
            return Err(StoreError::VersionConflict {
                kind: KIND,
                name: spec.name.clone(),
            });
        }
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
        let users: Vec<String> = mcp_server::Entity::find()
            .select_only()
            .column(mcp_server::Column::Name)
            .filter(mcp_server::Column::ProviderName.eq(name))
            .limit(20)
            .into_tuple()
            .all(&self.store.reader)
            .await?;
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
        let result = delete.exec(&self.store.writer).await.map_err(|e| {
            match StoreError::from_write(KIND, name, e) {
                // a server was bound to the provider between the check and the delete
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

fn secret_ref(spec: &OAuthProvider) -> Option<String> {
    Some(spec.client_secret_ref.clone()).filter(|s| !s.is_empty())
}

fn to_stored(model: row::Model) -> Result<Stored<OAuthProvider>, StoreError> {
    Ok(Stored {
        spec: decode(KIND, &model.name, &model.spec)?,
        meta: meta(model.create_time, model.update_time, model.version),
    })
}
