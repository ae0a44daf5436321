//! The managed CA: issuance from a CSR and with a key made here (PEM and
//! PKCS#12, read back), revocation publishing a CRL that names the serial.

use crate::common::Api;
use axum::http::Method;
use base64::Engine as _;
use serde_json::json;
use x509_parser::prelude::FromDer as _;

fn csr_pem(cn: &str) -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut p = rcgen::CertificateParams::new(vec!["svc.acme.test".to_string()]).expect("params");
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.serialize_request(&key).expect("csr").pem().expect("pem")
}

#[tokio::test]
async fn issue_list_revoke() {
    let api = Api::new().await;
    let (_, tok) = api.tenant("acme").await;
    let m = Api::expect(api.get("/api/v1/managed-ca", &tok).await, 200, None);
    let ca_pem = m["certificate"].as_str().expect("ca").to_owned();
    let ca_info = pki::info::cert_info(ca_pem.as_bytes()).expect("ca info");
    assert!(ca_info.is_ca);
    assert!(m["crl"].is_null());

    // From a CSR.
    let v = Api::expect(
        api.post(
            "/api/v1/managed-ca/certificates",
            &tok,
            json!({"csr": csr_pem("svc-1"), "validity_hours": 24}),
        )
        .await,
        201,
        None,
    );
    assert!(v.get("private_key").is_none());
    let info = pki::info::cert_info(v["pem"].as_str().expect("pem").as_bytes()).expect("info");
    assert_eq!(info.subject.common_name, "svc-1");
    assert!(
        info.ext_key_usages.iter().any(|u| u.contains("client")),
        "{:?}",
        info.ext_key_usages
    );
    assert!(!info.is_ca);
    assert_eq!(info.authority_key_id, ca_info.subject_key_id);
    let csr_serial = v["serial"].as_str().expect("serial").to_owned();

    // With a key made here: PEM key, and a PKCS#12 that opens with the
    // password and holds the same certificate and key.
    let v = Api::expect(
        api.post(
            "/api/v1/managed-ca/certificates",
            &tok,
            json!({"common_name": "laptop-7", "hosts": ["laptop-7.acme.test"]}),
        )
        .await,
        201,
        None,
    );
    let key_pem = v["private_key"].as_str().expect("key");
    assert!(key_pem.contains("PRIVATE KEY"));
    let p12 = base64::engine::general_purpose::STANDARD
        .decode(v["pkcs12"].as_str().expect("p12"))
        .expect("base64");
    let ks = p12_keystore::KeyStore::from_pkcs12(&p12, v["pkcs12_password"].as_str().expect("pw"))
        .expect("PKCS#12 opens");
    let (_, chain) = ks.private_key_chain().expect("key chain");
    let leaf_der =
        pki::issue::cert_der_from(v["pem"].as_str().expect("pem").as_bytes()).expect("der");
    assert_eq!(chain.chain()[0].as_der(), &leaf_der[..]);
    assert_eq!(chain.chain().len(), 2);
    let key = pki::key::PrivateKey::from_pem(key_pem).expect("key");
    assert_eq!(&*key.to_pkcs8_der(), chain.key());
    assert!(p12_keystore::KeyStore::from_pkcs12(&p12, "wrong").is_err());
    // The key is not kept: listing and getting show the certificate only.
    let serial = v["serial"].as_str().expect("serial").to_owned();
    let list = Api::expect(
        api.get("/api/v1/managed-ca/certificates", &tok).await,
        200,
        None,
    );
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
    assert!(!list.to_string().contains("PRIVATE KEY"));
    let one = Api::expect(
        api.get(&format!("/api/v1/managed-ca/certificates/{serial}"), &tok)
            .await,
        200,
        None,
    );
    assert!(one.get("private_key").is_none());
    assert!(one["revoked_at"].is_null());

    // Revoke: the CRL is published and names the serial.
    let r = Api::expect(
        api.call(
            Method::POST,
            &format!("/api/v1/managed-ca/certificates/{serial}/revoke"),
            &tok,
            Some(json!({"reason": "keycompromise"})),
        )
        .await,
        200,
        None,
    );
    assert!(r["revoked_at"].is_i64());
    assert_eq!(r["revocation_reason"], "keycompromise");
    // Again: idempotent.
    Api::expect(
        api.call(
            Method::POST,
            &format!("/api/v1/managed-ca/certificates/{serial}/revoke"),
            &tok,
            None,
        )
        .await,
        200,
        None,
    );
    Api::expect(
        api.call(
            Method::POST,
            &format!("/api/v1/managed-ca/certificates/{csr_serial}/revoke"),
            &tok,
            Some(json!({"reason": "because"})),
        )
        .await,
        422,
        Some("invalid_reason"),
    );
    let m = Api::expect(api.get("/api/v1/managed-ca", &tok).await, 200, None);
    let crl_pem = m["crl"].as_str().expect("crl published");
    let der = pem::parse(crl_pem).expect("pem").into_contents();
    let (_, crl) =
        x509_parser::revocation_list::CertificateRevocationList::from_der(&der).expect("crl");
    let revoked: Vec<String> = crl
        .iter_revoked_certificates()
        .map(|r| hex::encode(r.raw_serial()))
        .collect();
    assert_eq!(revoked.len(), 1);
    assert!(
        revoked[0]
            .trim_start_matches('0')
            .eq_ignore_ascii_case(serial.trim_start_matches('0')),
        "{revoked:?} vs {serial}"
    );
    // Signed by the managed CA.
    let ca_der = pki::issue::cert_der_from(ca_pem.as_bytes()).expect("der");
    let (_, ca_x) = x509_parser::certificate::X509Certificate::from_der(&ca_der).expect("ca");
    crl.verify_signature(ca_x.public_key())
        .expect("CRL signed by the managed CA");

    // The CRL is signed again before it expires, still naming the serial.
    let now = time::OffsetDateTime::now_utc();
    assert_eq!(
        control::managed::refresh_crls(api.store.as_ref(), now)
            .await
            .expect("refresh"),
        0
    );
    let later = now + time::Duration::days(5);
    assert_eq!(
        control::managed::refresh_crls(api.store.as_ref(), later)
            .await
            .expect("refresh"),
        1
    );
    let m2 = Api::expect(api.get("/api/v1/managed-ca", &tok).await, 200, None);
    let der2 = pem::parse(m2["crl"].as_str().expect("crl"))
        .expect("pem")
        .into_contents();
    let (_, crl2) =
        x509_parser::revocation_list::CertificateRevocationList::from_der(&der2).expect("crl");
    assert!(crl2.next_update().expect("next").to_datetime() > later);
    let revoked2: Vec<String> = crl2
        .iter_revoked_certificates()
        .map(|r| hex::encode(r.raw_serial()))
        .collect();
    assert_eq!(revoked2, revoked);

    // Bad requests.
    for body in [
        json!({}),
        json!({"csr": csr_pem("x"), "common_name": "x"}),
        json!({"csr": "garbage"}),
        json!({"common_name": ""}),
        json!({"common_name": "x", "validity_hours": 0}),
        json!({"common_name": "x", "validity_hours": 1_000_000}),
        json!({"csr": csr_pem("x"), "hosts": ["a.test"]}),
    ] {
        let (s, v) = api
            .post("/api/v1/managed-ca/certificates", &tok, body.clone())
            .await;
        assert_eq!(s.as_u16(), 422, "{body}: {v}");
    }
    Api::expect(
        api.get("/api/v1/managed-ca/certificates/00ff", &tok).await,
        404,
        Some("not_found"),
    );
}
