//! Each setting of an ADP program is declared once, as a [`Setting`]: its file key, its
//! environment variable, its flag (the key with `-` for `_`), its default, its help and
//! its rule. From that one declaration come the `--help` text, the flag, the file key,
//! the environment lookup and the error that names the setting and the rule it broke.
//!
//! Values are layered flag > environment > file > default. The environment is an
//! explicit map ([`Env`]), so a test builds any configuration without touching the
//! process environment, and unknown file keys are refused, so a typo never silently
//! does nothing.
//!
//! Why not figment or clap's own `env`: both read only the process environment (tests
//! would have to mutate it, which races across threads), and layering four sources of
//! strings into one `FromStr` per setting is all either would do for us here.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

pub mod docs;
pub mod shared;
mod value;

pub use value::{List, Redacted, Value};

#[cfg(test)]
mod tests;

/// Environment variables by name.
pub type Env = BTreeMap<String, String>;

/// An environment from `(name, value)` pairs, for tests and embedders.
pub fn env_of(pairs: &[(&str, &str)]) -> Env {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

/// The process environment, for `main`. An `ADP_` variable that is not UTF-8 is an
/// error naming it (left out, it would silently do nothing); other such variables are
/// not ours and are left out.
pub fn process_env() -> Result<Env, Error> {
    let mut env = Env::new();
    for (name, value) in std::env::vars_os() {
        let Ok(name) = name.into_string() else {
            continue;
        };
        match value.into_string() {
            Ok(value) => {
                env.insert(name, value);
            }
            Err(_) if name.starts_with("ADP_") => return Err(Error::NotUtf8(name)),
            Err(_) => {}
        }
    }
    Ok(env)
}

/// What a setting is when no layer sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// Nothing: the program decides what absence means.
    Unset,
    /// This text, parsed like any other value.
    Value(&'static str),
    /// Computed from other settings; the text says how, for `--help`.
    Derived(&'static str),
}

/// The untyped half of a declaration: what `--help`, the flag and the file need.
#[derive(Clone, Copy, Debug)]
pub struct Info {
    /// The file key and the flag's id; the flag is this with `-` for `_`.
    pub key: &'static str,
    pub env: &'static str,
    pub value_name: &'static str,
    pub help: &'static str,
    pub fallback: Fallback,
    pub heading: Option<&'static str>,
    /// Its value is never echoed in an error (a database URL may hold a password).
    pub secret: bool,
    switch: bool,
    list: bool,
}

impl Info {
    pub fn flag(&self) -> String {
        format!("--{}", self.key.replace('_', "-"))
    }

    fn help_line(&self) -> String {
        let default = match self.fallback {
            Fallback::Unset => String::new(),
            Fallback::Value(text) | Fallback::Derived(text) => format!(" [default: {text}]"),
        };
        format!("{} [env: {}]{default}", self.help, self.env)
    }
}

/// A rule a parsed value must keep; the message says what it asks for.
pub type Rule<T> = fn(&T) -> Result<(), String>;

/// One setting, declared once as a `const`.
pub struct Setting<T> {
    info: Info,
    rule: Option<Rule<T>>,
    _value: PhantomData<fn() -> T>,
}

impl<T: Value> Setting<T> {
    pub const fn new(
        key: &'static str,
        env: &'static str,
        value_name: &'static str,
        help: &'static str,
    ) -> Self {
        Setting {
            info: Info {
                key,
                env,
                value_name,
                help,
                fallback: Fallback::Unset,
                heading: None,
                secret: false,
                switch: T::SWITCH,
                list: T::LIST,
            },
            rule: None,
            _value: PhantomData,
        }
    }

    pub const fn default(mut self, text: &'static str) -> Self {
        self.info.fallback = Fallback::Value(text);
        self
    }

    /// The default is computed from other settings; `how` says how, for `--help`.
    pub const fn derived(mut self, how: &'static str) -> Self {
        self.info.fallback = Fallback::Derived(how);
        self
    }

    pub const fn heading(mut self, heading: &'static str) -> Self {
        self.info.heading = Some(heading);
        self
    }

    pub const fn secret(mut self) -> Self {
        self.info.secret = true;
        self
    }

    pub const fn rule(mut self, rule: Rule<T>) -> Self {
        self.rule = Some(rule);
        self
    }

    /// The value from the first layer that sets it (a default counts), or `None`.
    pub fn get(&self, layers: &Layers) -> Result<Option<T>, Error> {
        let Some((origin, text)) = layers.raw(&self.info)? else {
            return Ok(None);
        };
        let invalid = |message: String| Error::Invalid {
            origin: origin.clone(),
            shown: shown(&self.info, &text),
            message,
        };
        let value = text.parse::<T>().map_err(|e| invalid(e.to_string()))?;
        if let Some(rule) = self.rule {
            rule(&value).map_err(invalid)?;
        }
        Ok(Some(value))
    }

    /// [`Setting::get`] for a setting that must have a value.
    pub fn value(&self, layers: &Layers) -> Result<T, Error> {
        self.get(layers)?.ok_or(Error::Required {
            env: self.info.env,
            flag: self.info.flag(),
            help: self.info.help,
        })
    }
}

impl<T> fmt::Debug for Setting<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.info.fmt(f)
    }
}

/// A declaration with its type erased, for lists of a program's settings.
pub trait Declared: Sync {
    fn info(&self) -> &Info;
    /// Parses the default, so a test can check every declared default is valid.
    fn check_default(&self) -> Result<(), Error>;
}

impl<T: Value> Declared for Setting<T> {
    fn info(&self) -> &Info {
        &self.info
    }

    fn check_default(&self) -> Result<(), Error> {
        let layers = Layers::defaults_only(&self.info);
        self.get(&layers).map(drop)
    }
}

fn shown(info: &Info, text: &str) -> String {
    if info.secret {
        "<redacted>".to_owned()
    } else {
        format!("{text:?}")
    }
}

/// Bounds that zero would make useless (a zero timeout never serves anything).
pub fn at_least_one<T: PartialEq + Default>(value: &T) -> Result<(), String> {
    if *value == T::default() {
        Err("must be at least 1".into())
    } else {
        Ok(())
    }
}

/// Where a value came from, as an error names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Flag(String),
    Env(&'static str),
    File { path: PathBuf, key: &'static str },
    Default(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => f.write_str(flag),
            Origin::Env(name) => f.write_str(name),
            Origin::File { path, key } => write!(f, "config file {}: {key}", path.display()),
            Origin::Default(env) => write!(f, "the default of {env}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    ParseFile { path: PathBuf, message: String },
    #[error("config file {path}: unknown key {key:?}")]
    UnknownKey { path: PathBuf, key: String },
    #[error("{origin}={shown}: {message}")]
    Invalid {
        origin: Origin,
        shown: String,
        message: String,
    },
    #[error("set {env} (or {flag}): {help}")]
    Required {
        env: &'static str,
        flag: String,
        help: &'static str,
    },
    #[error("environment variable {0} is not UTF-8")]
    NotUtf8(String),
    #[error("set only one of {one} and {other}")]
    Conflict {
        one: &'static str,
        other: &'static str,
    },
    /// A program read a setting it never declared: a bug, caught by any test that
    /// resolves its settings.
    #[error("setting {0} is read but not declared in this program's list")]
    Undeclared(&'static str),
}

/// Settings declared together (a program's own, or a shared group).
pub type Group = &'static [&'static dyn Declared];

fn declared(groups: &[Group]) -> impl Iterator<Item = &'static Info> + '_ {
    groups
        .iter()
        .flat_map(|group| group.iter().map(|s| s.info()))
}

/// The four layers a program's settings are read from.
pub struct Layers {
    known: &'static [Group],
    flags: BTreeMap<&'static str, String>,
    env: Env,
    file: BTreeMap<String, String>,
    file_path: PathBuf,
    /// [`Declared::check_default`]: only this setting, from its default.
    only: Option<&'static str>,
}

impl Layers {
    /// `known` is every setting the program declares; `file` is the YAML file, if any.
    pub fn new(
        known: &'static [Group],
        flags: BTreeMap<&'static str, String>,
        env: Env,
        file: Option<&Path>,
    ) -> Result<Layers, Error> {
        let (file, file_path) = match file {
            Some(path) => (read_file(path, known)?, path.to_owned()),
            None => (BTreeMap::new(), PathBuf::new()),
        };
        Ok(Layers {
            known,
            flags,
            env,
            file,
            file_path,
            only: None,
        })
    }

    fn defaults_only(info: &Info) -> Layers {
        Layers {
            known: &[],
            flags: BTreeMap::new(),
            env: Env::new(),
            file: BTreeMap::new(),
            file_path: PathBuf::new(),
            only: Some(info.key),
        }
    }

    fn raw(&self, info: &Info) -> Result<Option<(Origin, String)>, Error> {
        if self.only != Some(info.key) && !declared(self.known).any(|d| d.key == info.key) {
            return Err(Error::Undeclared(info.env));
        }
        if let Some(text) = self.flags.get(info.key) {
            return Ok(Some((Origin::Flag(info.flag()), text.clone())));
        }
        // an empty variable is unset, as shells and unit files write them
        if let Some(text) = self.env.get(info.env).filter(|v| !v.is_empty()) {
            return Ok(Some((Origin::Env(info.env), text.clone())));
        }
        if let Some(text) = self.file.get(info.key) {
            let origin = Origin::File {
                path: self.file_path.clone(),
                key: info.key,
            };
            return Ok(Some((origin, text.clone())));
        }
        Ok(match info.fallback {
            Fallback::Value(text) => Some((Origin::Default(info.env), text.to_owned())),
            Fallback::Unset | Fallback::Derived(_) => None,
        })
    }

    pub fn env(&self) -> &Env {
        &self.env
    }
}

impl fmt::Debug for Layers {
    // values may be secret: only which settings each layer sets
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Layers")
            .field("flags", &self.flags.keys().collect::<Vec<_>>())
            .field("file", &self.file.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The YAML file as text values by key; every key must be declared.
fn read_file(path: &Path, known: &[Group]) -> Result<BTreeMap<String, String>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
        path: path.into(),
        source,
    })?;
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let parse_error = |message: String| Error::ParseFile {
        path: path.into(),
        message,
    };
    // A mistaken --config may name a secret file: no message below quotes its text,
    // only where the problem is (the parser's own messages can quote the input).
    let document: serde_norway::Value = serde_norway::from_str(&text).map_err(|e| {
        parse_error(match e.location() {
            Some(at) => format!(
                "not valid YAML (line {}, column {})",
                at.line(),
                at.column()
            ),
            None => "not valid YAML".into(),
        })
    })?;
    let serde_norway::Value::Mapping(map) = document else {
        return Err(parse_error("not a YAML map of settings".into()));
    };
    let mut values = BTreeMap::new();
    for (key, value) in map {
        let Some(info) = key
            .as_str()
            .and_then(|key| declared(known).find(|d| d.key == key))
        else {
            return Err(Error::UnknownKey {
                path: path.into(),
                key: shown_key(&key),
            });
        };
        if let Some(text) =
            value::yaml_text(info, &value).map_err(|m| parse_error(format!("{}: {m}", info.key)))?
        {
            values.insert(info.key.to_owned(), text);
        }
    }
    Ok(values)
}

/// An unknown key as an error shows it: a setting-like name as it is, anything else
/// (which may be a secret file's text) not at all.
fn shown_key(key: &serde_norway::Value) -> String {
    match key.as_str() {
        Some(name)
            if name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
        {
            name.to_owned()
        }
        _ => "(not a setting name)".to_owned(),
    }
}

/// A program's list of settings, for [`Flags`].
pub trait Registry: 'static {
    /// Every setting, by group; each key once.
    const GROUPS: &'static [Group];
    /// The environment variable naming the config file, if the program has one.
    const CONFIG_ENV: Option<&'static str> = None;
}

/// Every setting of `R` as an optional flag, plus `--config FILE`; flatten it into a
/// clap command. Unset flags fall through to the environment, the file and defaults.
pub struct Flags<R> {
    values: BTreeMap<&'static str, String>,
    config: Option<PathBuf>,
    _registry: PhantomData<fn() -> R>,
}

impl<R: Registry> Flags<R> {
    /// Sets a flag by key, as if given on the command line (for tests).
    pub fn with(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.values.insert(key, value.into());
        self
    }

    pub fn with_config(mut self, path: impl Into<PathBuf>) -> Self {
        self.config = Some(path.into());
        self
    }

    /// The layers these flags, `env` and the config file make.
    pub fn layers(&self, env: Env) -> Result<Layers, Error> {
        let config = self.config.clone().or_else(|| {
            let name = R::CONFIG_ENV?;
            env.get(name).filter(|v| !v.is_empty()).map(PathBuf::from)
        });
        Layers::new(R::GROUPS, self.values.clone(), env, config.as_deref())
    }
}

impl<R> Default for Flags<R> {
    fn default() -> Self {
        Flags {
            values: BTreeMap::new(),
            config: None,
            _registry: PhantomData,
        }
    }
}

impl<R> Clone for Flags<R> {
    fn clone(&self) -> Self {
        Flags {
            values: self.values.clone(),
            config: self.config.clone(),
            _registry: PhantomData,
        }
    }
}

impl<R> fmt::Debug for Flags<R> {
    // values may be secret: only which flags were given
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flags")
            .field("set", &self.values.keys().collect::<Vec<_>>())
            .field("config", &self.config)
            .finish()
    }
}

const CONFIG_ID: &str = "config";

impl<R: Registry> clap::FromArgMatches for Flags<R> {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = Flags::default();
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        for info in declared(R::GROUPS) {
            let key = info.key;
            if let Ok(Some(values)) = matches.try_get_many::<String>(key) {
                let values: Vec<&str> = values.map(String::as_str).collect();
                self.values.insert(key, values.join(","));
            }
        }
        if let Ok(Some(path)) = matches.try_get_one::<PathBuf>(CONFIG_ID) {
            self.config = Some(path.clone());
        }
        Ok(())
    }
}

impl<R: Registry> clap::Args for Flags<R> {
    fn augment_args(command: clap::Command) -> clap::Command {
        let config_help = match R::CONFIG_ENV {
            Some(env) => format!(
                "YAML file with any of the settings below (keys as the flags, with _ for -) [env: {env}]"
            ),
            None => {
                "YAML file with any of the settings below (keys as the flags, with _ for -)".into()
            }
        };
        let config = clap::Arg::new(CONFIG_ID)
            .long(CONFIG_ID)
            .value_name("FILE")
            .value_parser(clap::value_parser!(PathBuf))
            .help(config_help)
            .help_heading("Configuration");
        declared(R::GROUPS).fold(command.arg(config), |command, info| command.arg(flag(info)))
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
}

fn flag(info: &Info) -> clap::Arg {
    let mut arg = clap::Arg::new(info.key)
        .long(info.key.replace('_', "-"))
        .value_name(info.value_name)
        .help(info.help_line());
    if let Some(heading) = info.heading {
        arg = arg.help_heading(heading);
    }
    if info.switch {
        // `--insecure-development` alone means true; a value needs `=`, so a bare
        // switch never swallows the word after it (a subcommand)
        arg = arg
            .num_args(0..=1)
            .require_equals(true)
            .default_missing_value("true");
    }
    if info.list {
        arg = arg.action(clap::ArgAction::Append);
    }
    arg
}
