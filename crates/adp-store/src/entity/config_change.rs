use sea_orm::entity::prelude::*;

/// One config write: which object changed at which revision. The object's current
/// state is read when the change is sent, so the log holds no config itself.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "config_changes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub revision: i64,
    /// `server` or `provider`.
    pub kind: String,
    pub name: String,
    pub change_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
