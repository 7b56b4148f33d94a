use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mcp_servers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub description: String,
    /// The provider the auth mode binds to; a foreign key keeps it real.
    pub provider_name: Option<String>,
    /// The static key's secret, so deleting a secret can find who uses it.
    pub secret_ref: Option<String>,
    /// `adp_core::server::McpServer` as JSON.
    #[sea_orm(column_type = "Text")]
    pub spec: String,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
