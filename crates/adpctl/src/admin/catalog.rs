//! `adpctl mcp catalog`: the managed server types this deployment offers.

use adp_api::v1 as pb;
use adp_api::v1::managed_catalog_service_client::ManagedCatalogServiceClient;
use tonic::transport::Channel;

use crate::output::{Column, Format, print, to_json};
use crate::{Failure, Target};

const CATALOG_COLUMNS: &[Column] = &[
    ("TYPE", "type"),
    ("DISPLAY NAME", "displayName"),
    ("USER OAUTH", "supportsUserOauth"),
    ("DEFAULT SCOPES", "defaultScopes"),
];

/// Prints the managed types the control plane on `channel` offers.
pub(super) async fn list(target: &Target, channel: Channel, format: Format) -> Result<(), Failure> {
    let response = ManagedCatalogServiceClient::new(channel)
        .list_managed_types(target.request(pb::ListManagedTypesRequest::default())?)
        .await?
        .into_inner();
    let items: Vec<_> = response.managed_types.iter().map(to_json).collect();
    Ok(print(format, &items, CATALOG_COLUMNS, false)?)
}
