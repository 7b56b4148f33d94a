//! The control plane's pages for people: the Connections page (sign in with the
//! organization's OpenID Connect provider, one card per OAuth provider, connect,
//! revoke, live updates) under `/connections`. Server-rendered HTML; the one script
//! only refreshes cards when the server says they changed.

mod cards;
pub(crate) mod cookies;
mod events;
pub(crate) mod html;
pub(crate) mod session;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use secrecy::ExposeSecret;

use self::cards::CardView;
use self::session::Visitor;
use crate::connections::Connections;
use crate::signin::SignInError;
use crate::state::SharedState;

pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/connections", get(connections_page))
        .route("/connections/sign-in", get(sign_in))
        .route(crate::signin::CALLBACK_PATH, get(sign_in_callback))
        .route("/connections/sign-out", post(sign_out))
        .route("/connections/signed-out", get(signed_out))
        .route("/connections/events", get(events::stream))
        .route("/connections/{provider}/connect", post(connect))
        .route(
            "/connections/{provider}/revoke",
            get(confirm_revoke).post(revoke),
        )
        .route("/connections/assets/connections.css", get(stylesheet))
        .route("/connections/assets/connections.js", get(script))
}

/// The visitor, or the response to give instead: a redirect to sign in (or a page
/// saying sign-in is not set up).
async fn signed_in(
    state: &SharedState,
    headers: &HeaderMap,
    here: &axum::http::Uri,
) -> Result<Visitor, Response> {
    match session::visitor(state, headers).await? {
        Some(visitor) => Ok(visitor),
        None if state.sign_in.is_none() => Err(html::message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is not set up",
            "This control plane has no identity provider for people to sign in with. \
             An administrator sets ADP_OIDC_ISSUER and ADP_OIDC_CLIENT_ID to turn on the Connections page.",
        )),
        None => Err(session::sign_in_then(
            here.path_and_query().map_or("/connections", |p| p.as_str()),
        )),
    }
}

async fn connections_page(
    AxumState(state): AxumState<SharedState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let visitor = match signed_in(&state, &headers, &uri).await {
        Ok(visitor) => visitor,
        Err(response) => return response,
    };
    let identity = visitor.identity();
    let cards = match state.connections.cards(&identity).await {
        Ok(cards) => cards,
        Err(error) => {
            tracing::warn!(error = %error.message, code = ?error.code, "connections page: listing cards failed");
            return session::unavailable();
        }
    };
    let views: Vec<CardView<'_>> = cards
        .iter()
        .map(|card| CardView {
            card,
            device: state
                .connections
                .pending_device(&Connections::key(&identity, &card.provider.name)),
        })
        .collect();
    let notice = session::take_notice(&state, &headers, &visitor);
    let mut response = html::respond(
        StatusCode::OK,
        html::document(
            "Your connections",
            cards::account_nav(&visitor),
            cards::page_body(&visitor, &views, notice.as_deref()),
        ),
    );
    if cookies::read(&headers, cookies::FLASH).is_some() {
        cookies::set(
            &mut response,
            cookies::FLASH,
            "",
            "/connections",
            0,
            session::secure(&state),
        );
    }
    response
}

#[derive(Debug, serde::Deserialize)]
struct SignInQuery {
    return_to: Option<String>,
}

async fn sign_in(
    AxumState(state): AxumState<SharedState>,
    Query(query): Query<SignInQuery>,
) -> Response {
    let Some(sign_in) = &state.sign_in else {
        return Redirect::to("/connections").into_response();
    };
    match sign_in
        .start(query.return_to.as_deref().unwrap_or("/connections"))
        .await
    {
        Ok(start) => {
            let mut response = Redirect::to(start.redirect.as_str()).into_response();
            cookies::set(
                &mut response,
                cookies::SIGN_IN,
                &start.cookie,
                "/connections/sign-in",
                crate::signin::SIGN_IN_TTL.as_secs(),
                session::secure(&state),
            );
            response
        }
        Err(error) => sign_in_failed(&error),
    }
}

#[derive(Debug, serde::Deserialize)]
struct SignInCallback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn sign_in_callback(
    AxumState(state): AxumState<SharedState>,
    Query(query): Query<SignInCallback>,
    headers: HeaderMap,
) -> Response {
    let Some(sign_in) = &state.sign_in else {
        return Redirect::to("/connections").into_response();
    };
    let pending = cookies::read(&headers, cookies::SIGN_IN);
    let secure = session::secure(&state);
    let outcome = sign_in
        .finish(
            query.state.as_deref(),
            query.code.as_deref(),
            query.error.as_deref(),
            pending.as_deref(),
        )
        .await;
    let mut response = match outcome {
        Ok(signed_in) => {
            // whatever session this browser had (perhaps one planted on it) ends now,
            // and only now: a callback another site links to must not sign anyone out
            if let Some(earlier) = cookies::read(&headers, cookies::session_name(secure))
                && let Err(error) = sign_in.sign_out(&earlier).await
            {
                tracing::warn!(error = %adp_core::error::error_chain(&error), "ending an earlier session failed");
            }
            let mut response = Redirect::to(&signed_in.return_to).into_response();
            cookies::set(
                &mut response,
                cookies::session_name(secure),
                signed_in.cookie.expose_secret(),
                "/",
                u64::try_from((signed_in.session.expire_time - chrono::Utc::now()).num_seconds())
                    .unwrap_or(0),
                secure,
            );
            response
        }
        Err(error) => sign_in_failed(&error),
    };
    // one sign-in per cookie, whatever the outcome
    cookies::set(
        &mut response,
        cookies::SIGN_IN,
        "",
        "/connections/sign-in",
        0,
        secure,
    );
    response
}

fn sign_in_failed(error: &SignInError) -> Response {
    let status = match error {
        SignInError::NotStartedHere | SignInError::Refused(_) | SignInError::Unverified(_) => {
            StatusCode::BAD_REQUEST
        }
        SignInError::Unavailable(_) => StatusCode::BAD_GATEWAY,
        SignInError::Misconfigured(_) | SignInError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    match error {
        SignInError::Misconfigured(detail) => {
            tracing::error!(%detail, "connections page sign-in is misconfigured")
        }
        other => tracing::info!(error = %adp_core::error::error_chain(other), "sign-in failed"),
    }
    let mut text = error.to_string();
    if let Some(first) = text.get(..1) {
        text = first.to_uppercase() + &text[1..];
    }
    html::message_with_link(
        status,
        "Not signed in",
        &format!("{text}."),
        "Sign in again",
        "/connections/sign-in",
    )
}

async fn sign_out(
    AxumState(state): AxumState<SharedState>,
    headers: HeaderMap,
    form: Bytes,
) -> Response {
    let visitor = match session::admit_post(&state, &headers, &form).await {
        Ok(visitor) => visitor,
        Err(response) => return response,
    };
    if let Some(sign_in) = &state.sign_in
        && let Err(error) = sign_in.sign_out(visitor.cookie()).await
    {
        tracing::warn!(error = %adp_core::error::error_chain(&error), "signing out failed");
        return session::unavailable();
    }
    tracing::info!(subject = %visitor.session.subject, "signed out of the connections page");
    let mut response = Redirect::to("/connections/signed-out").into_response();
    cookies::set(
        &mut response,
        cookies::session_name(session::secure(&state)),
        "",
        "/",
        0,
        session::secure(&state),
    );
    response
}

async fn signed_out() -> Response {
    html::message_with_link(
        StatusCode::OK,
        "Signed out",
        "You are signed out of ADP. Your connections stay in place for your agents to use.",
        "Sign in again",
        "/connections/sign-in",
    )
}

async fn connect(
    AxumState(state): AxumState<SharedState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    form: Bytes,
) -> Response {
    let visitor = match session::admit_post(&state, &headers, &form).await {
        Ok(visitor) => visitor,
        Err(response) => return response,
    };
    let identity = visitor.identity();
    let anchor = format!("card-{provider}");
    match state
        .connections
        .start_consent(&identity, &provider, &[], None)
        .await
    {
        // the card already showed what is asked, so no second page: straight on
        Ok(start) => match start.browser_state {
            Some(attempt) => crate::consent_http::send_to_provider(&state, &attempt).await,
            None => session::redirect_with_notice(
                &state,
                &identity,
                "Approve the connection with the code shown on the card.",
                Some(&anchor),
            ),
        },
        Err(error) => {
            tracing::info!(provider = %provider, error = %error.message, "connect from the page failed");
            session::redirect_with_notice(
                &state,
                &identity,
                &format!("Could not start connecting: {}.", error.message),
                Some(&anchor),
            )
        }
    }
}

async fn confirm_revoke(
    AxumState(state): AxumState<SharedState>,
    Path(provider): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let visitor = match signed_in(&state, &headers, &uri).await {
        Ok(visitor) => visitor,
        Err(response) => return response,
    };
    let card = match own_card(&state, &visitor, &provider).await {
        Ok(card) => card,
        Err(response) => return response,
    };
    let title = format!("Revoke {}?", card.display_name());
    html::respond(
        StatusCode::OK,
        html::document(
            &title,
            cards::account_nav(&visitor),
            cards::revoke_body(&visitor, &card, &title),
        ),
    )
}

async fn revoke(
    AxumState(state): AxumState<SharedState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    form: Bytes,
) -> Response {
    let visitor = match session::admit_post(&state, &headers, &form).await {
        Ok(visitor) => visitor,
        Err(response) => return response,
    };
    let identity = visitor.identity();
    let card = match own_card(&state, &visitor, &provider).await {
        Ok(card) => card,
        Err(response) => return response,
    };
    let name = card.display_name().to_owned();
    if card.connection.is_none() {
        return session::redirect_with_notice(
            &state,
            &identity,
            &format!("There was no {name} connection to revoke."),
            None,
        );
    }
    let notice = match state.connections.revoke(&identity, &provider).await {
        Ok((true, _)) => format!("{name} disconnected. {name} accepted the revocation."),
        Ok((false, why)) => {
            format!("{name} disconnected here, but {name} did not confirm the revocation: {why}.")
        }
        Err(error) => {
            tracing::warn!(provider = %provider, error = %error.message, "revoke from the page failed");
            format!("Could not revoke {name}: {}.", error.message)
        }
    };
    session::redirect_with_notice(&state, &identity, &notice, None)
}

/// The visitor's card for `provider`, or the page to answer with instead.
async fn own_card(
    state: &SharedState,
    visitor: &Visitor,
    provider: &str,
) -> Result<crate::connections::Card, Response> {
    match state.connections.card(&visitor.identity(), provider).await {
        Ok(card) => Ok(card),
        Err(error) if error.code == adp_core::Code::NotFound => Err(html::message_with_link(
            StatusCode::NOT_FOUND,
            "Unknown account",
            "There is no such provider.",
            "Back to your connections",
            "/connections",
        )),
        Err(error) => {
            tracing::warn!(provider, error = %error.message, code = ?error.code, "connections page: reading a card failed");
            Err(session::unavailable())
        }
    }
}

async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("web/assets/connections.css"),
    )
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("web/assets/connections.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
