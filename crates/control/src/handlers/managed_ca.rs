//! `/api/v1/managed-ca`: the account's own CA, its client certificates and
//! their revocation.

use super::{items, now, object, AccountQ, PageQ, S};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{P, Q};
use crate::json::{JsonOrEmpty, StrictJson};
use crate::managed;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pki::revocation::{RevocationReason, RevokedEntry};
use serde::Deserialize;
use serde_json::{json, Value};
use store::{AccountId, Scope};

async fn ca_and_key(
    st: &crate::AppState,
    account: AccountId,
) -> ApiResult<(String, store::Secret)> {
    let ca = st.store.get_managed_ca(account).await?;
    let key = st.store.managed_ca_key(account).await?;
    Ok((ca.cert_pem, key))
}

fn key_text(k: &store::Secret) -> ApiResult<&str> {
    std::str::from_utf8(k.expose()).map_err(ApiError::internal)
}

/// `GET /api/v1/managed-ca`: the CA certificate and its current CRL.
pub async fn get(State(st): S, caller: Caller, Q(q): Q<AccountQ>) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let account = caller.account(q.account_id)?;
    let m = st.store.get_managed_ca(account).await?;
    Ok(Json(json!({
        "account_id": m.account_id,
        "certificate": m.cert_pem,
        "crl": m.crl_pem,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
    })))
}

/// `GET /api/v1/managed-ca/certificates`.
pub async fn list(State(st): S, caller: Caller, Q(q): Q<PageQ>) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let account = caller.account(q.account_id)?;
    Ok(items(st.store.list_issued_certs(account, q.page()).await?))
}

/// Body of `POST /api/v1/managed-ca/certificates`: `csr`, or
/// `common_name` (and `hosts`) for a key made here.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Issue {
    #[serde(default)]
    csr: Option<String>,
    #[serde(default)]
    common_name: Option<String>,
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    validity_hours: Option<u32>,
    #[serde(default)]
    account_id: Option<AccountId>,
}

fn unix(rfc3339: &str) -> i64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .unwrap_or(0)
}

/// `POST /api/v1/managed-ca/certificates`: issue a client certificate.
/// With a key made here, the key (PEM and PKCS#12) is in this answer only.
pub async fn issue(
    State(st): S,
    caller: Caller,
    StrictJson(b): StrictJson<Issue>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(Scope::Write)?;
    let account = caller.account(b.account_id)?;
    let (cert, key) = ca_and_key(&st, account).await?;
    let key = key_text(&key)?;
    let (cert_facts, extra) = match (b.csr, b.common_name) {
        (Some(csr), None) => {
            if !b.hosts.is_empty() {
                return Err(ApiError::invalid(
                    "invalid_request",
                    "hosts goes with common_name; a CSR carries its own names",
                ));
            }
            (
                managed::issue_from_csr(&cert, key, &csr, b.validity_hours, now())?,
                None,
            )
        }
        (None, Some(cn)) => {
            let w = managed::issue_with_key(&cert, key, &cn, &b.hosts, b.validity_hours, now())?;
            let extra = json!({
                "private_key": w.private_key,
                "pkcs12": w.pkcs12,
                "pkcs12_password": w.pkcs12_password,
            });
            (w.cert.clone(), Some(extra))
        }
        _ => {
            return Err(ApiError::invalid(
                "invalid_request",
                "give exactly one of csr or common_name",
            ))
        }
    };
    let rec = st
        .store
        .record_issued_cert(
            &caller.actor(),
            account,
            store::NewIssuedCert {
                serial: cert_facts.serial.clone(),
                fingerprint: cert_facts.fingerprint_sha256.clone(),
                subject: cert_facts.subject.clone(),
                not_before: unix(&cert_facts.not_before),
                not_after: unix(&cert_facts.not_after),
                pem: cert_facts.certificate.clone(),
            },
        )
        .await?;
    let mut out = object(&rec)?;
    out.insert("sans".into(), json!(cert_facts.sans));
    out.insert("ca_certificate".into(), Value::from(cert));
    if let Some(Value::Object(e)) = extra {
        out.extend(e);
    }
    Ok((StatusCode::CREATED, Json(Value::Object(out))))
}

/// `GET /api/v1/managed-ca/certificates/{serial}` (serial in hex).
pub async fn get_cert(
    State(st): S,
    caller: Caller,
    P(serial): P<String>,
    Q(q): Q<AccountQ>,
) -> ApiResult<Json<store::IssuedCert>> {
    caller.require(Scope::Read)?;
    let account = caller.account(q.account_id)?;
    Ok(Json(st.store.get_issued_cert(account, &serial).await?))
}

/// Body of `POST …/revoke` (may be empty).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoke {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    account_id: Option<AccountId>,
}

/// `POST /api/v1/managed-ca/certificates/{serial}/revoke`: revoke and
/// publish a new CRL for the managed CA (the gateways follow it).
pub async fn revoke(
    State(st): S,
    caller: Caller,
    P(serial): P<String>,
    JsonOrEmpty(b): JsonOrEmpty<Revoke>,
) -> ApiResult<Json<store::IssuedCert>> {
    caller.require(Scope::Write)?;
    let account = caller.account(b.account_id)?;
    let reason = match &b.reason {
        None => RevocationReason::Unspecified,
        Some(r) => r.parse::<RevocationReason>().map_err(|_| {
            ApiError::invalid(
                "invalid_reason",
                format!("unknown revocation reason {r:?} (e.g. keycompromise, superseded, cessationofoperation)"),
            )
        })?,
    };
    let cur = st.store.get_issued_cert(account, &serial).await?;
    if cur.revoked_at.is_some() {
        return Ok(Json(cur));
    }
    let t = now();
    let mut entries = managed::revoked_entries(st.store.as_ref(), account).await?;
    entries.push(RevokedEntry {
        serial: hex::decode(&cur.serial).map_err(ApiError::internal)?,
        revoked_at: t,
        reason,
    });
    let (cert, key) = ca_and_key(&st, account).await?;
    let crl = managed::crl(&cert, key_text(&key)?, &entries, managed::crl_number(t), t)?;
    let rec = st
        .store
        .revoke_issued_cert(
            &caller.actor(),
            account,
            &cur.serial,
            reason.as_str(),
            Some(crl),
        )
        .await?;
    Ok(Json(rec))
}
