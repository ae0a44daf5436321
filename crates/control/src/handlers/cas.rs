//! `/api/v1/cas`: uploaded CAs (trust anchors) of an account.

use super::{items, now, object, AccountQ, S};
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
use store::{CaId, Scope};

/// The store's CA with the facts of each certificate in its bundle.
fn show(ca: &store::Ca) -> ApiResult<Value> {
    let mut out = object(ca)?;
    // Stored bundles were validated on upload; an expired one still shows.
    let facts = validate::ca_bundle(&ca.pem, time::OffsetDateTime::UNIX_EPOCH)
        .map(|b| b.certs)
        .unwrap_or_default();
    out.insert(
        "certificates".into(),
        serde_json::to_value(facts).map_err(ApiError::internal)?,
    );
    Ok(Value::Object(out))
}

/// `GET /api/v1/cas`.
pub async fn list(State(st): S, caller: Caller, Q(q): Q<AccountQ>) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let account = caller.account(q.account_id)?;
    let cas = st.store.list_cas(account).await?;
    Ok(items(cas.iter().map(show).collect::<ApiResult<Vec<_>>>()?))
}

/// Body of `POST /api/v1/cas`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCa {
    name: String,
    /// PEM: one or more CA certificates.
    certificates: String,
    #[serde(default)]
    crl: Option<String>,
    #[serde(default)]
    account_id: Option<i64>,
}

/// `POST /api/v1/cas`: upload a CA (a root, intermediates, or both).
pub async fn create(
    State(st): S,
    caller: Caller,
    StrictJson(b): StrictJson<CreateCa>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(Scope::Write)?;
    let account = caller.account(b.account_id)?;
    if b.name.trim().is_empty() || b.name.len() > 100 || b.name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "invalid_name",
            "name must be 1 to 100 printable characters",
        ));
    }
    let bundle = validate::ca_bundle(&b.certificates, now())?;
    let crl = match &b.crl {
        Some(c) => Some(validate::crl(c, &bundle.ders)?.pem),
        None => None,
    };
    let new = store::NewCa {
        name: b.name,
        subject: bundle
            .certs
            .first()
            .map(|c| c.subject.clone())
            .unwrap_or_default(),
        not_after: bundle.not_after(),
        pem: bundle.pem,
        crl_pem: crl,
    };
    let ca = st.store.create_ca(&caller.actor(), account, new).await?;
    Ok((StatusCode::CREATED, Json(show(&ca)?)))
}

/// `GET /api/v1/cas/{ca_id}`.
pub async fn get(
    State(st): S,
    caller: Caller,
    P(id): P<CaId>,
    Q(q): Q<AccountQ>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let account = caller.account(q.account_id)?;
    Ok(Json(show(&st.store.get_ca(account, id).await?)?))
}

/// `?cascade=true` of `DELETE /api/v1/cas/{ca_id}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQ {
    account_id: Option<i64>,
    #[serde(default)]
    cascade: bool,
}

/// `DELETE /api/v1/cas/{ca_id}`: refused (409 `in_use`) while a hostname
/// trusts it, unless `?cascade=true` (which removes the associations).
pub async fn delete(
    State(st): S,
    caller: Caller,
    P(id): P<CaId>,
    Q(q): Q<DeleteQ>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::Write)?;
    let account = caller.account(q.account_id)?;
    st.store
        .delete_ca(&caller.actor(), account, id, q.cascade)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `PUT /api/v1/cas/{ca_id}/crl`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutCrl {
    /// PEM `X509 CRL`, or base64 DER.
    crl: String,
}

/// `PUT /api/v1/cas/{ca_id}/crl`: the CA's CRL (replaces any previous).
pub async fn put_crl(
    State(st): S,
    caller: Caller,
    P(id): P<CaId>,
    Q(q): Q<AccountQ>,
    StrictJson(b): StrictJson<PutCrl>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Write)?;
    let account = caller.account(q.account_id)?;
    let ca = st.store.get_ca(account, id).await?;
    let ders: Vec<Vec<u8>> = pem::parse_many(&ca.pem)
        .map_err(ApiError::internal)?
        .into_iter()
        .map(pem::Pem::into_contents)
        .collect();
    let crl = validate::crl(&b.crl, &ders)?;
    let ca = st
        .store
        .set_ca_crl(&caller.actor(), account, id, Some(crl.pem.clone()))
        .await?;
    let mut out = match show(&ca)? {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    out.insert(
        "crl_info".into(),
        serde_json::json!({
            "revoked": crl.revoked,
            "this_update": crl.this_update,
            "next_update": crl.next_update,
        }),
    );
    Ok(Json(Value::Object(out)))
}

/// `DELETE /api/v1/cas/{ca_id}/crl`.
pub async fn delete_crl(
    State(st): S,
    caller: Caller,
    P(id): P<CaId>,
    Q(q): Q<AccountQ>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::Write)?;
    let account = caller.account(q.account_id)?;
    st.store
        .set_ca_crl(&caller.actor(), account, id, None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
