//! The real `adpctl` binary against a real control plane: contexts, secrets, providers,
//! MCP servers, output formats, and how errors look and exit.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Stdio;

use adp_e2e::{ControlPlaneProcess, binary};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

struct Cli {
    dir: tempfile::TempDir,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }

    fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Cli {
    fn new() -> Cli {
        Cli {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    async fn run_with(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
        let mut command = tokio::process::Command::new(binary("adpctl"));
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("ADPCTL_CONFIG", self.dir.path().join("config.yaml"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).await.unwrap();
        drop(input);
        let output = child.wait_with_output().await.unwrap();
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    async fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, "", &[]).await
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }
}

async fn configured(cp: &ControlPlaneProcess) -> Cli {
    let cli = Cli::new();
    std::fs::write(cli.path("token"), cp.admin_token()).unwrap();
    cli.run(&[
        "context",
        "set",
        "dev",
        "--control-plane",
        &cp.grpc_url,
        "--token-file",
        &cli.path("token"),
    ])
    .await
    .ok();
    cli
}

#[tokio::test]
async fn admin_command_groups_round_trip() {
    let cp = ControlPlaneProcess::start().await;
    let cli = configured(&cp).await;

    // secrets come from stdin and never come back
    cli.run_with(
        &["secret", "create", "GITHUB_CLIENT_SECRET"],
        "s3cr3t-value\n",
        &[],
    )
    .await
    .ok();
    let listed = cli.run(&["secret", "list", "-o", "json"]).await.ok();
    assert_eq!(listed.json()[0]["name"], "GITHUB_CLIENT_SECRET");
    assert!(!listed.stdout.contains("s3cr3t-value"));
    std::fs::write(cli.path("new-secret"), "rotated").unwrap();
    cli.run(&[
        "secret",
        "update",
        "GITHUB_CLIENT_SECRET",
        "--value-file",
        &cli.path("new-secret"),
    ])
    .await
    .ok();

    let created = cli
        .run(&[
            "oauth-provider",
            "create",
            "--name",
            "github",
            "--display-name",
            "GitHub",
            "--auth-endpoint",
            "https://github.com/login/oauth/authorize",
            "--token-endpoint",
            "https://github.com/login/oauth/access_token",
            "--client-id",
            "Iv1.abc",
            "--client-secret-ref",
            "GITHUB_CLIENT_SECRET",
            "--scopes",
            "repo,read:org",
        ])
        .await
        .ok();
    assert!(
        created.stdout.starts_with("NAME"),
        "a table by default: {}",
        created.stdout
    );
    assert!(created.stdout.contains("github") && created.stdout.contains("repo,read:org"));

    // -o json uses the proto's JSON names, and what it prints reads back the same
    let got = cli
        .run(&["oauth-provider", "get", "github", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(got["displayName"], "GitHub");
    assert_eq!(
        got["tokenAuthMethod"],
        "TOKEN_AUTH_METHOD_CLIENT_SECRET_BASIC"
    );
    let listed = cli
        .run(&["oauth-provider", "list", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(listed[0], got);
    let yaml = cli
        .run(&["oauth-provider", "get", "github", "-o", "yaml"])
        .await
        .ok();
    let from_yaml: Value = serde_norway::from_str(&yaml.stdout).unwrap();
    assert_eq!(from_yaml, got);

    let updated = cli
        .run(&[
            "oauth-provider",
            "update",
            "--name",
            "github",
            "--scopes",
            "repo,read:org,workflow",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(
        updated["scopes"],
        serde_json::json!(["repo", "read:org", "workflow"])
    );
    assert_eq!(
        updated["displayName"], "GitHub",
        "fields not named stay as they were"
    );

    // the https rule as a user sees it: code, message, field, rule id; exit 4
    let refused = cli
        .run(&[
            "mcp",
            "create",
            "--name",
            "issues",
            "--url",
            "http://mcp.example.com/mcp",
            "--user-oauth-provider",
            "github",
            "--user-oauth-scopes",
            "repo",
        ])
        .await;
    assert_eq!(refused.code, 4, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("InvalidArgument"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("field mcp_server.remote.url: HTTPS required [rule remote_mcp.user_oauth_requires_https]"),
        "{}",
        refused.stderr
    );

    cli.run(&[
        "mcp",
        "create",
        "--name",
        "issues",
        "--url",
        "https://mcp.example.com/mcp",
        "--user-oauth-provider",
        "github",
        "--user-oauth-scopes",
        "repo",
    ])
    .await
    .ok();
    cli.run(&[
        "mcp",
        "create",
        "--name",
        "apikey",
        "--url",
        "https://k.example.com/mcp",
        "--user-oauth-provider",
        "github",
        "--user-oauth-scopes",
        "repo",
        "--token-header",
        "X-Api-Key",
        "--token-prefix",
        "",
    ])
    .await
    .ok();
    let apikey = cli
        .run(&["mcp", "get", "apikey", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(
        apikey["userOauth"]["tokenInjection"]["headerName"],
        "X-Api-Key"
    );
    assert_eq!(
        apikey["userOauth"]["tokenInjection"]["headerPrefix"], "",
        "an explicit empty prefix is kept"
    );
    let servers = cli.run(&["mcp", "list", "-o", "yaml"]).await.ok();
    assert!(
        servers.stdout.contains("name: issues"),
        "{}",
        servers.stdout
    );
    let disabled = cli
        .run(&[
            "mcp",
            "update",
            "--name",
            "issues",
            "--enabled",
            "false",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert!(disabled.get("enabled").is_none_or(|v| v == false));
    let catalog = cli.run(&["mcp", "catalog"]).await.ok();
    assert!(
        catalog.stdout.contains("MANAGED_TYPE_SLACK"),
        "{}",
        catalog.stdout
    );

    // in use: refused with the users named
    let in_use = cli.run(&["oauth-provider", "delete", "github"]).await;
    assert_ne!(in_use.code, 0);
    assert!(
        in_use.stderr.contains("RESOURCE_IN_USE"),
        "{}",
        in_use.stderr
    );
    cli.run(&["mcp", "delete", "issues"]).await.ok();
    cli.run(&["mcp", "delete", "apikey"]).await.ok();
    cli.run(&["oauth-provider", "delete", "github"]).await.ok();
    let gone = cli.run(&["oauth-provider", "get", "github"]).await;
    assert_eq!(gone.code, 7, "not found: {}", gone.stderr);
}

#[tokio::test]
async fn errors_exit_with_distinct_codes() {
    let cp = ControlPlaneProcess::start().await;
    let cli = configured(&cp).await;

    let usage = cli.run(&["mcp", "create"]).await;
    assert_eq!(usage.code, 2, "{}", usage.stderr);

    let bad_token = cli
        .run_with(&["mcp", "list"], "", &[("ADP_TOKEN", "not-a-jwt")])
        .await;
    assert_eq!(bad_token.code, 3, "{}", bad_token.stderr);
    assert!(
        bad_token.stderr.contains("Unauthenticated"),
        "{}",
        bad_token.stderr
    );

    let weak = cp.token("viewer", &["mcpserver_list"]);
    let denied = cli
        .run_with(&["secret", "list"], "", &[("ADP_TOKEN", weak.as_str())])
        .await;
    assert_eq!(denied.code, 3, "{}", denied.stderr);
    assert!(
        denied.stderr.contains("PERMISSION_MISSING"),
        "{}",
        denied.stderr
    );

    let down = cli
        .run(&["--control-plane", "http://127.0.0.1:1", "mcp", "list"])
        .await;
    assert_eq!(down.code, 6, "{}", down.stderr);

    let empty_secret = cli.run_with(&["secret", "create", "EMPTY"], "", &[]).await;
    assert_eq!(empty_secret.code, 1);
    assert!(
        empty_secret.stderr.contains("empty"),
        "{}",
        empty_secret.stderr
    );
}

/// `adpctl token mint` makes tokens the control plane accepts (development only).
#[tokio::test]
async fn minted_tokens_work_and_say_they_are_for_development() {
    let cp = ControlPlaneProcess::start().await;
    let cli = Cli::new();
    let minted = cli
        .run(&[
            "token",
            "mint",
            "--secret-file",
            cp.jwt_secret_file.to_str().unwrap(),
            "--subject",
            "ops",
            "--permissions",
            "*",
            "--issuer",
            adp_e2e::ISSUER,
        ])
        .await
        .ok();
    assert!(minted.stderr.contains("production"), "{}", minted.stderr);
    let token = minted.stdout.trim().to_owned();
    let listed = cli
        .run_with(
            &["--control-plane", &cp.grpc_url, "mcp", "list", "-o", "json"],
            "",
            &[("ADP_TOKEN", token.as_str())],
        )
        .await
        .ok();
    assert_eq!(listed.json(), serde_json::json!([]));
    assert!(Path::new(&binary("adpctl")).exists());
}
