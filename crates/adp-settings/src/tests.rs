#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use clap::Parser;

use super::*;
use crate::shared::{JWT, LISTENER, LOG_FORMAT, LogFormat};

const PORT: Setting<u16> = Setting::new("port", "ADP_TEST_PORT", "PORT", "a port")
    .default("7400")
    .rule(at_least_one);
const DATABASE_URL: Setting<String> =
    Setting::new("database_url", "ADP_TEST_DATABASE", "URL", "a database").secret();
const ORIGINS: Setting<List> = Setting::new("origins", "ADP_TEST_ORIGINS", "LIST", "origins");
const INSECURE: Setting<bool> =
    Setting::new("insecure", "ADP_TEST_INSECURE", "BOOL", "danger").default("false");
const NOT_LISTED: Setting<String> = Setting::new("not_listed", "ADP_TEST_NOT_LISTED", "X", "x");

struct Program;
impl Registry for Program {
    const GROUPS: &'static [Group] = &[
        &[&PORT, &DATABASE_URL, &ORIGINS, &INSECURE, &LOG_FORMAT],
        &JWT,
        &shared::OUTBOUND_TLS,
        &LISTENER,
    ];
    const CONFIG_ENV: Option<&'static str> = Some("ADP_TEST_CONFIG");
}

#[derive(Parser, Debug)]
#[command(name = "program")]
struct Cli {
    #[command(flatten)]
    flags: Flags<Program>,
}

fn parse(args: &[&str]) -> Flags<Program> {
    Cli::try_parse_from(std::iter::once("program").chain(args.iter().copied()))
        .unwrap()
        .flags
}

use crate::env_of as env;

fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.yaml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn flag_beats_environment_beats_file_beats_default() {
    let layers = parse(&[]).layers(env(&[])).unwrap();
    assert_eq!(PORT.value(&layers).unwrap(), 7400);

    let (_dir, path) = file("port: 1\n");
    let from_file = parse(&[]).with_config(&path);
    assert_eq!(PORT.value(&from_file.layers(env(&[])).unwrap()).unwrap(), 1);
    let layers = from_file.layers(env(&[("ADP_TEST_PORT", "2")])).unwrap();
    assert_eq!(PORT.value(&layers).unwrap(), 2);
    let flagged = parse(&["--port", "3", "--config", path.to_str().unwrap()]);
    let layers = flagged.layers(env(&[("ADP_TEST_PORT", "2")])).unwrap();
    assert_eq!(PORT.value(&layers).unwrap(), 3);

    // an empty variable is unset, and the config file can be named by the environment
    let layers = parse(&[])
        .layers(env(&[
            ("ADP_TEST_PORT", ""),
            ("ADP_TEST_CONFIG", path.to_str().unwrap()),
        ]))
        .unwrap();
    assert_eq!(PORT.value(&layers).unwrap(), 1);
}

#[test]
fn errors_name_the_setting_where_it_was_set_and_the_rule() {
    let layers = parse(&[]).layers(env(&[("ADP_TEST_PORT", "0")])).unwrap();
    let error = PORT.value(&layers).unwrap_err().to_string();
    assert_eq!(error, "ADP_TEST_PORT=\"0\": must be at least 1");

    let layers = parse(&["--port=http"]).layers(env(&[])).unwrap();
    let error = PORT.value(&layers).unwrap_err().to_string();
    assert!(error.starts_with("--port=\"http\": "), "{error}");

    let (_dir, path) = file("port: 70000\n");
    let layers = parse(&[]).with_config(&path).layers(env(&[])).unwrap();
    let error = PORT.value(&layers).unwrap_err().to_string();
    assert!(
        error.starts_with(&format!("config file {}: port=\"70000\": ", path.display())),
        "{error}"
    );

    let error = LOG_FORMAT
        .value(
            &parse(&[])
                .layers(env(&[("ADP_LOG_FORMAT", "xml")]))
                .unwrap(),
        )
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("ADP_LOG_FORMAT") && error.contains("text or json"),
        "{error}"
    );
}

#[test]
fn a_secret_setting_is_never_echoed() {
    let password = "hunter2-password";
    let flags = parse(&[&format!("--database-url=postgres://u:{password}@db/adp")]);
    let layers = flags.layers(env(&[])).unwrap();
    assert!(!format!("{flags:?} {layers:?}").contains(password));
    // a secret that fails its rule names the setting but not the value
    const SECRET_PORT: Setting<u16> = Setting::new("port", "ADP_TEST_PORT", "P", "p").secret();
    let layers = parse(&[&format!("--port={password}")])
        .layers(env(&[]))
        .unwrap();
    let error = SECRET_PORT.value(&layers).unwrap_err().to_string();
    assert!(
        error.contains("--port") && !error.contains(password),
        "{error}"
    );
}

#[test]
fn unknown_file_keys_and_maps_are_refused() {
    let (_dir, path) = file("prot: 1\n");
    let error = parse(&[]).with_config(&path).layers(env(&[])).unwrap_err();
    assert!(
        error.to_string().contains("unknown key \"prot\""),
        "{error}"
    );
    let (_dir, path) = file("config: other.yaml\n");
    assert!(parse(&[]).with_config(&path).layers(env(&[])).is_err());
    let (_dir, path) = file("port:\n  value: 1\n");
    let error = parse(&[]).with_config(&path).layers(env(&[])).unwrap_err();
    assert!(
        error.to_string().contains("port: expected a value"),
        "{error}"
    );
    let error = parse(&[])
        .with_config("/nonexistent/adp.yaml")
        .layers(env(&[]))
        .unwrap_err();
    assert!(
        error.to_string().contains("/nonexistent/adp.yaml"),
        "{error}"
    );
}

#[test]
fn lists_switches_and_required_values() {
    let layers = parse(&[
        "--origins",
        "https://a",
        "--origins=https://b,https://c",
        "--insecure",
    ])
    .layers(env(&[]))
    .unwrap();
    assert_eq!(
        ORIGINS.value(&layers).unwrap().0,
        ["https://a", "https://b", "https://c"]
    );
    assert!(INSECURE.value(&layers).unwrap());
    let (_dir, path) = file("origins: [https://a, https://b]\ninsecure: true\n");
    let layers = parse(&[]).with_config(&path).layers(env(&[])).unwrap();
    assert_eq!(
        ORIGINS.value(&layers).unwrap().0,
        ["https://a", "https://b"]
    );
    assert!(INSECURE.value(&layers).unwrap());
    assert!(
        !INSECURE
            .value(&parse(&[]).layers(env(&[])).unwrap())
            .unwrap()
    );

    let error = DATABASE_URL
        .value(&parse(&[]).layers(env(&[])).unwrap())
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "set ADP_TEST_DATABASE (or --database-url): a database"
    );
}

#[test]
fn reading_an_undeclared_setting_is_an_error() {
    let layers = parse(&[]).layers(env(&[])).unwrap();
    assert!(matches!(
        NOT_LISTED.get(&layers),
        Err(Error::Undeclared("ADP_TEST_NOT_LISTED"))
    ));
}

#[test]
fn help_comes_from_the_declarations() {
    use clap::CommandFactory;
    let help = Cli::command().render_long_help().to_string();
    assert!(help.contains("--port <PORT>"), "{help}");
    assert!(
        help.contains("a port [env: ADP_TEST_PORT] [default: 7400]"),
        "{help}"
    );
    assert!(help.contains("--jwks-url <URL>"), "{help}");
    assert!(help.contains("[env: ADP_TEST_CONFIG]"), "{help}");
}

#[test]
fn shared_groups_resolve_to_their_documented_defaults() {
    let layers = parse(&[]).layers(env(&[])).unwrap();
    assert_eq!(
        shared::listener_limits(&layers).unwrap(),
        adp_listener::Limits::default()
    );
    assert_eq!(LOG_FORMAT.value(&layers).unwrap(), LogFormat::Text);
    let jwt = shared::JwtSettings::resolve(&layers).unwrap();
    assert_eq!(jwt.keys().unwrap(), None);
    assert_eq!(jwt.permissions_claim, "permissions");
    for group in Program::GROUPS {
        for setting in group.iter() {
            setting.check_default().unwrap();
        }
    }

    let both = env(&[
        ("ADP_JWKS_URL", "https://idp.example.com/jwks"),
        ("ADP_JWT_HS256_SECRET_FILE", "/s"),
    ]);
    let jwt = shared::JwtSettings::resolve(&parse(&[]).layers(both).unwrap()).unwrap();
    assert_eq!(
        jwt.preferring_jwks(),
        Some(shared::JwtKeys::Jwks(
            "https://idp.example.com/jwks".parse().unwrap()
        ))
    );
    let error = jwt.keys().unwrap_err();
    assert_eq!(
        error.to_string(),
        "set only one of ADP_JWKS_URL and ADP_JWT_HS256_SECRET_FILE"
    );
    for name in [
        "ADP_HEADER_READ_TIMEOUT_SECS",
        "ADP_REQUEST_BODY_TIMEOUT_SECS",
        "ADP_MAX_CONNECTIONS",
        "ADP_HTTP2_MAX_CONCURRENT_STREAMS",
    ] {
        let layers = parse(&[]).layers(env(&[(name, "0")])).unwrap();
        let error = shared::listener_limits(&layers).unwrap_err().to_string();
        assert_eq!(error, format!("{name}=\"0\": must be at least 1"));
    }
}

#[test]
fn a_mistaken_config_file_is_never_quoted() {
    // --config pointed at a secret file by mistake: the error says where, never what
    for secret in [
        "hunter2-super-secret-key-bytes\n",
        // a key that is not setting-like (a secret with a colon in it) is not named;
        // a lowercase_word key is, so a typo of a setting is easy to find
        "S3cret-Key/x: with a colon\n",
        "[\"unterminated s3cret\n",
        "key: 'unterminated s3cret\n",
    ] {
        let (_dir, path) = file(secret);
        let error = parse(&[])
            .with_config(&path)
            .layers(env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            !error.contains("hunter2") && !error.contains("s3cret"),
            "{error}"
        );
        assert!(error.contains(&path.display().to_string()), "{error}");
    }
    // a list item of a secret setting is not echoed either
    let (_dir, path) = file("origins: [\"https://a,hunter2\"]\n");
    let error = parse(&[])
        .with_config(&path)
        .layers(env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("origins: list item 0 holds a comma") && !error.contains("hunter2"),
        "{error}"
    );
}

#[test]
fn a_bare_switch_never_swallows_the_next_word() {
    #[derive(Parser, Debug)]
    struct WithSubcommand {
        #[command(flatten)]
        flags: Flags<Program>,
        #[command(subcommand)]
        command: Option<Sub>,
    }
    #[derive(clap::Subcommand, Debug)]
    enum Sub {
        Migrate,
    }
    let cli = WithSubcommand::try_parse_from(["program", "--insecure", "migrate"]).unwrap();
    assert!(matches!(cli.command, Some(Sub::Migrate)));
    assert!(
        INSECURE
            .value(&cli.flags.layers(env(&[])).unwrap())
            .unwrap()
    );
    let cli = WithSubcommand::try_parse_from(["program", "--insecure=false"]).unwrap();
    assert!(
        !INSECURE
            .value(&cli.flags.layers(env(&[])).unwrap())
            .unwrap()
    );
}
