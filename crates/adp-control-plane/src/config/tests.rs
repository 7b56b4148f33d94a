#![allow(clippy::unwrap_used)]

use super::*;

use adp_settings::env_of as env;

#[test]
fn defaults_match_the_operating_contract() {
    let settings = Settings::resolve(&Flags::default(), env(&[])).unwrap();
    assert_eq!(settings.grpc_addr.to_string(), "127.0.0.1:7400");
    assert_eq!(settings.http_addr.to_string(), "127.0.0.1:7401");
    assert_eq!(settings.public_url, None);
    let bound = "127.0.0.1:7401".parse().unwrap();
    assert_eq!(
        settings.callback_url(bound),
        "http://127.0.0.1:7401/oauth/v1/callback"
    );
    let on_port_zero = "127.0.0.1:40123".parse().unwrap();
    assert_eq!(
        settings.public_url_for(on_port_zero),
        "http://127.0.0.1:40123"
    );
    assert_eq!(
        *settings.database_url,
        "sqlite://./adp-data/adp.db?mode=rwc"
    );
    assert_eq!(settings.jwt.permissions_claim, "permissions");
    assert_eq!(settings.jwt_keys, None);
    assert_eq!(
        settings.dev_jwt_secret_file(),
        Path::new("./adp-data/dev-jwt-secret")
    );
    assert!(!settings.insecure_loopback_http);
}

#[test]
fn flags_beat_env_beat_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("adp.yaml");
    std::fs::write(
        &file,
        "grpc_addr: 127.0.0.1:1001\nhttp_addr: 127.0.0.1:2001\ndata_dir: /from/file\n",
    )
    .unwrap();
    let flags = Flags::default()
        .with_config(file)
        .with("grpc_addr", "127.0.0.1:1003");
    let settings = Settings::resolve(
        &flags,
        env(&[
            ("ADP_GRPC_ADDR", "127.0.0.1:1002"),
            ("ADP_HTTP_ADDR", "127.0.0.1:2002"),
        ]),
    )
    .unwrap();
    assert_eq!(settings.grpc_addr.to_string(), "127.0.0.1:1003");
    assert_eq!(settings.http_addr.to_string(), "127.0.0.1:2002");
    assert_eq!(settings.data_dir, PathBuf::from("/from/file"));
}

#[test]
fn unknown_file_keys_and_bad_env_values_are_errors_that_name_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("adp.yaml");
    std::fs::write(&file, "grpc_adr: 127.0.0.1:1\n").unwrap();
    let flags = Flags::default().with_config(file);
    let error = Settings::resolve(&flags, env(&[])).unwrap_err().to_string();
    assert!(error.contains("grpc_adr"), "{error}");

    let error = Settings::resolve(&Flags::default(), env(&[("ADP_GRPC_ADDR", "nope")]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("ADP_GRPC_ADDR"), "{error}");
}

#[test]
fn only_one_jwt_key_source() {
    let both = env(&[
        ("ADP_JWKS_URL", "https://idp.example.com/jwks"),
        ("ADP_JWT_HS256_SECRET_FILE", "/s"),
    ]);
    let error = Settings::resolve(&Flags::default(), both).unwrap_err();
    assert!(matches!(
        error,
        ConfigError::Setting(adp_settings::Error::Conflict {
            one: "ADP_JWKS_URL",
            other: "ADP_JWT_HS256_SECRET_FILE"
        })
    ));
}

#[test]
fn an_explicit_public_url_wins_over_the_listener() {
    let settings = Settings::resolve(
        &Flags::default(),
        env(&[("ADP_PUBLIC_URL", "https://adp.example.com/")]),
    )
    .unwrap();
    let bound = "127.0.0.1:7401".parse().unwrap();
    assert_eq!(
        settings.callback_url(bound),
        "https://adp.example.com/oauth/v1/callback"
    );
}

#[test]
fn sign_in_needs_issuer_and_client_id_and_openid() {
    let settings = Settings::resolve(&Flags::default(), env(&[])).unwrap();
    assert_eq!(settings.sign_in, None);

    let both = [
        ("ADP_OIDC_ISSUER", "https://login.example.com/"),
        ("ADP_OIDC_CLIENT_ID", "adp-connections"),
        ("ADP_OIDC_CLIENT_SECRET_REF", "CONNECTIONS_CLIENT_SECRET"),
    ];
    let sign_in = Settings::resolve(&Flags::default(), env(&both))
        .unwrap()
        .sign_in
        .unwrap();
    assert_eq!(sign_in.issuer, "https://login.example.com");
    assert_eq!(sign_in.client_id, "adp-connections");
    assert_eq!(
        sign_in.client_secret_ref.as_deref(),
        Some("CONNECTIONS_CLIENT_SECRET")
    );
    assert_eq!(sign_in.scopes, ["openid", "email", "profile"]);
    assert_eq!(sign_in.session_ttl, Duration::from_secs(8 * 3600));

    let error = Settings::resolve(&Flags::default(), env(&both[..1])).unwrap_err();
    assert!(error.to_string().contains("ADP_OIDC_CLIENT_ID"), "{error}");

    let mut zero_ttl = both.to_vec();
    zero_ttl.push(("ADP_SESSION_TTL_SECS", "0"));
    let error = Settings::resolve(&Flags::default(), env(&zero_ttl)).unwrap_err();
    assert!(
        error.to_string().contains("ADP_SESSION_TTL_SECS"),
        "{error}"
    );

    let mut no_openid = both.to_vec();
    no_openid.push(("ADP_OIDC_SCOPES", "email"));
    let error = Settings::resolve(&Flags::default(), env(&no_openid)).unwrap_err();
    assert!(error.to_string().contains("openid"), "{error}");
}

#[test]
fn listener_bounds_have_defaults_and_refuse_zero() {
    let settings = Settings::resolve(&Flags::default(), env(&[])).unwrap();
    assert_eq!(settings.limits, adp_listener::Limits::default());
    assert_eq!(settings.limits.header_read_timeout, Duration::from_secs(10));
    assert_eq!(
        settings.limits.request_body_timeout,
        Duration::from_secs(30)
    );
    assert_eq!(settings.limits.max_connections, 10_000);
    assert_eq!(settings.limits.http2_max_concurrent_streams, 200);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("adp.yaml");
    std::fs::write(&file, "max_connections: 7\nrequest_body_timeout_secs: 4\n").unwrap();
    let flags = Flags::default().with_config(file);
    let settings = Settings::resolve(
        &flags,
        env(&[
            ("ADP_HEADER_READ_TIMEOUT_SECS", "2"),
            ("ADP_HTTP2_MAX_CONCURRENT_STREAMS", "50"),
        ]),
    )
    .unwrap();
    assert_eq!(settings.limits.header_read_timeout, Duration::from_secs(2));
    assert_eq!(settings.limits.request_body_timeout, Duration::from_secs(4));
    assert_eq!(settings.limits.max_connections, 7);
    assert_eq!(settings.limits.http2_max_concurrent_streams, 50);

    for name in [
        "ADP_HEADER_READ_TIMEOUT_SECS",
        "ADP_REQUEST_BODY_TIMEOUT_SECS",
        "ADP_MAX_CONNECTIONS",
        "ADP_HTTP2_MAX_CONCURRENT_STREAMS",
    ] {
        let error = Settings::resolve(&Flags::default(), env(&[(name, "0")]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(name) && error.contains("at least 1"),
            "{error}"
        );
    }
}

#[test]
fn the_example_config_file_is_accepted_and_means_what_it_says() {
    let example =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config/control-plane.yaml");
    let flags = Flags::default().with_config(example);
    let settings = Settings::resolve(&flags, env(&[])).unwrap();
    assert_eq!(settings.connections.max_consent_attempts_per_user, 20);
    assert_eq!(settings.connections.max_watches_per_user, 16);
    assert_eq!(settings.background_refresh_idle, None);
}

#[test]
fn background_refresh_is_off_unless_asked_for_and_its_horizon_is_positive() {
    let on = env(&[
        ("ADP_BACKGROUND_REFRESH", "true"),
        ("ADP_BACKGROUND_REFRESH_IDLE_SECS", "3600"),
    ]);
    let settings = Settings::resolve(&Flags::default(), on).unwrap();
    assert_eq!(
        settings.background_refresh_idle,
        Some(Duration::from_secs(3600))
    );
    let default_horizon = env(&[("ADP_BACKGROUND_REFRESH", "true")]);
    let settings = Settings::resolve(&Flags::default(), default_horizon).unwrap();
    assert_eq!(
        settings.background_refresh_idle,
        Some(Duration::from_secs(86_400))
    );
    let zero = env(&[
        ("ADP_BACKGROUND_REFRESH", "true"),
        ("ADP_BACKGROUND_REFRESH_IDLE_SECS", "0"),
    ]);
    let error = Settings::resolve(&Flags::default(), zero)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("ADP_BACKGROUND_REFRESH_IDLE_SECS"),
        "{error}"
    );
    let error = Settings::resolve(&Flags::default(), env(&[("ADP_MAX_WATCHES_PER_USER", "0")]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("ADP_MAX_WATCHES_PER_USER"), "{error}");
}

#[test]
fn a_database_password_never_reaches_debug_or_errors() {
    let url = "postgres://adp:s3cret-db-password@db.internal/adp";
    let settings = Settings::resolve(&Flags::default(), env(&[("ADP_DATABASE_URL", url)])).unwrap();
    assert_eq!(*settings.database_url, url);
    assert!(!format!("{settings:?}").contains("s3cret"));
    let flags = Flags::default().with("database_url", url);
    assert!(!format!("{flags:?}").contains("s3cret"));
    // a mistyped scheme is refused before any driver can quote the URL
    let typo = "postgress://adp:s3cret-db-password@db.internal/adp";
    let error = Settings::resolve(&Flags::default(), env(&[("ADP_DATABASE_URL", typo)]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "ADP_DATABASE_URL=<redacted>: use sqlite:… or postgres://…"
    );
}

#[test]
fn help_lists_every_setting_with_its_variable_and_default() {
    use clap::CommandFactory;
    let help = crate::cli::Cli::command().render_long_help().to_string();
    for (flag, line) in [
        (
            "--grpc-addr <ADDR>",
            "[env: ADP_GRPC_ADDR] [default: 127.0.0.1:7400]",
        ),
        ("--jwks-url <URL>", "[env: ADP_JWKS_URL]"),
        (
            "--max-connections <N>",
            "[env: ADP_MAX_CONNECTIONS] [default: 10000]",
        ),
        (
            "--session-ttl-secs <SECS>",
            "[env: ADP_SESSION_TTL_SECS] [default: 28800]",
        ),
    ] {
        assert!(help.contains(flag) && help.contains(line), "{flag}: {help}");
    }
    for group in <ControlPlaneSettings as adp_settings::Registry>::GROUPS {
        for setting in group.iter() {
            setting.check_default().unwrap();
            assert!(
                help.contains(&setting.info().flag()),
                "{}",
                setting.info().key
            );
        }
    }
}

#[test]
fn every_setting_the_readme_documents_is_accepted_and_every_setting_is_documented() {
    let readme = include_str!("../../../../README.md");
    let rows = adp_settings::docs::table_after(readme, "## Configuration");
    assert!(
        rows.len() > 20,
        "the control plane's settings table: {rows:?}"
    );
    let problems = adp_settings::docs::mismatches(
        &rows,
        <ControlPlaneSettings as adp_settings::Registry>::GROUPS,
        None,
    );
    assert!(problems.is_empty(), "{problems:#?}");
}
