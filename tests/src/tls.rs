//! A throwaway certificate authority for HTTPS test servers: a self-signed CA and one leaf
//! certificate for `127.0.0.1`, `::1` and `localhost`, as PEM files in a temp directory.
//!
//! Clients trust it explicitly: reqwest via [`TestCa::reqwest_certificate`], Node via
//! `NODE_EXTRA_CA_CERTS=<ca.pem>`.

use std::path::PathBuf;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tempfile::TempDir;

/// Names the leaf certificate is valid for: every way a test reaches a loopback server.
pub const LEAF_NAMES: [&str; 3] = ["127.0.0.1", "::1", "localhost"];

/// The CA certificate and a leaf certificate + key it signed; the files live as long as
/// this value.
#[derive(Debug)]
pub struct TestCa {
    pub dir: TempDir,
    /// The CA certificate (PEM) clients must trust.
    pub ca_pem: PathBuf,
    /// The leaf certificate (PEM) servers present.
    pub cert_pem: PathBuf,
    /// The leaf's private key (PKCS#8 PEM).
    pub key_pem: PathBuf,
}

impl TestCa {
    /// Generates a fresh CA and leaf into a new temp directory.
    pub fn generate() -> anyhow::Result<TestCa> {
        let dir = tempfile::tempdir()?;

        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "adp-e2e test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let mut leaf_params = CertificateParams::new(LEAF_NAMES.map(String::from).to_vec())?;
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        leaf_params.use_authority_key_identifier_extension = true;
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate()?;
        let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer)?;

        let ca_pem = dir.path().join("ca.pem");
        let cert_pem = dir.path().join("cert.pem");
        let key_pem = dir.path().join("key.pem");
        std::fs::write(&ca_pem, ca_cert.pem())?;
        std::fs::write(&cert_pem, leaf_cert.pem())?;
        std::fs::write(&key_pem, leaf_key.serialize_pem())?;
        Ok(TestCa {
            dir,
            ca_pem,
            cert_pem,
            key_pem,
        })
    }

    /// The CA certificate for `reqwest::ClientBuilder::add_root_certificate`.
    pub fn reqwest_certificate(&self) -> anyhow::Result<reqwest::Certificate> {
        let pem = std::fs::read(&self.ca_pem)
            .with_context(|| format!("read {}", self.ca_pem.display()))?;
        Ok(reqwest::Certificate::from_pem(&pem)?)
    }

    /// A reqwest client that trusts this CA (on top of the built-in roots).
    pub fn reqwest_client(&self) -> anyhow::Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .add_root_certificate(self.reqwest_certificate()?)
            .timeout(std::time::Duration::from_secs(30))
            .build()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_ca_and_a_leaf_it_signed() {
        let ca = TestCa::generate().unwrap();
        for path in [&ca.ca_pem, &ca.cert_pem, &ca.key_pem] {
            assert!(path.starts_with(ca.dir.path()), "{}", path.display());
        }
        let ca_pem = std::fs::read_to_string(&ca.ca_pem).unwrap();
        let cert_pem = std::fs::read_to_string(&ca.cert_pem).unwrap();
        let key_pem = std::fs::read_to_string(&ca.key_pem).unwrap();
        assert!(ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_ne!(ca_pem, cert_pem);
        ca.reqwest_certificate().unwrap();
    }
}
