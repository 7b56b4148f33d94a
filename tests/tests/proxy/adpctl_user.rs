//! `adpctl connections` and `adpctl tool` against the real control plane and proxy.

use std::process::Stdio;

use adp_e2e::binary;
use adp_e2e::consent::bounded;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::support::*;
use super::{Setup, setup};

fn adpctl(s: &Setup, subject: &str, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(binary("adpctl"));
    command
        .args([
            "--control-plane",
            &s.world.cps[0].grpc_url,
            "--proxy",
            &s.proxy.url,
        ])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ADPCTL_CONFIG", "/nonexistent/adpctl.yaml")
        .env("ADP_TOKEN", s.world.user(subject))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

async fn run(s: &Setup, subject: &str, args: &[&str]) -> (i32, String, String) {
    let output = adpctl(s, subject, args).output().await.unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn tool_call_waits_for_consent_and_retries_by_itself() {
    bounded(TEST_LIMIT, async {
        let s = setup(Options::default()).await;

        let (code, out, _) = run(&s, "dana", &["connections", "list", "-o", "json"]).await;
        assert_eq!(code, 0);
        let cards: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(cards[0]["status"], "CONNECTION_STATUS_NOT_CONNECTED");

        // --no-wait: the consent error, its URL, exit 5
        let (code, _, err) =
            run(&s, "dana", &["tool", "call", SERVER, "whoami", "--no-wait"]).await;
        assert_eq!(code, 5, "{err}");
        assert!(
            err.contains("OAUTH_CONNECTION_REQUIRED")
                && err.contains("connect your account at: http"),
            "{err}"
        );

        // waiting: the URL on stderr, consent in the browser, the result without a second call
        let mut child = adpctl(&s, "dana", &["tool", "call", SERVER, "whoami"])
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let url = loop {
            let line = stderr
                .next_line()
                .await
                .unwrap()
                .expect("a URL before the end");
            if let Some(url) = line.trim().strip_prefix("http") {
                break format!("http{url}");
            }
        };
        s.consent_via(&url, "dana").await;
        let output = child.wait_with_output().await.unwrap();
        assert!(output.status.success());
        let stdout = String::from_utf8_lossy(&output.stdout);
        let expected = s.world.bearer("dana").await;
        assert!(
            stdout.contains(&expected),
            "whoami shows dana's token: {stdout}"
        );

        let (code, out, _) = run(&s, "dana", &["tool", "list", SERVER]).await;
        assert_eq!(code, 0);
        assert!(out.contains("echo") && out.contains("whoami"), "{out}");
        let (code, out, err) = run(
            &s,
            "dana",
            &[
                "tool",
                "call",
                SERVER,
                "echo",
                "--args",
                r#"{"text":"from adpctl"}"#,
                "-o",
                "json",
            ],
        )
        .await;
        assert_eq!(code, 0, "{err}");
        let result: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(result["structuredContent"]["text"], "from adpctl");

        // revoke, and the card is back to not connected
        let (code, _, err) = run(&s, "dana", &["connections", "revoke", PROVIDER]).await;
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("revoked at the provider"), "{err}");
        let (_, out, _) = run(&s, "dana", &["connections", "list"]).await;
        assert!(out.contains("NOT_CONNECTED"), "{out}");

        // connect prints the URL and waits for the browser
        let mut child = adpctl(&s, "dana", &["connections", "connect", PROVIDER])
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = loop {
            let line = stdout.next_line().await.unwrap().expect("a URL");
            if let Some(url) = line.trim().strip_prefix("http") {
                break format!("http{url}");
            }
        };
        s.consent_via(&url, "dana").await;
        let status = child.wait().await.unwrap();
        assert!(status.success());
    })
    .await;
}

/// `--from-discovery` fills a provider's endpoints from the issuer's metadata.
#[tokio::test]
async fn provider_endpoints_from_discovery() {
    bounded(TEST_LIMIT, async {
        let s = setup(Options::default()).await;
        let endpoints = s.world.auth_server.endpoints();
        let mut command = adpctl(
            &s,
            "admin",
            &[
                "oauth-provider",
                "create",
                "--name",
                "corp",
                "--from-discovery",
                &endpoints.issuer,
                "--client-id",
                CLIENT_ID,
                "--client-secret-ref",
                SECRET_REF,
                "--scopes",
                "openid",
                "-o",
                "json",
            ],
        );
        command.env("ADP_TOKEN", &s.world.admin);
        let output = command.output().await.unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        let created: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(
            created["authorizeUrl"],
            endpoints.authorization_endpoint.as_str()
        );
        assert_eq!(created["tokenUrl"], endpoints.token_endpoint.as_str());
        assert_eq!(created["issuer"], endpoints.issuer.as_str());
        assert!(
            created["revocationUrl"]
                .as_str()
                .is_some_and(|u| !u.is_empty())
        );
    })
    .await;
}
