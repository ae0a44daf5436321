//! Bad input gets a 4xx JSON error and changes nothing: garbage PEM, a
//! leaf as a CA, an expired CA, duplicate hostnames (also across
//! accounts), non-DNS hostnames, unknown JSON fields, a 10 MB body,
//! missing or wrong tokens.

use crate::common::{ca, expired_ca, leaf, Api};
use axum::http::Method;
use serde_json::{json, Value};

/// What must not change: every list of the account and the audit log.
async fn state(api: &Api, tok: &str) -> Vec<Value> {
    let mut v = Vec::new();
    for p in [
        "/api/v1/cas",
        "/api/v1/hostnames",
        "/api/v1/managed-ca/certificates",
        "/api/v1/origin-pull-certificates",
        "/api/v1/accounts",
    ] {
        v.push(Api::expect(api.get(p, tok).await, 200, None));
    }
    v.push(json!(api.audit_len().await));
    v
}

#[tokio::test]
async fn bad_cas_are_refused_and_change_nothing() {
    let api = Api::new().await;
    let (_, tok) = api.tenant("acme").await;
    let root = ca("Acme Root");
    let before = state(&api, &tok).await;
    let (leaf_pem, leaf_key) = leaf(&root, &["client.acme.test"]);
    let cases: Vec<(String, &str)> = vec![
        ("garbage".into(), "invalid_ca"),
        ("".into(), "invalid_ca"),
        (
            "-----BEGIN CERTIFICATE-----\nnot base64!!\n-----END CERTIFICATE-----\n".into(),
            "invalid_ca",
        ),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
            "invalid_ca",
        ),
        (leaf_pem.clone(), "invalid_ca"),
        (expired_ca("Old Root"), "invalid_ca"),
        (format!("{}{}", root.pem, leaf_key), "invalid_ca"),
        (format!("{}{}", root.pem, root.pem), "invalid_ca"),
        (format!("{}{}", root.pem, leaf_pem), "invalid_ca"),
    ];
    for (pem, code) in &cases {
        let (s, v) = api
            .post(
                "/api/v1/cas",
                &tok,
                json!({"name": "x", "certificates": pem}),
            )
            .await;
        assert_eq!(s.as_u16(), 422, "{pem:.40}: {v}");
        assert_eq!(v["error"]["code"], *code, "{v}");
        assert!(!v.to_string().contains("PRIVATE KEY"), "{v}");
    }
    // The messages say what is wrong.
    let (_, v) = api
        .post(
            "/api/v1/cas",
            &tok,
            json!({"name": "x", "certificates": leaf_pem}),
        )
        .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not a CA")),
        "{v}"
    );
    let (_, v) = api
        .post(
            "/api/v1/cas",
            &tok,
            json!({"name": "x", "certificates": expired_ca("Old")}),
        )
        .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("expired")),
        "{v}"
    );
    // A bad CRL with a good CA: the CA is not stored either.
    Api::expect(
        api.post(
            "/api/v1/cas",
            &tok,
            json!({"name": "x", "certificates": root.pem, "crl": "garbage"}),
        )
        .await,
        422,
        Some("invalid_crl"),
    );
    assert_eq!(state(&api, &tok).await, before);
}

#[tokio::test]
async fn bad_hostnames_are_refused_and_change_nothing_sqlite() {
    bad_hostnames(Api::new().await).await;
}

#[tokio::test]
async fn bad_hostnames_are_refused_and_change_nothing_postgres() {
    bad_hostnames(Api::postgres().await).await;
}

async fn bad_hostnames(api: Api) {
    let (_, a) = api.tenant("acme").await;
    let (_, b) = api.tenant("globex").await;
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
    let before_a = state(&api, &a).await;
    let before_b = state(&api, &b).await;
    // Duplicate, in the same account and in another one.
    for tok in [&a, &b] {
        Api::expect(
            api.post(
                "/api/v1/hostnames",
                tok,
                json!({"name": "api.acme.test", "origin": "http://127.0.0.1:9"}),
            )
            .await,
            409,
            Some("hostname_taken"),
        );
    }
    for name in [
        "API.acme.test",
        "localhost",
        "a..b",
        "-x.test",
        "127.0.0.1",
        "*.acme.test",
        "space .test",
        "x.test.",
        "under_score.test",
    ] {
        Api::expect(
            api.post(
                "/api/v1/hostnames",
                &a,
                json!({"name": name, "origin": "http://127.0.0.1:9"}),
            )
            .await,
            422,
            Some("invalid_hostname"),
        );
    }
    for origin in [
        "ftp://x",
        "not a url",
        "http://",
        "http://u:p@h:1",
        "http://h:1/path",
        "h:1",
    ] {
        Api::expect(
            api.post(
                "/api/v1/hostnames",
                &a,
                json!({"name": "new.acme.test", "origin": origin}),
            )
            .await,
            422,
            Some("invalid_origin"),
        );
    }
    Api::expect(
        api.post(
            "/api/v1/hostnames",
            &a,
            json!({"name": "new.acme.test", "origin": "http://127.0.0.1:9", "mode": "strict"}),
        )
        .await,
        400,
        Some("invalid_json"),
    );
    Api::expect(
        api.post(
            "/api/v1/hostnames",
            &a,
            json!({"name": "new.acme.test", "origin": "http://127.0.0.1:9", "block": {"status": 200, "content_type": "x"}}),
        )
        .await,
        422,
        Some("invalid_block"),
    );
    Api::expect(
        api.post(
            "/api/v1/hostnames",
            &a,
            json!({"name": "new.acme.test", "origin": "http://127.0.0.1:9", "ca_ids": [999]}),
        )
        .await,
        404,
        Some("not_found"),
    );
    assert_eq!(state(&api, &a).await, before_a);
    assert_eq!(state(&api, &b).await, before_b);
}

#[tokio::test]
async fn unknown_fields_bad_json_and_huge_bodies_are_4xx() {
    let api = Api::new().await;
    let (id, tok) = api.tenant("acme").await;
    let root = ca("Acme Root");
    let before = state(&api, &tok).await;
    let cases: Vec<(&str, Value)> = vec![
        (
            "/api/v1/cas",
            json!({"name": "x", "certificates": root.pem, "colour": "blue"}),
        ),
        (
            "/api/v1/hostnames",
            json!({"name": "a.acme.test", "origin": "http://127.0.0.1:9", "mtls": "on"}),
        ),
        (
            "/api/v1/managed-ca/certificates",
            json!({"common_name": "c", "extra": 1}),
        ),
        ("/api/v1/accounts", json!({"name": "n", "plan": "gold"})),
    ];
    for (path, body) in cases {
        let t = if path == "/api/v1/accounts" {
            api.admin.clone()
        } else {
            tok.clone()
        };
        let v = Api::expect(api.post(path, &t, body).await, 400, Some("unknown_field"));
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("unknown field")),
            "{v}"
        );
    }
    for raw in [
        &b"{"[..],
        b"[]",
        b"null",
        b"{\"name\": 5}",
        b"",
        b"\xff\xfe",
    ] {
        let (s, v) = api
            .raw(Method::POST, "/api/v1/cas", Some(&tok), Some(raw.to_vec()))
            .await;
        assert_eq!(s.as_u16(), 400, "{v}");
    }
    // 10 MB: 413 with the JSON error, before anything is parsed.
    let mut big = br#"{"name":"x","certificates":""#.to_vec();
    big.resize(10 * 1024 * 1024, b'A');
    big.extend_from_slice(b"\"}");
    let (s, v) = api
        .raw(Method::POST, "/api/v1/cas", Some(&tok), Some(big))
        .await;
    assert_eq!(s.as_u16(), 413, "{v}");
    assert_eq!(v["error"]["code"], "body_too_large");
    // Unknown endpoints and methods.
    Api::expect(
        api.get("/api/v1/nothing", &tok).await,
        404,
        Some("not_found"),
    );
    Api::expect(
        api.call(Method::PUT, "/api/v1/cas", &tok, Some(json!({})))
            .await,
        405,
        Some("method_not_allowed"),
    );
    Api::expect(
        api.get("/api/v1/cas/not-a-number", &tok).await,
        404,
        Some("not_found"),
    );
    Api::expect(
        api.get(&format!("/api/v1/accounts/{id}/tokens/1"), &tok)
            .await,
        405,
        Some("method_not_allowed"),
    );
    assert_eq!(state(&api, &tok).await, before);
}

#[tokio::test]
async fn missing_and_wrong_tokens_are_401() {
    let api = Api::new().await;
    let (_, tok) = api.tenant("acme").await;
    let before = state(&api, &tok).await;
    for t in [
        None,
        Some("pcs_wrong"),
        Some(""),
        Some("x".repeat(5000).as_str()),
    ] {
        let (s, v) = api
            .raw(
                Method::POST,
                "/api/v1/cas",
                t,
                Some(
                    serde_json::to_vec(&json!({"name": "x", "certificates": ca("X").pem}))
                        .expect("json"),
                ),
            )
            .await;
        assert_eq!(s.as_u16(), 401, "{v}");
        assert_eq!(v["error"]["code"], "unauthenticated");
    }
    // Basic auth is not a bearer token.
    let req = axum::http::Request::builder()
        .uri("/api/v1/cas")
        .header("authorization", "Basic YTpi")
        .body(axum::body::Body::empty())
        .expect("req");
    let resp = tower::ServiceExt::oneshot(api.router.clone(), req)
        .await
        .expect("resp");
    assert_eq!(resp.status().as_u16(), 401);
    // The document is public.
    let (s, v) = api
        .raw(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(s.as_u16(), 200);
    assert_eq!(v["openapi"], "3.0.3");
    assert_eq!(state(&api, &tok).await, before);
}
