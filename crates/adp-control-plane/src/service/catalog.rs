use adp_api::v1 as pb;
use adp_api::v1::managed_catalog_service_server::ManagedCatalogService;
use adp_core::catalog::CATALOG;
use tonic::Request;

use super::RpcResult;
use crate::state::SharedState;

#[derive(Debug)]
pub struct CatalogService {
    pub state: SharedState,
}

#[tonic::async_trait]
impl ManagedCatalogService for CatalogService {
    async fn list_managed_types(
        &self,
        request: Request<pb::ListManagedTypesRequest>,
    ) -> RpcResult<pb::ListManagedTypesResponse> {
        self.state.auth.authenticate(&request).await?;
        let managed_types = CATALOG.iter().map(pb::ManagedTypeInfo::from).collect();
        Ok(tonic::Response::new(pb::ListManagedTypesResponse {
            managed_types,
        }))
    }
}
