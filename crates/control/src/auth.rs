//! Who is calling: the bearer-token extractor. A handler that takes a
//! [`Caller`] cannot run for an unauthenticated request.
//!
//! Tokens are either operator tokens (no account, scope `admin`: every
//! account) or bound to one account (scopes `read`, `write`). An account
//! token can never name another account: whatever it asks for of another
//! account is answered 404, exactly as if it did not exist.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use store::{AccountId, Actor, ApiToken, Scope};

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token it presented.
    pub token: ApiToken,
}

impl Caller {
    /// Who to write into the audit log.
    pub fn actor(&self) -> Actor {
        self.token.actor()
    }

    /// An operator token (every account).
    pub fn is_admin(&self) -> bool {
        self.token.account_id.is_none() && self.token.has(Scope::Admin)
    }

    /// Refuses (403) unless the token carries `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.token.has(scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this token lacks the {:?} scope",
                scope.as_str()
            )))
        }
    }

    /// Refuses (403) unless this is an operator token.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("this needs an operator (admin) token"))
        }
    }

    /// The account a request acts on: an account token's own account (it
    /// may repeat it; any other is "not found"), or for an operator token
    /// the one it names (required).
    pub fn account(&self, requested: Option<AccountId>) -> Result<AccountId, ApiError> {
        match (self.token.account_id, requested) {
            (Some(own), None) => Ok(own),
            (Some(own), Some(r)) if r == own => Ok(own),
            (Some(_), Some(_)) => Err(ApiError::not_found("account")),
            (None, Some(r)) => Ok(r),
            (None, None) => Err(ApiError::bad_request(
                "account_required",
                "an operator token must name the account (account_id)",
            )),
        }
    }

    /// For listings: the account to filter on, `None` meaning every
    /// account (operator tokens only).
    pub fn account_filter(
        &self,
        requested: Option<AccountId>,
    ) -> Result<Option<AccountId>, ApiError> {
        match self.token.account_id {
            Some(_) => self.account(requested).map(Some),
            None => Ok(requested),
        }
    }

    /// Whether this caller may see an object owned by `owner`.
    pub fn may_see(&self, owner: AccountId) -> bool {
        match self.token.account_id {
            Some(own) => own == owner,
            None => self.is_admin(),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthenticated("missing Authorization: Bearer <token>"))?;
        let value = header
            .to_str()
            .map_err(|_| ApiError::unauthenticated("the Authorization header is not text"))?;
        let secret = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::unauthenticated("expected Authorization: Bearer <token>"))?;
        if secret.len() > 256 {
            return Err(ApiError::unauthenticated("invalid or expired token"));
        }
        match state.store.authenticate(secret).await {
            Ok(Some(token)) => {
                tracing::Span::current().record("token", token.id);
                Ok(Caller { token })
            }
            Ok(None) => Err(ApiError::unauthenticated("invalid or expired token")),
            Err(e) => Err(crate::error::from_store(e)),
        }
    }
}
