use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "consent_attempts")]
pub struct Model {
    /// The OAuth `state`: random, one-time.
    #[sea_orm(primary_key, auto_increment = false)]
    pub state: String,
    pub issuer: String,
    pub subject: String,
    pub provider_name: String,
    pub sealed_verifier: Vec<u8>,
    #[sea_orm(column_type = "Text")]
    pub scopes: String,
    pub server_name: Option<String>,
    pub browser_binding: Option<String>,
    pub create_time: DateTimeUtc,
    pub expire_time: DateTimeUtc,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("consent_attempt::Model")
            .field("provider_name", &self.provider_name)
            .field("expire_time", &self.expire_time)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
