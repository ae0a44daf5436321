//! `/api/v1/origin-pull-certificates`: client certificates the gateway
//! presents to `https://` origins.

use super::{items, now, AccountQ, S};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{P, Q};
use crate::json::StrictJson;
use crate::validate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use store::{AccountId, OriginPull, OriginPullId, Scope};

/// `GET /api/v1/origin-pull-certificates`.
pub async fn list(State(st): S, caller: Caller, Q(q): Q<AccountQ>) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let account = caller.account(q.account_id)?;
    Ok(items(st.store.list_origin_pulls(account).await?))
}

/// Body of `POST /api/v1/origin-pull-certificates`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Create {
    name: String,
    certificate: String,
    private_key: String,
    /// CAs the origin's server certificate must chain to.
    origin_ca: String,
    #[serde(default)]
    account_id: Option<AccountId>,
}

/// `POST /api/v1/origin-pull-certificates`.
pub async fn create(
    State(st): S,
    caller: Caller,
    StrictJson(b): StrictJson<Create>,
) -> ApiResult<(StatusCode, Json<OriginPull>)> {
    caller.require(Scope::Write)?;
    let account = caller.account(b.account_id)?;
    if b.name.trim().is_empty() || b.name.len() > 100 || b.name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "invalid_name",
            "name must be 1 to 100 printable characters",
        ));
    }
    validate::cert_and_key("certificate", &b.certificate, &b.private_key, None, now())?;
    validate::certs(&b.origin_ca)
        .map_err(|m| ApiError::invalid("invalid_origin_ca", format!("origin_ca: {m}")))?;
    let p = st
        .store
        .create_origin_pull(
            &caller.actor(),
            account,
            store::NewOriginPull {
                name: b.name,
                cert_pem: b.certificate,
                key_pem: store::Secret::from(b.private_key),
                origin_ca_pem: b.origin_ca,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(p)))
}

/// `GET /api/v1/origin-pull-certificates/{id}`.
pub async fn get(
    State(st): S,
    caller: Caller,
    P(id): P<OriginPullId>,
    Q(q): Q<AccountQ>,
) -> ApiResult<Json<OriginPull>> {
    caller.require(Scope::Read)?;
    let account = caller.account(q.account_id)?;
    Ok(Json(st.store.get_origin_pull(account, id).await?))
}

/// `DELETE /api/v1/origin-pull-certificates/{id}` (refused while a
/// hostname uses it).
pub async fn delete(
    State(st): S,
    caller: Caller,
    P(id): P<OriginPullId>,
    Q(q): Q<AccountQ>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::Write)?;
    let account = caller.account(q.account_id)?;
    st.store
        .delete_origin_pull(&caller.actor(), account, id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
