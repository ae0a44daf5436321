//! Create, list, get, update and delete of every resource, the CA limit,
//! cascade deletes and the audit trail.

use crate::common::{ca, crl, intermediate, leaf, Api};
use axum::http::Method;
use serde_json::json;

#[tokio::test]
async fn accounts_and_tokens_crud() {
    let api = Api::new().await;
    let (id, tok) = api.tenant("acme").await;
    let v = Api::expect(api.get("/api/v1/accounts", &api.admin).await, 200, None);
    assert_eq!(v["items"].as_array().map(Vec::len), Some(1));
    let v = Api::expect(
        api.get(&format!("/api/v1/accounts/{id}"), &tok).await,
        200,
        None,
    );
    assert_eq!(v["name"], "acme");
    assert_eq!(v["effective_ca_limit"], 5);
    // Duplicate account name.
    Api::expect(
        api.post("/api/v1/accounts", &api.admin, json!({"name": "acme"}))
            .await,
        409,
        Some("already_exists"),
    );
    // Rename and set the limit (operator only).
    let v = Api::expect(
        api.call(
            Method::PATCH,
            &format!("/api/v1/accounts/{id}"),
            &api.admin,
            Some(json!({"name": "acme-corp", "ca_limit": 2})),
        )
        .await,
        200,
        None,
    );
    assert_eq!(v["name"], "acme-corp");
    assert_eq!(v["ca_limit"], 2);
    Api::expect(
        api.call(
            Method::PATCH,
            &format!("/api/v1/accounts/{id}"),
            &tok,
            Some(json!({"ca_limit": 100})),
        )
        .await,
        403,
        Some("forbidden"),
    );
    // Back to the default with null.
    let v = Api::expect(
        api.call(
            Method::PATCH,
            &format!("/api/v1/accounts/{id}"),
            &api.admin,
            Some(json!({"ca_limit": null})),
        )
        .await,
        200,
        None,
    );
    assert_eq!(v["ca_limit"], serde_json::Value::Null);

    // Tokens: a read-only token made by the account's own write token.
    let t = Api::expect(
        api.post(
            &format!("/api/v1/accounts/{id}/tokens"),
            &tok,
            json!({"name": "dashboard", "scopes": ["read"]}),
        )
        .await,
        201,
        None,
    );
    let ro = t["token"].as_str().expect("secret").to_owned();
    let ro_id = t["id"].as_i64().expect("id");
    let v = Api::expect(api.get("/api/v1/whoami", &ro).await, 200, None);
    assert_eq!(v["account_id"], id);
    assert_eq!(v["scopes"], json!(["read"]));
    // Secrets are never listed.
    let v = Api::expect(
        api.get(&format!("/api/v1/accounts/{id}/tokens"), &tok)
            .await,
        200,
        None,
    );
    assert_eq!(v["items"].as_array().map(Vec::len), Some(2));
    assert!(!v.to_string().contains(&ro));
    // Read-only can read, not write, not mint write tokens.
    Api::expect(api.get("/api/v1/cas", &ro).await, 200, None);
    Api::expect(
        api.post(
            "/api/v1/cas",
            &ro,
            json!({"name": "x", "certificates": ca("X").pem}),
        )
        .await,
        403,
        Some("forbidden"),
    );
    Api::expect(
        api.post(
            &format!("/api/v1/accounts/{id}/tokens"),
            &ro,
            json!({"name": "escalate", "scopes": ["write"]}),
        )
        .await,
        403,
        None,
    );
    // No admin scope for account tokens.
    Api::expect(
        api.post(
            &format!("/api/v1/accounts/{id}/tokens"),
            &api.admin,
            json!({"name": "a", "scopes": ["admin"]}),
        )
        .await,
        422,
        Some("invalid_scope"),
    );
    // Delete the read-only token: it stops working.
    Api::expect(
        api.call(
            Method::DELETE,
            &format!("/api/v1/accounts/{id}/tokens/{ro_id}"),
            &tok,
            None,
        )
        .await,
        204,
        None,
    );
    Api::expect(
        api.get("/api/v1/whoami", &ro).await,
        401,
        Some("unauthenticated"),
    );
    // Account tokens cannot create or delete accounts.
    Api::expect(
        api.post("/api/v1/accounts", &tok, json!({"name": "other"}))
            .await,
        403,
        None,
    );
    // Delete the account: its token dies with it.
    Api::expect(
        api.call(
            Method::DELETE,
            &format!("/api/v1/accounts/{id}"),
            &api.admin,
            None,
        )
        .await,
        204,
        None,
    );
    Api::expect(api.get("/api/v1/whoami", &tok).await, 401, None);
    Api::expect(
        api.get(&format!("/api/v1/accounts/{id}"), &api.admin).await,
        404,
        Some("not_found"),
    );
}

#[tokio::test]
async fn cas_crud_limit_crl_and_cascade_sqlite() {
    cas_crud(Api::new().await).await;
}

#[tokio::test]
async fn cas_crud_limit_crl_and_cascade_postgres() {
    cas_crud(Api::postgres().await).await;
}

async fn cas_crud(api: Api) {
    let (_, tok) = api.tenant("acme").await;
    let root = ca("Acme Root");
    let inter = intermediate("Acme Issuing", &root);
    // A bundle of root + intermediate.
    let bundle = format!("{}{}", root.pem, inter.pem);
    let v = Api::expect(
        api.post(
            "/api/v1/cas",
            &tok,
            json!({"name": "acme", "certificates": bundle}),
        )
        .await,
        201,
        None,
    );
    let id = v["id"].as_i64().expect("id");
    assert_eq!(v["certificates"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["certificates"][0]["self_signed"], true);
    assert_eq!(v["certificates"][1]["self_signed"], false);
    let v = Api::expect(api.get(&format!("/api/v1/cas/{id}"), &tok).await, 200, None);
    assert_eq!(v["name"], "acme");
    // Duplicate name in the account.
    Api::expect(
        api.post(
            "/api/v1/cas",
            &tok,
            json!({"name": "acme", "certificates": ca("B").pem}),
        )
        .await,
        409,
        Some("already_exists"),
    );
    // CRL: a good one, then one from another CA.
    let v = Api::expect(
        api.call(
            Method::PUT,
            &format!("/api/v1/cas/{id}/crl"),
            &tok,
            Some(json!({"crl": crl(&root)})),
        )
        .await,
        200,
        None,
    );
    assert!(v["crl_pem"]
        .as_str()
        .is_some_and(|c| c.contains("X509 CRL")));
    Api::expect(
        api.call(
            Method::PUT,
            &format!("/api/v1/cas/{id}/crl"),
            &tok,
            Some(json!({"crl": crl(&ca("Stranger"))})),
        )
        .await,
        422,
        Some("invalid_crl"),
    );
    Api::expect(
        api.call(Method::DELETE, &format!("/api/v1/cas/{id}/crl"), &tok, None)
            .await,
        204,
        None,
    );
    // Up to the limit (5), then refused.
    for i in 2..=5 {
        Api::expect(
            api.post(
                "/api/v1/cas",
                &tok,
                json!({"name": format!("ca{i}"), "certificates": ca(&format!("CA {i}")).pem}),
            )
            .await,
            201,
            None,
        );
    }
    let before = api.audit_len().await;
    Api::expect(
        api.post(
            "/api/v1/cas",
            &tok,
            json!({"name": "six", "certificates": ca("Six").pem}),
        )
        .await,
        409,
        Some("limit_reached"),
    );
    assert_eq!(api.audit_len().await, before);
    let v = Api::expect(api.get("/api/v1/cas", &tok).await, 200, None);
    assert_eq!(v["items"].as_array().map(Vec::len), Some(5));

    // Associated with a hostname: delete refused, then cascade.
    let (cert, key) = leaf(&root, &["api.acme.test"]);
    Api::expect(
        api.post(
            "/api/v1/hostnames",
            &tok,
            json!({"name": "api.acme.test", "origin": "http://127.0.0.1:9",
                   "certificate": cert, "private_key": key,
                   "mode": "report", "ca_ids": [id]}),
        )
        .await,
        201,
        None,
    );
    Api::expect(
        api.call(Method::DELETE, &format!("/api/v1/cas/{id}"), &tok, None)
            .await,
        409,
        Some("in_use"),
    );
    // A report hostname with only this CA would be left trusting nothing:
    // trust the managed CA too, then cascade.
    Api::expect(
        api.call(
            Method::PATCH,
            "/api/v1/hostnames/api.acme.test",
            &tok,
            Some(json!({"trust_managed_ca": true})),
        )
        .await,
        200,
        None,
    );
    Api::expect(
        api.call(
            Method::DELETE,
            &format!("/api/v1/cas/{id}?cascade=true"),
            &tok,
            None,
        )
        .await,
        204,
        None,
    );
    let v = Api::expect(
        api.get("/api/v1/hostnames/api.acme.test", &tok).await,
        200,
        None,
    );
    assert_eq!(v["ca_ids"], json!([]));
    Api::expect(
        api.get(&format!("/api/v1/cas/{id}"), &tok).await,
        404,
        Some("not_found"),
    );
}

#[tokio::test]
async fn hostnames_crud_and_association() {
    let api = Api::new().await;
    let (_, tok) = api.tenant("acme").await;
    let root = ca("Acme Root");
    let c = Api::expect(
        api.post(
            "/api/v1/cas",
            &tok,
            json!({"name": "acme", "certificates": root.pem}),
        )
        .await,
        201,
        None,
    );
    let ca_id = c["id"].as_i64().expect("id");
    // Without a certificate: one is issued by the managed CA.
    let h = Api::expect(
        api.post(
            "/api/v1/hostnames",
            &tok,
            json!({"name": "api.acme.test", "origin": "http://127.0.0.1:9001"}),
        )
        .await,
        201,
        None,
    );
    assert_eq!(h["mode"], "off");
    let cert = h["cert_pem"].as_str().expect("cert");
    let info = pki::info::cert_info(cert.as_bytes()).expect("cert info");
    assert!(
        info.sans.iter().any(|s| s == "api.acme.test"),
        "{:?}",
        info.sans
    );
    assert!(!h.to_string().contains("PRIVATE KEY"));
    // report without any CA is refused.
    Api::expect(
        api.call(
            Method::PATCH,
            "/api/v1/hostnames/api.acme.test",
            &tok,
            Some(json!({"mode": "report"})),
        )
        .await,
        422,
        Some("no_trusted_ca"),
    );
    // Associate, then report, then block settings.
    let v = Api::expect(
        api.call(
            Method::PUT,
            &format!("/api/v1/hostnames/api.acme.test/cas/{ca_id}"),
            &tok,
            None,
        )
        .await,
        200,
        None,
    );
    assert_eq!(v["ca_ids"], json!([ca_id]));
    let v = Api::expect(
        api.call(
            Method::PATCH,
            "/api/v1/hostnames/api.acme.test",
            &tok,
            Some(json!({"mode": "enforce", "block": {"status": 401, "content_type": "text/plain", "body": "no"}})),
        )
        .await,
        200,
        None,
    );
    assert_eq!(v["mode"], "enforce");
    assert_eq!(v["block"]["status"], 401);
    let v = Api::expect(
        api.get("/api/v1/hostnames/api.acme.test/cas", &tok).await,
        200,
        None,
    );
    assert_eq!(v["items"][0]["id"], ca_id);
    // The last CA of an enforcing hostname cannot be removed.
    Api::expect(
        api.call(
            Method::DELETE,
            &format!("/api/v1/hostnames/api.acme.test/cas/{ca_id}"),
            &tok,
            None,
        )
        .await,
        422,
        Some("no_trusted_ca"),
    );
    Api::expect(
        api.call(
            Method::PATCH,
            "/api/v1/hostnames/api.acme.test",
            &tok,
            Some(json!({"mode": "off"})),
        )
        .await,
        200,
        None,
    );
    Api::expect(
        api.call(
            Method::DELETE,
            &format!("/api/v1/hostnames/api.acme.test/cas/{ca_id}"),
            &tok,
            None,
        )
        .await,
        200,
        None,
    );
    let v = Api::expect(api.get("/api/v1/hostnames", &tok).await, 200, None);
    assert_eq!(v["items"].as_array().map(Vec::len), Some(1));
    // Uploaded certificate must match the key and the name.
    let (c2, k2) = leaf(&root, &["www.acme.test"]);
    let (_, other_key) = leaf(&root, &["www.acme.test"]);
    Api::expect(
        api.post(
            "/api/v1/hostnames",
            &tok,
            json!({"name": "www.acme.test", "origin": "http://127.0.0.1:9", "certificate": c2, "private_key": other_key}),
        )
        .await,
        422,
        Some("key_mismatch"),
    );
    Api::expect(
        api.post(
            "/api/v1/hostnames",
            &tok,
            json!({"name": "shop.acme.test", "origin": "http://127.0.0.1:9", "certificate": c2, "private_key": k2}),
        )
        .await,
        422,
        Some("invalid_certificate"),
    );
    Api::expect(
        api.post(
            "/api/v1/hostnames",
            &tok,
            json!({"name": "www.acme.test", "origin": "http://127.0.0.1:9", "certificate": c2, "private_key": k2}),
        )
        .await,
        201,
        None,
    );
    Api::expect(
        api.call(
            Method::DELETE,
            "/api/v1/hostnames/api.acme.test",
            &tok,
            None,
        )
        .await,
        204,
        None,
    );
    Api::expect(
        api.get("/api/v1/hostnames/api.acme.test", &tok).await,
        404,
        Some("not_found"),
    );
    // The audit log saw it all, with who did it.
    let v = Api::expect(api.get("/api/v1/audit", &tok).await, 200, None);
    let actions: Vec<&str> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in [
        "hostname.create",
        "hostname.update",
        "hostname.delete",
        "ca.create",
    ] {
        assert!(actions.contains(&a), "{a} missing in {actions:?}");
    }
    assert!(v["items"][0]["actor"]
        .as_str()
        .is_some_and(|a| a.starts_with("token:")));
}

#[tokio::test]
async fn origin_pulls_crud() {
    let api = Api::new().await;
    let (_, tok) = api.tenant("acme").await;
    let root = ca("Origin Pull CA");
    let (cert, key) = leaf(&root, &["gateway.acme.test"]);
    let v = Api::expect(
        api.post(
            "/api/v1/origin-pull-certificates",
            &tok,
            json!({"name": "pull", "certificate": cert, "private_key": key, "origin_ca": root.pem}),
        )
        .await,
        201,
        None,
    );
    assert!(!v.to_string().contains("PRIVATE KEY"));
    let id = v["id"].as_i64().expect("id");
    let v = Api::expect(
        api.get("/api/v1/origin-pull-certificates", &tok).await,
        200,
        None,
    );
    assert_eq!(v["items"].as_array().map(Vec::len), Some(1));
    Api::expect(
        api.get(&format!("/api/v1/origin-pull-certificates/{id}"), &tok)
            .await,
        200,
        None,
    );
    // Used by a hostname: delete refused.
    Api::expect(
        api.post(
            "/api/v1/hostnames",
            &tok,
            json!({"name": "api.acme.test", "origin": "https://127.0.0.1:9443", "origin_pull_id": id}),
        )
        .await,
        201,
        None,
    );
    Api::expect(
        api.call(
            Method::DELETE,
            &format!("/api/v1/origin-pull-certificates/{id}"),
            &tok,
            None,
        )
        .await,
        409,
        Some("in_use"),
    );
    Api::expect(
        api.call(
            Method::PATCH,
            "/api/v1/hostnames/api.acme.test",
            &tok,
            Some(json!({"origin_pull_id": null})),
        )
        .await,
        200,
        None,
    );
    Api::expect(
        api.call(
            Method::DELETE,
            &format!("/api/v1/origin-pull-certificates/{id}"),
            &tok,
            None,
        )
        .await,
        204,
        None,
    );
}

#[tokio::test]
async fn events_and_counts_are_filtered() {
    let api = Api::new().await;
    let (id, tok) = api.tenant("acme").await;
    Api::expect(
        api.post(
            "/api/v1/hostnames",
            &tok,
            json!({"name": "api.acme.test", "origin": "http://127.0.0.1:9"}),
        )
        .await,
        201,
        None,
    );
    let t0 = 1_800_000_000i64;
    let ev = |verdict: &str, at: i64| store::NewEvent {
        hostname: "api.acme.test".into(),
        at,
        verdict: verdict.into(),
        reason: (verdict == "invalid").then(|| "unknown-issuer".into()),
        action: "forwarded".into(),
        client_ip: Some("127.0.0.1".into()),
        ..Default::default()
    };
    api.store
        .record_events(vec![
            ev("valid", t0),
            ev("invalid", t0 + 1),
            ev("none", t0 + 61),
            ev("valid", t0 + 62),
        ])
        .await
        .expect("record");
    let v = Api::expect(
        api.get(&format!("/api/v1/events?from={t0}&to={}", t0 + 120), &tok)
            .await,
        200,
        None,
    );
    assert_eq!(v["items"].as_array().map(Vec::len), Some(4));
    assert_eq!(v["items"][0]["account_id"], id);
    let v = Api::expect(
        api.get(
            "/api/v1/events?verdict=invalid&hostname=api.acme.test",
            &tok,
        )
        .await,
        200,
        None,
    );
    assert_eq!(v["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["items"][0]["reason"], "unknown-issuer");
    let v = Api::expect(
        api.get("/api/v1/events?from=2027-01-15T08:00:00Z", &tok)
            .await,
        200,
        None,
    );
    assert_eq!(v["items"].as_array().map(Vec::len), Some(4));
    let v = Api::expect(api.get("/api/v1/events/counts", &tok).await, 200, None);
    let total: u64 = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["count"].as_u64())
        .sum();
    assert_eq!(total, 4);
    assert!(v["items"]
        .as_array()
        .expect("items")
        .iter()
        .all(|c| c["minute"].as_i64().is_some_and(|m| m % 60 == 0)));
    Api::expect(
        api.get("/api/v1/events?verdict=maybe", &tok).await,
        400,
        Some("invalid_query"),
    );
    Api::expect(
        api.get("/api/v1/events?from=yesterday", &tok).await,
        400,
        Some("invalid_query"),
    );
    Api::expect(
        api.get("/api/v1/events?colour=blue", &tok).await,
        400,
        Some("invalid_query"),
    );
}

#[tokio::test]
async fn operator_tokens_rotate_but_never_the_last() {
    let api = Api::new().await;
    let (_, tok) = api.tenant("acme").await;
    let v = Api::expect(api.get("/api/v1/tokens", &api.admin).await, 200, None);
    let items = v["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    let boot = items[0]["id"].as_i64().expect("id");
    // Not for account tokens.
    Api::expect(
        api.get("/api/v1/tokens", &tok).await,
        403,
        Some("forbidden"),
    );
    Api::expect(
        api.post("/api/v1/tokens", &tok, json!({"name": "x"})).await,
        403,
        Some("forbidden"),
    );
    // The last one cannot go.
    Api::expect(
        api.call(
            Method::DELETE,
            &format!("/api/v1/tokens/{boot}"),
            &api.admin,
            None,
        )
        .await,
        409,
        Some("last_operator_token"),
    );
    // Rotate: a new one, then the bootstrap token is deleted with it.
    let v = Api::expect(
        api.post("/api/v1/tokens", &api.admin, json!({"name": "ops-2"}))
            .await,
        201,
        None,
    );
    let new = v["token"].as_str().expect("secret").to_owned();
    assert_eq!(v["scopes"], json!(["admin"]));
    Api::expect(
        api.call(
            Method::DELETE,
            &format!("/api/v1/tokens/{boot}"),
            &new,
            None,
        )
        .await,
        204,
        None,
    );
    Api::expect(api.get("/api/v1/whoami", &api.admin).await, 401, None);
    Api::expect(api.get("/api/v1/accounts", &new).await, 200, None);
    // Account tokens are not operator tokens.
    let acct_tok = Api::expect(api.get("/api/v1/whoami", &tok).await, 200, None)["token_id"]
        .as_i64()
        .expect("id");
    Api::expect(
        api.call(
            Method::DELETE,
            &format!("/api/v1/tokens/{acct_tok}"),
            &new,
            None,
        )
        .await,
        404,
        Some("not_found"),
    );
}
