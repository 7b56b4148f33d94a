//! `adpctl token mint`: an HS256 JWT signed with the control plane's development
//! secret. Not for production: production callers get tokens from the identity provider.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Mint a development JWT (NOT FOR PRODUCTION)
    #[command(
        after_help = "Example:\n  adpctl token mint --secret-file adp-data/dev-jwt-secret --subject alice --permissions '*' > token\n  buf curl -H \"Authorization: Bearer $(cat token)\" …"
    )]
    Mint(MintArgs),
}

#[derive(Args, Debug)]
pub struct MintArgs {
    /// HS256 secret file the control plane verifies with (ADP_JWT_HS256_SECRET_FILE,
    /// or the generated <data_dir>/dev-jwt-secret)
    #[arg(long, value_name = "FILE")]
    pub secret_file: PathBuf,
    /// The `sub` claim: who the token speaks for
    #[arg(long)]
    pub subject: String,
    /// Comma-separated permission names; `*` grants all
    #[arg(long, value_delimiter = ',', default_value = "")]
    pub permissions: Vec<String>,
    /// The `iss` claim; must match ADP_JWT_ISSUER when the control plane sets one
    #[arg(long, default_value = "adp-dev")]
    pub issuer: String,
    /// The `aud` claim, if the control plane checks one (ADP_JWT_AUDIENCE)
    #[arg(long)]
    pub audience: Option<String>,
    /// Claim that carries the permissions (ADP_PERMISSIONS_CLAIM)
    #[arg(long, default_value = "permissions")]
    pub permissions_claim: String,
    /// Lifetime in seconds
    #[arg(long, default_value_t = 3600)]
    pub ttl: u64,
}

pub fn run(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Mint(args) => {
            println!("{}", mint(&args)?);
            eprintln!(
                "adpctl: development token minted; do not use HS256 development secrets in production"
            );
            Ok(())
        }
    }
}

pub fn mint(args: &MintArgs) -> anyhow::Result<String> {
    let secret = std::fs::read(&args.secret_file)
        .with_context(|| format!("cannot read secret file {}", args.secret_file.display()))?;
    let secret = trim_trailing_newline(&secret);
    anyhow::ensure!(
        !secret.is_empty(),
        "secret file {} is empty",
        args.secret_file.display()
    );
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let permissions: Vec<&str> = args
        .permissions
        .iter()
        .map(String::as_str)
        .filter(|p| !p.is_empty())
        .collect();
    let mut claims = serde_json::json!({
        "iss": args.issuer,
        "sub": args.subject,
        "iat": now,
        "nbf": now,
        "exp": now + args.ttl,
    });
    claims[&args.permissions_claim] = serde_json::json!(permissions);
    if let Some(audience) = &args.audience {
        claims["aud"] = serde_json::json!(audience);
    }
    Ok(adp_core::identity::mint_hs256(secret, &claims)?)
}

/// The control plane trims a trailing newline from the secret file; so must we.
fn trim_trailing_newline(bytes: &[u8]) -> &[u8] {
    let mut end = bytes.len();
    while end > 0 && matches!(bytes[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &bytes[..end]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use adp_core::identity::{KeySource, Verifier, VerifierConfig};

    use super::*;

    #[tokio::test]
    async fn minted_tokens_verify_like_the_control_plane_does() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "0123456789abcdef\n").unwrap();
        let args = MintArgs {
            secret_file: file.clone(),
            subject: "alice".into(),
            permissions: vec!["mcpserver_get".into(), "secret_list".into()],
            issuer: "adp-dev".into(),
            audience: None,
            permissions_claim: "permissions".into(),
            ttl: 60,
        };
        let token = mint(&args).unwrap();
        let verifier = Verifier::new(VerifierConfig::new(
            KeySource::hs256_from_file(&file).unwrap(),
        ))
        .unwrap();
        let identity = verifier.verify(&token).await.unwrap();
        assert_eq!(identity.subject, "alice");
        assert!(identity.has_permission("secret_list"));
        assert!(!identity.has_permission("secret_create"));
    }
}
