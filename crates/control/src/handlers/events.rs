//! `/api/v1/events` (verdicts recorded by `report`/`log`), their
//! per-minute counts, and `/api/v1/audit`.

use super::{items, S};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Q;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use store::{AccountId, Scope};

/// Query of `/api/v1/events` and `/api/v1/events/counts`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQ {
    /// Inclusive; Unix seconds or RFC 3339.
    from: Option<String>,
    /// Exclusive; Unix seconds or RFC 3339.
    to: Option<String>,
    hostname: Option<String>,
    verdict: Option<String>,
    limit: Option<u32>,
    account_id: Option<AccountId>,
}

fn time_param(name: &str, v: &Option<String>) -> ApiResult<Option<i64>> {
    let Some(s) = v else { return Ok(None) };
    if let Ok(n) = s.parse::<i64>() {
        return Ok(Some(n));
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| Some(t.unix_timestamp()))
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_query",
                format!("{name}: expected Unix seconds or an RFC 3339 time, got {s:?}"),
            )
        })
}

impl EventsQ {
    fn query(&self, caller: &Caller) -> ApiResult<store::EventQuery> {
        if let Some(v) = &self.verdict {
            if !matches!(v.as_str(), "none" | "valid" | "invalid") {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    "verdict is one of none, valid, invalid",
                ));
            }
        }
        if self.limit.is_some_and(|l| l == 0 || l > 1000) {
            return Err(ApiError::bad_request("invalid_query", "limit is 1 to 1000"));
        }
        Ok(store::EventQuery {
            account_id: caller.account_filter(self.account_id)?,
            hostname: self.hostname.clone(),
            verdict: self.verdict.clone(),
            from: time_param("from", &self.from)?,
            until: time_param("to", &self.to)?,
            limit: self.limit,
        })
    }
}

/// `GET /api/v1/events`: newest first.
pub async fn list(State(st): S, caller: Caller, Q(q): Q<EventsQ>) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let query = q.query(&caller)?;
    Ok(items(st.store.query_events(query).await?))
}

/// `GET /api/v1/events/counts`: per minute and verdict.
pub async fn counts(State(st): S, caller: Caller, Q(q): Q<EventsQ>) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let query = q.query(&caller)?;
    Ok(items(st.store.event_counts(query).await?))
}

/// Query of `/api/v1/audit`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQ {
    account_id: Option<AccountId>,
    before_id: Option<i64>,
    limit: Option<u32>,
}

/// `GET /api/v1/audit`: newest first; an account token sees its account's
/// entries only.
pub async fn audit(State(st): S, caller: Caller, Q(q): Q<AuditQ>) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let query = store::AuditQuery {
        account_id: caller.account_filter(q.account_id)?,
        before_id: q.before_id,
        limit: q.limit,
    };
    Ok(items(st.store.list_audit(query).await?))
}
