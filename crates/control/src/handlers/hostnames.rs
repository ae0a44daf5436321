//! `/api/v1/hostnames`: custom hostnames, their settings and the CAs they
//! trust (the association API).

use super::accounts::double_option;
use super::{items, now, AccountQ, PageQ, S};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{P, Q};
use crate::json::StrictJson;
use crate::{managed, validate};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use store::{AccountId, BlockSettings, CaId, HeaderSettings, Hostname, MtlsMode, Scope};

/// Finds a hostname the caller may see; anything else is 404.
async fn find(
    st: &crate::AppState,
    caller: &Caller,
    name: &str,
    requested: Option<AccountId>,
) -> ApiResult<Hostname> {
    let nf = || ApiError::not_found("hostname");
    if validate::hostname(name).is_err() {
        return Err(nf());
    }
    let h = st.store.find_hostname(name).await?.ok_or_else(nf)?;
    if !caller.may_see(h.account_id) || requested.is_some_and(|a| a != h.account_id) {
        return Err(nf());
    }
    Ok(h)
}

fn check_block(b: &BlockSettings) -> Result<(), ApiError> {
    if !(400..=599).contains(&b.status) {
        return Err(ApiError::invalid(
            "invalid_block",
            "block.status must be 400 to 599",
        ));
    }
    if b.content_type.trim().is_empty()
        || b.content_type.len() > 200
        || !b.content_type.bytes().all(|c| (0x20..0x7f).contains(&c))
    {
        return Err(ApiError::invalid(
            "invalid_block",
            "block.content_type must be printable ASCII, 1 to 200 characters",
        ));
    }
    if b.body.as_ref().is_some_and(|s| s.len() > 64 * 1024) {
        return Err(ApiError::invalid(
            "invalid_block",
            "block.body is at most 64 KiB",
        ));
    }
    Ok(())
}

fn check_headers(h: &HeaderSettings) -> Result<(), ApiError> {
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    };
    for (k, v) in h.rename.iter().chain(h.map.iter()) {
        if !token(k) {
            return Err(ApiError::invalid(
                "invalid_headers",
                format!("{k:?} is not a valid header name"),
            ));
        }
        if v.is_empty() || v.len() > 100 {
            return Err(ApiError::invalid(
                "invalid_headers",
                format!("the value for {k:?} must be 1 to 100 characters"),
            ));
        }
    }
    for v in h.rename.values() {
        if !token(v) {
            return Err(ApiError::invalid(
                "invalid_headers",
                format!("{v:?} is not a valid header name"),
            ));
        }
    }
    // The gateway's own rules: identity headers that exist, certificate
    // fields it knows, names it does not manage itself, one source per
    // name. What it would refuse never reaches it.
    gateway::identity::IdentityHeaders::from_settings("headers", &h.rename, &h.map)
        .map_err(|p| ApiError::invalid("invalid_headers", p.join("; ")))?;
    Ok(())
}

/// `report` and `enforce` need something to trust.
fn check_trust(mode: MtlsMode, ca_ids: &[CaId], managed: bool) -> Result<(), ApiError> {
    if mode != MtlsMode::Off && ca_ids.is_empty() && !managed {
        return Err(ApiError::invalid(
            "no_trusted_ca",
            format!(
                "mode {:?} needs at least one associated CA or trust_managed_ca",
                mode.as_str()
            ),
        ));
    }
    Ok(())
}

/// `GET /api/v1/hostnames`.
pub async fn list(State(st): S, caller: Caller, Q(q): Q<PageQ>) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let account = caller.account(q.account_id)?;
    Ok(items(st.store.list_hostnames(account, q.page()).await?))
}

/// Body of `POST /api/v1/hostnames`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateHostname {
    name: String,
    origin: String,
    #[serde(default)]
    certificate: Option<String>,
    #[serde(default)]
    private_key: Option<String>,
    #[serde(default)]
    mode: MtlsMode,
    #[serde(default)]
    block: Option<BlockSettings>,
    #[serde(default)]
    headers: Option<HeaderSettings>,
    #[serde(default)]
    ca_ids: Vec<CaId>,
    #[serde(default)]
    trust_managed_ca: bool,
    #[serde(default)]
    origin_pull_id: Option<i64>,
    #[serde(default)]
    account_id: Option<AccountId>,
}

/// The certificate and key of a hostname: both given (checked), or
/// neither (issued by the account's managed CA).
async fn server_cert(
    st: &crate::AppState,
    account: AccountId,
    name: &str,
    cert: Option<String>,
    key: Option<String>,
) -> ApiResult<(String, store::Secret)> {
    match (cert, key) {
        (Some(c), Some(k)) => {
            validate::cert_and_key("certificate", &c, &k, Some(name), now())?;
            Ok((c, store::Secret::from(k)))
        }
        (None, None) => {
            let ca = st.store.get_managed_ca(account).await?;
            let key = st.store.managed_ca_key(account).await?;
            let key = std::str::from_utf8(key.expose()).map_err(ApiError::internal)?;
            let (c, k) = managed::issue_server(&ca.cert_pem, key, name, now())?;
            Ok((c, store::Secret::from(k.as_str())))
        }
        _ => Err(ApiError::invalid(
            "invalid_certificate",
            "give certificate and private_key together, or neither (one is issued by the account's managed CA)",
        )),
    }
}

/// `POST /api/v1/hostnames`.
pub async fn create(
    State(st): S,
    caller: Caller,
    StrictJson(b): StrictJson<CreateHostname>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(Scope::Write)?;
    let account = caller.account(b.account_id)?;
    validate::hostname(&b.name)?;
    validate::origin(&b.origin)?;
    let block = b.block.unwrap_or_default();
    check_block(&block)?;
    let headers = b.headers.unwrap_or_default();
    check_headers(&headers)?;
    check_trust(b.mode, &b.ca_ids, b.trust_managed_ca)?;
    // Refused before a certificate is issued for a name that is taken.
    if st.store.find_hostname(&b.name).await?.is_some() {
        return Err(ApiError::conflict(
            "hostname_taken",
            format!("hostname {:?} already exists", b.name),
        ));
    }
    for id in &b.ca_ids {
        st.store.get_ca(account, *id).await?;
    }
    let (cert_pem, key_pem) =
        server_cert(&st, account, &b.name, b.certificate, b.private_key).await?;
    let h = st
        .store
        .create_hostname(
            &caller.actor(),
            account,
            store::NewHostname {
                name: b.name,
                cert_pem,
                key_pem,
                origin: b.origin,
                mode: b.mode,
                block,
                headers,
                ca_ids: b.ca_ids,
                trust_managed_ca: b.trust_managed_ca,
                origin_pull_id: b.origin_pull_id,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::to_value(h).map_err(ApiError::internal)?),
    ))
}

/// `GET /api/v1/hostnames/{name}`.
pub async fn get(
    State(st): S,
    caller: Caller,
    P(name): P<String>,
    Q(q): Q<AccountQ>,
) -> ApiResult<Json<Hostname>> {
    caller.require(Scope::Read)?;
    Ok(Json(find(&st, &caller, &name, q.account_id).await?))
}

/// Body of `PATCH /api/v1/hostnames/{name}`: every field optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateHostname {
    #[serde(default)]
    origin: Option<String>,
    #[serde(default)]
    certificate: Option<String>,
    #[serde(default)]
    private_key: Option<String>,
    #[serde(default)]
    mode: Option<MtlsMode>,
    #[serde(default)]
    block: Option<BlockSettings>,
    #[serde(default)]
    headers: Option<HeaderSettings>,
    #[serde(default)]
    ca_ids: Option<Vec<CaId>>,
    #[serde(default)]
    trust_managed_ca: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    origin_pull_id: Option<Option<i64>>,
}

async fn apply(
    st: &crate::AppState,
    caller: &Caller,
    h: &Hostname,
    up: store::HostnameUpdate,
) -> ApiResult<Hostname> {
    let mode = up.mode.unwrap_or(h.mode);
    let ca_ids = up.ca_ids.as_deref().unwrap_or(&h.ca_ids);
    let managed = up.trust_managed_ca.unwrap_or(h.trust_managed_ca);
    check_trust(mode, ca_ids, managed)?;
    for id in up.ca_ids.iter().flatten() {
        st.store.get_ca(h.account_id, *id).await?;
    }
    Ok(st
        .store
        .update_hostname(&caller.actor(), h.account_id, h.id, up)
        .await?)
}

/// `PATCH /api/v1/hostnames/{name}`.
pub async fn update(
    State(st): S,
    caller: Caller,
    P(name): P<String>,
    Q(q): Q<AccountQ>,
    StrictJson(b): StrictJson<UpdateHostname>,
) -> ApiResult<Json<Hostname>> {
    caller.require(Scope::Write)?;
    let h = find(&st, &caller, &name, q.account_id).await?;
    if let Some(o) = &b.origin {
        validate::origin(o)?;
    }
    if let Some(bl) = &b.block {
        check_block(bl)?;
    }
    if let Some(hd) = &b.headers {
        check_headers(hd)?;
    }
    let cert = match (b.certificate, b.private_key) {
        (None, None) => None,
        (Some(c), Some(k)) => {
            validate::cert_and_key("certificate", &c, &k, Some(&h.name), now())?;
            Some((c, store::Secret::from(k)))
        }
        _ => {
            return Err(ApiError::invalid(
                "invalid_certificate",
                "certificate and private_key are changed together",
            ))
        }
    };
    let up = store::HostnameUpdate {
        cert,
        origin: b.origin,
        mode: b.mode,
        block: b.block,
        headers: b.headers,
        edge: None,
        ca_ids: b.ca_ids,
        trust_managed_ca: b.trust_managed_ca,
        origin_pull_id: b.origin_pull_id,
    };
    Ok(Json(apply(&st, &caller, &h, up).await?))
}

/// `DELETE /api/v1/hostnames/{name}`.
pub async fn delete(
    State(st): S,
    caller: Caller,
    P(name): P<String>,
    Q(q): Q<AccountQ>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::Write)?;
    let h = find(&st, &caller, &name, q.account_id).await?;
    st.store
        .delete_hostname(&caller.actor(), h.account_id, h.id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/hostnames/{name}/cas`: the CAs the hostname trusts.
pub async fn list_cas(
    State(st): S,
    caller: Caller,
    P(name): P<String>,
    Q(q): Q<AccountQ>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let h = find(&st, &caller, &name, q.account_id).await?;
    let mut out = Vec::new();
    for id in &h.ca_ids {
        out.push(st.store.get_ca(h.account_id, *id).await?);
    }
    Ok(Json(serde_json::json!({
        "items": out,
        "trust_managed_ca": h.trust_managed_ca,
    })))
}

/// `PUT /api/v1/hostnames/{name}/cas/{ca_id}`: trust this CA (same
/// account) on the hostname.
pub async fn associate(
    State(st): S,
    caller: Caller,
    P((name, ca_id)): P<(String, CaId)>,
    Q(q): Q<AccountQ>,
) -> ApiResult<Json<Hostname>> {
    caller.require(Scope::Write)?;
    let h = find(&st, &caller, &name, q.account_id).await?;
    st.store.get_ca(h.account_id, ca_id).await?;
    let mut ids = h.ca_ids.clone();
    if !ids.contains(&ca_id) {
        ids.push(ca_id);
        ids.sort_unstable();
    }
    let up = store::HostnameUpdate {
        ca_ids: Some(ids),
        ..Default::default()
    };
    Ok(Json(apply(&st, &caller, &h, up).await?))
}

/// `DELETE /api/v1/hostnames/{name}/cas/{ca_id}`: stop trusting it.
/// Refused when a `report`/`enforce` hostname would trust nothing.
pub async fn dissociate(
    State(st): S,
    caller: Caller,
    P((name, ca_id)): P<(String, CaId)>,
    Q(q): Q<AccountQ>,
) -> ApiResult<Json<Hostname>> {
    caller.require(Scope::Write)?;
    let h = find(&st, &caller, &name, q.account_id).await?;
    if !h.ca_ids.contains(&ca_id) {
        return Err(ApiError::not_found("association"));
    }
    let ids: Vec<CaId> = h.ca_ids.iter().copied().filter(|i| *i != ca_id).collect();
    let up = store::HostnameUpdate {
        ca_ids: Some(ids),
        ..Default::default()
    };
    Ok(Json(apply(&st, &caller, &h, up).await?))
}

/// What `GET`/`PUT .../edge` show in place of a token secret.
const ELIDED: &str = "[secret elided]";

/// The stored edge document as the API shows it: the three lists always
/// present, token secrets replaced by [`ELIDED`], a Redis URL with
/// credentials elided.
fn shown_edge(doc: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for key in ["token", "rule", "rate_limit"] {
        let mut list = doc.get(key).cloned().unwrap_or(Value::Array(Vec::new()));
        for item in list.as_array_mut().into_iter().flatten() {
            if let Some(Value::Array(s)) = item.get_mut("secrets") {
                for v in s.iter_mut() {
                    *v = Value::from(ELIDED);
                }
            }
            if let Some(u) = item.get_mut("redis_url") {
                if u.as_str().is_some_and(|s| s.contains('@')) {
                    *u = Value::from(ELIDED);
                }
            }
        }
        out.insert(key.to_owned(), list);
    }
    Value::Object(out)
}

/// `GET /api/v1/hostnames/{name}/edge`: the hostname's tokens, rules and
/// rate limits (secrets elided).
pub async fn get_edge(
    State(st): S,
    caller: Caller,
    P(name): P<String>,
    Q(q): Q<AccountQ>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let h = find(&st, &caller, &name, q.account_id).await?;
    Ok(Json(shown_edge(&h.edge)))
}

/// `PUT /api/v1/hostnames/{name}/edge`: replaces the whole edge policy.
/// Checked by the gateway's own validation (rule expressions compiled);
/// nothing is stored when anything is wrong (422 `invalid_edge_policy`
/// listing every problem).
pub async fn put_edge(
    State(st): S,
    caller: Caller,
    P(name): P<String>,
    Q(q): Q<AccountQ>,
    StrictJson(doc): StrictJson<Value>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Write)?;
    let h = find(&st, &caller, &name, q.account_id).await?;
    let bad = |m: String| ApiError::invalid("invalid_edge_policy", m);
    if !doc.is_object() {
        return Err(bad("the edge policy is a JSON object".into()));
    }
    // A document read back from GET carries placeholders, not secrets.
    let tokens = doc.get("token").and_then(Value::as_array);
    for (i, t) in tokens.into_iter().flatten().enumerate() {
        let secrets = t.get("secrets").and_then(Value::as_array);
        if secrets
            .into_iter()
            .flatten()
            .any(|s| s.as_str() == Some(ELIDED))
        {
            return Err(bad(format!(
                "edge: token[{i}]: secrets must be the secrets themselves, not {ELIDED:?}"
            )));
        }
    }
    gateway::edge::config::from_json("edge", &h.name, &doc).map_err(|p| bad(p.join("; ")))?;
    let up = store::HostnameUpdate {
        edge: Some(doc),
        ..Default::default()
    };
    let h = st
        .store
        .update_hostname(&caller.actor(), h.account_id, h.id, up)
        .await?;
    Ok(Json(shown_edge(&h.edge)))
}
