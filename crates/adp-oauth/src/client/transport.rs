//! The HTTP exchange under every oauth2 call: one reqwest client, the status kept for
//! classification, 5xx/429 turned into retryable errors before oauth2 sees them.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use oauth2::http::{HeaderMap, StatusCode, header::RETRY_AFTER};
use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse};

use super::OAuthClient;
use crate::error::HttpError;

/// Token, device and revocation answers are tiny; anything bigger is not one.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// The HTTP status of the last answer, for the errors oauth2 reports without it.
#[derive(Debug, Default)]
pub(crate) struct ObservedStatus(AtomicU16);

impl ObservedStatus {
    fn set(&self, status: StatusCode) {
        self.0.store(status.as_u16(), Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> Option<u16> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            status => Some(status),
        }
    }
}

/// oauth2's HTTP client for one attempt: our reqwest client plus the status it saw,
/// which survives even when oauth2 reports only "could not parse the body".
///
/// A named type with a boxed `Send` future rather than a closure: closures returning
/// borrowing futures make the flows' futures fail `Send` (higher-ranked lifetimes).
#[derive(Debug)]
pub(crate) struct Transport<'a> {
    client: &'a OAuthClient,
    observed: ObservedStatus,
}

impl<'a> Transport<'a> {
    pub(crate) fn new(client: &'a OAuthClient) -> Self {
        Transport {
            client,
            observed: ObservedStatus::default(),
        }
    }

    pub(crate) fn status(&self) -> Option<u16> {
        self.observed.get()
    }
}

impl<'c> AsyncHttpClient<'c> for Transport<'_> {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.client.send(request, &self.observed))
    }
}

impl OAuthClient {
    /// Sends one request, recording the status in `observed`.
    pub(crate) async fn send(
        &self,
        request: HttpRequest,
        observed: &ObservedStatus,
    ) -> Result<HttpResponse, HttpError> {
        let request = reqwest::Request::try_from(request).map_err(|_| HttpError::Build)?;
        let mut response = self
            .http
            .execute(request)
            .await
            .map_err(|e| HttpError::from_reqwest(&e))?;
        let status = response.status();
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            observed.set(status);
            return Err(HttpError::RetryableStatus {
                status: status.as_u16(),
                retry_after: retry_after(response.headers()),
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| HttpError::from_reqwest(&e))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(HttpError::TooLarge(MAX_RESPONSE_BYTES));
            }
            body.extend_from_slice(&chunk);
        }
        // some providers (GitHub among them) answer token errors with 200 and an error
        // object; present those as the 400 RFC 6749 §5.2 asks for so they classify right
        let status = if status == StatusCode::OK && is_error_object(&body) {
            StatusCode::BAD_REQUEST
        } else {
            status
        };
        observed.set(status);
        let mut builder = oauth2::http::Response::builder().status(status);
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        builder.body(body).map_err(|_| HttpError::Build)
    }
}

/// `Retry-After` in its delay-seconds form; the HTTP-date form is rare here and ignored.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

/// A JSON object with an `error` string and no `access_token`.
fn is_error_object(body: &[u8]) -> bool {
    if !body.windows(7).any(|window| window == b"\"error\"") {
        return false;
    }
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body).is_ok_and(|object| {
        object
            .get("error")
            .is_some_and(serde_json::Value::is_string)
            && !object.contains_key("access_token")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_objects_are_recognised() {
        assert!(is_error_object(br#"{"error":"bad_verification_code"}"#));
        assert!(!is_error_object(br#"{"access_token":"x","error":"odd"}"#));
        assert!(!is_error_object(br#"{"access_token":"x"}"#));
        assert!(!is_error_object(b"<html>error</html>"));
    }

    #[test]
    fn retry_after_reads_seconds_only() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "7".parse().expect("header"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().expect("header"),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
