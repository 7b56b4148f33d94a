//! `adp.v1.MCPGatewayService`: MCP tools over gRPC. The proxy is the MCP client here (the
//! official SDK, rmcp), with one upstream session per (user, server) that carries that
//! user's credential exactly as the HTTP path injects it.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use adp_api::v1 as pb;
use adp_api::v1::mcp_gateway_service_server::McpGatewayService;
use adp_core::error::Code;
use adp_core::{ApiError, Reason};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::control_plane_client::{ConsentRequired, CredentialError};
use crate::errors::ProxyError;
use crate::shared::{Admitted, Shared};
use crate::upstream_sessions::{CallError, UpstreamSessions};
use adp_core::json_struct::{struct_from_json, struct_to_json};

#[derive(Debug, Clone)]
pub struct Gateway {
    pub shared: Arc<Shared>,
    pub sessions: Arc<UpstreamSessions>,
    pub upstream_timeout: Duration,
    /// `ADP_MAX_CONSENT_WAIT_SECS`: the longest a `CallToolStream` waits for consent,
    /// whatever deadline its caller set (or none).
    pub max_consent_wait: Duration,
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::CallToolStreamResponse, Status>> + Send>>;

/// The deadline the caller set (`grpc-timeout`), if any and well formed.
fn deadline<T>(request: &Request<T>) -> Option<Duration> {
    parse_grpc_timeout(request.metadata().get("grpc-timeout")?.to_str().ok()?)
}

/// A `grpc-timeout` value: at most 8 ASCII digits and a unit (gRPC over HTTP/2,
/// "Timeout"). Anything else is as good as none; nothing overflows.
fn parse_grpc_timeout(text: &str) -> Option<Duration> {
    let unit = text.chars().next_back()?;
    let digits = &text[..text.len() - unit.len_utf8()];
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u64 = digits.parse().ok()?;
    match unit {
        'H' => value.checked_mul(3600).map(Duration::from_secs),
        'M' => value.checked_mul(60).map(Duration::from_secs),
        'S' => Some(Duration::from_secs(value)),
        'm' => Some(Duration::from_millis(value)),
        'u' => Some(Duration::from_micros(value)),
        'n' => Some(Duration::from_nanos(value)),
        _ => None,
    }
}

fn authorization<T>(request: &Request<T>) -> Option<String> {
    request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A credential refusal: consent conditions pass on the control plane's own status
/// (ErrorInfo, Help and the typed detail intact); so does anything else it said.
fn credential_status(error: CredentialError) -> Status {
    match error {
        CredentialError::Consent(consent) => consent.status.clone().unwrap_or_else(|| {
            ApiError::new(Code::FailedPrecondition, consent.message.clone())
                .with_reason(adp_core::Reason::OauthConnectionRequired)
                .into()
        }),
        CredentialError::Refused(status) => status,
        other => ApiError::new(Code::Unavailable, other.to_string())
            .with_reason(adp_core::Reason::ControlPlaneUnavailable)
            .into(),
    }
}

fn call_status(error: CallError) -> Status {
    match error {
        CallError::Timeout(limit) => ApiError::new(
            Code::DeadlineExceeded,
            format!(
                "the upstream did not answer within {} ms",
                limit.as_millis()
            ),
        )
        .with_reason(adp_core::Reason::UpstreamTimeout)
        .into(),
        CallError::Unavailable(message) => ApiError::new(Code::Unavailable, message)
            .with_reason(adp_core::Reason::UpstreamUnavailable)
            .into(),
        CallError::Mcp { code, message } => {
            let grpc = match i64::from(code) {
                crate::errors::code::INVALID_PARAMS => Code::InvalidArgument,
                crate::errors::code::METHOD_NOT_FOUND => Code::NotFound,
                _ => Code::Unknown,
            };
            ApiError::new(grpc, format!("the upstream MCP server answered: {message}"))
                .with_reason(adp_core::Reason::McpError)
                .with_metadata("mcpCode", code.to_string())
                .into()
        }
    }
}

/// Why one attempt at a call did not produce a result.
enum Attempt {
    Consent(Box<ConsentRequired>),
    Failed(Status),
}

impl Gateway {
    async fn admit<T>(&self, request: &Request<T>, server: &str) -> Result<Admitted, Status> {
        self.shared
            .admit(server, authorization(request).as_deref())
            .await
            .map_err(ProxyError::into_status)
    }

    fn limit(&self, deadline: Option<Duration>) -> Duration {
        deadline.map_or(self.upstream_timeout, |d| d.min(self.upstream_timeout))
    }

    async fn call_once(
        &self,
        admitted: &Admitted,
        tool: &str,
        arguments: serde_json::Map<String, serde_json::Value>,
        limit: Duration,
    ) -> Result<pb::CallToolResponse, Attempt> {
        let header = match self.shared.credential(admitted).await {
            Ok(header) => header,
            Err(CredentialError::Consent(consent)) => return Err(Attempt::Consent(consent)),
            Err(other) => return Err(Attempt::Failed(credential_status(other))),
        };
        let result = self
            .sessions
            .call_tool(admitted, header, tool, arguments, limit)
            .await
            .map_err(|e| Attempt::Failed(call_status(e)))?;
        Ok(pb::CallToolResponse {
            content: result.content.iter().filter_map(struct_from_json).collect(),
            structured_content: result
                .structured_content
                .as_ref()
                .and_then(struct_from_json),
            is_error: result.is_error,
        })
    }
}

#[tonic::async_trait]
impl McpGatewayService for Gateway {
    type CallToolStreamStream = EventStream;

    async fn list_tools(
        &self,
        request: Request<pb::ListToolsRequest>,
    ) -> Result<Response<pb::ListToolsResponse>, Status> {
        let limit = self.limit(deadline(&request));
        let server = request.get_ref().server_name.clone();
        let admitted = self.admit(&request, &server).await?;
        let header = self
            .shared
            .credential(&admitted)
            .await
            .map_err(credential_status)?;
        let tools = self
            .sessions
            .list_tools(&admitted, header, limit)
            .await
            .map_err(call_status)?;
        Ok(Response::new(pb::ListToolsResponse {
            tools: tools
                .into_iter()
                .map(|tool| pb::Tool {
                    input_schema: struct_from_json(&tool.input_schema),
                    output_schema: tool.output_schema.as_ref().and_then(struct_from_json),
                    name: tool.name,
                    title: tool.title,
                    description: tool.description,
                })
                .collect(),
        }))
    }

    async fn call_tool(
        &self,
        request: Request<pb::CallToolRequest>,
    ) -> Result<Response<pb::CallToolResponse>, Status> {
        let limit = self.limit(deadline(&request));
        let server = request.get_ref().server_name.clone();
        let admitted = self.admit(&request, &server).await?;
        let call = request.into_inner();
        let arguments = call.arguments.map(struct_to_json).unwrap_or_default();
        match self
            .call_once(&admitted, &call.tool_name, arguments, limit)
            .await
        {
            Ok(result) => Ok(Response::new(result)),
            Err(Attempt::Consent(consent)) => {
                Err(credential_status(CredentialError::Consent(consent)))
            }
            Err(Attempt::Failed(status)) => Err(status),
        }
    }

    async fn call_tool_stream(
        &self,
        request: Request<pb::CallToolStreamRequest>,
    ) -> Result<Response<Self::CallToolStreamStream>, Status> {
        // the caller's deadline, cut to our maximum: no caller can park a task for longer
        let wait =
            deadline(&request).map_or(self.max_consent_wait, |d| d.min(self.max_consent_wait));
        let limit = self.limit(deadline(&request));
        let server = request.get_ref().server_name.clone();
        let admitted = self.admit(&request, &server).await?;
        let call = request.into_inner();
        let arguments = call.arguments.map(struct_to_json).unwrap_or_default();
        let (tx, rx) = mpsc::channel(4);
        let gateway = self.clone();
        tokio::spawn(async move {
            let outcome = tokio::time::timeout(
                wait,
                gateway.call_until_consented(&admitted, &call.tool_name, arguments, limit, &tx),
            )
            .await;
            let last = match outcome {
                Ok(Ok(result)) => Ok(pb::CallToolStreamResponse {
                    event: Some(pb::call_tool_stream_response::Event::Result(result)),
                }),
                Ok(Err(status)) => Err(status),
                Err(_) => Err(ApiError::new(
                    Code::DeadlineExceeded,
                    format!(
                        "the connection was not completed within {} s (the call's deadline, at most ADP_MAX_CONSENT_WAIT_SECS)",
                        wait.as_secs()
                    ),
                )
                .with_reason(adp_core::Reason::ConsentTimeout)
                .into()),
            };
            let _ = tx.send(last).await;
        }.instrument(tracing::Span::current()));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

type EventSender = mpsc::Sender<Result<pb::CallToolStreamResponse, Status>>;

impl Gateway {
    /// Calls; on a consent condition tells the caller where to go, waits on the user's
    /// connection (WatchConnection, no polling) until it is usable, and calls again.
    async fn call_until_consented(
        &self,
        admitted: &Admitted,
        tool: &str,
        arguments: serde_json::Map<String, serde_json::Value>,
        limit: Duration,
        tx: &EventSender,
    ) -> Result<pb::CallToolResponse, Status> {
        loop {
            let consent = match self
                .call_once(admitted, tool, arguments.clone(), limit)
                .await
            {
                Ok(result) => return Ok(result),
                Err(Attempt::Failed(status)) => return Err(status),
                Err(Attempt::Consent(consent)) => consent,
            };
            // watch first, so a consent finished right after the event is not missed
            let mut watch = self
                .shared
                .control_plane
                .watch_connection(&admitted.jwt, &consent.provider_name)
                .await?;
            let event = self.consent_event(admitted, &consent).await;
            let sent = tx
                .send(Ok(pb::CallToolStreamResponse {
                    event: Some(pb::call_tool_stream_response::Event::ConsentRequired(event)),
                }))
                .await;
            if sent.is_err() {
                return Err(Status::cancelled("the caller went away"));
            }
            // the current card first; a stale CONNECTED (scope upgrade, expiry) is not news
            let mut first = true;
            let connected = loop {
                // a caller that hangs up stops the wait, not just the next send
                let next = tokio::select! {
                    () = tx.closed() => return Err(Status::cancelled("the caller went away")),
                    next = watch.message() => next,
                };
                let Some(update) = next? else {
                    return Err(ApiError::unavailable(
                        "the control plane closed the connection watch",
                    )
                    .into());
                };
                let Some(card) = update.connection else {
                    continue;
                };
                let usable = card.status == pb::ConnectionStatus::Connected as i32;
                if usable && !(first && consent.reason != Reason::OauthConnectionRequired.as_str())
                {
                    break card;
                }
                first = false;
            };
            let _ = tx
                .send(Ok(pb::CallToolStreamResponse {
                    event: Some(pb::call_tool_stream_response::Event::Connected(connected)),
                }))
                .await;
        }
    }

    async fn consent_event(
        &self,
        admitted: &Admitted,
        consent: &ConsentRequired,
    ) -> pb::ConsentRequiredEvent {
        let device_only = {
            let table = self.shared.feed.table.borrow();
            table
                .providers
                .get(&consent.provider_name)
                .is_some_and(|p| {
                    p.grant_types.contains(&(pb::GrantType::DeviceCode as i32))
                        && !p
                            .grant_types
                            .contains(&(pb::GrantType::BrowserConsent as i32))
                })
        };
        let mut event = pb::ConsentRequiredEvent {
            reason: consent.reason.clone(),
            provider_name: consent.provider_name.clone(),
            authorize_url: consent.authorize_url.clone(),
            missing_scopes: consent.missing_scopes.clone(),
            device_code: None,
            message: consent.message.clone(),
        };
        if device_only
            && let Ok(started) = self
                .shared
                .control_plane
                .connect(&admitted.jwt, &consent.provider_name)
                .await
        {
            event.authorize_url = started.authorize_url;
            event.device_code = started.device_code;
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gateway's answers follow each error's own class; they used to fall into
    /// INVALID_ARGUMENT for a refused origin, a body too large or a credential failure.
    #[test]
    fn gateway_statuses_follow_the_error_class() {
        let cases = [
            (
                ProxyError::OriginRefused("https://evil".into()),
                tonic::Code::PermissionDenied,
                "ORIGIN_NOT_ALLOWED",
            ),
            (
                ProxyError::TooLarge(10),
                tonic::Code::ResourceExhausted,
                "BODY_TOO_LARGE",
            ),
            (
                ProxyError::BodyTimeout(30),
                tonic::Code::DeadlineExceeded,
                "REQUEST_BODY_TIMEOUT",
            ),
            (
                ProxyError::UnknownSession,
                tonic::Code::NotFound,
                "SESSION_NOT_FOUND",
            ),
            (
                ProxyError::Credential {
                    code: Code::ResourceExhausted,
                    reason: String::new(),
                    message: "slow down".into(),
                },
                tonic::Code::ResourceExhausted,
                "CREDENTIAL_UNAVAILABLE",
            ),
            (
                ProxyError::UpstreamTimeout(3),
                tonic::Code::DeadlineExceeded,
                "UPSTREAM_TIMEOUT",
            ),
        ];
        for (error, code, reason) in cases {
            let status = error.into_status();
            assert_eq!(status.code(), code, "{status:?}");
            let info = tonic_types::StatusExt::get_details_error_info(&status).expect("ErrorInfo");
            assert_eq!(info.reason, reason);
        }
    }

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("30S"), Some(Duration::from_secs(30)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout("9n"), Some(Duration::from_nanos(9)));
    }

    #[test]
    fn the_largest_grpc_timeout_does_not_overflow() {
        assert_eq!(
            parse_grpc_timeout("99999999H"),
            Some(Duration::from_secs(99_999_999 * 3600))
        );
        assert_eq!(
            parse_grpc_timeout("99999999M"),
            Some(Duration::from_secs(99_999_999 * 60))
        );
    }

    #[test]
    fn overflowing_and_malformed_grpc_timeouts_are_ignored() {
        for text in [
            // more than 8 digits, up to what would overflow u64 seconds × 3600
            "123456789S",
            "18446744073709551615H",
            "99999999999999999999999H",
            "",
            "S",
            "10",
            "10s",
            "10X",
            "+10S",
            "-1S",
            " 1S",
            "1.5S",
            "1é",
            "é",
        ] {
            assert_eq!(parse_grpc_timeout(text), None, "{text:?}");
        }
    }
}
