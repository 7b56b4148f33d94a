//! The single seam that seals and opens secrets: AES-256-GCM under a rotating key ring, with
//! associated data binding every ciphertext to the record it belongs to.
//!
//! ```
//! # use adp_vault::{Binding, KeyRing, Vault};
//! # fn main() -> Result<(), adp_vault::VaultError> {
//! let vault = Vault::new(KeyRing::generate()); // or KeyRing::load_or_generate(path)?.0
//! let sealed = vault.seal(&Binding::token_set("https://idp", "alice", "github"), b"token")?;
//! let token = vault.open(&Binding::token_set("https://idp", "alice", "github"), &sealed)?;
//! # assert_eq!(token.as_slice(), b"token");
//! # Ok(())
//! # }
//! ```
//!
//! A sealed value is a self-describing frame (format on [`Vault`](crate::Vault#sealed-frame-format))
//! that names the key it was sealed under, so old rows still open after
//! [`KeyRing::rotate`]; [`Vault::needs_rewrap`] and [`Vault::rewrap`] move them to the new
//! primary key. Nothing else in the system touches key material or calls the cipher.

#![forbid(unsafe_code)]

mod binding;
mod error;
mod frame;
mod keyring;
mod vault;

pub use binding::{Binding, RecordKind};
pub use error::VaultError;
pub use keyring::KeyRing;
pub use vault::Vault;
