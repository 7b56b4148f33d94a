use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "connections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub issuer: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub provider_name: String,
    /// The token set, sealed by adp-vault and bound to (issuer, subject, provider).
    pub sealed_tokens: Vec<u8>,
    /// JSON array of scopes.
    #[sea_orm(column_type = "Text")]
    pub granted_scopes: String,
    pub expired_reason: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub status_reason: String,
    pub connect_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
    pub access_expire_time: Option<DateTimeUtc>,
    pub version: i64,
    pub refresh_lease_until: Option<DateTimeUtc>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("connection::Model")
            .field("provider_name", &self.provider_name)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
