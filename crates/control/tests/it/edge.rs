//! `GET/PUT /api/v1/hostnames/{name}/edge` on both backends: the policy is
//! validated by the gateway's rules, reaches the snapshot with its secrets,
//! bumps the configuration version, is never shown with its secrets, and a
//! refused document changes nothing (store, version, audit log).

use crate::common::Api;
use axum::http::Method;
use serde_json::json;

#[tokio::test]
async fn edge_policy_sqlite() {
    edge(Api::new().await).await;
}

#[tokio::test]
async fn edge_policy_postgres() {
    edge(Api::postgres().await).await;
}

async fn edge(api: Api) {
    let (_, a) = api.tenant("acme").await;
    let (_, b) = api.tenant("globex").await;
    Api::expect(
        api.post(
            "/api/v1/hostnames",
            &a,
            json!({"name": "api.acme.test", "origin": "http://127.0.0.1:9001"}),
        )
        .await,
        201,
        None,
    );
    let path = "/api/v1/hostnames/api.acme.test/edge";
    let put = |tok: &str, body: serde_json::Value| {
        let tok = tok.to_owned();
        let api = &api;
        async move { api.call(Method::PUT, path, &tok, Some(body)).await }
    };
    assert_eq!(
        Api::expect(api.get(path, &a).await, 200, None),
        json!({"token": [], "rule": [], "rate_limit": []})
    );
    let policy = json!({
        "token": [{"scheme": "nginx", "secrets": ["edge-secret-1"], "paths": ["/dl/*"]}],
        "rule": [{"name": "admin", "expression": "http.request.uri.path == \"/admin\"",
                  "action": "block"}],
        "rate_limit": [{"name": "ip", "key": "ip", "period": 10, "limit": 5}],
    });
    let v0 = api.store.config_version().await.expect("version");
    let shown = Api::expect(put(&a, policy.clone()).await, 200, None);
    assert!(!shown.to_string().contains("edge-secret-1"), "{shown}");
    assert_eq!(shown["token"][0]["secrets"], json!(["[secret elided]"]));
    assert_eq!(shown["rate_limit"], policy["rate_limit"]);
    // The hostname itself never carries the policy (nor its secrets).
    let h = Api::expect(
        api.get("/api/v1/hostnames/api.acme.test", &a).await,
        200,
        None,
    );
    assert!(!h.to_string().contains("edge-secret-1"), "{h}");
    // The gateway's view has it whole, at a new version.
    let v1 = api.store.config_version().await.expect("version");
    assert!(v1 > v0);
    let snap = api
        .store
        .snapshot(Some(vec!["api.acme.test".into()]))
        .await
        .expect("snapshot");
    assert_eq!(snap.hostnames[0].edge, policy);
    gateway::edge::config::from_json("edge", "api.acme.test", &snap.hostnames[0].edge)
        .expect("the stored policy builds");

    // Refused documents: every problem listed, nothing changes.
    let audit = api.audit_len().await;
    let bad = json!({
        "rule": [{"name": "x", "expression": "http.request.uri.path ==", "action": "block"},
                 {"name": "y", "expression": "true", "action": "explode"}],
        "token": [{"scheme": "nginx", "secret_files": ["/etc/shadow"]}],
    });
    let e = Api::expect(put(&a, bad).await, 422, Some("invalid_edge_policy"));
    let msg = e["error"]["message"].as_str().expect("message");
    assert!(msg.contains("line 1, column"), "{msg}");
    assert!(
        msg.contains("explode") && msg.contains("secret_files"),
        "{msg}"
    );
    for body in [
        json!([]),
        json!({"rules": []}),
        json!({"rule": "x"}),
        shown.clone(),
    ] {
        Api::expect(put(&a, body).await, 422, Some("invalid_edge_policy"));
    }
    assert_eq!(api.audit_len().await, audit);
    assert_eq!(api.store.config_version().await.expect("version"), v1);
    assert_eq!(Api::expect(api.get(path, &a).await, 200, None), shown);

    // Scopes and tenants.
    Api::expect(api.get(path, &b).await, 404, Some("not_found"));
    Api::expect(put(&b, json!({})).await, 404, Some("not_found"));
    Api::expect(
        api.get(&format!("{path}?account_id=999"), &a).await,
        404,
        None,
    );
    assert_eq!(Api::expect(api.get(path, &a).await, 200, None), shown);

    // Emptied.
    Api::expect(put(&a, json!({})).await, 200, None);
    assert_eq!(api.audit_len().await, audit + 1);
    let snap = api.store.snapshot(None).await.expect("snapshot");
    assert_eq!(snap.hostnames[0].edge, json!({}));
}
