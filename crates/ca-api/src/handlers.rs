//! The `/api/v1/cfssl/*` handlers.

use crate::envelope::{codes, ok, ApiError};
use crate::MAX_BODY;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use pki::config::SigningPolicy;
use pki::csr_spec::CsrSpec;
use pki::custody::CaKey;
use pki::issue::{CertificateAuthority, SignRequest};
use pki::log::{CertLog, CertRecord};
use pki::ocsp::{CertStatus, OcspResponder};
use pki::serial::Serial;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use time::OffsetDateTime;

/// Everything the API serves from.
pub struct CaState {
    /// The CA.
    pub ca: CertificateAuthority<CaKey>,
    /// The OCSP responder (same key).
    pub ocsp: OcspResponder<CaKey>,
    /// How long OCSP responses are valid.
    pub ocsp_validity: time::Duration,
    /// Default CRL lifetime (a request may ask for another).
    pub crl_validity: time::Duration,
    /// The signing policy.
    pub policy: SigningPolicy,
    /// The issuance log.
    pub log: CertLog,
    /// Label recorded with each certificate.
    pub label: String,
    /// HMAC key that authenticates custody calls (unseal, seal); without
    /// one, those calls are refused.
    pub admin_key: Option<pki::config::AuthKey>,
}

impl std::fmt::Debug for CaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaState")
            .field("ca", &self.ca)
            .finish_non_exhaustive()
    }
}

type S = State<Arc<CaState>>;

/// The router with every endpoint and the body limit.
pub fn router(state: Arc<CaState>) -> Router {
    Router::new()
        .route("/api/v1/cfssl/sign", post(sign))
        .route("/api/v1/cfssl/authsign", post(authsign))
        .route("/api/v1/cfssl/info", post(info))
        .route("/api/v1/cfssl/newkey", post(newkey))
        .route("/api/v1/cfssl/newcert", post(newcert))
        .route("/api/v1/cfssl/init_ca", post(init_ca))
        .route("/api/v1/cfssl/certinfo", post(certinfo))
        .route("/api/v1/cfssl/revoke", post(revoke))
        .route("/api/v1/cfssl/health", get(health))
        .route("/api/v1/cfssl/crl", get(crl))
        .route("/api/v1/cfssl/ocspsign", post(ocspsign))
        .route("/api/v1/portcullis/unseal", post(unseal))
        .route("/api/v1/portcullis/seal", post(seal))
        .route("/api/v1/portcullis/seal_status", get(seal_status))
        .route("/ocsp", post(ocsp_post))
        .route("/ocsp/{*req}", get(ocsp_get))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError {
        status: axum::http::StatusCode::NOT_FOUND,
        code: codes::API_CLIENT + 4,
        message: "no such endpoint".into(),
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError {
        status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
        code: codes::API_CLIENT + 4,
        message: "method not allowed for this endpoint".into(),
    }
}

fn body(b: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    b.map_err(|r| ApiError {
        status: r.status(),
        code: codes::API_CLIENT + 3,
        message: if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            format!("request body is larger than {MAX_BODY} bytes")
        } else {
            r.body_text()
        },
    })
}

fn parse<T: DeserializeOwned>(b: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(b)
        .map_err(|e| ApiError::bad_request(codes::API_CLIENT + 2, format!("invalid JSON: {e}")))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

/// CFSSL's sign request body (unknown keys ignored).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct JsonSignRequest {
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    hosts: Option<Vec<String>>,
    #[serde(default)]
    certificate_request: String,
    #[serde(default)]
    subject: Option<CsrSpec>,
    #[serde(default)]
    profile: String,
}

impl JsonSignRequest {
    fn into_sign_request(self) -> Result<SignRequest, ApiError> {
        if self.certificate_request.trim().is_empty() {
            return Err(ApiError::bad_request(
                codes::CSR + 3,
                "missing parameter 'certificate_request'",
            ));
        }
        let hosts = if !self.hostname.is_empty() {
            Some(
                self.hostname
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
            )
        } else {
            self.hosts
        };
        Ok(SignRequest {
            csr: self.certificate_request.into_bytes(),
            hosts,
            profile: self.profile,
            subject: self.subject,
        })
    }
}

/// Signs and records; the response is built only after the record is
/// durable. Signing runs inline on the worker (tens of microseconds for
/// ECDSA): a hop to the blocking pool cost more than the work itself.
async fn sign_and_record(st: &CaState, req: SignRequest) -> Result<String, ApiError> {
    st.ca.key().ready()?;
    let issued = st.ca.sign(&st.policy, &req, OffsetDateTime::now_utc())?;
    st.log
        .record_async(CertRecord::from_issued(&issued, &st.label))
        .await?;
    tracing::info!(serial = %issued.serial.to_hex(), profile = %issued.profile, subject = %issued.subject, "issued");
    Ok(issued.pem)
}

async fn sign(State(st): S, b: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let b = body(b)?;
    let req: JsonSignRequest = parse(&b)?;
    let profile = st.policy.profile(&req.profile).map_err(ApiError::from)?;
    if profile.auth_key.is_some() {
        return Err(ApiError::bad_request(
            codes::API_CLIENT + 1,
            "authentication required: this profile only signs through authsign",
        ));
    }
    let req = req.into_sign_request()?;
    let pem = sign_and_record(&st, req).await?;
    Ok(ok(json!({ "certificate": pem })))
}

#[derive(Deserialize)]
struct AuthenticatedRequest {
    #[serde(default)]
    token: String,
    #[serde(default)]
    request: String,
}

async fn authsign(State(st): S, b: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let b = body(b)?;
    let areq: AuthenticatedRequest = parse(&b)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let bad_auth = || ApiError::bad_request(codes::API_CLIENT + 1, "invalid token");
    let request = b64
        .decode(areq.request.as_bytes())
        .map_err(|_| ApiError::bad_request(codes::API_CLIENT + 2, "request is not valid base64"))?;
    let token = b64.decode(areq.token.as_bytes()).map_err(|_| bad_auth())?;
    let req: JsonSignRequest = parse(&request).map_err(|_| {
        ApiError::bad_request(
            codes::API_CLIENT + 2,
            "unable to parse authenticated sign request",
        )
    })?;
    let profile = st.policy.profile(&req.profile).map_err(ApiError::from)?;
    let Some(key) = &profile.auth_key else {
        return Err(ApiError::bad_request(
            codes::API_CLIENT + 1,
            "no authentication provider for this profile",
        ));
    };
    // Constant-time HMAC check over the exact request bytes.
    if !key.verify(&request, &token) {
        tracing::warn!(profile = %req.profile, "authsign with invalid token");
        return Err(bad_auth());
    }
    let req = req.into_sign_request()?;
    let pem = sign_and_record(&st, req).await?;
    Ok(ok(json!({ "certificate": pem })))
}

#[derive(Deserialize, Default)]
struct InfoRequest {
    #[serde(default)]
    profile: String,
}

async fn info(State(st): S, b: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let b = body(b)?;
    let req: InfoRequest = if b.iter().all(u8::is_ascii_whitespace) {
        InfoRequest::default()
    } else {
        parse(&b)?
    };
    let p = st.policy.profile(&req.profile).map_err(ApiError::from)?;
    Ok(ok(json!({
        "certificate": st.ca.cert_pem(),
        "usages": p.usage_names,
        "expiry": pki::duration::format_go_duration(p.expiry),
    })))
}

fn sums(der: &[u8]) -> serde_json::Value {
    let d = |alg| hex::encode(aws_lc_rs::digest::digest(alg, der)).to_uppercase();
    json!({
        "md5": "",
        "sha-1": d(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY),
        "sha-256": d(&aws_lc_rs::digest::SHA256),
    })
}

fn csr_der(pem_text: &str) -> Vec<u8> {
    pem::parse(pem_text)
        .map(|p| p.into_contents())
        .unwrap_or_default()
}

async fn newkey(b: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let b = body(b)?;
    let spec = CsrSpec::from_json(&b)?;
    let (key, csr) = blocking(move || spec.generate().map_err(ApiError::from)).await?;
    Ok(ok(json!({
        "private_key": key.to_pem().as_str(),
        "certificate_request": csr,
        "sums": { "certificate_request": sums(&csr_der(&csr)) },
    })))
}

#[derive(Deserialize)]
struct NewCertRequest {
    request: serde_json::Value,
    #[serde(default)]
    profile: String,
}

async fn newcert(State(st): S, b: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let b = body(b)?;
    let req: NewCertRequest = parse(&b)?;
    let p = st.policy.profile(&req.profile).map_err(ApiError::from)?;
    if p.auth_key.is_some() {
        return Err(ApiError::bad_request(
            codes::API_CLIENT + 1,
            "authentication required: this profile only signs through authsign",
        ));
    }
    let spec_bytes = serde_json::to_vec(&req.request).map_err(ApiError::internal)?;
    let spec = CsrSpec::from_json(&spec_bytes)?;
    let profile = req.profile;
    let (key, csr) = blocking(move || spec.generate().map_err(ApiError::from)).await?;
    let cert = sign_and_record(
        &st,
        SignRequest {
            csr: csr.clone().into_bytes(),
            hosts: None,
            profile,
            subject: None,
        },
    )
    .await?;
    Ok(ok(json!({
        "private_key": key.to_pem().as_str(),
        "certificate_request": csr,
        "certificate": cert,
        "sums": {
            "certificate_request": sums(&csr_der(&csr)),
            "certificate": sums(&csr_der(&cert)),
        },
    })))
}

async fn init_ca(b: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let b = body(b)?;
    let spec = CsrSpec::from_json(&b)?;
    let root = blocking(move || {
        pki::issue::init_root(&spec, OffsetDateTime::now_utc()).map_err(ApiError::from)
    })
    .await?;
    Ok(ok(json!({
        "private_key": root.key.to_pem().as_str(),
        "certificate": root.cert_pem,
    })))
}

#[derive(Deserialize)]
struct CertInfoRequest {
    #[serde(default)]
    certificate: String,
}

async fn certinfo(b: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let b = body(b)?;
    let req: CertInfoRequest = parse(&b)?;
    if req.certificate.trim().is_empty() {
        return Err(ApiError::bad_request(
            codes::CERTIFICATE + 1,
            "missing parameter 'certificate' (fetching by domain is not supported)",
        ));
    }
    let info = pki::info::cert_info(req.certificate.as_bytes())?;
    Ok(ok(info))
}

#[derive(Deserialize)]
struct RevokeRequest {
    #[serde(default)]
    serial: String,
    #[serde(default)]
    authority_key_id: String,
    #[serde(default)]
    reason: String,
}

async fn revoke(State(st): S, b: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let b = body(b)?;
    let req: RevokeRequest = parse(&b)?;
    let serial = pki::serial::Serial::from_decimal(&req.serial).ok_or_else(|| {
        ApiError::bad_request(codes::CERT_STORE + 3, "serial must be a decimal number")
    })?;
    let aki = if req.authority_key_id.is_empty() {
        st.ca.aki_hex().to_string()
    } else {
        req.authority_key_id.to_ascii_lowercase().replace(':', "")
    };
    let reason: pki::revocation::RevocationReason = if req.reason.trim().is_empty() {
        pki::revocation::RevocationReason::Unspecified
    } else {
        req.reason
            .parse()
            .map_err(|e: pki::revocation::UnknownReason| {
                ApiError::bad_request(codes::CERT_STORE + 3, e.to_string())
            })?
    };
    let serial_text = serial.to_decimal();
    blocking(move || {
        st.log
            .revoke(&serial_text, &aki, reason, OffsetDateTime::now_utc())
            .map_err(ApiError::from)
    })
    .await?;
    tracing::info!(serial = %serial.to_hex(), reason = reason.as_str(), "revoked");
    Ok(ok(json!({})))
}

async fn health() -> Response {
    ok(json!({ "healthy": true }))
}

/// The CA state from before: a (status of a serial) lookup in the log.
fn lookup_status(st: &CaState, serial: &[u8]) -> Result<CertStatus, pki::PkiError> {
    let rec = st
        .log
        .get(&Serial::from_bytes(serial).to_decimal(), st.ca.aki_hex())?;
    Ok(match rec {
        None => CertStatus::Unknown,
        Some(r) if r.status == "revoked" => CertStatus::Revoked {
            at: r.revoked_at.unwrap_or(r.not_before),
            reason: pki::revocation::RevocationReason::from_code(r.reason)
                .unwrap_or(pki::revocation::RevocationReason::Unspecified),
        },
        Some(_) => CertStatus::Good,
    })
}

#[derive(Deserialize, Default)]
struct CrlQuery {
    #[serde(default)]
    expiry: Option<String>,
}

async fn crl(
    State(st): S,
    q: Result<axum::extract::Query<CrlQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = q.map(|q| q.0).unwrap_or_default();
    let validity = match q.expiry.as_deref().filter(|e| !e.is_empty()) {
        Some(e) => {
            let d = pki::duration::parse_go_duration(e).map_err(|m| {
                ApiError::bad_request(codes::API_CLIENT + 2, format!("expiry: {m}"))
            })?;
            // A CRL's nextUpdate must come after thisUpdate.
            if d.is_zero() {
                return Err(ApiError::bad_request(
                    codes::API_CLIENT + 2,
                    "expiry must be positive",
                ));
            }
            time::Duration::try_from(d).map_err(|_| {
                ApiError::bad_request(codes::API_CLIENT + 2, "expiry is out of range")
            })?
        }
        None => st.crl_validity,
    };
    let der = blocking(move || make_crl(&st, validity)).await?;
    Ok(ok(base64::engine::general_purpose::STANDARD.encode(der)))
}

/// Builds a CRL from the log: revoked, unexpired certificates of this CA.
pub(crate) fn make_crl(st: &CaState, validity: time::Duration) -> Result<Vec<u8>, ApiError> {
    st.ca.key().ready()?;
    let now = OffsetDateTime::now_utc();
    let revoked = st.log.revoked(st.ca.aki_hex(), now)?;
    let number = st.log.next_counter(&format!("crl:{}", st.ca.aki_hex()))?;
    let der = pki::crl::make_crl(
        st.ca.cert_der(),
        st.ca.key(),
        &revoked,
        number,
        now,
        now + validity,
    )
    .map_err(ApiError::internal)?;
    st.log.audit_append(
        "crl",
        &json!({ "aki": st.ca.aki_hex(), "number": number, "entries": revoked.len() }),
    )?;
    Ok(der)
}

#[derive(Deserialize)]
struct OcspSignRequest {
    #[serde(default)]
    certificate: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    reason: u8,
    #[serde(default)]
    revoked_at: String,
}

async fn ocspsign(State(st): S, b: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let b = body(b)?;
    let req: OcspSignRequest = parse(&b)?;
    st.ca.key().ready()?;
    let info = pki::info::cert_info(req.certificate.as_bytes())?;
    if info.authority_key_id != st.ca.aki_hex() {
        return Err(ApiError::bad_request(
            codes::OCSP + 3,
            "the certificate was not issued by this CA",
        ));
    }
    let now = OffsetDateTime::now_utc();
    let status = match req.status.to_ascii_lowercase().as_str() {
        "" | "good" => CertStatus::Good,
        "unknown" => CertStatus::Unknown,
        "revoked" => CertStatus::Revoked {
            at: match req.revoked_at.as_str() {
                "" | "now" => now,
                t => OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| {
                        ApiError::bad_request(codes::OCSP + 2, "revoked_at must be RFC 3339 or now")
                    })?,
            },
            reason: pki::revocation::RevocationReason::from_code(req.reason).ok_or_else(|| {
                ApiError::bad_request(codes::OCSP + 2, "unknown revocation reason code")
            })?,
        },
        other => {
            return Err(ApiError::bad_request(
                codes::OCSP + 2,
                format!("status {other:?} is not good, revoked or unknown"),
            ))
        }
    };
    let serial = Serial::from_hex(&info.serial_hex)
        .ok_or_else(|| ApiError::bad_request(codes::OCSP + 2, "bad serial"))?;
    let validity = st.ocsp_validity;
    let der = blocking(move || {
        let der = st
            .ocsp
            .sign_status(serial.as_bytes(), status, now, validity)
            .ok_or_else(|| ApiError::internal("OCSP signing failed"))?;
        st.log.audit_append(
            "ocspsign",
            &json!({ "serial": serial.to_decimal(), "status": status_name(&status) }),
        )?;
        Ok(der)
    })
    .await?;
    Ok(ok(
        json!({ "ocspResponse": base64::engine::general_purpose::STANDARD.encode(der) }),
    ))
}

fn status_name(s: &CertStatus) -> &'static str {
    match s {
        CertStatus::Good => "good",
        CertStatus::Revoked { .. } => "revoked",
        CertStatus::Unknown => "unknown",
    }
}

fn ocsp_response(der: Vec<u8>) -> Response {
    use axum::response::IntoResponse;
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/ocsp-response",
            ),
            (axum::http::header::CACHE_CONTROL, "max-age=60, public"),
        ],
        der,
    )
        .into_response()
}

async fn answer_ocsp(st: Arc<CaState>, request: Vec<u8>) -> Response {
    // RFC 6960 tryLater: a sealed CA cannot sign responses for now.
    if st.ca.key().is_sealed() {
        return ocsp_response(pki::ocsp::try_later_response());
    }
    let out = tokio::task::spawn_blocking(move || {
        let failed = std::cell::Cell::new(false);
        let answered = std::cell::RefCell::new(Vec::new());
        let der = st.ocsp.respond(
            &request,
            OffsetDateTime::now_utc(),
            st.ocsp_validity,
            |serial| match lookup_status(&st, serial) {
                Ok(s) => {
                    answered
                        .borrow_mut()
                        .push(json!({ "serial": Serial::from_bytes(serial).to_decimal(), "status": status_name(&s) }));
                    s
                }
                Err(e) => {
                    tracing::error!(error = %e, "OCSP lookup failed");
                    failed.set(true);
                    CertStatus::Unknown
                }
            },
        );
        if failed.get() {
            return pki::ocsp::try_later_response();
        }
        let answered = answered.into_inner();
        if !answered.is_empty() {
            // A signed response is a use of the CA key: no audit entry, no answer.
            if let Err(e) = st.log.audit_append("ocsp", &json!({ "responses": answered })) {
                tracing::error!(error = %e, "audit log append failed");
                return pki::ocsp::try_later_response();
            }
        }
        der
    })
    .await
    .unwrap_or_else(|_| pki::ocsp::try_later_response());
    ocsp_response(out)
}

async fn ocsp_post(State(st): S, b: Result<Bytes, BytesRejection>) -> Response {
    match b {
        Ok(b) if !b.is_empty() => answer_ocsp(st, b.to_vec()).await,
        _ => ocsp_response(pki::ocsp::malformed_request_response()),
    }
}

async fn ocsp_get(State(st): S, axum::extract::Path(req): axum::extract::Path<String>) -> Response {
    match pki::ocsp::decode_get_path(&req) {
        Ok(der) => answer_ocsp(st, der).await,
        Err(_) => ocsp_response(pki::ocsp::malformed_request_response()),
    }
}

/// How far a custody call's timestamp may be from our clock.
const ADMIN_SKEW_SECS: i64 = 300;

/// Checks a custody call: HMAC-SHA256 of the exact request bytes under the
/// admin key (constant time), the action it was signed for, and a fresh
/// timestamp. Returns the request JSON.
fn admin_request(st: &CaState, b: &[u8], action: &str) -> Result<serde_json::Value, ApiError> {
    let unauthorized = |m: &str| ApiError {
        status: axum::http::StatusCode::UNAUTHORIZED,
        code: codes::API_CLIENT + 1,
        message: m.to_string(),
    };
    let Some(key) = &st.admin_key else {
        return Err(ApiError {
            status: axum::http::StatusCode::FORBIDDEN,
            code: codes::API_CLIENT + 1,
            message: "custody calls are disabled: the CA was started without --admin-key-file"
                .into(),
        });
    };
    let areq: AuthenticatedRequest = parse(b)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let request = zeroize::Zeroizing::new(b64.decode(areq.request.as_bytes()).map_err(|_| {
        ApiError::bad_request(codes::API_CLIENT + 2, "request is not valid base64")
    })?);
    let token = b64
        .decode(areq.token.as_bytes())
        .map_err(|_| unauthorized("invalid token"))?;
    if !key.verify(&request, &token) {
        tracing::warn!(action, "custody call with an invalid token");
        return Err(unauthorized("invalid token"));
    }
    let v: serde_json::Value = parse(&request)?;
    if v.get("action").and_then(|a| a.as_str()) != Some(action) {
        return Err(unauthorized("the token was made for another action"));
    }
    let ts = v.get("timestamp").and_then(|t| t.as_i64()).unwrap_or(0);
    if (OffsetDateTime::now_utc().unix_timestamp() - ts).abs() > ADMIN_SKEW_SECS {
        return Err(unauthorized(
            "stale or future timestamp (clocks more than 5 minutes apart?)",
        ));
    }
    Ok(v)
}

fn sealed_key(st: &CaState) -> Result<&pki::custody::sealed::SealedKey, ApiError> {
    st.ca.key().as_sealed().ok_or_else(|| {
        ApiError::bad_request(
            codes::PRIVATE_KEY + 4,
            "the CA key is not an M-of-N sealed key",
        )
    })
}

async fn unseal(State(st): S, b: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let b = body(b)?;
    let v = admin_request(&st, &b, "unseal")?;
    let key_id = v
        .get("key_id")
        .and_then(|k| k.as_str())
        .unwrap_or_default()
        .to_string();
    let share = zeroize::Zeroizing::new(
        v.get("share")
            .and_then(|s| s.as_str())
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .ok_or_else(|| {
                ApiError::bad_request(codes::API_CLIENT + 2, "missing or bad 'share'")
            })?,
    );
    drop(v);
    let index = share.first().copied().unwrap_or(0);
    let status = blocking(move || {
        let sealed = sealed_key(&st)?;
        match sealed.submit_share(&key_id, &share) {
            Ok(status) => {
                let event = if status.sealed { "unseal_share" } else { "unseal" };
                st.log.audit_append(
                    event,
                    &json!({ "share": index, "submitted": status.submitted, "threshold": status.threshold }),
                )?;
                tracing::info!(share = index, sealed = status.sealed, "key share accepted");
                Ok(status)
            }
            Err(e) => {
                st.log
                    .audit_append("unseal_refused", &json!({ "share": index, "reason": e.to_string() }))?;
                Err(ApiError::from(e))
            }
        }
    })
    .await?;
    Ok(ok(status))
}

async fn seal(State(st): S, b: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let b = body(b)?;
    admin_request(&st, &b, "seal")?;
    let status = blocking(move || {
        let sealed = sealed_key(&st)?;
        sealed.seal();
        st.log.audit_append("seal", &json!({}))?;
        tracing::info!("CA key sealed");
        Ok(sealed.status())
    })
    .await?;
    Ok(ok(status))
}

async fn seal_status(State(st): S) -> Result<Response, ApiError> {
    Ok(ok(sealed_key(&st)?.status()))
}
