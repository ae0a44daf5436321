//! `/api/v1/accounts` and their tokens.

use super::{items, now, object, PageQ, S};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{P, Q};
use crate::json::StrictJson;
use crate::managed;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use store::{AccountId, Scope, TokenId};

/// Most CAs an operator may allow one account.
pub const MAX_CA_LIMIT: u32 = 1000;

/// `Some(None)` for an explicit `null`, `None` when absent.
pub fn double_option<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn check_name(what: &str, name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "invalid_name",
            format!("{what} must be 1 to 100 printable characters"),
        ));
    }
    Ok(())
}

fn check_limit(limit: Option<u32>) -> Result<(), ApiError> {
    match limit {
        Some(n) if n > MAX_CA_LIMIT => Err(ApiError::invalid(
            "invalid_ca_limit",
            format!("ca_limit is at most {MAX_CA_LIMIT}"),
        )),
        _ => Ok(()),
    }
}

/// Body of `POST /api/v1/accounts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    name: String,
    #[serde(default)]
    ca_limit: Option<u32>,
}

/// `POST /api/v1/accounts` (operator): the account and its managed CA.
pub async fn create(
    State(st): S,
    caller: Caller,
    StrictJson(b): StrictJson<CreateAccount>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require_admin()?;
    check_name("name", &b.name)?;
    check_limit(b.ca_limit)?;
    let ca = managed::new_ca(&b.name, now())?;
    let actor = caller.actor();
    let key = store::Secret::from(ca.key_pem.as_str());
    // One transaction: a crash never leaves an account without its CA.
    let (account, m) = st
        .store
        .create_account_with_managed_ca(
            &actor,
            store::NewAccount {
                name: b.name,
                ca_limit: b.ca_limit,
            },
            ca.cert_pem.clone(),
            key,
        )
        .await?;
    let mut out = object(&account)?;
    out.insert("managed_ca_certificate".into(), Value::from(m.cert_pem));
    Ok((StatusCode::CREATED, Json(Value::Object(out))))
}

/// `GET /api/v1/accounts`: every account (operator), or the caller's own.
pub async fn list(State(st): S, caller: Caller, Q(q): Q<PageQ>) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    match caller.token.account_id {
        Some(own) => {
            caller.account(q.account_id)?;
            Ok(items(vec![st.store.get_account(own).await?]))
        }
        None => Ok(items(st.store.list_accounts(q.page()).await?)),
    }
}

/// `GET /api/v1/accounts/{account_id}`.
pub async fn get(State(st): S, caller: Caller, P(id): P<AccountId>) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let id = caller.account(Some(id))?;
    let account = st.store.get_account(id).await?;
    let mut out = object(&account)?;
    out.insert(
        "effective_ca_limit".into(),
        Value::from(account.ca_limit.unwrap_or(st.default_ca_limit)),
    );
    Ok(Json(Value::Object(out)))
}

/// Body of `PATCH /api/v1/accounts/{account_id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccount {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    ca_limit: Option<Option<u32>>,
}

/// `PATCH /api/v1/accounts/{account_id}` (operator: the limit is not the
/// tenant's to raise).
pub async fn update(
    State(st): S,
    caller: Caller,
    P(id): P<AccountId>,
    StrictJson(b): StrictJson<UpdateAccount>,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    if let Some(n) = &b.name {
        check_name("name", n)?;
    }
    if let Some(l) = b.ca_limit {
        check_limit(l)?;
    }
    let a = st
        .store
        .update_account(
            &caller.actor(),
            id,
            store::AccountUpdate {
                name: b.name,
                ca_limit: b.ca_limit,
            },
        )
        .await?;
    Ok(Json(Value::Object(object(&a)?)))
}

/// `DELETE /api/v1/accounts/{account_id}` (operator): the account and
/// everything it owns.
pub async fn delete(State(st): S, caller: Caller, P(id): P<AccountId>) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    st.store.delete_account(&caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/accounts/{account_id}/tokens`: the account's tokens
/// (never their secrets).
pub async fn list_tokens(
    State(st): S,
    caller: Caller,
    P(id): P<AccountId>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let id = caller.account(Some(id))?;
    st.store.get_account(id).await?;
    Ok(items(st.store.list_tokens(Some(id)).await?))
}

/// Body of `POST /api/v1/accounts/{account_id}/tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    name: String,
    scopes: Vec<String>,
    #[serde(default)]
    expires_at: Option<i64>,
}

/// `POST /api/v1/accounts/{account_id}/tokens`: a token for the account
/// (`read` and/or `write`), its secret shown in this answer only. An
/// account token can only hand out scopes it has itself.
pub async fn create_token(
    State(st): S,
    caller: Caller,
    P(id): P<AccountId>,
    StrictJson(b): StrictJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(Scope::Write)?;
    let id = caller.account(Some(id))?;
    check_name("name", &b.name)?;
    let mut scopes = Vec::new();
    for s in &b.scopes {
        let scope = match Scope::parse(s) {
            Some(Scope::Admin) => {
                return Err(ApiError::invalid(
                    "invalid_scope",
                    "an account token cannot have the admin scope",
                ))
            }
            Some(sc) => sc,
            None => {
                return Err(ApiError::invalid(
                    "invalid_scope",
                    format!("unknown scope {s:?} (read, write)"),
                ))
            }
        };
        if !caller.token.has(scope) {
            return Err(ApiError::forbidden(format!(
                "this token cannot grant the {s:?} scope it does not have"
            )));
        }
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if scopes.is_empty() {
        return Err(ApiError::invalid(
            "invalid_scope",
            "scopes must name at least one of read, write",
        ));
    }
    scopes.sort();
    if let Some(t) = b.expires_at {
        if t <= now().unix_timestamp() {
            return Err(ApiError::invalid(
                "invalid_expiry",
                "expires_at is in the past",
            ));
        }
    }
    let (token, secret) = st
        .store
        .create_token(
            &caller.actor(),
            store::NewToken {
                account_id: Some(id),
                name: b.name,
                scopes,
                expires_at: b.expires_at,
                secret: None,
            },
        )
        .await?;
    let mut out = object(&token)?;
    out.insert("token".into(), Value::from(secret.expose()));
    Ok((StatusCode::CREATED, Json(Value::Object(out))))
}

/// `DELETE /api/v1/accounts/{account_id}/tokens/{token_id}`.
pub async fn delete_token(
    State(st): S,
    caller: Caller,
    P((id, token_id)): P<(AccountId, TokenId)>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::Write)?;
    let id = caller.account(Some(id))?;
    st.store
        .delete_token(&caller.actor(), Some(id), token_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/tokens`: the operator tokens (operator).
pub async fn list_operator_tokens(State(st): S, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    Ok(items(st.store.list_tokens(None).await?))
}

/// Body of `POST /api/v1/tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOperatorToken {
    name: String,
    #[serde(default)]
    expires_at: Option<i64>,
}

/// `POST /api/v1/tokens`: another operator token (scope `admin`), its
/// secret in this answer only (to rotate the bootstrap token).
pub async fn create_operator_token(
    State(st): S,
    caller: Caller,
    StrictJson(b): StrictJson<CreateOperatorToken>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require_admin()?;
    check_name("name", &b.name)?;
    if b.expires_at.is_some_and(|t| t <= now().unix_timestamp()) {
        return Err(ApiError::invalid(
            "invalid_expiry",
            "expires_at is in the past",
        ));
    }
    let (token, secret) = st
        .store
        .create_token(
            &caller.actor(),
            store::NewToken {
                account_id: None,
                name: b.name,
                scopes: vec![Scope::Admin],
                expires_at: b.expires_at,
                secret: None,
            },
        )
        .await?;
    let mut out = object(&token)?;
    out.insert("token".into(), Value::from(secret.expose()));
    Ok((StatusCode::CREATED, Json(Value::Object(out))))
}

/// `DELETE /api/v1/tokens/{token_id}`: an operator token (never the last
/// one: that would lock every operator out).
pub async fn delete_operator_token(
    State(st): S,
    caller: Caller,
    P(id): P<TokenId>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let ops = st.store.list_tokens(None).await?;
    if !ops.iter().any(|t| t.id == id) {
        return Err(ApiError::not_found("token"));
    }
    if ops.len() <= 1 {
        return Err(ApiError::conflict(
            "last_operator_token",
            "this is the last operator token; create another one first",
        ));
    }
    st.store.delete_token(&caller.actor(), None, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
