//! Where to connect and as whom: named contexts in `<config dir>/adpctl/config.yaml`
//! (`ADPCTL_CONFIG` names another file), overridden per call by flags and `ADP_TOKEN`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ContextEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    #[serde(default)]
    pub contexts: BTreeMap<String, ContextEntry>,
}

pub fn config_path() -> PathBuf {
    if let Some(path) = std::env::var_os("ADPCTL_CONFIG") {
        return PathBuf::from(path);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("adpctl").join("config.yaml")
}

impl ConfigFile {
    pub fn load() -> anyhow::Result<ConfigFile> {
        let path = config_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_norway::from_str(&text)
                .with_context(|| format!("{} is not a valid adpctl config", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub fn save(&self) -> anyhow::Result<()> {
        let path = config_path();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, serde_norway::to_string(self)?)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

#[derive(Subcommand, Debug)]
pub enum ContextCommand {
    /// Create or change a context and make it current
    #[command(
        after_help = "Example:\n  adpctl context set dev --control-plane http://127.0.0.1:7400 --proxy http://127.0.0.1:7480 --token-file ~/.adp/token"
    )]
    Set(SetArgs),
    /// Make a context current
    #[command(after_help = "Example:\n  adpctl context use prod")]
    Use { name: String },
    /// List contexts (* marks the current one)
    #[command(after_help = "Example:\n  adpctl context list")]
    List,
}

#[derive(Args, Debug)]
pub struct SetArgs {
    pub name: String,
    #[arg(long)]
    pub control_plane: Option<String>,
    #[arg(long)]
    pub proxy: Option<String>,
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

pub fn run(command: ContextCommand) -> anyhow::Result<()> {
    let mut file = ConfigFile::load()?;
    match command {
        ContextCommand::Set(args) => {
            let entry = file.contexts.entry(args.name.clone()).or_default();
            if args.control_plane.is_some() {
                entry.control_plane = args.control_plane;
            }
            if args.proxy.is_some() {
                entry.proxy = args.proxy;
            }
            if args.token_file.is_some() {
                entry.token_file = args.token_file;
            }
            file.current = Some(args.name.clone());
            file.save()?;
            eprintln!(
                "context {:?} saved in {} and current",
                args.name,
                config_path().display()
            );
        }
        ContextCommand::Use { name } => {
            anyhow::ensure!(
                file.contexts.contains_key(&name),
                "no context named {name:?}"
            );
            file.current = Some(name);
            file.save()?;
        }
        ContextCommand::List => {
            for (name, entry) in &file.contexts {
                let mark = if file.current.as_deref() == Some(name) {
                    "*"
                } else {
                    " "
                };
                println!(
                    "{mark} {name}\tcontrol-plane={}\tproxy={}",
                    entry.control_plane.as_deref().unwrap_or("-"),
                    entry.proxy.as_deref().unwrap_or("-")
                );
            }
        }
    }
    Ok(())
}
