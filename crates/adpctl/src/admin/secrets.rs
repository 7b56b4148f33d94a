//! `adpctl secret`: store, replace, list and delete secrets; values come from stdin or
//! a file and are never printed.

use std::io::Read as _;
use std::path::PathBuf;

use adp_api::v1 as pb;
use adp_api::v1::secret_service_client::SecretServiceClient;
use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::ListArgs;
use crate::output::{Column, print, to_json};
use crate::{Failure, Global};

const SECRET_COLUMNS: &[Column] = &[("NAME", "name"), ("UPDATED", "updateTime")];

#[derive(Subcommand, Debug)]
pub enum SecretCommand {
    /// Store a secret; the value comes from stdin or --value-file, never a flag
    #[command(
        after_help = "Example:\n  printf %s \"$CLIENT_SECRET\" | adpctl secret create GITHUB_CLIENT_SECRET"
    )]
    Create(SecretArgs),
    /// Replace a secret's value
    #[command(
        after_help = "Example:\n  adpctl secret update GITHUB_CLIENT_SECRET --value-file ./new-secret"
    )]
    Update(SecretArgs),
    /// List secret names (values are never returned)
    #[command(after_help = "Example:\n  adpctl secret list")]
    List(ListArgs),
    /// Delete a secret (refused while providers or servers use it)
    #[command(after_help = "Example:\n  adpctl secret delete OLD_KEY")]
    Delete { name: String },
}

#[derive(Args, Debug)]
pub struct SecretArgs {
    pub name: String,
    /// Read the value from this file instead of stdin
    #[arg(long)]
    pub value_file: Option<PathBuf>,
    #[arg(long)]
    pub validate_only: bool,
}

fn secret_value(args: &SecretArgs) -> anyhow::Result<String> {
    let mut value = match &args.value_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the secret value from stdin")?;
            text
        }
    };
    // a trailing newline from `echo` or an editor is not part of the secret
    while value.ends_with('\n') || value.ends_with('\r') {
        value.pop();
    }
    anyhow::ensure!(!value.is_empty(), "the secret value is empty");
    Ok(value)
}

pub async fn secrets(global: &Global, command: SecretCommand) -> Result<(), Failure> {
    let target = global.target()?;
    let mut client = SecretServiceClient::new(target.control_plane().await?);
    let format = global.output;
    let show = |s: Option<pb::Secret>| -> Result<(), Failure> {
        let items: Vec<_> = s.iter().map(to_json).collect();
        Ok(print(format, &items, SECRET_COLUMNS, true)?)
    };
    match command {
        SecretCommand::Create(args) => {
            let request = pb::CreateSecretRequest {
                secret: Some(pb::Secret {
                    name: args.name.clone(),
                    ..Default::default()
                }),
                value: secret_value(&args)?,
                validate_only: args.validate_only,
            };
            let response = client.create_secret(target.request(request)?).await?;
            show(response.into_inner().secret)
        }
        SecretCommand::Update(args) => {
            let request = pb::UpdateSecretRequest {
                secret: Some(pb::Secret {
                    name: args.name.clone(),
                    ..Default::default()
                }),
                value: secret_value(&args)?,
                validate_only: args.validate_only,
            };
            let response = client.update_secret(target.request(request)?).await?;
            show(response.into_inner().secret)
        }
        SecretCommand::List(args) => {
            let mut items = Vec::new();
            let mut page_token = String::new();
            loop {
                let request = pb::ListSecretsRequest {
                    page_size: 1000,
                    page_token: page_token.clone(),
                    name_contains: args.name_contains.clone().unwrap_or_default(),
                    order_by: args.order_by.clone().unwrap_or_default(),
                };
                let page = client
                    .list_secrets(target.request(request)?)
                    .await?
                    .into_inner();
                items.extend(page.secrets.iter().map(to_json));
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            Ok(print(format, &items, SECRET_COLUMNS, false)?)
        }
        SecretCommand::Delete { name } => {
            let request = pb::DeleteSecretRequest {
                name: name.clone(),
                etag: String::new(),
            };
            client.delete_secret(target.request(request)?).await?;
            eprintln!("secret {name:?} deleted");
            Ok(())
        }
    }
}
