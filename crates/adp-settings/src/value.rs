//! The types a setting can have, and how a YAML scalar becomes the text they parse.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// A type a setting's text parses into.
pub trait Value: FromStr<Err: std::fmt::Display> {
    /// A bare `--flag` means `true`.
    const SWITCH: bool = false;
    /// Repeated flags add up; the text is comma-separated.
    const LIST: bool = false;
}

impl Value for String {}
impl Value for PathBuf {}
impl Value for SocketAddr {}
impl Value for url::Url {}
impl Value for u16 {}
impl Value for u32 {}
impl Value for u64 {}
impl Value for usize {}

impl Value for bool {
    const SWITCH: bool = true;
}

/// A comma-separated list (`a,b`, or the flag given twice, or a YAML sequence).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct List(pub Vec<String>);

impl FromStr for List {
    type Err = std::convert::Infallible;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(List(
            text.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect(),
        ))
    }
}

impl Value for List {
    const LIST: bool = true;
}

/// A YAML value as the text `info`'s setting parses; `None` for null (unset). Only a
/// list setting takes a YAML list; no message quotes the value.
pub(crate) fn yaml_text(
    info: &crate::Info,
    value: &serde_norway::Value,
) -> Result<Option<String>, String> {
    use serde_norway::Value as Yaml;
    Ok(Some(match value {
        Yaml::Null => return Ok(None),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Number(n) => n.to_string(),
        Yaml::String(s) => s.clone(),
        Yaml::Sequence(items) if info.list => {
            let mut texts = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                match item {
                    Yaml::Sequence(_) | Yaml::Mapping(_) | Yaml::Tagged(_) => {
                        return Err(format!("list item {index} is not a value"));
                    }
                    item => match yaml_text(info, item)? {
                        Some(text) if text.contains(',') => {
                            return Err(format!("list item {index} holds a comma"));
                        }
                        Some(text) => texts.push(text),
                        None => {}
                    },
                }
            }
            texts.join(",")
        }
        Yaml::Sequence(_) => return Err("expected one value, not a list".into()),
        Yaml::Mapping(_) | Yaml::Tagged(_) => {
            return Err("expected a value, not a map".into());
        }
    }))
}

/// A resolved value that `Debug` never prints (a database URL may hold a password).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Redacted<T>(pub T);

impl<T> std::ops::Deref for Redacted<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}
