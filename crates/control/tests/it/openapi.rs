//! The OpenAPI document matches the routes: every routed (method, path)
//! is documented, every documented one is routed and answers (not the
//! router's "no such endpoint").

use crate::common::Api;
use axum::http::Method;
use std::collections::BTreeSet;

#[tokio::test]
async fn document_and_routes_agree() {
    let doc: serde_json::Value = serde_json::from_str(control::OPENAPI).expect("document is JSON");
    assert_eq!(doc["openapi"], "3.0.3");
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for (m, op) in ops.as_object().expect("operations") {
            assert!(op["responses"].is_object(), "{m} {path}");
            documented.insert((m.to_uppercase(), path.clone()));
        }
    }
    let routed: BTreeSet<(String, String)> = control::routes()
        .into_iter()
        .map(|(m, p)| (m.as_str().to_owned(), p.to_owned()))
        .collect();
    let missing_doc: Vec<_> = routed.difference(&documented).collect();
    let missing_route: Vec<_> = documented.difference(&routed).collect();
    assert!(
        missing_doc.is_empty(),
        "routed but not documented: {missing_doc:?}"
    );
    assert!(
        missing_route.is_empty(),
        "documented but not routed: {missing_route:?}"
    );
    // Every $ref resolves.
    let text = control::OPENAPI;
    for part in text.split("\"$ref\": \"#/").skip(1) {
        let target = part.split('"').next().expect("ref");
        let mut node = &doc;
        for seg in target.split('/') {
            node = &node[seg];
        }
        assert!(!node.is_null(), "dangling $ref #/{target}");
    }
    // Each documented route is really served: with parameters filled in,
    // without a token it is 401 (or 200 for the public document), never
    // the fallback 404 or 405.
    let api = Api::new().await;
    for (m, p) in &documented {
        let path = p
            .replace("{account_id}", "1")
            .replace("{token_id}", "1")
            .replace("{ca_id}", "1")
            .replace("{id}", "1")
            .replace("{name}", "api.acme.test")
            .replace("{serial}", "01");
        let method = Method::from_bytes(m.as_bytes()).expect("method");
        let (s, v) = api.raw(method, &path, None, None).await;
        if p == "/api/v1/openapi.json" {
            assert_eq!(s.as_u16(), 200);
        } else {
            assert_eq!(s.as_u16(), 401, "{m} {path}: {v}");
        }
    }
}
