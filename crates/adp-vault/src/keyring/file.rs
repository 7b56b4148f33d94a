//! Reading, validating and atomically writing the key file described on [`KeyRing`].

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{KEY_LEN, KeyRing, cipher, io_error, is_valid_key_id, new_key_id, random_key};
use crate::VaultError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyFile {
    primary: String,
    keys: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    /// base64, kept as read so a rotation writes old keys back unchanged
    key: SecretString,
    #[serde(default)]
    created: Option<u64>,
}

/// What is written: the same shape, borrowing from [`KeyFile`].
#[derive(Serialize)]
struct KeyFileView<'a> {
    primary: &'a str,
    keys: Vec<EntryView<'a>>,
}

#[derive(Serialize)]
struct EntryView<'a> {
    id: &'a str,
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<u64>,
}

impl KeyFile {
    pub fn read(path: &Path) -> Result<Self, VaultError> {
        let bytes =
            Zeroizing::new(fs::read(path).map_err(|error| io_error(path, "read it", error))?);
        serde_json::from_slice(&bytes).map_err(|error| problem(path, describe_json_error(&error)))
    }

    pub fn with_fresh_key() -> Self {
        let mut key_file = KeyFile {
            primary: String::new(),
            keys: Vec::new(),
        };
        key_file.add_fresh_primary();
        key_file
    }

    /// Generates a key with an id not used in this file and makes it the primary.
    pub fn add_fresh_primary(&mut self) -> String {
        let id = new_key_id(|candidate| self.keys.iter().any(|entry| entry.id == candidate));
        let mut encoded = Zeroizing::new(String::with_capacity(KEY_LEN * 4 / 3 + 4));
        let key = random_key();
        STANDARD.encode_string(key.as_slice(), &mut encoded);
        self.keys.insert(
            0,
            Entry {
                id: id.clone(),
                key: SecretString::from(encoded.as_str()),
                created: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .ok()
                    .map(|elapsed| elapsed.as_secs()),
            },
        );
        self.primary.clone_from(&id);
        id
    }

    /// Validates every entry and builds the key ring.
    pub fn key_ring(&self, path: &Path) -> Result<KeyRing, VaultError> {
        if self.keys.is_empty() {
            return Err(problem(path, "has no keys".to_owned()));
        }
        let mut ciphers = Vec::with_capacity(self.keys.len());
        for (index, entry) in self.keys.iter().enumerate() {
            // an invalid id is not echoed: it might be a misplaced key
            if !is_valid_key_id(&entry.id) {
                return Err(problem(
                    path,
                    format!(
                        "keys[{index}]: id is not valid (use 1 to 32 letters, digits, '-', '_' or '.')"
                    ),
                ));
            }
            if ciphers.iter().any(|(id, _)| id == &entry.id) {
                return Err(problem(path, format!("duplicate key id {:?}", entry.id)));
            }
            let key = decode_key(&entry.key)
                .map_err(|reason| problem(path, format!("key {:?} {reason}", entry.id)))?;
            ciphers.push((entry.id.clone(), cipher(&key)));
        }
        if !is_valid_key_id(&self.primary) {
            return Err(problem(path, "primary is not a valid key id".to_owned()));
        }
        KeyRing::from_ciphers(&self.primary, ciphers).ok_or_else(|| {
            problem(
                path,
                format!("primary key {:?} is not among the keys", self.primary),
            )
        })
    }

    /// Writes the file only if none exists yet; `false` if another process got there first.
    pub fn create(&self, path: &Path) -> Result<bool, VaultError> {
        let dir = parent_dir(path);
        create_private_dir(dir).map_err(|error| io_error(path, "create its directory", error))?;
        let temp = write_temp_file(path, &self.to_json(path)?)
            .map_err(|error| io_error(path, "write it", error))?;
        // a hard link never replaces an existing file, unlike rename
        let created = match fs::hard_link(&temp, path) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            // filesystems without hard links: fall back to rename, which may race
            Err(_) if !path.exists() => fs::rename(&temp, path).map(|()| true),
            Err(error) => Err(error),
        };
        let _ = fs::remove_file(&temp);
        let created = created.map_err(|error| io_error(path, "write it", error))?;
        sync_dir(dir);
        Ok(created)
    }

    /// Atomically replaces the file (temp file, then rename).
    pub fn replace(&self, path: &Path) -> Result<(), VaultError> {
        let temp = write_temp_file(path, &self.to_json(path)?)
            .map_err(|error| io_error(path, "write it", error))?;
        if let Err(error) = fs::rename(&temp, path) {
            let _ = fs::remove_file(&temp);
            return Err(io_error(path, "replace it", error));
        }
        sync_dir(parent_dir(path));
        Ok(())
    }

    fn to_json(&self, path: &Path) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let view = KeyFileView {
            primary: &self.primary,
            keys: self
                .keys
                .iter()
                .map(|entry| EntryView {
                    id: &entry.id,
                    key: entry.key.expose_secret(),
                    created: entry.created,
                })
                .collect(),
        };
        // sized up front so the buffer holding keys is not reallocated (and left behind)
        let mut json = Zeroizing::new(Vec::with_capacity(64 + 160 * self.keys.len()));
        serde_json::to_writer_pretty(&mut *json, &view)
            .map_err(|error| problem(path, format!("could not encode: {error}")))?;
        json.push(b'\n');
        Ok(json)
    }
}

/// Decodes a base64 key into exactly 32 bytes, or says what is wrong without echoing it.
fn decode_key(encoded: &SecretString) -> Result<Zeroizing<[u8; KEY_LEN]>, String> {
    let mut buffer = Zeroizing::new([0u8; 2 * KEY_LEN]);
    let len = STANDARD
        .decode_slice(encoded.expose_secret().trim(), &mut *buffer)
        .map_err(|error| match error {
            base64::DecodeSliceError::OutputSliceTooSmall => {
                format!("is longer than {KEY_LEN} bytes, expected exactly {KEY_LEN}")
            }
            base64::DecodeSliceError::DecodeError(_) => "is not valid base64".to_owned(),
        })?;
    if len != KEY_LEN {
        return Err(format!("is {len} bytes, expected exactly {KEY_LEN}"));
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&buffer[..KEY_LEN]);
    Ok(key)
}

/// Serde's own wording where it cannot quote file content, a fixed description otherwise.
fn describe_json_error(error: &serde_json::Error) -> String {
    let position = format!("line {}, column {}", error.line(), error.column());
    match error.classify() {
        serde_json::error::Category::Data => {
            let message = error.to_string();
            let safe = ["missing field", "unknown field", "duplicate field"]
                .iter()
                .any(|prefix| message.starts_with(prefix));
            match message.split(" at line ").next() {
                Some(message) if safe => format!("{message} ({position})"),
                _ => format!(
                    "does not have the expected shape {{\"primary\": \"<id>\", \"keys\": [{{\"id\": \"<id>\", \"key\": \"<base64>\", \"created\": <unix seconds>}}]}} ({position})"
                ),
            }
        }
        _ => format!("is not valid JSON ({position})"),
    }
}

fn problem(path: &Path, problem: String) -> VaultError {
    VaultError::KeyFile {
        path: path.to_owned(),
        problem,
    }
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Writes `contents` to a new file with mode 0600 next to `path` and flushes it to disk.
fn write_temp_file(path: &Path, contents: &[u8]) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = parent_dir(path).join(format!(".{name}.{:08x}.tmp", rand::random::<u32>()));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temp)?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if let Err(error) = written {
        drop(file);
        let _ = fs::remove_file(&temp);
        return Err(error);
    }
    Ok(temp)
}

/// Makes a rename or link durable; best effort, as not every platform can open a directory.
fn sync_dir(dir: &Path) {
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
}

#[cfg(unix)]
pub(super) fn warn_if_accessible_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(metadata) = fs::metadata(path) else {
        return;
    };
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = %format_args!("{mode:o}"),
            "vault key file is accessible by group or others; restrict it with chmod 600"
        );
    }
}

#[cfg(not(unix))]
pub(super) fn warn_if_accessible_by_others(_path: &Path) {}
