use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ConsentAttempts {
    Table,
    Issuer,
    Subject,
    ProviderName,
}

/// Consent attempts are looked up by their owner on every refused credential call
/// (reused rather than created again, and counted against a per-person limit).
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
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
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
