//! Helpers for driving user consent end to end: a browser that carries the control
//! plane's `adp_consent` cookie across `/oauth/v1/connect/{state}` and the callback
//! while an [`oidc::Browser`](crate::oidc::Browser) clicks through the authorization
//! server, decoding of the consent errors' rich details, and a bound on test bodies.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use tonic_types::StatusExt;
use url::Url;

use crate::oidc::{AuthorizationServer, Browser};

/// The name of the cookie that binds a consent attempt to the browser that opened it.
pub const CONSENT_COOKIE: &str = "adp_consent";

/// What the control plane answered to one browser request (redirects are not followed).
#[derive(Debug, Clone)]
pub struct Page {
    pub status: u16,
    pub location: Option<Url>,
    pub body: String,
}

/// One person's browser: cookies for the control plane (kept here) and for the
/// authorization server (kept by the inner [`Browser`]). Use one per end user.
pub struct ConsentBrowser {
    http: reqwest::Client,
    /// (origin, name, path, value) of cookies set by control planes.
    jar: Mutex<Vec<(String, String, String, String)>>,
    provider: Browser,
}

impl std::fmt::Debug for ConsentBrowser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsentBrowser").finish_non_exhaustive()
    }
}

impl ConsentBrowser {
    pub fn new(server: &AuthorizationServer) -> Self {
        ConsentBrowser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(60))
                .build()
                .expect("reqwest client"),
            jar: Mutex::new(Vec::new()),
            provider: server.browser(),
        }
    }

    /// The browser's side at the authorization server.
    pub fn provider(&self) -> &Browser {
        &self.provider
    }

    /// The value of the control plane's consent cookie for `origin_of`'s origin, if any.
    pub fn consent_cookie(&self, origin_of: &str) -> Option<String> {
        let origin = Url::parse(origin_of).ok()?.origin().ascii_serialization();
        let jar = self.jar.lock().ok()?;
        jar.iter()
            .find(|(o, name, _, _)| *o == origin && name == CONSENT_COOKIE)
            .map(|(_, _, _, value)| value.clone())
    }

    /// GETs a control-plane URL with this browser's cookies, keeping any it sets.
    pub async fn get(&self, url: &str) -> anyhow::Result<Page> {
        self.get_with_cookie(url, None).await
    }

    /// Like [`ConsentBrowser::get`], but `cookie` (when given) replaces the jar's
    /// `Cookie` header, to present one browser's request from another.
    pub async fn get_with_cookie(&self, url: &str, cookie: Option<&str>) -> anyhow::Result<Page> {
        self.send(reqwest::Method::GET, url, cookie).await
    }

    /// POSTs an empty form to a control-plane URL, as a page's button does.
    pub async fn post(&self, url: &str) -> anyhow::Result<Page> {
        self.send(reqwest::Method::POST, url, None).await
    }

    /// POSTs a form with these fields (and extra headers, such as a forged `Origin`).
    pub async fn post_form(
        &self,
        url: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Page> {
        let parsed = Url::parse(url).with_context(|| format!("not a URL: {url}"))?;
        let mut request = self.http.post(parsed.clone()).form(fields);
        if let Some(cookie) = self.cookie_header(&parsed) {
            request = request.header(COOKIE, cookie);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.finish(&parsed, request).await
    }

    /// Signs in to a control plane's Connections page (`http_url` is its HTTP base) as
    /// `login` at the authorization server; returns the Connections page it lands on.
    pub async fn sign_in(&self, http_url: &str, login: &str) -> anyhow::Result<Page> {
        let start = self.get(&format!("{http_url}/connections")).await?;
        ensure!(
            start.status == 303,
            "/connections answered {} before sign-in: {}",
            start.status,
            html_text(&start.body)
        );
        let sign_in = start.location.context("303 without a Location")?;
        let to_provider = self.get(sign_in.as_str()).await?;
        let authorize = to_provider
            .location
            .with_context(|| format!("sign-in answered {}", to_provider.status))?;
        let callback = self.provider.consent(authorize.as_str(), login).await?;
        let back = self.get(callback.as_str()).await?;
        ensure!(
            back.status == 303,
            "sign-in callback answered {}: {}",
            back.status,
            html_text(&back.body)
        );
        let page = self
            .get(back.location.context("no Location")?.as_str())
            .await?;
        ensure!(
            page.status == 200,
            "connections page answered {}",
            page.status
        );
        Ok(page)
    }

    /// The value of a cookie this browser holds for `origin_of`'s origin.
    pub fn cookie(&self, origin_of: &str, name: &str) -> Option<String> {
        let origin = Url::parse(origin_of).ok()?.origin().ascii_serialization();
        let jar = self.jar.lock().ok()?;
        jar.iter()
            .find(|(o, n, _, _)| *o == origin && n == name)
            .map(|(_, _, _, value)| value.clone())
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        cookie: Option<&str>,
    ) -> anyhow::Result<Page> {
        let parsed = Url::parse(url).with_context(|| format!("not a URL: {url}"))?;
        let mut request = self.http.request(method.clone(), parsed.clone());
        let header = match cookie {
            Some(cookie) => Some(cookie.to_owned()),
            None => self.cookie_header(&parsed),
        };
        if let Some(header) = header {
            request = request.header(COOKIE, header);
        }
        self.finish(&parsed, request).await
    }

    async fn finish(&self, parsed: &Url, request: reqwest::RequestBuilder) -> anyhow::Result<Page> {
        let response = request
            .send()
            .await
            .with_context(|| format!("request to {parsed}"))?;
        self.store_cookies(parsed, response.headers());
        let status = response.status().as_u16();
        let location = match response.headers().get(LOCATION) {
            Some(value) => Some(parsed.join(value.to_str()?)?),
            None => None,
        };
        let body = response.text().await?;
        Ok(Page {
            status,
            location,
            body,
        })
    }

    /// Opens a `/oauth/v1/connect/{state}` link, reads the consent page and presses
    /// Continue; returns where the control plane sends the browser (the provider's
    /// authorization endpoint).
    pub async fn open_connect(&self, connect_url: &str) -> anyhow::Result<Url> {
        let prompt = self.get(connect_url).await?;
        ensure!(
            prompt.status == 200 && prompt.body.contains("Continue to"),
            "connect link answered {} instead of the consent page: {}",
            prompt.status,
            prompt.body
        );
        let fields: Vec<(&str, &str)> = form_csrf(&prompt.body)
            .map(|token| vec![("csrf", token)])
            .unwrap_or_default();
        let page = self.post_form(connect_url, &fields, &[]).await?;
        ensure!(
            page.status == 303,
            "connect link answered {} instead of 303: {}",
            page.status,
            page.body
        );
        let location = page.location.context("303 without a Location")?;
        ensure!(
            self.consent_cookie(connect_url).is_some(),
            "the connect link set no {CONSENT_COOKIE} cookie"
        );
        Ok(location)
    }

    /// Signs in at the provider as `login` and approves; returns the callback URL the
    /// provider redirects to (with `code`, `state`, `iss`), not yet fetched.
    pub async fn approve_at_provider(
        &self,
        authorize_url: &Url,
        login: &str,
    ) -> anyhow::Result<Url> {
        self.provider.consent(authorize_url.as_str(), login).await
    }

    /// The whole browser consent: connect link → provider → callback, expecting the
    /// control plane's 200 "connected" page. Returns the callback URL it fetched.
    pub async fn connect(&self, connect_url: &str, login: &str) -> anyhow::Result<Url> {
        let authorize = self.open_connect(connect_url).await?;
        let callback = self.approve_at_provider(&authorize, login).await?;
        let page = self.get(callback.as_str()).await?;
        if page.status != 200 || !page.body.to_lowercase().contains("connected") {
            bail!(
                "callback answered {}: {}",
                page.status,
                html_text(&page.body)
            );
        }
        Ok(callback)
    }

    fn cookie_header(&self, url: &Url) -> Option<String> {
        let origin = url.origin().ascii_serialization();
        let jar = self.jar.lock().ok()?;
        let pairs: Vec<String> = jar
            .iter()
            .filter(|(o, _, path, _)| *o == origin && path_matches(path, url.path()))
            .map(|(_, name, _, value)| format!("{name}={value}"))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    fn store_cookies(&self, url: &Url, headers: &reqwest::header::HeaderMap) {
        let origin = url.origin().ascii_serialization();
        let Ok(mut jar) = self.jar.lock() else { return };
        for header in headers.get_all(SET_COOKIE) {
            let Ok(text) = header.to_str() else { continue };
            let mut parts = text.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let mut path = "/".to_owned();
            let mut expired = value.trim().is_empty();
            for attribute in parts {
                let (key, argument) = attribute.split_once('=').unwrap_or((attribute, ""));
                match key.trim().to_ascii_lowercase().as_str() {
                    "path" => path = argument.trim().to_owned(),
                    "max-age" => expired |= argument.trim().parse::<i64>().is_ok_and(|a| a <= 0),
                    _ => {}
                }
            }
            let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
            jar.retain(|(o, n, p, _)| !(*o == origin && *n == name && *p == path));
            if !expired {
                jar.push((origin.clone(), name, path, value));
            }
        }
    }
}

/// The CSRF token of the first form on a page, if it has one.
pub fn form_csrf(page: &str) -> Option<&str> {
    let at = page.find("name=\"csrf\" value=\"")? + 19;
    let end = page[at..].find('"')? + at;
    Some(&page[at..end])
}

fn path_matches(cookie_path: &str, request_path: &str) -> bool {
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/') || request_path[cookie_path.len()..].starts_with('/')))
}

/// The visible text of a small HTML page, for assertion messages.
pub fn html_text(body: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A query parameter of `url`.
pub fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// `url` with `name` set to `value` (replacing it), or removed when `value` is `None`.
pub fn with_query_param(url: &Url, name: &str, value: Option<&str>) -> Url {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(key, _)| key != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut out = url.clone();
    out.set_query(None);
    {
        let mut query = out.query_pairs_mut();
        for (key, value) in &pairs {
            query.append_pair(key, value);
        }
        if let Some(value) = value {
            query.append_pair(name, value);
        }
    }
    out
}

/// A gRPC status with its `google.rpc` details taken apart.
#[derive(Debug, Clone)]
pub struct RichError {
    pub code: tonic::Code,
    pub message: String,
    pub reason: String,
    pub domain: String,
    pub metadata: HashMap<String, String>,
    /// (description, url) of every `google.rpc.Help` link.
    pub help_links: Vec<(String, String)>,
    details: Vec<prost_types::Any>,
}

impl RichError {
    pub fn from_status(status: &tonic::Status) -> Self {
        let rich = status.get_error_details();
        let (reason, domain, metadata) = match rich.error_info() {
            Some(info) => (
                info.reason.clone(),
                info.domain.clone(),
                info.metadata.clone().into_iter().collect(),
            ),
            None => Default::default(),
        };
        let help_links = rich
            .help()
            .map(|help| {
                help.links
                    .iter()
                    .map(|l| (l.description.clone(), l.url.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let details = <tonic_types::pb::Status as prost::Message>::decode(status.details())
            .map(|s| s.details)
            .unwrap_or_default();
        RichError {
            code: status.code(),
            message: status.message().to_owned(),
            reason,
            domain,
            metadata,
            help_links,
            details,
        }
    }

    /// The typed detail `adp.v1.<name>` (e.g. `OAuthConnectionRequired`), decoded.
    pub fn detail<M: prost::Message + Default>(&self, name: &str) -> Option<M> {
        let type_url = format!("type.googleapis.com/adp.v1.{name}");
        self.details
            .iter()
            .find(|any| any.type_url == type_url)
            .map(|any| M::decode(any.value.as_slice()).expect("typed detail decodes"))
    }

    pub fn meta(&self, key: &str) -> &str {
        self.metadata
            .get(key)
            .map(String::as_str)
            .unwrap_or_default()
    }
}

/// Runs a test body with an upper bound, so a hung test fails instead of stalling CI.
pub async fn bounded<F: Future<Output = ()>>(limit: Duration, body: F) {
    tokio::time::timeout(limit, body)
        .await
        .unwrap_or_else(|_| panic!("test did not finish within {limit:?}"));
}
