//! MCP servers as the domain sees them, converted from and to `adp.v1.MCPServer`.

use adp_api::v1 as pb;
use adp_api::v1::mcp_server;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::resource::{Stored, timestamp};

pub const DEFAULT_TOKEN_HEADER: &str = "Authorization";
pub const DEFAULT_TOKEN_PREFIX: &str = "Bearer ";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    #[default]
    StreamableHttp,
    Sse,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManagedType {
    Slack,
    Jira,
    Google,
    Sql,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Source {
    Remote { url: String, transport: Transport },
    Managed { managed_type: ManagedType },
}

/// How the proxy presents a token upstream. Kept as the admin wrote it so a get
/// returns what was set; the effective values come from the accessors.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInjection {
    pub header_name: String,
    /// `None` means the default `Bearer ` prefix; `Some("")` sends the bare token.
    pub header_prefix: Option<String>,
}

impl TokenInjection {
    pub fn effective_header_name(&self) -> &str {
        if self.header_name.is_empty() {
            DEFAULT_TOKEN_HEADER
        } else {
            &self.header_name
        }
    }

    pub fn effective_prefix(&self) -> &str {
        self.header_prefix
            .as_deref()
            .unwrap_or(DEFAULT_TOKEN_PREFIX)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Auth {
    #[default]
    None,
    StaticKey {
        key_ref: String,
        header_name: String,
    },
    TokenPassthrough,
    ServiceAccountOAuth {
        provider_name: String,
        scopes: Vec<String>,
        token_injection: TokenInjection,
    },
    UserOAuth {
        provider_name: String,
        required_scopes: Vec<String>,
        token_injection: TokenInjection,
    },
}

impl Auth {
    /// The OAuth provider this auth mode binds the server to, if any.
    pub fn provider_name(&self) -> Option<&str> {
        match self {
            Auth::ServiceAccountOAuth { provider_name, .. }
            | Auth::UserOAuth { provider_name, .. } => Some(provider_name),
            _ => None,
        }
    }

    /// Scopes the server asks of the provider, with the field they came from.
    pub fn scopes(&self) -> Option<(&'static str, &[String])> {
        match self {
            Auth::ServiceAccountOAuth { scopes, .. } => {
                Some(("service_account_oauth.scopes", scopes))
            }
            Auth::UserOAuth {
                required_scopes, ..
            } => Some(("user_oauth.required_scopes", required_scopes)),
            _ => None,
        }
    }

    /// The proto field of the auth oneof, for error messages and field paths.
    pub fn field_name(&self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::StaticKey { .. } => "static_key",
            Auth::TokenPassthrough => "token_passthrough",
            Auth::ServiceAccountOAuth { .. } => "service_account_oauth",
            Auth::UserOAuth { .. } => "user_oauth",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpServer {
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub source: Source,
    pub auth: Auth,
}

impl TryFrom<pb::McpServer> for McpServer {
    type Error = ApiError;

    fn try_from(s: pb::McpServer) -> Result<Self, ApiError> {
        let source = match s.source {
            Some(mcp_server::Source::Remote(remote)) => Source::Remote {
                url: remote.url,
                transport: match pb::Transport::try_from(remote.transport) {
                    Ok(pb::Transport::Sse) => Transport::Sse,
                    _ => Transport::StreamableHttp,
                },
            },
            Some(mcp_server::Source::Managed(managed)) => Source::Managed {
                managed_type: match pb::ManagedType::try_from(managed.r#type) {
                    Ok(pb::ManagedType::Slack) => ManagedType::Slack,
                    Ok(pb::ManagedType::Jira) => ManagedType::Jira,
                    Ok(pb::ManagedType::Google) => ManagedType::Google,
                    Ok(pb::ManagedType::Sql) => ManagedType::Sql,
                    _ => {
                        return Err(ApiError::invalid_field(
                            "mcp_server.managed.type",
                            "enum.defined_only",
                            "unknown managed type",
                        ));
                    }
                },
            },
            None => {
                return Err(ApiError::invalid_field(
                    "mcp_server.source",
                    "required",
                    "remote or managed is required",
                ));
            }
        };
        let auth = match s.auth {
            None | Some(mcp_server::Auth::None(_)) => Auth::None,
            Some(mcp_server::Auth::StaticKey(k)) => Auth::StaticKey {
                key_ref: k.key_ref,
                header_name: k.header_name,
            },
            Some(mcp_server::Auth::TokenPassthrough(_)) => Auth::TokenPassthrough,
            Some(mcp_server::Auth::ServiceAccountOauth(sa)) => Auth::ServiceAccountOAuth {
                provider_name: sa.provider_name,
                scopes: sa.scopes,
                token_injection: sa.token_injection.map(Into::into).unwrap_or_default(),
            },
            Some(mcp_server::Auth::UserOauth(u)) => Auth::UserOAuth {
                provider_name: u.provider_name,
                required_scopes: u.required_scopes,
                token_injection: u.token_injection.map(Into::into).unwrap_or_default(),
            },
        };
        Ok(McpServer {
            name: s.name,
            description: s.description,
            enabled: s.enabled,
            source,
            auth,
        })
    }
}

impl From<pb::TokenInjection> for TokenInjection {
    fn from(t: pb::TokenInjection) -> Self {
        TokenInjection {
            header_name: t.header_name,
            header_prefix: t.header_prefix,
        }
    }
}

impl From<&TokenInjection> for pb::TokenInjection {
    fn from(t: &TokenInjection) -> Self {
        pb::TokenInjection {
            header_name: t.header_name.clone(),
            header_prefix: t.header_prefix.clone(),
        }
    }
}

impl From<ManagedType> for pb::ManagedType {
    fn from(t: ManagedType) -> Self {
        match t {
            ManagedType::Slack => pb::ManagedType::Slack,
            ManagedType::Jira => pb::ManagedType::Jira,
            ManagedType::Google => pb::ManagedType::Google,
            ManagedType::Sql => pb::ManagedType::Sql,
        }
    }
}

impl From<&McpServer> for pb::McpServer {
    fn from(s: &McpServer) -> Self {
        let source = match &s.source {
            Source::Remote { url, transport } => mcp_server::Source::Remote(pb::RemoteMcp {
                url: url.clone(),
                transport: match transport {
                    Transport::StreamableHttp => pb::Transport::StreamableHttp as i32,
                    Transport::Sse => pb::Transport::Sse as i32,
                },
            }),
            Source::Managed { managed_type } => mcp_server::Source::Managed(pb::ManagedMcp {
                r#type: pb::ManagedType::from(*managed_type) as i32,
            }),
        };
        let auth = match &s.auth {
            Auth::None => mcp_server::Auth::None(pb::NoAuth {}),
            Auth::StaticKey {
                key_ref,
                header_name,
            } => mcp_server::Auth::StaticKey(pb::StaticKeyAuth {
                key_ref: key_ref.clone(),
                header_name: header_name.clone(),
            }),
            Auth::TokenPassthrough => {
                mcp_server::Auth::TokenPassthrough(pb::TokenPassthroughAuth {})
            }
            Auth::ServiceAccountOAuth {
                provider_name,
                scopes,
                token_injection,
            } => mcp_server::Auth::ServiceAccountOauth(pb::ServiceAccountOAuthAuth {
                provider_name: provider_name.clone(),
                scopes: scopes.clone(),
                token_injection: Some(token_injection.into()),
            }),
            Auth::UserOAuth {
                provider_name,
                required_scopes,
                token_injection,
            } => mcp_server::Auth::UserOauth(pb::UserOAuthAuth {
                provider_name: provider_name.clone(),
                required_scopes: required_scopes.clone(),
                token_injection: Some(token_injection.into()),
            }),
        };
        pb::McpServer {
            name: s.name.clone(),
            description: s.description.clone(),
            enabled: s.enabled,
            source: Some(source),
            auth: Some(auth),
            create_time: None,
            update_time: None,
            etag: String::new(),
        }
    }
}

impl From<&Stored<McpServer>> for pb::McpServer {
    fn from(stored: &Stored<McpServer>) -> Self {
        let mut s = pb::McpServer::from(&stored.spec);
        s.create_time = Some(timestamp(stored.meta.create_time));
        s.update_time = Some(timestamp(stored.meta.update_time));
        s.etag = stored.meta.etag();
        s
    }
}
