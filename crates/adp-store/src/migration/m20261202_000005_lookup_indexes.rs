use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Connections {
    Table,
    UpdateTime,
}

#[derive(DeriveIden)]
enum ConsentAttempts {
    Table,
    Issuer,
    Subject,
    ProviderName,
}

/// Consent attempts are looked up by their owner on every refused credential call
/// (reused rather than created again, and counted against a per-person limit), and the
/// background refresher looks for connections by when they were last stored.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_consent_attempts_owner")
                    .table(ConsentAttempts::Table)
                    .col(ConsentAttempts::Issuer)
                    .col(ConsentAttempts::Subject)
                    .col(ConsentAttempts::ProviderName)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_connections_update_time")
                    .table(Connections::Table)
                    .col(Connections::UpdateTime)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_connections_update_time")
                    .table(Connections::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_consent_attempts_owner")
                    .table(ConsentAttempts::Table)
                    .to_owned(),
            )
            .await
    }
}
