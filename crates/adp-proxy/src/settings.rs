//! The proxy's settings, each declared once (flag, environment variable, file key,
//! default, help, rule) and layered flag > environment > file (`--config` or
//! `ADP_PROXY_CONFIG`) > default. File keys are the flag names with `_` for `-`;
//! unknown keys are errors.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use adp_settings::shared::{self, JwtSettings, LogFormat};
use adp_settings::{Declared, Env, Group, List, Registry, Setting, at_least_one};

pub const ADDR: Setting<SocketAddr> = Setting::new(
    "addr",
    "ADP_PROXY_ADDR",
    "ADDR",
    "Where MCP clients connect: /mcp/{server}, the gRPC gateway, /healthz",
)
.default("127.0.0.1:7480");
pub const CONTROL_PLANE_URL: Setting<String> = Setting::new(
    "control_plane_url",
    "ADP_CONTROL_PLANE_URL",
    "URL",
    "The control plane's gRPC endpoint",
)
.default("http://127.0.0.1:7400");
pub const PROXY_TOKEN_FILE: Setting<PathBuf> = Setting::new(
    "proxy_token_file",
    "ADP_PROXY_TOKEN_FILE",
    "FILE",
    "File holding this proxy's own JWT (permission `proxy`), re-read on every use; required",
);
pub const NODE_ID: Setting<String> = Setting::new(
    "node_id",
    "ADP_PROXY_NODE_ID",
    "ID",
    "Names this proxy in control-plane logs",
)
.derived("host and process id");
pub const INSECURE_DEVELOPMENT: Setting<bool> = Setting::new(
    "insecure_development",
    "ADP_INSECURE_DEVELOPMENT",
    "BOOL",
    "Development only: accept a plain-http ADP_JWKS_URL on a loopback host. Never set this in production: keys fetched without TLS can be swapped in transit",
)
.default("false");
pub const STATE_KEY_FILE: Setting<PathBuf> = Setting::new(
    "state_key_file",
    "ADP_PROXY_STATE_KEY_FILE",
    "FILE",
    "File of at least 32 secret bytes (trailing newline dropped) shared by every proxy replica: keys the MCP session ids and requestState this proxy hands out, so any replica, or this one after a restart, accepts them; required with ADP_JWKS_URL",
)
.derived("from ADP_JWT_HS256_SECRET_FILE (development)");
pub const MAX_REQUEST_BYTES: Setting<usize> = Setting::new(
    "max_request_bytes",
    "ADP_PROXY_MAX_REQUEST_BYTES",
    "BYTES",
    "Largest MCP request body accepted",
)
.default("4194304")
.rule(at_least_one);
pub const UPSTREAM_TIMEOUT_SECS: Setting<u64> = Setting::new(
    "upstream_timeout_secs",
    "ADP_UPSTREAM_TIMEOUT_SECS",
    "SECS",
    "Seconds to wait for an upstream's response headers, and for a credential (streams then run on)",
)
.default("30")
.rule(at_least_one);
pub const UPSTREAM_POOL_MAX_IDLE: Setting<usize> = Setting::new(
    "upstream_pool_max_idle",
    "ADP_UPSTREAM_POOL_MAX_IDLE",
    "N",
    "Idle upstream connections kept per host and worker",
)
.default("64");
pub const CREDENTIAL_CACHE_SIZE: Setting<usize> = Setting::new(
    "credential_cache_size",
    "ADP_PROXY_CREDENTIAL_CACHE_SIZE",
    "N",
    "Cached upstream credentials (per user and server) and verified JWTs, each",
)
.default("10000")
.rule(at_least_one);
pub const ALLOWED_ORIGINS: Setting<List> = Setting::new(
    "allowed_origins",
    "ADP_PROXY_ALLOWED_ORIGINS",
    "ORIGINS",
    "Comma-separated browser origins allowed to call; a request with any other `Origin` gets 403",
);
pub const MAX_CONSENT_WAIT_SECS: Setting<u64> = Setting::new(
    "max_consent_wait_secs",
    "ADP_MAX_CONSENT_WAIT_SECS",
    "SECS",
    "Longest a `CallToolStream` waits for the user to connect; a caller's longer deadline (or none) is cut to this",
)
.default("600")
.rule(at_least_one);
pub const WORKER_THREADS: Setting<usize> = Setting::new(
    "worker_threads",
    "ADP_PROXY_WORKER_THREADS",
    "N",
    "Serving threads, each with its own runtime and SO_REUSEPORT listener; 0 means one per CPU core",
)
.default("0");

const OWN: [&dyn Declared; 13] = [
    &ADDR,
    &CONTROL_PLANE_URL,
    &PROXY_TOKEN_FILE,
    &NODE_ID,
    &INSECURE_DEVELOPMENT,
    &STATE_KEY_FILE,
    &MAX_REQUEST_BYTES,
    &UPSTREAM_TIMEOUT_SECS,
    &UPSTREAM_POOL_MAX_IDLE,
    &CREDENTIAL_CACHE_SIZE,
    &ALLOWED_ORIGINS,
    &MAX_CONSENT_WAIT_SECS,
    &WORKER_THREADS,
];

/// The proxy's settings, for [`adp_settings::Flags`].
#[derive(Debug)]
pub struct ProxySettings;

impl Registry for ProxySettings {
    const GROUPS: &'static [Group] = &[
        &OWN,
        &shared::JWT,
        &shared::OUTBOUND_TLS,
        &shared::LISTENER,
        &[&shared::LOG_FORMAT],
    ];
    const CONFIG_ENV: Option<&'static str> = Some("ADP_PROXY_CONFIG");
}

/// Every setting as an optional flag, plus `--config FILE`.
pub type Flags = adp_settings::Flags<ProxySettings>;

/// The ADP data-plane proxy: MCP at /mcp/{server}, with each caller's own upstream token.
#[derive(Debug, clap::Parser)]
#[command(name = "adp-proxy", version, args_override_self = true)]
pub struct Cli {
    #[command(flatten)]
    pub flags: Flags,
}

/// The resolved settings of a proxy.
#[derive(Clone, Debug)]
pub struct Settings {
    pub addr: SocketAddr,
    pub control_plane_url: String,
    /// `None` is refused when the proxy starts, naming the setting.
    pub proxy_token_file: Option<PathBuf>,
    pub node_id: Option<String>,
    pub jwt: JwtSettings,
    pub upstream_ca_file: Option<PathBuf>,
    pub insecure_development: bool,
    pub state_key_file: Option<PathBuf>,
    pub max_request_bytes: usize,
    pub upstream_timeout: Duration,
    pub upstream_pool_max_idle: usize,
    pub credential_cache_size: usize,
    pub allowed_origins: Vec<String>,
    /// Bounds of the client listener (`ADP_HEADER_READ_TIMEOUT_SECS`, `ADP_MAX_CONNECTIONS`, …).
    pub limits: adp_listener::Limits,
    pub max_consent_wait: Duration,
    /// 0: one per CPU core.
    pub worker_threads: usize,
    pub log_format: LogFormat,
}

impl Settings {
    /// Resolves settings from `flags`, the environment `env` and the file they name.
    pub fn resolve(flags: &Flags, env: Env) -> Result<Settings, adp_settings::Error> {
        let layers = flags.layers(env)?;
        let l = &layers;
        Ok(Settings {
            addr: ADDR.value(l)?,
            control_plane_url: CONTROL_PLANE_URL.value(l)?,
            proxy_token_file: PROXY_TOKEN_FILE.get(l)?,
            node_id: NODE_ID.get(l)?,
            jwt: JwtSettings::resolve(l)?,
            upstream_ca_file: shared::UPSTREAM_CA_FILE.get(l)?,
            insecure_development: INSECURE_DEVELOPMENT.value(l)?,
            state_key_file: STATE_KEY_FILE.get(l)?,
            max_request_bytes: MAX_REQUEST_BYTES.value(l)?,
            upstream_timeout: Duration::from_secs(UPSTREAM_TIMEOUT_SECS.value(l)?),
            upstream_pool_max_idle: UPSTREAM_POOL_MAX_IDLE.value(l)?,
            credential_cache_size: CREDENTIAL_CACHE_SIZE.value(l)?,
            allowed_origins: ALLOWED_ORIGINS.get(l)?.unwrap_or_default().0,
            limits: shared::listener_limits(l)?,
            max_consent_wait: Duration::from_secs(MAX_CONSENT_WAIT_SECS.value(l)?),
            worker_threads: WORKER_THREADS.value(l)?,
            log_format: shared::LOG_FORMAT.value(l)?,
        })
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
    use clap::Parser;

    use super::*;

    fn flags(list: &[&str]) -> Flags {
        Cli::try_parse_from(std::iter::once("adp-proxy").chain(list.iter().copied()))
            .unwrap()
            .flags
    }

    use adp_settings::env_of as env;

    fn resolve(list: &[&str]) -> Result<Settings, adp_settings::Error> {
        Settings::resolve(&flags(list), env(&[]))
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
        let s = resolve(&["--config", config]).unwrap();
        assert_eq!(s.addr.port(), 9000);
        assert_eq!(s.control_plane_url, "http://file:1");
        assert_eq!(s.upstream_timeout, Duration::from_secs(7));

        let s = resolve(&["--config", config, "--addr", "127.0.0.1:9001"]).unwrap();
        assert_eq!(s.addr.port(), 9001);

        let s = Settings::resolve(
            &flags(&["--config", config]),
            env(&[("ADP_CONTROL_PLANE_URL", "http://env:1")]),
        )
        .unwrap();
        assert_eq!(s.control_plane_url, "http://env:1");

        // ADP_PROXY_CONFIG names the file when --config does not
        let s = Settings::resolve(&flags(&[]), env(&[("ADP_PROXY_CONFIG", config)])).unwrap();
        assert_eq!(s.addr.port(), 9000);
    }

    #[test]
    fn listener_bounds_have_defaults_and_refuse_zero() {
        let s = resolve(&[]).unwrap();
        assert_eq!(s.limits, adp_listener::Limits::default());
        assert_eq!(s.max_consent_wait, Duration::from_secs(600));
        let s = resolve(&["--header-read-timeout-secs=2", "--max-connections=5"]).unwrap();
        assert_eq!(s.limits.header_read_timeout, Duration::from_secs(2));
        assert_eq!(s.limits.max_connections, 5);
        for (zero, name) in [
            ("--header-read-timeout-secs=0", "--header-read-timeout-secs"),
            (
                "--request-body-timeout-secs=0",
                "--request-body-timeout-secs",
            ),
            ("--max-connections=0", "--max-connections"),
            (
                "--http2-max-concurrent-streams=0",
                "--http2-max-concurrent-streams",
            ),
            ("--max-consent-wait-secs=0", "--max-consent-wait-secs"),
        ] {
            let error = resolve(&[zero]).unwrap_err().to_string();
            assert_eq!(error, format!("{name}=\"0\": must be at least 1"));
        }
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        let dir = tempfile_dir();
        let file = dir.join("proxy.yaml");
        std::fs::write(&file, "adr: 127.0.0.1:9000\n").unwrap();
        let error = resolve(&["--config", file.to_str().unwrap()]).unwrap_err();
        assert!(error.to_string().contains("unknown key \"adr\""), "{error}");
    }

    #[test]
    fn insecure_development_is_off_unless_asked_for() {
        assert!(!resolve(&[]).unwrap().insecure_development);
        for list in [
            &["--insecure-development"][..],
            &["--insecure-development=true"][..],
        ] {
            let s = resolve(list).unwrap();
            assert!(s.insecure_development, "{list:?}");
        }
        let dir = tempfile_dir();
        let file = dir.join("proxy.yaml");
        std::fs::write(
            &file,
            "insecure_development: true\nstate_key_file: /run/adp/state-key\n",
        )
        .unwrap();
        let s = resolve(&["--config", file.to_str().unwrap()]).unwrap();
        assert!(s.insecure_development);
        assert_eq!(
            s.state_key_file.as_deref(),
            Some(std::path::Path::new("/run/adp/state-key"))
        );
    }

    #[test]
    fn allowed_origins_come_as_a_list_from_any_layer() {
        let s = resolve(&["--allowed-origins=https://a.example,https://b.example"]).unwrap();
        assert_eq!(
            s.allowed_origins,
            ["https://a.example", "https://b.example"]
        );
        let s = Settings::resolve(
            &flags(&[]),
            env(&[("ADP_PROXY_ALLOWED_ORIGINS", "https://c.example")]),
        )
        .unwrap();
        assert_eq!(s.allowed_origins, ["https://c.example"]);
        assert!(resolve(&[]).unwrap().allowed_origins.is_empty());
    }

    #[test]
    fn help_lists_every_setting_with_its_variable_and_default() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        for group in ProxySettings::GROUPS {
            for setting in group.iter() {
                setting.check_default().unwrap();
                let info = setting.info();
                assert!(help.contains(&info.flag()), "{}: {help}", info.key);
                assert!(
                    help.contains(&format!("[env: {}]", info.env)),
                    "{}",
                    info.env
                );
            }
        }
        assert!(
            help.contains("[env: ADP_PROXY_ADDR] [default: 127.0.0.1:7480]"),
            "{help}"
        );
    }

    #[test]
    fn every_setting_the_readme_documents_is_accepted_and_every_setting_is_documented() {
        let readme = include_str!("../../../README.md");
        let rows = adp_settings::docs::table_after(readme, "The proxy has its own settings");
        assert!(rows.len() > 10, "the proxy's settings table: {rows:?}");
        let problems =
            adp_settings::docs::mismatches(&rows, ProxySettings::GROUPS, ProxySettings::CONFIG_ENV);
        assert!(problems.is_empty(), "{problems:#?}");
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("adp-proxy-settings-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
