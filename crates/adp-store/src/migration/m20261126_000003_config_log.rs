use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ConfigRevision {
    Table,
    Id,
    Revision,
}

#[derive(DeriveIden)]
enum ConfigChanges {
    Table,
    Revision,
    Kind,
    Name,
    ChangeTime,
}

/// The config change log proxies resume from. `config_revision` is one row whose
/// increment, inside each config write's transaction, orders revisions by commit:
/// a sequence would hand out numbers that commit out of order on PostgreSQL.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ConfigRevision::Table)
                    .col(
                        ColumnDef::new(ConfigRevision::Id)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ConfigRevision::Revision)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(ConfigRevision::Table)
                    .columns([ConfigRevision::Id, ConfigRevision::Revision])
                    .values_panic([1.into(), 0i64.into()])
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ConfigChanges::Table)
                    .col(
                        ColumnDef::new(ConfigChanges::Revision)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ConfigChanges::Kind)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ConfigChanges::Name)
                            .string_len(63)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ConfigChanges::ChangeTime)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ConfigChanges::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ConfigRevision::Table).to_owned())
            .await
    }
}
