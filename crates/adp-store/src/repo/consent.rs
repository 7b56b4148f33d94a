use adp_core::connection::{ConnectionKey, ConsentAttempt};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::now;
use crate::entity::consent_attempt as row;
use crate::{Store, StoreError};

const KIND: &str = "consent attempt";

/// Browser consents in flight. `take` hands an attempt out exactly once.
#[derive(Clone, Copy, Debug)]
pub struct ConsentRepo<'a> {
    pub(crate) store: &'a Store,
}

impl ConsentRepo<'_> {
    pub async fn create(&self, attempt: &ConsentAttempt) -> Result<(), StoreError> {
        let scopes =
            serde_json::to_string(&attempt.scopes).map_err(|source| StoreError::Corrupt {
                kind: KIND,
                name: String::new(),
                source,
            })?;
        let model = row::ActiveModel {
            state: Set(attempt.state.clone()),
            issuer: Set(attempt.key.issuer.clone()),
            subject: Set(attempt.key.subject.clone()),
            provider_name: Set(attempt.key.provider_name.clone()),
            sealed_verifier: Set(attempt.sealed_verifier.clone()),
            scopes: Set(scopes),
            server_name: Set(attempt.server_name.clone()),
            browser_binding: Set(attempt.browser_binding.clone()),
            create_time: Set(attempt.create_time),
            expire_time: Set(attempt.expire_time),
        };
        row::Entity::insert(model)
            .exec_without_returning(&self.store.writer)
            .await
            .map_err(|e| StoreError::from_write(KIND, &attempt.key.provider_name, e))?;
        Ok(())
    }

    /// A live attempt for exactly this connection, scopes and server that no browser
    /// has opened yet and that lives past `lives_past`: handing it out again costs
    /// nothing, where a new one costs a row and a seal per refused credential call.
    pub async fn reusable(
        &self,
        key: &ConnectionKey,
        scopes: &[String],
        server_name: Option<&str>,
        lives_past: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<ConsentAttempt>, StoreError> {
        let scopes = serde_json::to_string(scopes).map_err(|source| StoreError::Corrupt {
            kind: KIND,
            name: key.provider_name.clone(),
            source,
        })?;
        let server = match server_name {
            Some(name) => row::Column::ServerName.eq(name),
            None => row::Column::ServerName.is_null(),
        };
        let model = row::Entity::find()
            .filter(row::Column::Issuer.eq(key.issuer.clone()))
            .filter(row::Column::Subject.eq(key.subject.clone()))
            .filter(row::Column::ProviderName.eq(key.provider_name.clone()))
            .filter(row::Column::Scopes.eq(scopes))
            .filter(server)
            .filter(row::Column::BrowserBinding.is_null())
            .filter(row::Column::ExpireTime.gt(lives_past))
            .order_by_desc(row::Column::ExpireTime)
            .limit(1)
            .all(&self.store.writer)
            .await?
            .into_iter()
            .next();
        model.map(to_attempt).transpose()
    }

    /// How many live attempts one person has, over every provider.
    pub async fn live_count(&self, issuer: &str, subject: &str) -> Result<u64, StoreError> {
        Ok(row::Entity::find()
            .filter(row::Column::Issuer.eq(issuer))
            .filter(row::Column::Subject.eq(subject))
            .filter(row::Column::ExpireTime.gt(now()))
            .count(&self.store.writer)
            .await?)
    }

    /// A live (unexpired) attempt.
    pub async fn get(&self, state: &str) -> Result<Option<ConsentAttempt>, StoreError> {
        let model = row::Entity::find_by_id(state.to_owned())
            .filter(row::Column::ExpireTime.gt(now()))
            .all(&self.store.writer)
            .await?
            .into_iter()
            .next();
        model.map(to_attempt).transpose()
    }

    /// Binds the attempt to the first browser that opens its connect link.
    pub async fn bind_browser(&self, state: &str, binding: &str) -> Result<bool, StoreError> {
        let result = row::Entity::update_many()
            .col_expr(
                row::Column::BrowserBinding,
                Expr::value(Some(binding.to_owned())),
            )
            .filter(row::Column::State.eq(state))
            .filter(row::Column::BrowserBinding.is_null())
            .filter(row::Column::ExpireTime.gt(now()))
            .exec(&self.store.writer)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Removes and returns a live attempt; a second call for the same state gets `None`.
    pub async fn take(&self, state: &str) -> Result<Option<ConsentAttempt>, StoreError> {
        let Some(attempt) = self.get(state).await? else {
            return Ok(None);
        };
        let result = row::Entity::delete_many()
            .filter(row::Column::State.eq(state))
            .exec(&self.store.writer)
            .await?;
        Ok((result.rows_affected == 1).then_some(attempt))
    }

    /// Deletes attempts past their expiry; returns how many.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        let result = row::Entity::delete_many()
            .filter(row::Column::ExpireTime.lte(now()))
            .exec(&self.store.writer)
            .await?;
        Ok(result.rows_affected)
    }
}

fn to_attempt(model: row::Model) -> Result<ConsentAttempt, StoreError> {
    let scopes = serde_json::from_str(&model.scopes).map_err(|source| StoreError::Corrupt {
        kind: KIND,
        name: model.provider_name.clone(),
        source,
    })?;
    Ok(ConsentAttempt {
        state: model.state,
        key: ConnectionKey {
            issuer: model.issuer,
            subject: model.subject,
            provider_name: model.provider_name,
        },
        sealed_verifier: model.sealed_verifier,
        scopes,
        server_name: model.server_name,
        browser_binding: model.browser_binding,
        create_time: model.create_time,
        expire_time: model.expire_time,
    })
}
