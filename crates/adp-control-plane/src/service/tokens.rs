use adp_api::v1 as pb;
use adp_api::v1::token_service_server::TokenService;
use adp_core::resource::timestamp;
use secrecy::ExposeSecret;
use tonic::{Request, Response};

use super::RpcResult;
use crate::state::SharedState;

#[derive(Debug)]
pub struct TokenApi {
    pub state: SharedState,
}

#[tonic::async_trait]
impl TokenService for TokenApi {
    async fn get_upstream_credential(
        &self,
        request: Request<pb::GetUpstreamCredentialRequest>,
    ) -> RpcResult<pb::GetUpstreamCredentialResponse> {
        // the proxy proves itself first, so an end-user alone learns nothing here
        self.state.auth.authenticate_proxy(&request).await?;
        let user = self.state.auth.authenticate(&request).await?;
        let request = request.into_inner();
        self.state.validator.validate(&request)?;
        let credential = self
            .state
            .credentials
            .credential(&user, &request.server_name)
            .await?;
        Ok(Response::new(pb::GetUpstreamCredentialResponse {
            header_name: credential.header_name,
            header_value: credential.value.expose_secret().to_owned(),
            expire_time: credential.expire_time.map(timestamp),
        }))
    }
}
