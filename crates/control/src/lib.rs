//! # Portcullis control plane
//!
//! The multi-tenant management API under `/api/v1`: accounts and their
//! tokens, CAs, custom hostnames and their CA associations, the managed CA
//! of each account, origin-pull certificates, events and the audit log.
//! It is an axum [`Router`] over any [`store::Store`]; `portcullis serve`
//! mounts it on the admin listener. Every change goes through the store,
//! which records it in the audit log and bumps the configuration version
//! the gateways follow.
//!
//! Every request but `GET /api/v1/openapi.json` needs
//! `Authorization: Bearer <token>`; errors are
//! `{"error":{"code":"snake_case","message":"…"}}` with a 4xx status for
//! the caller's mistakes.
//!
//! ```no_run
//! # async fn f(store: std::sync::Arc<dyn store::Store>) {
//! let app = control::router(control::AppState::new(store));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod dashboard;
pub mod error;
mod extract;
mod handlers;
pub mod json;
pub mod managed;
pub mod validate;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;

pub use error::{ApiError, ApiResult};

/// Largest request body accepted (bigger gets 413).
pub const MAX_BODY: usize = 1024 * 1024;

/// The OpenAPI 3 document served at `/api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Arc<dyn store::Store>,
    /// CAs an account may upload unless its own limit says otherwise.
    pub default_ca_limit: u32,
}

impl AppState {
    /// State over a store, with the default CA limit (5).
    pub fn new(store: Arc<dyn store::Store>) -> Self {
        AppState {
            store,
            default_ca_limit: store::DEFAULT_CA_LIMIT,
        }
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("default_ca_limit", &self.default_ca_limit)
            .finish_non_exhaustive()
    }
}

/// Collects routes and remembers (method, path) of each, so the OpenAPI
/// test can compare the document with what is really routed.
struct Routes {
    router: Router<AppState>,
    list: Vec<(Method, &'static str)>,
}

impl Routes {
    fn add(mut self, method: Method, path: &'static str, mr: MethodRouter<AppState>) -> Self {
        self.list.push((method, path));
        self.router = self.router.route(path, mr);
        self
    }
}

macro_rules! route {
    ($r:expr, $m:ident $path:literal => $h:expr) => {
        $r.add(
            Method::$m,
            $path,
            on(
                MethodFilter::try_from(Method::$m).unwrap_or(MethodFilter::GET),
                $h,
            ),
        )
    };
}

fn build() -> Routes {
    use handlers::*;
    let r = Routes {
        router: Router::new(),
        list: Vec::new(),
    };
    let r = route!(r, GET "/api/v1/openapi.json" => openapi);
    let r = route!(r, GET "/api/v1/whoami" => whoami);
    let r = route!(r, GET "/api/v1/tokens" => accounts::list_operator_tokens);
    let r = route!(r, POST "/api/v1/tokens" => accounts::create_operator_token);
    let r = route!(r, DELETE "/api/v1/tokens/{token_id}" => accounts::delete_operator_token);
    let r = route!(r, GET "/api/v1/accounts" => accounts::list);
    let r = route!(r, POST "/api/v1/accounts" => accounts::create);
    let r = route!(r, GET "/api/v1/accounts/{account_id}" => accounts::get);
    let r = route!(r, PATCH "/api/v1/accounts/{account_id}" => accounts::update);
    let r = route!(r, DELETE "/api/v1/accounts/{account_id}" => accounts::delete);
    let r = route!(r, GET "/api/v1/accounts/{account_id}/tokens" => accounts::list_tokens);
    let r = route!(r, POST "/api/v1/accounts/{account_id}/tokens" => accounts::create_token);
    let r = route!(r, DELETE "/api/v1/accounts/{account_id}/tokens/{token_id}" => accounts::delete_token);
    let r = route!(r, GET "/api/v1/cas" => cas::list);
    let r = route!(r, POST "/api/v1/cas" => cas::create);
    let r = route!(r, GET "/api/v1/cas/{ca_id}" => cas::get);
    let r = route!(r, DELETE "/api/v1/cas/{ca_id}" => cas::delete);
    let r = route!(r, PUT "/api/v1/cas/{ca_id}/crl" => cas::put_crl);
    let r = route!(r, DELETE "/api/v1/cas/{ca_id}/crl" => cas::delete_crl);
    let r = route!(r, GET "/api/v1/hostnames" => hostnames::list);
    let r = route!(r, POST "/api/v1/hostnames" => hostnames::create);
    let r = route!(r, GET "/api/v1/hostnames/{name}" => hostnames::get);
    let r = route!(r, PATCH "/api/v1/hostnames/{name}" => hostnames::update);
    let r = route!(r, DELETE "/api/v1/hostnames/{name}" => hostnames::delete);
    let r = route!(r, GET "/api/v1/hostnames/{name}/cas" => hostnames::list_cas);
    let r = route!(r, GET "/api/v1/hostnames/{name}/edge" => hostnames::get_edge);
    let r = route!(r, PUT "/api/v1/hostnames/{name}/edge" => hostnames::put_edge);
    let r = route!(r, PUT "/api/v1/hostnames/{name}/cas/{ca_id}" => hostnames::associate);
    let r = route!(r, DELETE "/api/v1/hostnames/{name}/cas/{ca_id}" => hostnames::dissociate);
    let r = route!(r, GET "/api/v1/managed-ca" => managed_ca::get);
    let r = route!(r, GET "/api/v1/managed-ca/certificates" => managed_ca::list);
    let r = route!(r, POST "/api/v1/managed-ca/certificates" => managed_ca::issue);
    let r = route!(r, GET "/api/v1/managed-ca/certificates/{serial}" => managed_ca::get_cert);
    let r = route!(r, POST "/api/v1/managed-ca/certificates/{serial}/revoke" => managed_ca::revoke);
    let r = route!(r, GET "/api/v1/origin-pull-certificates" => origin_pulls::list);
    let r = route!(r, POST "/api/v1/origin-pull-certificates" => origin_pulls::create);
    let r = route!(r, GET "/api/v1/origin-pull-certificates/{id}" => origin_pulls::get);
    let r = route!(r, DELETE "/api/v1/origin-pull-certificates/{id}" => origin_pulls::delete);
    let r = route!(r, GET "/api/v1/events" => events::list);
    let r = route!(r, GET "/api/v1/events/counts" => events::counts);
    route!(r, GET "/api/v1/audit" => events::audit)
}

/// Every routed (method, path), paths in OpenAPI's `{param}` form.
pub fn routes() -> Vec<(Method, &'static str)> {
    build().list
}

/// The management API: every route, strict JSON errors for unknown paths
/// and methods, the body limit, one tracing span per request.
pub fn router(state: AppState) -> Router {
    build()
        .router
        .merge(dashboard::routes())
        .route_layer(axum::middleware::from_fn(handlers::trace))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Makes the first operator token when the store has none: the given
/// secret (from `PORTCULLIS_ADMIN_TOKEN`), or a new one. Returns the
/// secret when one was made (the caller prints it once), `None` when an
/// operator token already exists.
pub async fn bootstrap_admin(
    store: &dyn store::Store,
    secret: Option<String>,
) -> Result<Option<store::TokenSecret>, store::StoreError> {
    if store.count_admin_tokens().await? > 0 {
        return Ok(None);
    }
    let (_, s) = store
        .create_token(
            &store::Actor::System,
            store::NewToken {
                account_id: None,
                name: "bootstrap".into(),
                scopes: vec![store::Scope::Admin],
                expires_at: None,
                secret,
            },
        )
        .await?;
    Ok(Some(s))
}
