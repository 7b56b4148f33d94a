//! A fake provider for unit tests: a real HTTP server on 127.0.0.1:0 that records every
//! request and answers with whatever the test's responder says.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use url::Url;

use crate::{AuthMethod, OAuthClient, ProviderEndpoints, RetryPolicy};

/// One request as the fake provider received it.
#[derive(Clone, Debug)]
pub(crate) struct Recorded {
    pub path: String,
    pub authorization: Option<String>,
    pub form: Vec<(String, String)>,
    pub at: Instant,
}

impl Recorded {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// What the fake provider answers.
pub(crate) enum Reply {
    Json(u16, serde_json::Value),
    Text(u16, &'static str),
    /// Retryable status with a `Retry-After` header in seconds.
    RetryAfter(u16, u64),
    /// Never answers within any sane client timeout.
    Hang,
}

type Responder = dyn Fn(&Recorded, usize) -> Reply + Send + Sync;

struct Shared {
    calls: Mutex<Vec<Recorded>>,
    respond: Box<Responder>,
}

pub(crate) struct FakeProvider {
    base: Url,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeProvider {
    /// Starts the server; `respond` gets each request and how many came before it.
    pub async fn start(
        respond: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let shared = Arc::new(Shared {
            calls: Mutex::new(Vec::new()),
            respond: Box::new(respond),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let base = Url::parse(&format!("http://{}/", listener.local_addr().expect("addr")))
            .expect("base url");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeProvider {
            base,
            shared,
            server,
        }
    }

    pub fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("join")
    }

    pub fn calls(&self) -> Vec<Recorded> {
        self.shared.calls.lock().expect("calls").clone()
    }

    /// Every endpoint pointed at this server, client `client-id` / secret `s3cr3t`.
    pub fn endpoints(&self, auth_method: AuthMethod) -> ProviderEndpoints {
        ProviderEndpoints {
            authorize_url: Some(self.url("authorize")),
            token_url: self.url("token"),
            revocation_url: Some(self.url("revoke")),
            device_authorization_url: Some(self.url("device")),
            client_id: "client-id".into(),
            client_secret: Some("s3cr3t".into()),
            auth_method,
        }
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recorded = Recorded {
        path: uri.path().to_owned(),
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        form: url::form_urlencoded::parse(&body).into_owned().collect(),
        at: Instant::now(),
    };
    let reply = {
        let mut calls = shared.calls.lock().expect("calls");
        let reply = (shared.respond)(&recorded, calls.len());
        calls.push(recorded);
        reply
    };
    let status = |code: u16| StatusCode::from_u16(code).expect("status");
    match reply {
        Reply::Json(code, body) => (status(code), axum::Json(body)).into_response(),
        Reply::Text(code, body) => (status(code), body).into_response(),
        Reply::RetryAfter(code, seconds) => {
            (status(code), [(header::RETRY_AFTER, seconds.to_string())]).into_response()
        }
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::OK.into_response()
        }
    }
}

/// A client with millisecond back-off so retry tests run fast.
pub(crate) fn fast_client(attempts: u32, timeout: Duration) -> OAuthClient {
    let retry = RetryPolicy {
        attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    };
    OAuthClient::new(None, timeout, retry).expect("client")
}

pub(crate) fn token_json(access: &str, refresh: Option<&str>) -> serde_json::Value {
    let mut body = serde_json::json!({
        "access_token": access,
        "token_type": "bearer",
        "expires_in": 3600,
    });
    if let Some(refresh) = refresh {
        body["refresh_token"] = refresh.into();
    }
    body
}

pub(crate) fn oauth_error(error: &str, description: Option<&str>) -> serde_json::Value {
    serde_json::json!({ "error": error, "error_description": description })
}
