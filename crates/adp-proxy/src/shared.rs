//! What every worker thread and both front doors (MCP over HTTP, gRPC gateway) share:
//! the config feed, verified callers, cached credentials, and the first steps of every call.

use std::sync::Arc;

use adp_core::identity::{AuthError, Identity, bearer_token};
use adp_core::server::Auth;
use http::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use crate::callers::{Audience, Callers};
use crate::consent::RequestStates;
use crate::control_plane_client::{ControlPlaneClient, CredentialError};
use crate::credential_cache::{CacheKey, CredentialCache};
use crate::errors::ProxyError;
use crate::feed::Feed;
use crate::routes::Route;
use crate::session_ids::SessionIds;

#[derive(Debug)]
pub struct Shared {
    pub feed: Feed,
    pub control_plane: ControlPlaneClient,
    pub callers: Callers,
    pub credentials: CredentialCache,
    pub session_ids: SessionIds,
    pub request_states: RequestStates,
    pub allowed_origins: Vec<String>,
    pub max_request_bytes: usize,
}

/// A call that may proceed: its route and its verified caller.
#[derive(Debug)]
pub struct Admitted {
    pub route: Arc<Route>,
    pub identity: Arc<Identity>,
    pub jwt: SecretString,
}

impl Shared {
    /// Finds the server and verifies the caller's `Authorization: Bearer <JWT>`.
    ///
    /// Token passthrough: for a `token_passthrough` server the caller's token is the one
    /// forwarded upstream, so it must be a JWT from the same issuer and keys as any
    /// caller's, but issued for that upstream: its `aud` must name the server's upstream
    /// URL (the RFC 8707 resource) and must not name ADP's own audience
    /// (`ADP_JWT_AUDIENCE`). A token without `aud`, or for any other audience, is refused
    /// with `PASSTHROUGH_TOKEN_AUDIENCE`; ADP's own JWT never leaves the proxy, where an
    /// upstream could replay it against ADP.
    pub async fn admit(
        &self,
        server: &str,
        authorization: Option<&str>,
    ) -> Result<Admitted, ProxyError> {
        if !self.feed.status.borrow().has_config {
            return Err(ProxyError::NoConfig);
        }
        let route = self
            .feed
            .table
            .borrow()
            .servers
            .get(server)
            .cloned()
            .ok_or_else(|| ProxyError::UnknownServer(server.to_owned()))?;
        // the request's span (`mcp_http::request_span`) names the server and, below, the caller
        let span = tracing::Span::current();
        span.record("server", tracing::field::display(&route.server.name));
        if !route.server.enabled {
            return Err(ProxyError::Disabled(server.to_owned()));
        }
        if route.upstream.is_none() {
            return Err(ProxyError::NoUpstream(server.to_owned()));
        }
        let header = authorization.ok_or_else(|| {
            ProxyError::Unauthenticated("send Authorization: Bearer <JWT>".into())
        })?;
        let token = bearer_token(header).map_err(|e| ProxyError::Unauthenticated(e.to_string()))?;
        let identity = match route.server.auth {
            Auth::TokenPassthrough => self
                .callers
                .verify(token, Audience::Resource(&route.upstream_url))
                .await
                .map_err(|e| passthrough_refusal(e, &route.upstream_url))?,
            _ => self
                .callers
                .verify(token, Audience::Adp)
                .await
                .map_err(|e| ProxyError::Unauthenticated(e.to_string()))?,
        };
        span.record("subject", tracing::field::display(&identity.subject));
        Ok(Admitted {
            route,
            identity,
            jwt: SecretString::from(token.to_owned()),
        })
    }

    /// The header to inject for this caller and server (`None`: send none).
    pub async fn credential(
        &self,
        admitted: &Admitted,
    ) -> Result<Option<(HeaderName, HeaderValue)>, CredentialError> {
        if matches!(admitted.route.server.auth, Auth::TokenPassthrough) {
            // `admit` verified that this token is meant for this upstream
            return Ok(passthrough_header(&admitted.jwt));
        }
        if !admitted.route.needs_credential() {
            return Ok(None);
        }
        let key = CacheKey {
            identity: admitted.identity.clone(),
            route: admitted.route.clone(),
        };
        Ok(self
            .credentials
            .credential(key, &admitted.route, &admitted.jwt)
            .await?
            .header)
    }
}

/// An audience failure is the passthrough rule speaking; anything else (a bad
/// signature, an expired token) is plain authentication.
fn passthrough_refusal(error: AuthError, resource: &str) -> ProxyError {
    match error {
        AuthError::WrongAudience | AuthError::AdpAudience | AuthError::MissingClaim("aud") => {
            ProxyError::PassthroughAudience {
                resource: resource.to_owned(),
                problem: error.to_string(),
            }
        }
        other => ProxyError::Unauthenticated(other.to_string()),
    }
}

/// The caller's own token, byte for byte, as the upstream's bearer token.
fn passthrough_header(token: &SecretString) -> Option<(HeaderName, HeaderValue)> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret())).ok()?;
    value.set_sensitive(true);
    Some((http::header::AUTHORIZATION, value))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use adp_core::identity::{KeySource, Verifier, VerifierConfig, mint_hs256};
    use adp_core::server::{McpServer, Source, TokenInjection, Transport};
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use serde_json::json;
    use tokio::sync::watch;

    use super::*;
    use crate::control_plane_client::Credential;
    use crate::credential_cache::Revocations;
    use crate::feed::{Feed, FeedStatus};
    use crate::keys::Subkey;
    use crate::routes::RoutingTable;

    const HS256_SECRET: &[u8] = b"debug-test-hs256-secret-0123456789";
    const UPSTREAM_TOKEN: &str = "upstream-token-for-the-debug-test";
    const PROXY_TOKEN: &str = "proxy-token-for-the-debug-test";
    const KEY_SEED: u8 = 0xa7;
    const UPSTREAM: &str = "http://127.0.0.1:9/mcp";

    fn route() -> Arc<Route> {
        Arc::new(Route {
            server: McpServer {
                name: "tools".into(),
                description: String::new(),
                enabled: true,
                source: Source::Remote {
                    url: UPSTREAM.into(),
                    transport: Transport::StreamableHttp,
                },
                auth: Auth::UserOAuth {
                    provider_name: "github".into(),
                    required_scopes: vec![],
                    token_injection: TokenInjection::default(),
                },
            },
            upstream_url: UPSTREAM.into(),
            upstream: crate::forward::Target::parse(UPSTREAM).ok(),
            legacy_sse: false,
            generation: 1,
        })
    }

    fn shared(route: Arc<Route>, token_file: std::path::PathBuf) -> Shared {
        let mut table = RoutingTable::default();
        table.servers.insert(route.server.name.clone(), route);
        let (_, table) = watch::channel(Arc::new(table));
        let (_, status) = watch::channel(FeedStatus {
            connected: true,
            has_config: true,
            revision: 1,
            last_error: None,
        });
        // nothing listens there: every answer below comes from the caches
        let control_plane =
            ControlPlaneClient::new("http://127.0.0.1:1", Some(token_file)).unwrap();
        let mut config = VerifierConfig::new(KeySource::hs256(HS256_SECRET.to_vec()));
        config.audience = Some("adp".into());
        Shared {
            feed: Feed { table, status },
            control_plane: control_plane.clone(),
            callers: Callers::new(Verifier::new(config).unwrap(), 16),
            credentials: CredentialCache::new(
                control_plane,
                16,
                Duration::from_secs(1),
                Arc::new(Revocations::default()),
            ),
            session_ids: SessionIds::new(Subkey::for_tests(KEY_SEED)),
            request_states: RequestStates::new(Subkey::for_tests(KEY_SEED), 16),
            allowed_origins: vec![],
            max_request_bytes: 1024,
        }
    }

    /// Every way a key's bytes could be printed: a byte list, hex, base64.
    fn printed_forms(key: &[u8]) -> Vec<String> {
        let listed = format!("{:?}", &key[..4]);
        vec![
            listed.trim_matches(['[', ']']).to_owned(),
            hex::encode(&key[..8]),
            hex::encode_upper(&key[..8]),
            URL_SAFE_NO_PAD.encode(&key[..9]),
            STANDARD.encode(&key[..9]),
        ]
    }

    #[tokio::test]
    async fn debug_of_the_whole_shared_state_shows_no_token_or_key() {
        let dir = std::env::temp_dir().join(format!("adp-shared-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let token_file = dir.join("proxy-token");
        std::fs::write(&token_file, PROXY_TOKEN).unwrap();
        let route = route();
        let shared = shared(route.clone(), token_file);

        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 600;
        let claims =
            json!({"iss": "https://issuer.test", "sub": "alice", "aud": "adp", "exp": exp});
        let jwt = mint_hs256(HS256_SECRET, &claims).unwrap();
        let admitted = shared
            .admit("tools", Some(&format!("Bearer {jwt}")))
            .await
            .unwrap();
        let mut value = HeaderValue::from_str(&format!("Bearer {UPSTREAM_TOKEN}")).unwrap();
        value.set_sensitive(true);
        let key = CacheKey {
            identity: admitted.identity.clone(),
            route: route.clone(),
        };
        let credential = Credential {
            header: Some((http::header::AUTHORIZATION, value)),
            expire_time: SystemTime::now() + Duration::from_secs(600),
        };
        shared
            .credentials
            .remember_for_tests(key, &route, credential);
        // the credential is served from the cache (the control plane is unreachable)
        let (_, header) = shared.credential(&admitted).await.unwrap().unwrap();
        assert!(header.to_str().unwrap().ends_with(UPSTREAM_TOKEN));
        // and the JWT from the verified cache
        shared
            .admit("tools", Some(&format!("Bearer {jwt}")))
            .await
            .unwrap();

        let shown = format!("{shared:?}\n{admitted:?}");
        assert!(
            shown.contains("tools") && shown.contains("Callers"),
            "{shown}"
        );
        let signature = jwt.rsplit('.').next().unwrap();
        let hs256_text = std::str::from_utf8(HS256_SECRET).unwrap();
        for secret in [
            jwt.as_str(),
            signature,
            UPSTREAM_TOKEN,
            PROXY_TOKEN,
            hs256_text,
        ] {
            assert!(!shown.contains(secret), "{secret:?} in {shown}");
        }
        for key in [&[KEY_SEED; 32][..], HS256_SECRET] {
            for form in printed_forms(key) {
                assert!(!shown.contains(&form), "{form:?} in {shown}");
            }
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// What a `fmt` subscriber writes, for reading back.
    #[derive(Clone, Default)]
    struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
        type Writer = Logs;

        fn make_writer(&'a self) -> Logs {
            self.clone()
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_request_span_names_the_server_and_subject_never_the_token() {
        use tracing::Instrument;
        let logs = Logs::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let dir = std::env::temp_dir().join(format!("adp-span-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let token_file = dir.join("proxy-token");
        std::fs::write(&token_file, PROXY_TOKEN).unwrap();
        let shared = shared(route(), token_file);
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 600;
        let claims =
            json!({"iss": "https://issuer.test", "sub": "alice", "aud": "adp", "exp": exp});
        let jwt = mint_hs256(HS256_SECRET, &claims).unwrap();
        let request = http::Request::builder()
            .header(adp_core::metadata::REQUEST_ID, "req-7")
            .body(())
            .unwrap();
        async {
            shared
                .admit("tools", Some(&format!("Bearer {jwt}")))
                .await
                .unwrap();
            tracing::info!("admitted");
        }
        .instrument(crate::mcp_http::request_span(&request))
        .await;
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        for field in ["request_id=req-7", "server=tools", "subject=alice"] {
            assert!(text.contains(field), "{field} not in {text}");
        }
        assert!(!text.contains(jwt.rsplit('.').next().unwrap()), "{text}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
