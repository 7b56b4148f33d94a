use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "browser_sessions")]
pub struct Model {
    /// SHA-256 (hex) of the session cookie.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id_hash: String,
    pub issuer: String,
    pub subject: String,
    pub display_name: String,
    pub create_time: DateTimeUtc,
    pub expire_time: DateTimeUtc,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("browser_session::Model")
            .field("subject", &self.subject)
            .field("expire_time", &self.expire_time)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
