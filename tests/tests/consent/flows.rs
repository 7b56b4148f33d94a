//! Consent itself: the first call's error, browser and device consent, scope upgrades,
//! revocation, the proxy/user credentials of `GetUpstreamCredential`, and switching a
//! server to service-account OAuth.

use std::time::Duration;

use adp_api::v1::mcp_server::Auth;
use adp_api::v1::*;
use adp_e2e::authed;
use adp_e2e::consent::{RichError, bounded, query_param};
use adp_e2e::oidc::{AUTHORIZATION_CODE_GRANT, CLIENT_CREDENTIALS_GRANT, DEVICE_CODE_GRANT};
use tonic::Code;

use crate::support::*;

#[tokio::test]
async fn first_call_needs_a_connection_and_browser_consent_provides_it() {
    bounded(TEST_LIMIT, async {
        let mut world = World::start(Options::default()).await;
        let connect_prefix = format!("{}/oauth/v1/connect/", world.cps[0].http_url);

        let error = world.credential_error("alice").await;
        assert_eq!(error.code, Code::FailedPrecondition, "{error:?}");
        assert_eq!(error.reason, "OAUTH_CONNECTION_REQUIRED");
        assert_eq!(error.domain, "adp.v1");
        assert_eq!(error.meta("providerName"), PROVIDER);
        assert_eq!(error.meta("mcpServer"), SERVER);
        let url = error.meta("authorizeUrl").to_owned();
        assert!(url.starts_with(&connect_prefix), "{url}");
        let help: Vec<&str> = error.help_links.iter().map(|(_, u)| u.as_str()).collect();
        assert_eq!(help, [url.as_str()], "the Help link is the authorize URL");
        let typed: OAuthConnectionRequired = error
            .detail("OAuthConnectionRequired")
            .expect("typed OAuthConnectionRequired detail");
        assert_eq!(typed.authorize_url, url);
        assert_eq!(typed.provider_name, PROVIDER);
        assert_eq!(typed.server_name, SERVER);
        assert_eq!(typed.required_scopes, strings(&["repo"]));

        // the browser part, one step at a time: first a page that says what is asked and
        // why, which changes nothing by itself
        let browser = world.browser();
        let prompt = browser.get(&url).await.unwrap();
        assert_eq!(prompt.status, 200, "{}", prompt.body);
        for shown in ["GitHub (test)", "<code>repo</code>", SERVER, "Continue to"] {
            assert!(
                prompt.body.contains(shown),
                "the page names {shown}: {}",
                prompt.body
            );
        }
        assert!(
            browser.consent_cookie(&url).is_none(),
            "nothing is bound before Continue"
        );
        let authorize = browser.open_connect(&url).await.unwrap();
        let endpoints = world.auth_server.endpoints();
        assert!(
            authorize
                .as_str()
                .starts_with(&endpoints.authorization_endpoint),
            "{authorize}"
        );
        let param = |name: &str| query_param(&authorize, name).unwrap_or_default();
        assert_eq!(param("code_challenge_method"), "S256");
        assert_eq!(param("code_challenge").len(), 43, "a SHA-256 challenge");
        assert_eq!(param("response_type"), "code");
        assert_eq!(param("client_id"), CLIENT_ID);
        assert_eq!(
            param("redirect_uri"),
            format!("{}/oauth/v1/callback", world.cps[0].http_url)
        );
        assert_eq!(param("state"), url[connect_prefix.len()..]);
        assert!(param("scope").split(' ').any(|s| s == "repo"));

        let callback = browser
            .approve_at_provider(&authorize, "alice")
            .await
            .unwrap();
        assert_eq!(
            query_param(&callback, "iss").as_deref(),
            Some(world.auth_server.issuer())
        );
        let page = browser.get(callback.as_str()).await.unwrap();
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.to_lowercase().contains("connected"));

        let token = world.bearer("alice").await;
        let cards = world.cards("alice").await;
        assert_eq!(cards.len(), 1, "{cards:?}");
        let card = &cards[0];
        assert_eq!(status(card), ConnectionStatus::Connected, "{card:?}");
        assert_eq!(card.provider_name, PROVIDER);
        assert_eq!(card.requested_scopes, strings(&["repo"]));
        assert!(card.granted_scopes.contains(&"repo".to_owned()), "{card:?}");
        assert!(card.connect_time.is_some() && card.expire_time.is_some());
        assert_eq!(world.stats().await.count(AUTHORIZATION_CODE_GRANT), 1);

        // bob has no connection of his own and gets none of alice's
        assert_eq!(
            status(&world.card("bob").await),
            ConnectionStatus::NotConnected
        );
        let error = world.credential_error("bob").await;
        assert_eq!(error.reason, "OAUTH_CONNECTION_REQUIRED");
        assert_ne!(error.meta("authorizeUrl"), url, "a fresh link for bob");
        world.assert_log_free_of(&[&token]);
    })
    .await;
}

#[tokio::test]
async fn device_flow_connects_and_the_watch_stream_reports_it() {
    bounded(TEST_LIMIT, async {
        let options = Options {
            device_poll_interval: Some(Duration::from_secs(1)),
            ..Options::default()
        }
        .grants(&[GrantType::DeviceCode]);
        let world = World::start(options).await;
        let alice = world.user("alice");

        let request = WatchConnectionRequest {
            provider_name: PROVIDER.into(),
        };
        let mut watch = world
            .connections(0)
            .watch_connection(authed(request, &alice))
            .await
            .expect("WatchConnection")
            .into_inner();
        let first = watch.message().await.unwrap().unwrap().connection.unwrap();
        assert_eq!(status(&first), ConnectionStatus::NotConnected);

        let start = world.connect("alice").await;
        let device = start.device_code.expect("a device code");
        assert!(!device.user_code.is_empty());
        assert!(
            device
                .verification_uri
                .starts_with(world.auth_server.issuer()),
            "{device:?}"
        );
        assert!(!device.verification_uri_complete.is_empty());
        assert_eq!(device.interval, 1);
        assert_eq!(start.authorize_url, device.verification_uri_complete);
        assert!(start.expire_time.is_some());

        world
            .auth_server
            .browser()
            .approve_device(&device.verification_uri_complete, "alice")
            .await
            .unwrap();

        let connected = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let update = watch.message().await.unwrap().expect("stream stays open");
                let card = update.connection.unwrap();
                if status(&card) == ConnectionStatus::Connected {
                    return card;
                }
            }
        })
        .await
        .expect("the watch stream reports CONNECTED within 60 s");
        assert!(connected.granted_scopes.contains(&"repo".to_owned()));

        world.bearer("alice").await;
        let stats = world.stats().await;
        assert!(stats.count(DEVICE_CODE_GRANT) >= 1, "{stats:?}");
        assert_eq!(stats.slow_down, 0, "the control plane honours interval");
        assert_eq!(stats.count(AUTHORIZATION_CODE_GRANT), 0);
    })
    .await;
}

#[tokio::test]
async fn scope_upgrade_reconsents_in_place() {
    bounded(TEST_LIMIT, async {
        let world = World::start(Options::default()).await;
        let browser = world.browser();
        world.consent(&browser, "alice").await;
        let before = world.card("alice").await;
        assert_eq!(before.granted_scopes, strings(&["repo"]), "{before:?}");
        let old_token = world.bearer("alice").await;

        let patch = McpServer {
            name: SERVER.into(),
            auth: Some(Auth::UserOauth(UserOAuthAuth {
                provider_name: PROVIDER.into(),
                required_scopes: strings(&["repo", "read:org"]),
                token_injection: None,
            })),
            ..Default::default()
        };
        world
            .update_server(patch, &["user_oauth.required_scopes"])
            .await
            .expect("require read:org too");

        let error = world.credential_error("alice").await;
        assert_eq!(error.code, Code::FailedPrecondition);
        assert_eq!(error.reason, "SCOPE_UPGRADE_REQUIRED");
        assert!(
            error.message.contains("scope_upgrade_required"),
            "{}",
            error.message
        );
        assert_eq!(error.meta("missingScopes"), "read:org");
        let typed: ScopeUpgradeRequired = error
            .detail("ScopeUpgradeRequired")
            .expect("typed ScopeUpgradeRequired detail");
        assert_eq!(typed.missing_scopes, strings(&["read:org"]));
        assert_eq!(typed.granted_scopes, strings(&["repo"]));
        assert_eq!(typed.required_scopes, strings(&["repo", "read:org"]));
        assert_eq!(typed.provider_name, PROVIDER);
        assert_eq!(typed.authorize_url, error.meta("authorizeUrl"));
        let card = world.card("alice").await;
        assert_eq!(status(&card), ConnectionStatus::ScopeUpgradeRequired);

        let authorize = browser.open_connect(&typed.authorize_url).await.unwrap();
        let scope = query_param(&authorize, "scope").unwrap_or_default();
        let asked: Vec<&str> = scope.split(' ').collect();
        assert!(
            asked.contains(&"repo") && asked.contains(&"read:org"),
            "{scope}"
        );
        let callback = browser
            .approve_at_provider(&authorize, "alice")
            .await
            .unwrap();
        let page = browser.get(callback.as_str()).await.unwrap();
        assert_eq!(page.status, 200, "{}", page.body);

        let new_token = world.bearer("alice").await;
        assert_ne!(new_token, old_token);
        let cards = world.cards("alice").await;
        let ours: Vec<&Connection> = cards
            .iter()
            .filter(|c| c.provider_name == PROVIDER)
            .collect();
        assert_eq!(ours.len(), 1, "one connection, updated in place: {cards:?}");
        assert_eq!(status(ours[0]), ConnectionStatus::Connected);
        for scope in ["repo", "read:org"] {
            assert!(
                ours[0].granted_scopes.contains(&scope.to_owned()),
                "{cards:?}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn revoking_a_connection_revokes_the_grant_upstream() {
    bounded(TEST_LIMIT, async {
        let world = World::start(Options::default()).await;
        let browser = world.browser();
        world.consent(&browser, "alice").await;
        let header = world.bearer("alice").await;
        let access_token = header.trim_start_matches("Bearer ");
        assert!(
            world.introspect(access_token).await,
            "active before revoking"
        );

        let request = RevokeConnectionRequest {
            provider_name: PROVIDER.into(),
        };
        let revoked = world
            .connections(0)
            .revoke_connection(authed(request.clone(), &world.user("alice")))
            .await
            .expect("RevokeConnection")
            .into_inner();
        assert!(revoked.upstream_revoked, "{revoked:?}");
        assert_eq!(revoked.upstream_revocation_error, "");
        let card = revoked.connection.expect("the card after revoking");
        assert_eq!(status(&card), ConnectionStatus::NotConnected);
        assert_eq!(
            status(&world.card("alice").await),
            ConnectionStatus::NotConnected
        );
        assert_eq!(
            world.credential_error("alice").await.reason,
            "OAUTH_CONNECTION_REQUIRED"
        );
        // revoking the refresh token ended the whole grant, access token included
        assert!(
            !world.introspect(access_token).await,
            "the provider still honours the access token after revocation"
        );

        // a provider without a revocation endpoint: deleted locally, reported as not revoked
        let patch = OAuthProvider {
            name: PROVIDER.into(),
            ..Default::default()
        };
        world
            .update_provider(patch, &["revocation_url"])
            .await
            .expect("clear revocation_url");
        world.consent(&browser, "alice").await;
        let header = world.bearer("alice").await;
        let revoked = world
            .connections(0)
            .revoke_connection(authed(request, &world.user("alice")))
            .await
            .expect("RevokeConnection")
            .into_inner();
        assert!(!revoked.upstream_revoked, "{revoked:?}");
        assert!(
            revoked
                .upstream_revocation_error
                .contains("revocation endpoint"),
            "{revoked:?}"
        );
        assert_eq!(
            status(&world.card("alice").await),
            ConnectionStatus::NotConnected
        );
        assert!(
            world.introspect(header.trim_start_matches("Bearer ")).await,
            "nothing was revoked upstream"
        );
    })
    .await;
}

#[tokio::test]
async fn get_upstream_credential_needs_both_the_proxy_and_the_user() {
    bounded(TEST_LIMIT, async {
        let world = World::start(Options::default()).await;
        let alice = world.user("alice");
        let not_a_proxy = world.cps[0].token("some-workload", &["secret_list"]);
        let cases = [
            (
                "no proxy token",
                Some(alice.as_str()),
                None,
                Code::Unauthenticated,
            ),
            (
                "a garbage proxy token",
                Some(alice.as_str()),
                Some("not-a-jwt"),
                Code::Unauthenticated,
            ),
            (
                "a proxy token without `proxy`",
                Some(alice.as_str()),
                Some(not_a_proxy.as_str()),
                Code::PermissionDenied,
            ),
            (
                "the user's own token as the proxy's",
                Some(alice.as_str()),
                Some(alice.as_str()),
                Code::PermissionDenied,
            ),
            (
                "no user token",
                None,
                Some(world.proxy.as_str()),
                Code::Unauthenticated,
            ),
        ];
        for (what, user, proxy, expected) in cases {
            let request = credential_request(SERVER, user, proxy);
            let status =
                adp_api::v1::token_service_client::TokenServiceClient::new(world.channel(0))
                    .get_upstream_credential(request)
                    .await
                    .expect_err(what);
            assert_eq!(status.code(), expected, "{what}: {status:?}");
        }
        // with both, the call reaches the consent logic
        let error = world.credential_error("alice").await;
        assert_eq!(error.reason, "OAUTH_CONNECTION_REQUIRED");
    })
    .await;
}

#[tokio::test]
async fn switching_to_a_service_account_expires_user_connections() {
    bounded(TEST_LIMIT, async {
        // long-lived tokens, so the shared client-credentials token is cached
        let options = Options::default()
            .ttl(600)
            .grants(&[GrantType::BrowserConsent, GrantType::ClientCredentials]);
        let world = World::start(options).await;
        let browser = world.browser();
        world.consent(&browser, "alice").await;
        let users_token = world.bearer("alice").await;

        let patch = McpServer {
            name: SERVER.into(),
            auth: Some(Auth::ServiceAccountOauth(ServiceAccountOAuthAuth {
                provider_name: PROVIDER.into(),
                scopes: strings(&["repo"]),
                token_injection: None,
            })),
            ..Default::default()
        };
        let updated = world
            .update_server(patch, &["service_account_oauth"])
            .await
            .expect("switch to service-account OAuth");
        assert!(
            matches!(updated.auth, Some(Auth::ServiceAccountOauth(_))),
            "{updated:?}"
        );

        let card = world.card("alice").await;
        assert_eq!(status(&card), ConnectionStatus::Expired, "{card:?}");
        assert!(!card.status_reason.is_empty());

        let alices = world.bearer("alice").await;
        let bobs = world.bearer("bob").await;
        assert_eq!(alices, bobs, "one shared service-account token");
        assert_ne!(alices, users_token);
        assert_eq!(world.stats().await.count(CLIENT_CREDENTIALS_GRANT), 1);

        // switching back needs alice's consent again, not her old token
        let patch = McpServer {
            name: SERVER.into(),
            auth: Some(Auth::UserOauth(UserOAuthAuth {
                provider_name: PROVIDER.into(),
                required_scopes: strings(&["repo"]),
                token_injection: None,
            })),
            ..Default::default()
        };
        world
            .update_server(patch, &["user_oauth"])
            .await
            .expect("switch back to user-delegated OAuth");
        let error: RichError = world.credential_error("alice").await;
        assert_eq!(error.reason, "OAUTH_TOKEN_EXPIRED", "{error:?}");
    })
    .await;
}
