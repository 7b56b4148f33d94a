//! A cookie-keeping HTTP client that walks oidc-provider's dev login and consent pages
//! and its device-flow pages the way a person with a browser would. Redirects are
//! followed by hand so the walk stops at the first URL outside the server.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::header::{COOKIE, HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use url::{Origin, Url};

use super::html::{self, Form};

const MAX_STEPS: usize = 25;
const PASSWORD: &str = "any-password-works";

/// One user's browser: keeps the authorization server's cookies (so a second
/// authorization reuses the login session and any consent already given). Use one
/// `Browser` per end user.
pub struct Browser {
    http: reqwest::Client,
    origin: Origin,
    cookies: Mutex<Vec<Cookie>>,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("origin", &self.origin.ascii_serialization())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct Cookie {
    name: String,
    path: String,
    value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Approve,
    Deny,
}

enum Step {
    Redirect(Url),
    Page {
        url: Url,
        status: StatusCode,
        body: String,
    },
}

enum Outcome {
    /// The first URL outside the authorization server (the client's redirect URI).
    LeftServer(Url),
    /// The device flow ended on the server's own page (success or aborted).
    DeviceDone,
}

impl Browser {
    pub fn new(issuer: &str) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client");
        let origin = Url::parse(issuer).expect("issuer is a URL").origin();
        Browser {
            http,
            origin,
            cookies: Mutex::new(Vec::new()),
        }
    }

    /// Opens `authorize_url`, signs in as `login` (any password), approves the consent
    /// page, and returns the redirect to the client (with `code`, `state`, `iss`) without
    /// fetching it.
    pub async fn consent(&self, authorize_url: &str, login: &str) -> anyhow::Result<Url> {
        self.leave_server(authorize_url, login, Decision::Approve)
            .await
    }

    /// Like [`Browser::consent`] but cancels on the consent page; the returned redirect
    /// carries `error=access_denied`.
    pub async fn deny(&self, authorize_url: &str, login: &str) -> anyhow::Result<Url> {
        self.leave_server(authorize_url, login, Decision::Deny)
            .await
    }

    /// Opens `verification_uri_complete`, confirms the user code, signs in as `login`
    /// and approves; the device's next poll then gets tokens.
    pub async fn approve_device(
        &self,
        verification_uri_complete: &str,
        login: &str,
    ) -> anyhow::Result<()> {
        self.finish_device(verification_uri_complete, login, Decision::Approve)
            .await
    }

    /// Aborts on the user-code confirmation page; the device's next poll gets
    /// `access_denied`.
    pub async fn deny_device(&self, verification_uri_complete: &str) -> anyhow::Result<()> {
        self.finish_device(verification_uri_complete, "", Decision::Deny)
            .await
    }

    async fn leave_server(
        &self,
        start: &str,
        login: &str,
        decision: Decision,
    ) -> anyhow::Result<Url> {
        match self.walk(start, login, decision).await? {
            Outcome::LeftServer(url) => Ok(url),
            Outcome::DeviceDone => bail!("{start} ended on a device-flow page, not a redirect"),
        }
    }

    async fn finish_device(
        &self,
        start: &str,
        login: &str,
        decision: Decision,
    ) -> anyhow::Result<()> {
        match self.walk(start, login, decision).await? {
            Outcome::DeviceDone => Ok(()),
            Outcome::LeftServer(url) => bail!("device flow left the server for {url}"),
        }
    }

    async fn walk(&self, start: &str, login: &str, decision: Decision) -> anyhow::Result<Outcome> {
        let mut step = self.request(Method::GET, Url::parse(start)?, None).await?;
        for _ in 0..MAX_STEPS {
            let (url, status, body) = match step {
                Step::Redirect(target) if target.origin() != self.origin => {
                    return Ok(Outcome::LeftServer(target));
                }
                Step::Redirect(target) => {
                    step = self.request(Method::GET, target, None).await?;
                    continue;
                }
                Step::Page { url, status, body } => (url, status, body),
            };
            let forms = html::forms(&body);
            let form_where = |test: fn(&Form) -> bool| forms.iter().find(|form| test(form));
            let login_form = form_where(|form| form.value("prompt") == Some("login"));
            let consent_form = form_where(|form| form.value("prompt") == Some("consent"));
            let device_form = form_where(|form| form.id.as_deref() == Some("op.deviceConfirmForm"));
            let title = html::title(&body);
            let device_done = title == "Sign-in Success"
                || (decision == Decision::Deny && html::text(&body).contains("interrupted"));
            step = match (login_form, consent_form, device_form, decision) {
                (Some(form), ..) => {
                    let fields = [("login", login), ("password", PASSWORD)];
                    self.submit(&url, form, &fields).await?
                }
                (None, Some(form), _, Decision::Approve) => self.submit(&url, form, &[]).await?,
                (None, Some(_), _, Decision::Deny) => {
                    let abort = html::link_ending_with(&body, "/abort")
                        .context("consent page without a cancel link")?;
                    self.request(Method::GET, url.join(&abort)?, None).await?
                }
                (None, None, Some(form), Decision::Approve) => self.submit(&url, form, &[]).await?,
                (None, None, Some(form), Decision::Deny) => {
                    self.submit(&url, form, &[("abort", "yes")]).await?
                }
                // the response_mode=form_post page, which a browser submits by script
                _ if title == "Submitting Callback" && forms.len() == 1 => {
                    self.submit(&url, &forms[0], &[]).await?
                }
                _ if device_done => return Ok(Outcome::DeviceDone),
                _ => bail!(
                    "unexpected page at {url} ({status}): {title}: {}",
                    html::text(&body)
                ),
            };
        }
        bail!("still on the authorization server after {MAX_STEPS} steps")
    }

    async fn submit(
        &self,
        page: &Url,
        form: &Form,
        overrides: &[(&str, &str)],
    ) -> anyhow::Result<Step> {
        let action = match form.action.as_deref() {
            Some(action) => page.join(action)?,
            None => page.clone(),
        };
        if action.origin() != self.origin {
            bail!(
                "form posts to {action}, outside the authorization server (form_post is not supported)"
            );
        }
        let method = if form.method.eq_ignore_ascii_case("post") {
            Method::POST
        } else {
            Method::GET
        };
        self.request(method, action, Some(form.fields(overrides)))
            .await
    }

    async fn request(
        &self,
        method: Method,
        url: Url,
        form: Option<Vec<(String, String)>>,
    ) -> anyhow::Result<Step> {
        let mut request = self.http.request(method.clone(), url.clone());
        if let Some(cookies) = self.cookie_header(&url) {
            request = request.header(COOKIE, cookies);
        }
        if let Some(form) = form {
            request = if method == Method::GET {
                request.query(&form)
            } else {
                request.form(&form)
            };
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        self.store_cookies(&url, response.headers());
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(LOCATION)
                .context("redirect without a location")?
                .to_str()?;
            return Ok(Step::Redirect(url.join(location)?));
        }
        let body = response.text().await?;
        Ok(Step::Page { url, status, body })
    }

    fn cookie_header(&self, url: &Url) -> Option<String> {
        let cookies = self.cookies.lock().ok()?;
        let mut matching: Vec<&Cookie> = cookies
            .iter()
            .filter(|cookie| path_matches(&cookie.path, url.path()))
            .collect();
        matching.sort_by_key(|cookie| std::cmp::Reverse(cookie.path.len()));
        let header: Vec<String> = matching
            .iter()
            .map(|cookie| format!("{}={}", cookie.name, cookie.value))
            .collect();
        (!header.is_empty()).then(|| header.join("; "))
    }

    /// A minimal RFC 6265 jar for one host: name, value, path, deletion.
    fn store_cookies(&self, url: &Url, headers: &HeaderMap) {
        let Ok(mut jar) = self.cookies.lock() else {
            return;
        };
        for header in headers.get_all(SET_COOKIE) {
            let Ok(text) = header.to_str() else { continue };
            let mut parts = text.split(';');
            let Some((name, value)) = parts.next().and_then(|pair| pair.split_once('=')) else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            let mut path = default_path(url.path());
            let mut expired = value.is_empty();
            for attribute in parts {
                let (key, argument) = attribute.split_once('=').unwrap_or((attribute, ""));
                match key.trim().to_ascii_lowercase().as_str() {
                    "path" if argument.trim().starts_with('/') => path = argument.trim().to_owned(),
                    "max-age" => {
                        expired |= argument.trim().parse::<i64>().is_ok_and(|age| age <= 0)
                    }
                    "expires" => expired |= argument.contains("1970"),
                    _ => {}
                }
            }
            jar.retain(|cookie| !(cookie.name == name && cookie.path == path));
            if !expired {
                jar.push(Cookie {
                    name: name.to_owned(),
                    path,
                    value: value.to_owned(),
                });
            }
        }
    }
}

fn default_path(request_path: &str) -> String {
    match request_path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(at) => request_path[..at].to_owned(),
    }
}

fn path_matches(cookie_path: &str, request_path: &str) -> bool {
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/') || request_path[cookie_path.len()..].starts_with('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_paths_match_like_a_browser() {
        assert!(path_matches("/", "/interaction/abc"));
        assert!(path_matches("/interaction/abc", "/interaction/abc"));
        assert!(path_matches("/interaction/abc", "/interaction/abc/abort"));
        assert!(!path_matches("/interaction/abc", "/interaction/abcd"));
        assert_eq!(default_path("/auth/xyz"), "/auth");
        assert_eq!(default_path("/auth"), "/");
    }
}
