//! Tenant isolation: account A's tokens can neither read nor change
//! anything of account B's. Every attempt is 404 (B's objects do not
//! exist for A), nothing of B's changes, and A's listings never show B's
//! objects. (The data-plane half, a client certificate from B's CA never
//! valid on A's hostname, is the end-to-end test in
//! crates/portcullis/tests/cli/control.rs.)

use crate::common::{ca, leaf, Api};
use axum::http::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn account_a_cannot_read_or_change_account_b_sqlite() {
    matrix(Api::new().await).await;
}

#[tokio::test]
async fn account_a_cannot_read_or_change_account_b_postgres() {
    matrix(Api::postgres().await).await;
}

async fn matrix(api: Api) {
    let (a_id, a) = api.tenant("acme").await;
    let (b_id, b) = api.tenant("globex").await;
    // B's objects.
    let b_root = ca("Globex Root");
    let b_ca = Api::expect(
        api.post(
            "/api/v1/cas",
            &b,
            json!({"name": "globex", "certificates": b_root.pem}),
        )
        .await,
        201,
        None,
    )["id"]
        .as_i64()
        .expect("id");
    Api::expect(
        api.post(
            "/api/v1/hostnames",
            &b,
            json!({"name": "api.globex.test", "origin": "http://127.0.0.1:9", "mode": "enforce", "ca_ids": [b_ca]}),
        )
        .await,
        201,
        None,
    );
    let issued = Api::expect(
        api.post(
            "/api/v1/managed-ca/certificates",
            &b,
            json!({"common_name": "globex-client"}),
        )
        .await,
        201,
        None,
    );
    let b_serial = issued["serial"].as_str().expect("serial").to_owned();
    let (pc, pk) = leaf(&b_root, &["gw.globex.test"]);
    let b_pull = Api::expect(
        api.post(
            "/api/v1/origin-pull-certificates",
            &b,
            json!({"name": "pull", "certificate": pc, "private_key": pk, "origin_ca": b_root.pem}),
        )
        .await,
        201,
        None,
    )["id"]
        .as_i64()
        .expect("id");
    let b_token_id = Api::expect(
        api.get(&format!("/api/v1/accounts/{b_id}/tokens"), &b)
            .await,
        200,
        None,
    )["items"][0]["id"]
        .as_i64()
        .expect("token id");
    api.store
        .record_events(vec![store::NewEvent {
            hostname: "api.globex.test".into(),
            at: 1_800_000_000,
            verdict: "invalid".into(),
            action: "blocked".into(),
            ..Default::default()
        }])
        .await
        .expect("events");

    // Snapshot of B as B sees it.
    let before = b_view(&api, &b, b_id).await;

    // Reads by A of B's things: 404, never B's data.
    let reads = [
        format!("/api/v1/accounts/{b_id}"),
        format!("/api/v1/accounts/{b_id}/tokens"),
        format!("/api/v1/cas/{b_ca}"),
        format!("/api/v1/cas?account_id={b_id}"),
        format!("/api/v1/cas/{b_ca}?account_id={b_id}"),
        "/api/v1/hostnames/api.globex.test".into(),
        "/api/v1/hostnames/api.globex.test/cas".into(),
        format!("/api/v1/hostnames?account_id={b_id}"),
        format!("/api/v1/managed-ca?account_id={b_id}"),
        format!("/api/v1/managed-ca/certificates/{b_serial}"),
        format!("/api/v1/managed-ca/certificates?account_id={b_id}"),
        format!("/api/v1/origin-pull-certificates/{b_pull}"),
        format!("/api/v1/events?account_id={b_id}"),
        format!("/api/v1/events/counts?account_id={b_id}"),
        format!("/api/v1/audit?account_id={b_id}"),
    ];
    for p in &reads {
        let (s, v) = api.get(p, &a).await;
        assert_eq!(s.as_u16(), 404, "A read {p}: {v}");
        assert!(!v.to_string().contains("globex"), "{p} leaked: {v}");
    }
    // A's own listings hold nothing of B's.
    for p in [
        "/api/v1/accounts",
        "/api/v1/events",
        "/api/v1/events?hostname=api.globex.test",
        "/api/v1/events/counts",
        "/api/v1/audit",
        "/api/v1/cas",
        "/api/v1/hostnames",
    ] {
        let v = Api::expect(api.get(p, &a).await, 200, None);
        let text = v.to_string();
        assert!(
            !text.contains("globex") && !text.contains(&format!("\"account_id\":{b_id}")),
            "{p}: {v}"
        );
    }
    // Writes by A on B's things.
    let writes: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::PATCH,
            format!("/api/v1/accounts/{b_id}"),
            Some(json!({"name": "pwned"})),
        ),
        (Method::DELETE, format!("/api/v1/accounts/{b_id}"), None),
        (
            Method::POST,
            format!("/api/v1/accounts/{b_id}/tokens"),
            Some(json!({"name": "t", "scopes": ["read"]})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/accounts/{b_id}/tokens/{b_token_id}"),
            None,
        ),
        (
            Method::POST,
            "/api/v1/cas".into(),
            Some(json!({"name": "x", "certificates": ca("X").pem, "account_id": b_id})),
        ),
        (Method::DELETE, format!("/api/v1/cas/{b_ca}"), None),
        (
            Method::DELETE,
            format!("/api/v1/cas/{b_ca}?cascade=true"),
            None,
        ),
        (
            Method::PUT,
            format!("/api/v1/cas/{b_ca}/crl"),
            Some(json!({"crl": "x"})),
        ),
        (Method::DELETE, format!("/api/v1/cas/{b_ca}/crl"), None),
        (
            Method::POST,
            "/api/v1/hostnames".into(),
            Some(
                json!({"name": "x.globex.test", "origin": "http://127.0.0.1:9", "account_id": b_id}),
            ),
        ),
        (
            Method::PATCH,
            "/api/v1/hostnames/api.globex.test".into(),
            Some(json!({"mode": "off"})),
        ),
        (
            Method::DELETE,
            "/api/v1/hostnames/api.globex.test".into(),
            None,
        ),
        (
            Method::PUT,
            format!("/api/v1/hostnames/api.globex.test/cas/{b_ca}"),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/hostnames/api.globex.test/cas/{b_ca}"),
            None,
        ),
        (
            Method::POST,
            "/api/v1/managed-ca/certificates".into(),
            Some(json!({"common_name": "x", "account_id": b_id})),
        ),
        (
            Method::POST,
            format!("/api/v1/managed-ca/certificates/{b_serial}/revoke"),
            None,
        ),
        (
            Method::POST,
            "/api/v1/origin-pull-certificates".into(),
            Some(
                json!({"name": "p", "certificate": "x", "private_key": "x", "origin_ca": "x", "account_id": b_id}),
            ),
        ),
        (
            Method::DELETE,
            format!("/api/v1/origin-pull-certificates/{b_pull}"),
            None,
        ),
    ];
    for (m, p, body) in writes {
        let (s, v) = api.call(m.clone(), &p, &a, body).await;
        assert!(
            s.as_u16() == 404
                || (s.as_u16() == 403
                    && p.starts_with("/api/v1/accounts/")
                    && !p.contains("tokens")),
            "A {m} {p}: {s} {v}"
        );
    }
    // A cannot associate B's CA with its own hostname either.
    Api::expect(
        api.post(
            "/api/v1/hostnames",
            &a,
            json!({"name": "api.acme.test", "origin": "http://127.0.0.1:9"}),
        )
        .await,
        201,
        None,
    );
    Api::expect(
        api.call(
            Method::PUT,
            &format!("/api/v1/hostnames/api.acme.test/cas/{b_ca}"),
            &a,
            None,
        )
        .await,
        404,
        Some("not_found"),
    );
    Api::expect(
        api.call(
            Method::PATCH,
            "/api/v1/hostnames/api.acme.test",
            &a,
            Some(json!({"ca_ids": [b_ca], "mode": "enforce"})),
        )
        .await,
        404,
        Some("not_found"),
    );
    // Nothing of B's changed.
    assert_eq!(b_view(&api, &b, b_id).await, before);
    // And A can see its own things.
    Api::expect(
        api.get(&format!("/api/v1/accounts/{a_id}"), &a).await,
        200,
        None,
    );
}

/// Everything of B's, as B sees it.
async fn b_view(api: &Api, b: &str, b_id: i64) -> Vec<Value> {
    let mut v: Vec<Value> = Vec::new();
    for p in [
        format!("/api/v1/accounts/{b_id}"),
        format!("/api/v1/accounts/{b_id}/tokens"),
        "/api/v1/cas".into(),
        "/api/v1/hostnames".into(),
        "/api/v1/hostnames/api.globex.test".into(),
        "/api/v1/managed-ca".into(),
        "/api/v1/managed-ca/certificates".into(),
        "/api/v1/origin-pull-certificates".into(),
        "/api/v1/events".into(),
    ] {
        v.push(Api::expect(api.get(&p, b).await, 200, None));
    }
    v
}
