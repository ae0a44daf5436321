//! The web dashboard: three static files (HTML, one JavaScript module, CSS)
//! compiled into the binary and served under `/dashboard/` next to the
//! API. The page has no privilege of its own: its JavaScript calls
//! `/api/v1` with the bearer token the operator types in, which it keeps in
//! a JavaScript variable only (never in storage or a cookie), so a request
//! forged from another site carries no credential and is answered 401.
//!
//! Every answer carries a strict Content-Security-Policy (scripts and
//! styles from this origin only, no framing, no form targets), so injected
//! markup cannot run code or exfiltrate the token.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("../dashboard/index.html");
const APP_JS: &str = include_str!("../dashboard/app.js");
const STYLE: &str = include_str!("../dashboard/style.css");

/// The policy of every dashboard answer.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; form-action 'none'; \
frame-ancestors 'none'; base-uri 'none'";

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

async fn index() -> Response {
    asset(INDEX, "text/html; charset=utf-8")
}

async fn app_js() -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8")
}

async fn style() -> Response {
    asset(STYLE, "text/css; charset=utf-8")
}

async fn to_index() -> Redirect {
    Redirect::permanent("/dashboard/")
}

/// The dashboard's routes (`/dashboard`, `/dashboard/`, its two assets);
/// merged into [`crate::router`]. Anything else under `/dashboard/` falls
/// through to the API's JSON 404.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/dashboard", get(to_index))
        .route("/dashboard/", get(index))
        .route("/dashboard/app.js", get(app_js))
        .route("/dashboard/style.css", get(style))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(path: &str) -> Response {
        let app: Router = routes();
        app.oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("infallible")
    }

    #[tokio::test]
    async fn assets_carry_the_policy() {
        for (path, ctype) in [
            ("/dashboard/", "text/html; charset=utf-8"),
            ("/dashboard/app.js", "text/javascript; charset=utf-8"),
            ("/dashboard/style.css", "text/css; charset=utf-8"),
        ] {
            let r = get(path).await;
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert_eq!(r.headers()[header::CONTENT_TYPE], ctype, "{path}");
            assert_eq!(r.headers()[header::CONTENT_SECURITY_POLICY], CSP, "{path}");
            assert_eq!(r.headers()[header::X_FRAME_OPTIONS], "DENY", "{path}");
        }
        let r = get("/dashboard").await;
        assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(r.headers()[header::LOCATION], "/dashboard/");
    }

    /// The token stays in a variable: the script never touches browser
    /// storage or cookies, and never parses markup from data.
    #[test]
    fn script_keeps_the_token_in_memory_and_builds_text_nodes() {
        for banned in [
            "localStorage.",
            "sessionStorage.",
            "document.cookie",
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "eval(",
            "new Function",
        ] {
            assert!(!APP_JS.contains(banned), "app.js uses {banned}");
        }
        // Every script and style the page loads is one of ours (CSP 'self').
        assert!(INDEX.contains(r#"<script type="module" src="/dashboard/app.js">"#));
        assert!(!INDEX.contains("<script>"), "no inline script");
        assert!(!INDEX.contains("style="), "no inline style");
    }
}
