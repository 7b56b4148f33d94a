//! Endpoint URLs must be `https://`. Plain `http://` is accepted only for loopback
//! hosts, and only when the operator opted into insecure development mode.

use std::net::IpAddr;

use url::{Host, Url};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointPolicy {
    /// Allow `http://` to loopback hosts (development and tests only).
    pub allow_insecure_loopback: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EndpointError {
    #[error("not an absolute URL")]
    NotAbsolute,
    #[error("HTTPS required")]
    HttpsRequired,
    #[error(
        "HTTPS required; plain http is allowed only for loopback hosts in insecure development mode"
    )]
    HttpsRequiredExceptLoopbackInDev,
    #[error("URLs carrying user credentials or a fragment are not allowed")]
    CredentialsOrFragment,
}

impl EndpointPolicy {
    pub fn check(&self, endpoint: &str) -> Result<Url, EndpointError> {
        let url = Url::parse(endpoint).map_err(|_| EndpointError::NotAbsolute)?;
        if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
            return Err(EndpointError::CredentialsOrFragment);
        }
        match url.scheme() {
            "https" => Ok(url),
            "http" if self.allow_insecure_loopback && is_loopback(&url) => Ok(url),
            "http" if self.allow_insecure_loopback => {
                Err(EndpointError::HttpsRequiredExceptLoopbackInDev)
            }
            _ => Err(EndpointError::HttpsRequired),
        }
    }
}

/// Whether the URL's host is a loopback address or `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_always_passes_http_only_for_loopback_in_dev() {
        let strict = EndpointPolicy::default();
        let dev = EndpointPolicy {
            allow_insecure_loopback: true,
        };
        assert!(strict.check("https://idp.example.com/token").is_ok());
        assert_eq!(
            strict.check("http://127.0.0.1:9000/token"),
            Err(EndpointError::HttpsRequired)
        );
        assert!(dev.check("http://127.0.0.1:9000/token").is_ok());
        assert!(dev.check("http://[::1]:9000/token").is_ok());
        assert!(dev.check("http://localhost:9000/token").is_ok());
        assert_eq!(
            dev.check("http://idp.example.com/token"),
            Err(EndpointError::HttpsRequiredExceptLoopbackInDev)
        );
        assert_eq!(
            strict.check("ftp://idp.example.com"),
            Err(EndpointError::HttpsRequired)
        );
        assert_eq!(strict.check("/relative"), Err(EndpointError::NotAbsolute));
        assert_eq!(
            strict.check("https://u:p@idp.example.com/"),
            Err(EndpointError::CredentialsOrFragment)
        );
    }
}
