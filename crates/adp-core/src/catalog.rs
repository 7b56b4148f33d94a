//! The managed MCP catalog: which types ADP can run and what each supports.

use adp_api::v1 as pb;

/// One managed MCP server type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CatalogEntry {
    pub managed_type: pb::ManagedType,
    pub display_name: &'static str,
    pub description: &'static str,
    pub supports_user_oauth: bool,
    pub default_scopes: &'static [&'static str],
}

/// Every managed type, in display order. The proto rule
/// `managed_mcp.user_oauth_unsupported` must list exactly the entries that do not
/// support user-delegated OAuth; a test in `validation` keeps the two in step.
pub const CATALOG: &[CatalogEntry] = &[
    CatalogEntry {
        managed_type: pb::ManagedType::Slack,
        display_name: "Slack",
        description: "Search messages, read channels and post on behalf of the user",
        supports_user_oauth: true,
        default_scopes: &["channels:read", "chat:write", "search:read"],
    },
    CatalogEntry {
        managed_type: pb::ManagedType::Jira,
        display_name: "Jira",
        description: "Search, read and update Jira issues as the user",
        supports_user_oauth: true,
        default_scopes: &["read:jira-work", "write:jira-work", "offline_access"],
    },
    CatalogEntry {
        managed_type: pb::ManagedType::Google,
        display_name: "Google Workspace",
        description: "Drive, Calendar and Gmail with the user's Google account",
        supports_user_oauth: true,
        default_scopes: &[
            "openid",
            "email",
            "https://www.googleapis.com/auth/drive.readonly",
        ],
    },
    CatalogEntry {
        managed_type: pb::ManagedType::Sql,
        display_name: "SQL database",
        description: "Query a SQL database with a shared service credential",
        supports_user_oauth: false,
        default_scopes: &[],
    },
];

pub fn entry(managed_type: pb::ManagedType) -> Option<&'static CatalogEntry> {
    CATALOG
        .iter()
        .find(|entry| entry.managed_type == managed_type)
}

impl From<&CatalogEntry> for pb::ManagedTypeInfo {
    fn from(entry: &CatalogEntry) -> Self {
        pb::ManagedTypeInfo {
            r#type: entry.managed_type as i32,
            display_name: entry.display_name.to_owned(),
            description: entry.description.to_owned(),
            supports_user_oauth: entry.supports_user_oauth,
            default_scopes: entry
                .default_scopes
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }
}
