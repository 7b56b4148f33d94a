use adp_core::session::BrowserSession;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use super::now;
use crate::entity::browser_session as row;
use crate::{Store, StoreError};

const KIND: &str = "browser session";

/// Signed-in browsers of the Connections page, looked up by the hash of their cookie.
#[derive(Clone, Copy, Debug)]
pub struct SessionRepo<'a> {
    pub(crate) store: &'a Store,
}

impl SessionRepo<'_> {
    pub async fn create(&self, session: &BrowserSession) -> Result<(), StoreError> {
        let model = row::ActiveModel {
            id_hash: Set(session.id_hash.clone()),
            issuer: Set(session.issuer.clone()),
            subject: Set(session.subject.clone()),
            display_name: Set(session.display_name.clone()),
            create_time: Set(session.create_time),
            expire_time: Set(session.expire_time),
        };
        row::Entity::insert(model)
            .exec_without_returning(&self.store.writer)
            .await
            .map_err(|e| StoreError::from_write(KIND, &session.subject, e))?;
        Ok(())
    }

    /// A live (unexpired) session.
    pub async fn get(&self, id_hash: &str) -> Result<Option<BrowserSession>, StoreError> {
        let model = row::Entity::find_by_id(id_hash.to_owned())
            .filter(row::Column::ExpireTime.gt(now()))
            .all(&self.store.reader)
            .await?
            .into_iter()
            .next();
        Ok(model.map(to_session))
    }

    /// Ends a session (sign-out); true when there was one.
    pub async fn delete(&self, id_hash: &str) -> Result<bool, StoreError> {
        let result = row::Entity::delete_many()
            .filter(row::Column::IdHash.eq(id_hash))
            .exec(&self.store.writer)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Deletes sessions past their expiry; returns how many.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        let result = row::Entity::delete_many()
            .filter(row::Column::ExpireTime.lte(now()))
            .exec(&self.store.writer)
            .await?;
        Ok(result.rows_affected)
    }
}

fn to_session(model: row::Model) -> BrowserSession {
    BrowserSession {
        id_hash: model.id_hash,
        issuer: model.issuer,
        subject: model.subject,
        display_name: model.display_name,
        create_time: model.create_time,
        expire_time: model.expire_time,
    }
}
