//! `ConfigDiscoveryService.WatchConfig` end to end: snapshot, deltas, resume, auth,
//! slow subscribers, and replicas on one PostgreSQL database.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "admin_api/support.rs"]
mod support;

use std::time::Duration;

use adp_api::v1::config_discovery_service_client::ConfigDiscoveryServiceClient;
use adp_api::v1::config_event::Kind;
use adp_api::v1::{ConfigEvent, WatchConfigRequest, WatchConfigResponse};
use adp_e2e::ControlPlaneProcess;
use support::*;
use tonic::Streaming;

async fn watch(
    cp: &ControlPlaneProcess,
    token: &str,
    resume_revision: i64,
) -> Result<Streaming<WatchConfigResponse>, tonic::Status> {
    let mut request = tonic::Request::new(WatchConfigRequest {
        node_id: "e2e".into(),
        resume_revision,
    });
    request.metadata_mut().insert(
        adp_core::metadata::PROXY_AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    Ok(ConfigDiscoveryServiceClient::new(cp.channel().await)
        .watch_config(request)
        .await?
        .into_inner())
}

/// The next snapshot or delta, skipping heartbeats.
async fn next_change(stream: &mut Streaming<WatchConfigResponse>) -> ConfigEvent {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("a config event within 10 s")
            .unwrap()
            .expect("stream open");
        let event = message.event.unwrap();
        if !matches!(event.kind, Some(Kind::Heartbeat(_))) {
            return event;
        }
    }
}

fn server_names(event: &ConfigEvent) -> Vec<String> {
    match &event.kind {
        Some(Kind::Snapshot(s)) => s
            .servers
            .iter()
            .map(|c| c.server.as_ref().unwrap().name.clone())
            .collect(),
        Some(Kind::Delta(d)) => d
            .upserted_servers
            .iter()
            .map(|c| c.server.as_ref().unwrap().name.clone())
            .collect(),
        _ => Vec::new(),
    }
}

async fn snapshot_deltas_and_resume(cp: &ControlPlaneProcess) {
    let api = Api::admin(cp).await;
    let proxy = cp.token("proxy-1", &["proxy"]);
    api.setup_provider("github").await;
    let tools = remote(
        "tools",
        "https://tools.example.com/mcp",
        user_oauth("github", &["read"], None),
    );
    let created = api.create_server(tools).await.unwrap();

    let mut stream = watch(cp, &proxy, 0).await.unwrap();
    let first = next_change(&mut stream).await;
    let Some(Kind::Snapshot(snapshot)) = &first.kind else {
        panic!("first event is a snapshot: {first:?}");
    };
    assert_eq!(server_names(&first), ["tools"]);
    let config = &snapshot.servers[0];
    assert_eq!(config.upstream_url, "https://tools.example.com/mcp");
    assert_eq!(snapshot.providers[0].name, "github");
    assert_eq!(snapshot.providers[0].scopes, ["read", "write", "admin"]);
    // nothing secret: the provider's public face carries no client id or secret ref
    assert!(!format!("{snapshot:?}").contains("CLIENT_SECRET"));
    let at_snapshot = first.revision;
    assert_eq!(
        at_snapshot, 2,
        "a provider and a server; secrets are not config"
    );

    // an admin change arrives as a delta with a larger revision
    let patch = adp_api::v1::McpServer {
        name: "tools".into(),
        auth: Some(user_oauth("github", &["read", "write"], None)),
        etag: created.etag.clone(),
        ..Default::default()
    };
    api.update_server(patch, &["user_oauth"], false)
        .await
        .unwrap();
    let delta = next_change(&mut stream).await;
    assert!(delta.revision > at_snapshot);
    let Some(Kind::Delta(changes)) = &delta.kind else {
        panic!("a delta: {delta:?}");
    };
    let auth = changes.upserted_servers[0]
        .server
        .as_ref()
        .unwrap()
        .auth
        .clone();
    let default_injection = Some(adp_api::v1::TokenInjection::default());
    assert_eq!(
        auth,
        Some(user_oauth("github", &["read", "write"], default_injection))
    );

    let current = api.get_server("tools").await.unwrap();
    api.delete_server("tools", &current.etag).await.unwrap();
    let removal = next_change(&mut stream).await;
    let Some(Kind::Delta(changes)) = &removal.kind else {
        panic!("a delta: {removal:?}");
    };
    assert_eq!(changes.removed_servers, ["tools"]);

    // a proxy that saw the snapshot resumes with only what it missed
    let mut resumed = watch(cp, &proxy, at_snapshot).await.unwrap();
    let missed = next_change(&mut resumed).await;
    assert_eq!(missed.revision, removal.revision);
    let Some(Kind::Delta(changes)) = &missed.kind else {
        panic!("resume within the log is a delta: {missed:?}");
    };
    assert_eq!(changes.removed_servers, ["tools"]);
    assert!(changes.upserted_providers.is_empty());

    // an up-to-date proxy gets an empty delta at the same revision
    let mut current = watch(cp, &proxy, removal.revision).await.unwrap();
    let nothing = next_change(&mut current).await;
    assert_eq!(nothing.revision, removal.revision);
    assert_eq!(
        nothing.kind,
        Some(Kind::Delta(adp_api::v1::ConfigDelta::default()))
    );

    // a revision this control plane never issued (another database) gets a snapshot
    let mut foreign = watch(cp, &proxy, removal.revision + 1000).await.unwrap();
    let reset = next_change(&mut foreign).await;
    assert!(matches!(reset.kind, Some(Kind::Snapshot(_))));
    assert_eq!(reset.revision, removal.revision);
}

#[tokio::test]
async fn sqlite_snapshot_deltas_and_resume() {
    let cp = ControlPlaneProcess::start_in_process(&[]).await;
    snapshot_deltas_and_resume(&cp).await;
}

#[tokio::test]
#[cfg_attr(
    not(adp_postgres),
    ignore = "set ADP_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn postgres_snapshot_deltas_and_resume() {
    let url = adp_e2e::pg::fresh_database().await;
    let cp = ControlPlaneProcess::start_in_process(&[("ADP_DATABASE_URL", &url)]).await;
    snapshot_deltas_and_resume(&cp).await;
}

#[tokio::test]
async fn only_proxies_may_watch() {
    let cp = ControlPlaneProcess::start_in_process(&[]).await;
    let user = cp.token("alice", &["mcpserver_list"]);
    let refused = watch(&cp, &user, 0).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");

    let mut request = tonic::Request::new(WatchConfigRequest::default());
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", cp.token("p", &["proxy"]))
            .parse()
            .unwrap(),
    );
    let wrong_header = ConfigDiscoveryServiceClient::new(cp.channel().await)
        .watch_config(request)
        .await
        .unwrap_err();
    assert_eq!(wrong_header.code(), tonic::Code::Unauthenticated);
}

/// A subscriber that stops reading fills only its own queue: the others keep up, and
/// once it reads again it is brought current (by a snapshot if it fell too far behind).
#[tokio::test]
async fn a_stalled_subscriber_does_not_hold_back_the_others() {
    let cp = ControlPlaneProcess::start_in_process(&[]).await;
    let api = Api::admin(&cp).await;
    let proxy = cp.token("proxy", &["proxy"]);
    let mut stalled = watch(&cp, &proxy, 0).await.unwrap();
    let mut live = watch(&cp, &proxy, 0).await.unwrap();
    next_change(&mut live).await;

    let writes = 300;
    for i in 0..writes {
        let server = remote(&format!("s{i}"), "https://tools.example.com/mcp", no_auth());
        api.create_server(server).await.unwrap();
    }
    let mut seen = std::collections::BTreeSet::new();
    let final_revision = loop {
        let event = next_change(&mut live).await;
        seen.extend(server_names(&event));
        if seen.len() == writes {
            break event.revision;
        }
    };

    let mut revision = 0;
    let mut names = std::collections::BTreeSet::new();
    while revision < final_revision {
        let event = next_change(&mut stalled).await;
        if matches!(event.kind, Some(Kind::Snapshot(_))) {
            names.clear();
        }
        names.extend(server_names(&event));
        revision = event.revision;
    }
    assert_eq!(revision, final_revision);
    assert_eq!(names.len(), writes);
}

/// Replicas share only the database: a write through one reaches a proxy subscribed to
/// the other through LISTEN/NOTIFY, well before the periodic catch-up would.
#[tokio::test]
#[cfg_attr(
    not(adp_postgres),
    ignore = "set ADP_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn postgres_replicas_propagate_changes_to_each_others_subscribers() {
    let url = adp_e2e::pg::fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("jwt");
    adp_e2e::write_jwt_secret(&secret);
    let env = [
        ("ADP_DATABASE_URL", url.as_str()),
        ("ADP_JWT_HS256_SECRET_FILE", secret.to_str().unwrap()),
    ];
    let a = ControlPlaneProcess::start_in_process(&env).await;
    let b = ControlPlaneProcess::start_in_process(&env).await;
    let proxy = a.token("proxy", &["proxy"]);
    let mut on_a = watch(&a, &proxy, 0).await.unwrap();
    let mut on_b = watch(&b, &proxy, 0).await.unwrap();
    next_change(&mut on_a).await;
    next_change(&mut on_b).await;

    let api_b = Api::admin(&b).await;
    let started = std::time::Instant::now();
    api_b
        .create_server(remote("shared", "https://s.example.com/mcp", no_auth()))
        .await
        .unwrap();
    let via_a = next_change(&mut on_a).await;
    let elapsed = started.elapsed();
    let via_b = next_change(&mut on_b).await;
    assert_eq!(server_names(&via_a), ["shared"]);
    assert_eq!(via_a.revision, via_b.revision);
    assert!(
        elapsed < Duration::from_millis(900),
        "NOTIFY, not the 1 s poll, carried it: {elapsed:?}"
    );
}
