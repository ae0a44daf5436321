//! Shared set-up: a store in a temp dir, the router, an operator token,
//! and certificates made with rcgen.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt as _;

pub struct Api {
    pub store: Arc<dyn store::Store>,
    pub router: axum::Router,
    pub admin: String,
    _dir: tempfile::TempDir,
    /// PostgreSQL URL and schema, dropped with the `Api`.
    pg: Option<(String, String)>,
}

impl Api {
    /// On a fresh SQLite file.
    pub async fn new() -> Api {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn store::Store> = store::open_sqlite(
            &dir.path().join("portcullis.db"),
            store::StoreOptions::default(),
        )
        .await
        .expect("open store");
        Self::over(store, dir).await
    }

    /// On a fresh schema of the test PostgreSQL (`PORTCULLIS_TEST_PG`,
    /// default `postgres://postgres@127.0.0.1:5432/test`, which
    /// scripts/install-test-deps.sh provides).
    pub async fn postgres() -> Api {
        let url = std::env::var("PORTCULLIS_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let schema = format!(
            "control_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let opts = store::StoreOptions {
            pg_schema: Some(schema.clone()),
            ..store::StoreOptions::default()
        };
        let store: Arc<dyn store::Store> = match store::open_postgres(&url, opts).await {
            Ok(s) => s,
            Err(e) => panic!(
                "PostgreSQL is not reachable at {url} ({e}); run scripts/install-test-deps.sh or set PORTCULLIS_TEST_PG"
            ),
        };
        let mut api = Self::over(store, tempfile::tempdir().expect("tempdir")).await;
        api.pg = Some((url, schema));
        api
    }

    async fn over(store: Arc<dyn store::Store>, dir: tempfile::TempDir) -> Api {
        let admin = control::bootstrap_admin(&*store, None)
            .await
            .expect("bootstrap")
            .expect("first token");
        // A second bootstrap makes nothing.
        assert!(control::bootstrap_admin(&*store, None)
            .await
            .expect("bootstrap")
            .is_none());
        let router = control::router(control::AppState::new(store.clone()));
        Api {
            store,
            router,
            admin: admin.expose().to_owned(),
            _dir: dir,
            pg: None,
        }
    }

    /// One request; returns the status and the JSON body (`Null` when
    /// empty). Every error answer must be the JSON error shape.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b)),
            None => req.body(Body::empty()),
        }
        .expect("request");
        let resp = self.router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{path}: not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        assert_ne!(status.as_u16() / 100, 5, "{path}: server error {v}");
        if !status.is_success() {
            let code = v["error"]["code"].as_str().unwrap_or("");
            assert!(
                !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{path}: not a JSON error: {v}"
            );
            assert!(v["error"]["message"].is_string(), "{v}");
        }
        (status, v)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.raw(
            method,
            path,
            Some(token),
            body.map(|b| serde_json::to_vec(&b).expect("json")),
        )
        .await
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Asserts a status and, for errors, the code.
    pub fn expect(got: (StatusCode, Value), status: u16, code: Option<&str>) -> Value {
        assert_eq!(got.0.as_u16(), status, "{}", got.1);
        if let Some(c) = code {
            assert_eq!(got.1["error"]["code"], c, "{}", got.1);
        }
        got.1
    }

    /// An account with a read+write token; returns (account id, token).
    pub async fn tenant(&self, name: &str) -> (i64, String) {
        let a = Self::expect(
            self.post("/api/v1/accounts", &self.admin, json!({"name": name}))
                .await,
            201,
            None,
        );
        let id = a["id"].as_i64().expect("id");
        assert!(a["managed_ca_certificate"]
            .as_str()
            .is_some_and(|p| p.starts_with("-----BEGIN CERTIFICATE-----")));
        let t = Self::expect(
            self.post(
                &format!("/api/v1/accounts/{id}/tokens"),
                &self.admin,
                json!({"name": "ops", "scopes": ["read", "write"]}),
            )
            .await,
            201,
            None,
        );
        (id, t["token"].as_str().expect("token").to_owned())
    }

    /// Everything the audit log holds (operator view).
    pub async fn audit_len(&self) -> usize {
        let v = Self::expect(
            self.get("/api/v1/audit?limit=1000", &self.admin).await,
            200,
            None,
        );
        v["items"].as_array().map_or(0, Vec::len)
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let Some((url, schema)) = self.pg.take() else {
            return;
        };
        // On a thread of its own: we are inside the test's runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok((c, conn)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                    tokio::spawn(conn);
                    let _ = c
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// A CA: certificate PEM, DER, and an issuer to sign leaves and CRLs.
pub struct TestCa {
    pub pem: String,
    pub issuer: Issuer<'static, KeyPair>,
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

pub fn ca(cn: &str) -> TestCa {
    let key = KeyPair::generate().expect("key");
    let p = ca_params(cn);
    let cert = p.self_signed(&key).expect("self-signed");
    TestCa {
        pem: cert.pem(),
        issuer: Issuer::new(p, key),
    }
}

pub fn expired_ca(cn: &str) -> String {
    let key = KeyPair::generate().expect("key");
    let mut p = ca_params(cn);
    p.not_before = rcgen::date_time_ymd(2015, 1, 1);
    p.not_after = rcgen::date_time_ymd(2016, 1, 1);
    p.self_signed(&key).expect("self-signed").pem()
}

/// An intermediate CA signed by `parent`.
pub fn intermediate(cn: &str, parent: &TestCa) -> TestCa {
    let key = KeyPair::generate().expect("key");
    let p = ca_params(cn);
    let cert = p.signed_by(&key, &parent.issuer).expect("signed");
    TestCa {
        pem: cert.pem(),
        issuer: Issuer::new(p, key),
    }
}

/// A leaf (not a CA) signed by `ca`: (certificate PEM, key PEM).
pub fn leaf(ca: &TestCa, names: &[&str]) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut p = CertificateParams::new(names).expect("params");
    p.distinguished_name.push(DnType::CommonName, "leaf");
    p.is_ca = IsCa::ExplicitNoCa;
    let cert = p.signed_by(&key, &ca.issuer).expect("signed");
    (cert.pem(), key.serialize_pem())
}

/// A CRL of `ca` revoking nothing.
pub fn crl(ca: &TestCa) -> String {
    let p = rcgen::CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2024, 1, 1),
        next_update: rcgen::date_time_ymd(2099, 1, 1),
        crl_number: rcgen::SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![],
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    };
    p.signed_by(&ca.issuer).expect("crl").pem().expect("pem")
}
