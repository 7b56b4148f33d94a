//! Proxy settings: a flag, an environment variable and a key of the optional YAML file
//! (`--config`) each, in that order of precedence. File keys are the flag names with
//! `_` for `-`; unknown keys are errors.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{CommandFactory, Parser, ValueEnum};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The ADP data-plane proxy: MCP at /mcp/{server}, with each caller's own upstream token.
#[derive(Clone, Debug, Parser)]
#[command(name = "adp-proxy", version, args_override_self = true)]
pub struct Settings {
    /// YAML file with any of these settings (keys like `control_plane_url`).
    #[arg(long, env = "ADP_PROXY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where MCP clients connect: `/mcp/{server}`, `/healthz`.
    #[arg(long, env = "ADP_PROXY_ADDR", default_value = "127.0.0.1:7480")]
    pub addr: SocketAddr,
    /// The control plane's gRPC endpoint.
    #[arg(
        long,
        env = "ADP_CONTROL_PLANE_URL",
        default_value = "http://127.0.0.1:7400"
    )]
    pub control_plane_url: String,
    /// File holding this proxy's own JWT (permission `proxy`).
    #[arg(long, env = "ADP_PROXY_TOKEN_FILE")]
    pub proxy_token_file: Option<PathBuf>,
    /// Names this proxy in control-plane logs; defaults to host and process id.
    #[arg(long, env = "ADP_PROXY_NODE_ID")]
    pub node_id: Option<String>,
    /// Extra PEM CA roots trusted for upstream MCP servers and the JWKS URL.
    #[arg(long, env = "ADP_UPSTREAM_CA_FILE")]
    pub upstream_ca_file: Option<PathBuf>,
    /// Expected `iss` of callers' JWTs.
    #[arg(long, env = "ADP_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Expected `aud` of callers' JWTs.
    #[arg(long, env = "ADP_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// JWKS URL for callers' JWTs.
    #[arg(long, env = "ADP_JWKS_URL")]
    pub jwks_url: Option<url::Url>,
    /// HS256 secret file for callers' JWTs (development and tests).
    #[arg(long, env = "ADP_JWT_HS256_SECRET_FILE")]
    pub jwt_hs256_secret_file: Option<PathBuf>,
    /// Development only: accept a plain-http ADP_JWKS_URL on a loopback host. Never set
    /// this in production: keys fetched without TLS can be swapped in transit.
    #[arg(
        long,
        env = "ADP_INSECURE_DEVELOPMENT",
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub insecure_development: bool,
    /// File of at least 32 secret bytes (trailing newline dropped) shared by every proxy
    /// replica: keys the MCP session ids and 2026-07-28 requestState this proxy hands
    /// out, so any replica, or this one after a restart, accepts them. Unset, it is
    /// derived from ADP_JWT_HS256_SECRET_FILE (development); required with ADP_JWKS_URL.
    #[arg(long, env = "ADP_PROXY_STATE_KEY_FILE")]
    pub state_key_file: Option<PathBuf>,
    /// Claim holding permission names.
    #[arg(long, env = "ADP_PERMISSIONS_CLAIM", default_value = "permissions")]
    pub permissions_claim: String,
    /// Largest MCP request body accepted, in bytes.
    #[arg(long, env = "ADP_PROXY_MAX_REQUEST_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_request_bytes: usize,
    /// Seconds to wait for an upstream's response headers (streams then run on).
    #[arg(long, env = "ADP_UPSTREAM_TIMEOUT_SECS", default_value_t = 30)]
    pub upstream_timeout_secs: u64,
    /// Idle upstream connections kept per host.
    #[arg(long, env = "ADP_UPSTREAM_POOL_MAX_IDLE", default_value_t = 64)]
    pub upstream_pool_max_idle: usize,
    /// Upstream credentials cached (per user and server).
    #[arg(
        long,
        env = "ADP_PROXY_CREDENTIAL_CACHE_SIZE",
        default_value_t = 10_000
    )]
    pub credential_cache_size: usize,
    /// Browser origins allowed to call; requests with any other `Origin` get 403.
    #[arg(long, env = "ADP_PROXY_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Seconds a client gets to start a request once connected (the HTTP/2 preface, or
    /// an HTTP/1 request's first byte) and to send each HTTP/1 request head; an idle
    /// HTTP/1.1 keep-alive connection is closed after the same time.
    #[arg(long, env = "ADP_HEADER_READ_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_secs: u64,
    /// Seconds a request body gets to arrive in full after its head; a slower one is
    /// answered 408 (MCP) or fails the call (gRPC).
    #[arg(long, env = "ADP_REQUEST_BODY_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_body_timeout_secs: u64,
    /// Open client connections at most, all worker threads together; more wait in the
    /// listen backlog until one closes.
    #[arg(long, env = "ADP_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_connections: usize,
    /// Concurrent streams per HTTP/2 connection (gRPC gateway calls).
    #[arg(long, env = "ADP_HTTP2_MAX_CONCURRENT_STREAMS", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub http2_max_concurrent_streams: u32,
    /// Longest a `CallToolStream` waits for the user to connect; a caller's longer
    /// deadline (or none) is cut to this.
    #[arg(long, env = "ADP_MAX_CONSENT_WAIT_SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_consent_wait_secs: u64,
    /// Runtime worker threads; 0 means one per CPU core.
    #[arg(long, env = "ADP_PROXY_WORKER_THREADS", default_value_t = 0)]
    pub worker_threads: usize,
    #[arg(long, env = "ADP_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl Settings {
    /// Parses `args`, filling what neither a flag nor the environment set from the
    /// `--config` file.
    pub fn resolve(
        args: Vec<OsString>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let first = Settings::try_parse_from(&args)?;
        let Some(path) = &first.config else {
            return Ok(first);
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let values: serde_json::Map<String, serde_json::Value> = serde_norway::from_str(&text)
            .with_context(|| format!("config file {} is not a YAML map", path.display()))?;
        let command = Settings::command();
        let mut from_file = vec![args.first().cloned().unwrap_or_else(|| "adp-proxy".into())];
        for (key, value) in values {
            let Some(arg) = command
                .get_arguments()
                .find(|a| a.get_id().as_str() == key && key != "config")
            else {
                bail!("config file {}: unknown key {key:?}", path.display());
            };
            if arg
                .get_env()
                .and_then(|name| name.to_str())
                .is_some_and(|name| env(name).is_some())
            {
                continue;
            }
            let text = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            let long = arg.get_long().unwrap_or(key.as_str());
            from_file.push(format!("--{long}={text}").into());
        }
        from_file.extend(args.into_iter().skip(1));
        Ok(Settings::try_parse_from(from_file)?)
    }

    pub fn upstream_timeout(&self) -> Duration {
        Duration::from_secs(self.upstream_timeout_secs)
    }

    /// The client listener's bounds.
    pub fn limits(&self) -> adp_listener::Limits {
        adp_listener::Limits {
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs),
            request_body_timeout: Duration::from_secs(self.request_body_timeout_secs),
            max_connections: self.max_connections,
            http2_max_concurrent_streams: self.http2_max_concurrent_streams,
        }
    }

    pub fn max_consent_wait(&self) -> Duration {
        Duration::from_secs(self.max_consent_wait_secs)
    }

    pub fn node_id(&self) -> String {
        self.node_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            format!("{}-{}", host.trim(), std::process::id())
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        std::iter::once("adp-proxy")
            .chain(list.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn flag_beats_environment_beats_file() {
        let dir = tempfile_dir();
        let file = dir.join("proxy.yaml");
        std::fs::write(
            &file,
            "addr: 127.0.0.1:9000\ncontrol_plane_url: http://file:1\nupstream_timeout_secs: 7\n",
        )
        .unwrap();
        let config = file.to_str().unwrap();
        let no_env = |_: &str| None;
        let s = Settings::resolve(args(&["--config", config]), &no_env).unwrap();
        assert_eq!(s.addr.port(), 9000);
        assert_eq!(s.control_plane_url, "http://file:1");
        assert_eq!(s.upstream_timeout_secs, 7);

        let s = Settings::resolve(
            args(&["--config", config, "--addr", "127.0.0.1:9001"]),
            &no_env,
        )
        .unwrap();
        assert_eq!(s.addr.port(), 9001);

        // the environment (as clap reads it) wins over the file: the file value is skipped
        let env = |name: &str| (name == "ADP_CONTROL_PLANE_URL").then(|| "http://env:1".to_owned());
        let s = Settings::resolve(args(&["--config", config]), &env).unwrap();
        assert_ne!(s.control_plane_url, "http://file:1");
    }

    #[test]
    fn listener_bounds_have_defaults_and_refuse_zero() {
        let no_env = |_: &str| None;
        let s = Settings::resolve(args(&[]), &no_env).unwrap();
        assert_eq!(s.limits(), adp_listener::Limits::default());
        assert_eq!(s.max_consent_wait(), Duration::from_secs(600));
        let s = Settings::resolve(
            args(&["--header-read-timeout-secs=2", "--max-connections=5"]),
            &no_env,
        )
        .unwrap();
        assert_eq!(s.limits().header_read_timeout, Duration::from_secs(2));
        assert_eq!(s.limits().max_connections, 5);
        for zero in [
            "--header-read-timeout-secs=0",
            "--request-body-timeout-secs=0",
            "--max-connections=0",
            "--http2-max-concurrent-streams=0",
            "--max-consent-wait-secs=0",
        ] {
            assert!(Settings::resolve(args(&[zero]), &no_env).is_err(), "{zero}");
        }
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        let dir = tempfile_dir();
        let file = dir.join("proxy.yaml");
        std::fs::write(&file, "adr: 127.0.0.1:9000\n").unwrap();
        let error =
            Settings::resolve(args(&["--config", file.to_str().unwrap()]), &|_| None).unwrap_err();
        assert!(error.to_string().contains("unknown key \"adr\""), "{error}");
    }

    #[test]
    fn insecure_development_is_off_unless_asked_for() {
        let no_env = |_: &str| None;
        assert!(
            !Settings::resolve(args(&[]), &no_env)
                .unwrap()
                .insecure_development
        );
        for flags in [
            &["--insecure-development"][..],
            &["--insecure-development=true"][..],
        ] {
            let s = Settings::resolve(args(flags), &no_env).unwrap();
            assert!(s.insecure_development, "{flags:?}");
        }
        let dir = tempfile_dir();
        let file = dir.join("proxy.yaml");
        std::fs::write(
            &file,
            "insecure_development: true\nstate_key_file: /run/adp/state-key\n",
        )
        .unwrap();
        let s = Settings::resolve(args(&["--config", file.to_str().unwrap()]), &no_env).unwrap();
        assert!(s.insecure_development);
        assert_eq!(
            s.state_key_file.as_deref(),
            Some(std::path::Path::new("/run/adp/state-key"))
        );
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("adp-proxy-settings-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
