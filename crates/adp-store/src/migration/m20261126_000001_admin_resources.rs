use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum OauthProviders {
    Table,
    Name,
    DisplayName,
    ClientSecretRef,
    Spec,
    CreateTime,
    UpdateTime,
    Version,
}

#[derive(DeriveIden)]
enum McpServers {
    Table,
    Name,
    Description,
    ProviderName,
    SecretRef,
    Spec,
    CreateTime,
    UpdateTime,
    Version,
}

#[derive(DeriveIden)]
enum Secrets {
    Table,
    Name,
    SealedValue,
    CreateTime,
    UpdateTime,
    Version,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Secrets::Table)
                    .col(
                        ColumnDef::new(Secrets::Name)
                            .string_len(128)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Secrets::SealedValue).binary().not_null())
                    .col(
                        ColumnDef::new(Secrets::CreateTime)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Secrets::UpdateTime)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Secrets::Version).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OauthProviders::Table)
                    .col(
                        ColumnDef::new(OauthProviders::Name)
                            .string_len(63)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(OauthProviders::DisplayName)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OauthProviders::ClientSecretRef)
                            .string_len(128)
                            .null(),
                    )
                    .col(ColumnDef::new(OauthProviders::Spec).text().not_null())
                    .col(
                        ColumnDef::new(OauthProviders::CreateTime)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OauthProviders::UpdateTime)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OauthProviders::Version)
                            .big_integer()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_oauth_providers_client_secret")
                            .from(OauthProviders::Table, OauthProviders::ClientSecretRef)
                            .to(Secrets::Table, Secrets::Name)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(McpServers::Table)
                    .col(
                        ColumnDef::new(McpServers::Name)
                            .string_len(63)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(McpServers::Description)
                            .string_len(1000)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(McpServers::ProviderName)
                            .string_len(63)
                            .null(),
                    )
                    .col(ColumnDef::new(McpServers::SecretRef).string_len(128).null())
                    .col(ColumnDef::new(McpServers::Spec).text().not_null())
                    .col(
                        ColumnDef::new(McpServers::CreateTime)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(McpServers::UpdateTime)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(McpServers::Version).big_integer().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_mcp_servers_provider")
                            .from(McpServers::Table, McpServers::ProviderName)
                            .to(OauthProviders::Table, OauthProviders::Name)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_mcp_servers_secret")
                            .from(McpServers::Table, McpServers::SecretRef)
                            .to(Secrets::Table, Secrets::Name)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, table, column) in [
            (
                "idx_mcp_servers_provider_name",
                McpServers::Table.into_iden(),
                McpServers::ProviderName.into_iden(),
            ),
            (
                "idx_mcp_servers_secret_ref",
                McpServers::Table.into_iden(),
                McpServers::SecretRef.into_iden(),
            ),
            (
                "idx_mcp_servers_create_time",
                McpServers::Table.into_iden(),
                McpServers::CreateTime.into_iden(),
            ),
            (
                "idx_oauth_providers_client_secret_ref",
                OauthProviders::Table.into_iden(),
                OauthProviders::ClientSecretRef.into_iden(),
            ),
            (
                "idx_oauth_providers_display_name",
                OauthProviders::Table.into_iden(),
                OauthProviders::DisplayName.into_iden(),
            ),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(McpServers::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(OauthProviders::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Secrets::Table).to_owned())
            .await
    }
}
