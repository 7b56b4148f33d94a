//! A tiny, fast MCP (Streamable HTTP, JSON responses) upstream for benchmarks and tests.
//!
//! `POST /mcp` answers JSON-RPC:
//! - `initialize` → protocolVersion echoed from the request, `capabilities: {tools: {}}`,
//!   serverInfo; sets `Mcp-Session-Id`;
//! - notifications (`notifications/*`, or any message without an `id`) → 202, empty body;
//! - `tools/list` → the single tool `echo`;
//! - `tools/call` → `{"content":[{"type":"text","text":<arguments.text or "">}],"isError":false}`;
//! - anything else → JSON-RPC error -32601.
//!
//! `GET /mcp` → 405 (no server-initiated stream), `DELETE /mcp` → 200.
//!
//! ```text
//! mcp-echo [--addr 127.0.0.1:0] [--threads N] [--require-bearer]
//! ```
//! Prints `{"ready":true,"addr":"127.0.0.1:PORT"}` on stdout once listening.
//! `--require-bearer` answers 401 to a request without `Authorization: Bearer …`, so a
//! benchmark can check that a proxy in front injects a token.

use std::borrow::Cow;
use std::io::Write as _;
use std::net::SocketAddr;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt as _;
use serde::Deserialize;

const SESSION_ID: &str = "mcp-echo-session";
const DEFAULT_PROTOCOL_VERSION: &str = "2025-06-18";
const TOOLS_LIST: &str = r#"{"tools":[{"name":"echo","description":"Returns arguments.text","inputSchema":{"type":"object","properties":{"text":{"type":"string"}}}}]}"#;

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    // numbers and short strings: no heap use for the usual integer ids
    id: Option<serde_json::Value>,
    #[serde(borrow)]
    params: Option<Params<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Params<'a> {
    #[serde(borrow)]
    protocol_version: Option<Cow<'a, str>>,
    #[serde(borrow)]
    arguments: Option<Arguments<'a>>,
}

#[derive(Deserialize)]
struct Arguments<'a> {
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
}

#[derive(Clone, Copy)]
struct Config {
    require_bearer: bool,
}

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `{"jsonrpc":"2.0","id":<id>,` + `tail` + `}`, written into one buffer.
fn envelope(id: &serde_json::Value, capacity: usize, tail: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + capacity);
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    // serialising a Value into a Vec cannot fail
    let _ = serde_json::to_writer(&mut out, id);
    out.push(b',');
    tail(&mut out);
    out.push(b'}');
    out
}

fn error(id: &serde_json::Value, code: i32, message: &str) -> Vec<u8> {
    envelope(id, message.len() + 32, |out| {
        let _ = write!(out, r#""error":{{"code":{code},"message":"#);
        let _ = serde_json::to_writer(&mut *out, message);
        out.push(b'}');
    })
}

async fn mcp(State(config): State<Config>, headers: HeaderMap, body: Bytes) -> Response {
    if config.require_bearer
        && !headers
            .get(header::AUTHORIZATION)
            .is_some_and(|v| v.as_bytes().starts_with(b"Bearer "))
    {
        return json(
            StatusCode::UNAUTHORIZED,
            error(&serde_json::Value::Null, -32001, "missing bearer token"),
        );
    }
    let request: Request<'_> = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return json(
                StatusCode::BAD_REQUEST,
                error(&serde_json::Value::Null, -32700, &e.to_string()),
            );
        }
    };
    let Some(method) = request.method else {
        // a JSON-RPC response from the client
        return StatusCode::ACCEPTED.into_response();
    };
    let Some(id) = request.id else {
        return StatusCode::ACCEPTED.into_response();
    };
    if method.starts_with("notifications/") {
        return StatusCode::ACCEPTED.into_response();
    }
    match method.as_ref() {
        "tools/call" => {
            let text = request
                .params
                .as_ref()
                .and_then(|p| p.arguments.as_ref())
                .and_then(|a| a.text.as_deref())
                .unwrap_or("");
            let body = envelope(&id, text.len() + 64, |out| {
                out.extend_from_slice(br#""result":{"content":[{"type":"text","text":"#);
                let _ = serde_json::to_writer(&mut *out, text);
                out.extend_from_slice(br#"}],"isError":false}"#);
            });
            json(StatusCode::OK, body)
        }
        "tools/list" => json(
            StatusCode::OK,
            envelope(&id, TOOLS_LIST.len() + 10, |out| {
                out.extend_from_slice(br#""result":"#);
                out.extend_from_slice(TOOLS_LIST.as_bytes());
            }),
        ),
        "initialize" => {
            let version = request
                .params
                .as_ref()
                .and_then(|p| p.protocol_version.as_deref())
                .unwrap_or(DEFAULT_PROTOCOL_VERSION);
            let body = envelope(&id, 160, |out| {
                out.extend_from_slice(br#""result":{"protocolVersion":"#);
                let _ = serde_json::to_writer(&mut *out, version);
                out.extend_from_slice(
                    br#","capabilities":{"tools":{}},"serverInfo":{"name":"mcp-echo","version":"#,
                );
                let _ = serde_json::to_writer(&mut *out, env!("CARGO_PKG_VERSION"));
                out.extend_from_slice(b"}}");
            });
            let mut response = json(StatusCode::OK, body);
            response
                .headers_mut()
                .insert("mcp-session-id", HeaderValue::from_static(SESSION_ID));
            response
        }
        "ping" => json(
            StatusCode::OK,
            envelope(&id, 16, |out| out.extend_from_slice(br#""result":{}"#)),
        ),
        _ => json(
            StatusCode::OK,
            error(&id, -32601, &format!("method not found: {method}")),
        ),
    }
}

struct Args {
    addr: SocketAddr,
    threads: Option<usize>,
    require_bearer: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        threads: None,
        require_bearer: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (arg, None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match key.as_str() {
            "--addr" => {
                let v = value("--addr")?;
                args.addr = v.parse().map_err(|e| format!("--addr {v}: {e}"))?;
            }
            "--threads" => {
                let v = value("--threads")?;
                args.threads = Some(v.parse().map_err(|e| format!("--threads {v}: {e}"))?);
            }
            "--require-bearer" => args.require_bearer = true,
            "-h" | "--help" => {
                println!("usage: mcp-echo [--addr 127.0.0.1:0] [--threads N] [--require-bearer]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("mcp-echo: {e}");
            std::process::exit(2);
        }
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = match runtime.build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mcp-echo: runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(serve(args)) {
        eprintln!("mcp-echo: {e}");
        std::process::exit(1);
    }
}

async fn serve(args: Args) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route(
            "/mcp",
            post(mcp)
                .get(|| async { StatusCode::METHOD_NOT_ALLOWED })
                .delete(|| async { StatusCode::OK }),
        )
        .with_state(Config {
            require_bearer: args.require_bearer,
        });
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, r#"{{"ready":true,"addr":"{addr}"}}"#)?;
        stdout.flush()?;
    }
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
