//! The CFSSL API bodies, through the real router (no socket): any body on
//! any endpoint gets a 2xx or 4xx answer in the CFSSL envelope, never a
//! 5xx, and OCSP always answers a DER OCSPResponse.
//!
//! Key-generating endpoints (`newkey`, `newcert`, `init_ca`) are left out:
//! their bodies are CSR JSON, fuzzed by `csr_spec`, and an RSA-4096 key per
//! input would make the target crawl.

use axum::body::Body;
use der::Decode as _;
use http_body_util::BodyExt as _;
use hyper::{Method, Request, StatusCode};
use tower::ServiceExt as _;

use crate::fixtures::{ca_state, pki, runtime};
use crate::Input;

/// The `k1` auth key of [`crate::fixtures::SIGNING_CONFIG`], as bytes.
const AUTH_KEY: [u8; 16] = [
    0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,
];

/// In a body, this placeholder is replaced by the fuzz leaf's CSR (PEM,
/// JSON-escaped), so that inputs reach signing without the fuzzer having
/// to invent a valid signature.
pub const CSR_PLACEHOLDER: &str = "$CSR";

/// Endpoint choices, indexed by the first input byte.
pub const ENDPOINTS: &[(&str, &str)] = &[
    ("POST", "/api/v1/cfssl/sign"),
    ("POST", "/api/v1/cfssl/authsign"),
    // authsign with a valid token computed over the rest of the input
    ("POST", "authsign-valid"),
    ("POST", "/api/v1/cfssl/info"),
    ("POST", "/api/v1/cfssl/certinfo"),
    ("POST", "/api/v1/cfssl/revoke"),
    ("POST", "/api/v1/cfssl/ocspsign"),
    ("POST", "/api/v1/portcullis/unseal"),
    ("POST", "/api/v1/portcullis/seal"),
    ("POST", "/ocsp"),
    // the rest of the input is the query string / path
    ("GET", "/api/v1/cfssl/crl?"),
    ("GET", "/ocsp/"),
    ("GET", "/api/v1/cfssl/health"),
    ("GET", "/api/v1/portcullis/seal_status"),
];

fn csr_json() -> String {
    let s = serde_json::to_string(&pki().leaf_csr_pem).expect("json string");
    s[1..s.len() - 1].to_owned()
}

/// See the module docs.
pub fn ca_api(data: &[u8]) {
    let mut inp = Input::new(data);
    let (method, path) = ENDPOINTS[inp.choose(ENDPOINTS.len())];
    let rest = inp.rest();
    let mut body: Vec<u8> = match std::str::from_utf8(rest) {
        Ok(t) if t.contains(CSR_PLACEHOLDER) => t.replace(CSR_PLACEHOLDER, &csr_json()).into(),
        _ => rest.to_vec(),
    };
    let uri = match path {
        "authsign-valid" => {
            let key = pki::config::AuthKey::new("k1", AUTH_KEY.to_vec());
            let b64 = base64::engine::general_purpose::STANDARD;
            use base64::Engine as _;
            body = serde_json::to_vec(&serde_json::json!({
                "token": b64.encode(key.token(&body)),
                "request": b64.encode(&body),
            }))
            .expect("json");
            "/api/v1/cfssl/authsign".to_owned()
        }
        p if p.ends_with(['?', '/']) => {
            let tail = String::from_utf8_lossy(&body).into_owned();
            body.clear();
            format!("{p}{tail}")
        }
        p => p.to_owned(),
    };
    let Ok(req) = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).expect("method"))
        .uri(&uri)
        .header("content-type", "application/json")
        .body(Body::from(body))
    else {
        return; // not a request hyper would have let through
    };
    let router = ca_api::router(ca_state().clone());
    let (status, ctype, bytes) = runtime().block_on(async move {
        let resp = router.oneshot(req).await.expect("infallible");
        let status = resp.status();
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (status, ctype, bytes)
    });
    assert!(
        !status.is_server_error(),
        "{method} {uri} answered {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    if uri.starts_with("/ocsp") && status == StatusCode::OK {
        assert_eq!(ctype, "application/ocsp-response", "{uri}");
        x509_ocsp::OcspResponse::from_der(&bytes).expect("OCSP answer decodes");
    } else if uri.starts_with("/api/v1/") {
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{uri} {status}: not JSON ({e})"));
        let success = v["success"]
            .as_bool()
            .unwrap_or_else(|| panic!("{uri}: no success flag in {v}"));
        assert_eq!(success, status.is_success(), "{uri} {status}: {v}");
        if !success {
            let msg = v["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(!msg.is_empty(), "{uri}: failure without a message: {v}");
        }
    }
}
