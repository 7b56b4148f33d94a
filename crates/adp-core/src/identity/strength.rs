//! The rules both programs apply to their JWT settings before they serve, so a
//! deployment cannot end up verifying weakly by leaving a setting out:
//!
//! - with a JWKS (`ADP_JWKS_URL`), `ADP_JWT_ISSUER` and `ADP_JWT_AUDIENCE` are required:
//!   an identity provider signs tokens for many applications and issuers can share key
//!   sets, so without both checks a token minted for someone else would be accepted;
//! - the JWKS URL is `https://`: keys fetched in the clear can be swapped by anyone on
//!   the path, who could then mint any token. Plain `http://` is accepted only for a
//!   loopback host, and only with `ADP_INSECURE_DEVELOPMENT=true`.
//!
//! An HS256 secret (`ADP_JWT_HS256_SECRET_FILE`) is development-only by nature and is
//! not checked here.

use url::{Host, Url};

use super::{KeySource, VerifierConfig};

/// A JWT setting that would make verification weak; the message names the setting and
/// the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakJwtSettings {
    #[error(
        "ADP_JWT_ISSUER is required with ADP_JWKS_URL: without an `iss` check, tokens from any issuer sharing the key set would be accepted"
    )]
    MissingIssuer,
    #[error(
        "ADP_JWT_AUDIENCE is required with ADP_JWKS_URL: without an `aud` check, tokens the identity provider issued for other applications would be accepted"
    )]
    MissingAudience,
    #[error(
        "ADP_JWKS_URL must be an https:// URL (got {url}): keys fetched without TLS can be replaced in transit; plain http is allowed only for a loopback host with ADP_INSECURE_DEVELOPMENT=true"
    )]
    InsecureJwksUrl { url: String },
}

/// Checks `config` against the rules above; `insecure_development` is the value of
/// `ADP_INSECURE_DEVELOPMENT`. Returns the first rule broken, in the order the
/// settings are listed.
pub fn check_jwt_settings(
    config: &VerifierConfig,
    insecure_development: bool,
) -> Result<(), WeakJwtSettings> {
    let KeySource::Jwks { url, .. } = &config.key_source else {
        return Ok(());
    };
    let configured =
        |value: &Option<String>| value.as_deref().is_some_and(|v| !v.trim().is_empty());
    if !configured(&config.issuer) {
        return Err(WeakJwtSettings::MissingIssuer);
    }
    if !configured(&config.audience) {
        return Err(WeakJwtSettings::MissingAudience);
    }
    let acceptable = match url.scheme() {
        "https" => true,
        "http" => insecure_development && is_loopback(url),
        _ => false,
    };
    if !acceptable {
        return Err(WeakJwtSettings::InsecureJwksUrl { url: redacted(url) });
    }
    Ok(())
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        None => false,
    }
}

/// The URL as an error may show it: without user info, which can hold a password.
fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn jwks(url: &str, issuer: Option<&str>, audience: Option<&str>) -> VerifierConfig {
        let mut config = VerifierConfig::new(KeySource::jwks(Url::parse(url).unwrap(), None));
        config.issuer = issuer.map(str::to_owned);
        config.audience = audience.map(str::to_owned);
        config
    }

    const ISS: Option<&str> = Some("https://idp.example.com/");
    const AUD: Option<&str> = Some("adp");

    #[test]
    fn https_jwks_with_issuer_and_audience_passes() {
        let config = jwks("https://idp.example.com/jwks", ISS, AUD);
        assert_eq!(check_jwt_settings(&config, false), Ok(()));
        assert_eq!(check_jwt_settings(&config, true), Ok(()));
    }

    #[test]
    fn jwks_requires_issuer_and_audience() {
        let url = "https://idp.example.com/jwks";
        for issuer in [None, Some(""), Some("  ")] {
            let error = check_jwt_settings(&jwks(url, issuer, AUD), true).unwrap_err();
            assert_eq!(error, WeakJwtSettings::MissingIssuer);
            assert!(error.to_string().contains("ADP_JWT_ISSUER"), "{error}");
            assert!(error.to_string().contains("ADP_JWKS_URL"), "{error}");
        }
        for audience in [None, Some("")] {
            let error = check_jwt_settings(&jwks(url, ISS, audience), true).unwrap_err();
            assert_eq!(error, WeakJwtSettings::MissingAudience);
            assert!(error.to_string().contains("ADP_JWT_AUDIENCE"), "{error}");
        }
    }

    #[test]
    fn plain_http_only_for_loopback_in_insecure_development() {
        for url in [
            "http://127.0.0.1:8080/jwks",
            "http://[::1]:8080/jwks",
            "http://localhost/jwks",
            "http://idp.localhost/jwks",
        ] {
            let config = jwks(url, ISS, AUD);
            assert_eq!(check_jwt_settings(&config, true), Ok(()), "{url}");
            let error = check_jwt_settings(&config, false).unwrap_err();
            assert!(
                matches!(error, WeakJwtSettings::InsecureJwksUrl { .. }),
                "{url}"
            );
            let message = error.to_string();
            assert!(message.contains("ADP_JWKS_URL"), "{message}");
            assert!(message.contains("ADP_INSECURE_DEVELOPMENT"), "{message}");
        }
        for url in [
            "http://idp.example.com/jwks",
            "http://10.0.0.1/jwks",
            "http://localhost.example.com/jwks",
            "ftp://127.0.0.1/jwks",
        ] {
            let config = jwks(url, ISS, AUD);
            assert!(
                matches!(
                    check_jwt_settings(&config, true),
                    Err(WeakJwtSettings::InsecureJwksUrl { .. })
                ),
                "{url}"
            );
        }
    }

    #[test]
    fn the_error_never_shows_url_credentials() {
        let config = jwks("http://user:hunter2@idp.example.com/jwks", ISS, AUD);
        let error = check_jwt_settings(&config, false).unwrap_err().to_string();
        assert!(
            !error.contains("hunter2") && !error.contains("user"),
            "{error}"
        );
        assert!(error.contains("idp.example.com"), "{error}");
    }

    #[test]
    fn an_hs256_secret_is_not_checked() {
        let config = VerifierConfig::new(KeySource::hs256(b"dev".to_vec()));
        assert_eq!(check_jwt_settings(&config, false), Ok(()));
    }
}
