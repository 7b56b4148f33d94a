use adp_core::listing::ListQuery;
use adp_core::resource::{Meta, Stored};
use adp_core::server::{Auth, McpServer};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use super::{Page, decode, encode, list_rows, meta, next_meta, now};
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
        row::Entity::insert(model)
            .exec_without_returning(&self.store.writer)
            .await
            .map_err(|e| StoreError::from_write(KIND, &spec.name, e))?;
        Ok(Stored {
            spec: spec.clone(),
            meta: meta(created, created, 1),
        })
    }

    pub async fn get(&self, name: &str) -> Result<Stored<McpServer>, StoreError> {
        let model = row::Entity::find_by_id(name.to_owned())
            .one(&self.store.reader)
            .await?
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

    /// Replaces the spec if the row is still at `current.version`.
    pub async fn update(
        &self,
        spec: &McpServer,
        current: &Meta,
    ) -> Result<Stored<McpServer>, StoreError> {
        let next = next_meta(current);
        let result = row::Entity::update_many()
            .col_expr(
                row::Column::Description,
                Expr::value(spec.description.clone()),
            )
            .col_expr(
                row::Column::ProviderName,
                Expr::value(spec.auth.provider_name().map(str::to_owned)),
            )
            .col_expr(row::Column::SecretRef, Expr::value(secret_ref(spec)))
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

    pub async fn delete(
        &self,
        name: &str,
        expected_version: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut delete = row::Entity::delete_many().filter(row::Column::Name.eq(name));
        if let Some(version) = expected_version {
            delete = delete.filter(row::Column::Version.eq(version));
        }
        let result = delete.exec(&self.store.writer).await?;
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
