//! The managed CA: every account gets its own root, made with the account,
//! that issues client certificates (from a CSR, or with a key made here and
//! returned once as PEM and PKCS#12) and signs a fresh CRL on each
//! revocation, so the gateway treats it like any uploaded CA with a CRL.

use crate::error::ApiError;
use base64::Engine as _;
use pki::config::SigningPolicy;
use pki::csr_spec::CsrSpec;
use pki::issue::{init_root, CertificateAuthority, Issued, SignRequest};
use pki::key::PrivateKey;
use pki::revocation::RevokedEntry;
use serde::Serialize;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// Lifetime of a managed root.
pub const CA_LIFETIME: &str = "87600h";
/// Default lifetime of a client certificate (one year).
pub const DEFAULT_CLIENT_HOURS: u32 = 8760;
/// Longest client certificate lifetime a request may ask for (five years).
pub const MAX_CLIENT_HOURS: u32 = 43800;
/// How long a managed CA's CRL is valid; it is signed again on every
/// revocation and whenever it is more than half way to `nextUpdate`.
pub const CRL_VALIDITY: time::Duration = time::Duration::days(7);

/// A new managed root.
pub struct NewCa {
    /// Certificate PEM.
    pub cert_pem: String,
    /// Private key PEM (PKCS#8), to keep in the store and nowhere else.
    pub key_pem: Zeroizing<String>,
}

impl std::fmt::Debug for NewCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewCa")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[secret key elided]")
            .finish()
    }
}

/// Makes the managed root of an account (ECDSA P-256, ten years).
pub fn new_ca(account_name: &str, now: OffsetDateTime) -> Result<NewCa, ApiError> {
    // The account name is free text; the CN keeps it short and printable.
    let label: String = account_name
        .chars()
        .filter(|c| !c.is_control())
        .take(40)
        .collect();
    let spec = CsrSpec {
        cn: format!("Portcullis managed CA ({label})"),
        key: Some(pki::key::KeyRequest {
            algo: "ecdsa".into(),
            size: 256,
        }),
        ca: Some(pki::csr_spec::CaSpec {
            expiry: CA_LIFETIME.into(),
            pathlen: 0,
            pathlenzero: true,
        }),
        ..Default::default()
    };
    let root = init_root(&spec, now).map_err(ApiError::internal)?;
    Ok(NewCa {
        key_pem: root.key.to_pem(),
        cert_pem: root.cert_pem,
    })
}

fn load(cert_pem: &str, key_pem: &str) -> Result<CertificateAuthority<PrivateKey>, ApiError> {
    let key = PrivateKey::from_pem(key_pem).map_err(ApiError::internal)?;
    CertificateAuthority::new(cert_pem.as_bytes(), key).map_err(ApiError::internal)
}

fn client_policy(hours: u32) -> Result<SigningPolicy, ApiError> {
    let config = serde_json::json!({
        "signing": {
            "default": {
                "usages": ["digital signature", "key encipherment", "client auth"],
                "expiry": format!("{hours}h"),
            }
        }
    });
    SigningPolicy::from_json(config.to_string().as_bytes()).map_err(ApiError::internal)
}

/// A client certificate just issued.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedCert {
    /// Serial, lowercase hex.
    pub serial: String,
    /// RFC 4514 subject.
    pub subject: String,
    /// SANs.
    pub sans: Vec<String>,
    /// RFC 3339.
    pub not_before: String,
    /// RFC 3339.
    pub not_after: String,
    /// SHA-256 of the DER, lowercase hex.
    pub fingerprint_sha256: String,
    /// Certificate PEM.
    pub certificate: String,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl IssuedCert {
    fn from_issued(i: Issued) -> Self {
        IssuedCert {
            serial: i.serial.to_hex(),
            subject: i.subject,
            sans: i.sans,
            not_before: rfc3339(i.not_before),
            not_after: rfc3339(i.not_after),
            fingerprint_sha256: hex::encode(aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                &i.der,
            )),
            certificate: i.pem,
        }
    }
}

fn check_hours(hours: Option<u32>) -> Result<u32, ApiError> {
    match hours.unwrap_or(DEFAULT_CLIENT_HOURS) {
        0 => Err(ApiError::invalid(
            "invalid_validity",
            "validity_hours must be at least 1",
        )),
        h if h > MAX_CLIENT_HOURS => Err(ApiError::invalid(
            "invalid_validity",
            format!("validity_hours is at most {MAX_CLIENT_HOURS}"),
        )),
        h => Ok(h),
    }
}

/// Issues a client certificate for a CSR (PEM). The CSR's signature must
/// verify; its subject and SANs are kept; the certificate says client
/// auth only.
pub fn issue_from_csr(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    csr_pem: &str,
    hours: Option<u32>,
    now: OffsetDateTime,
) -> Result<IssuedCert, ApiError> {
    let hours = check_hours(hours)?;
    // Checked first so a bad CSR is the client's fault (4xx), whatever the
    // CA's state.
    pki::csr::parse_csr(csr_pem.as_bytes())
        .map_err(|e| ApiError::invalid("invalid_csr", format!("the CSR is not usable: {e}")))?;
    let ca = load(ca_cert_pem, ca_key_pem)?;
    let req = SignRequest {
        csr: csr_pem.as_bytes().to_vec(),
        ..Default::default()
    };
    let issued = ca
        .sign(&client_policy(hours)?, &req, now)
        .map_err(|e| ApiError::invalid("invalid_csr", format!("cannot sign the CSR: {e}")))?;
    Ok(IssuedCert::from_issued(issued))
}

/// A client certificate with the key made here: returned exactly once.
#[derive(Serialize)]
pub struct IssuedWithKey {
    /// The certificate.
    #[serde(flatten)]
    pub cert: IssuedCert,
    /// Private key, PKCS#8 PEM.
    pub private_key: String,
    /// PKCS#12 (certificate, key, CA certificate), base64.
    pub pkcs12: String,
    /// The PKCS#12 password (random).
    pub pkcs12_password: String,
}

impl std::fmt::Debug for IssuedWithKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedWithKey")
            .field("cert", &self.cert)
            .finish_non_exhaustive()
    }
}

impl Drop for IssuedWithKey {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.private_key.zeroize();
        self.pkcs12.zeroize();
        self.pkcs12_password.zeroize();
    }
}

/// Issues a client certificate with an ECDSA P-256 key made here, for a
/// common name and optional SANs.
pub fn issue_with_key(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    common_name: &str,
    hosts: &[String],
    hours: Option<u32>,
    now: OffsetDateTime,
) -> Result<IssuedWithKey, ApiError> {
    let hours = check_hours(hours)?;
    if common_name.trim().is_empty() || common_name.len() > 64 {
        return Err(ApiError::invalid(
            "invalid_common_name",
            "common_name must be 1 to 64 characters",
        ));
    }
    let spec = CsrSpec {
        cn: common_name.to_owned(),
        hosts: hosts.to_vec(),
        key: Some(pki::key::KeyRequest {
            algo: "ecdsa".into(),
            size: 256,
        }),
        ..Default::default()
    };
    spec.validate()
        .map_err(|e| ApiError::invalid("invalid_request", e.to_string()))?;
    let (key, csr) = spec
        .generate()
        .map_err(|e| ApiError::invalid("invalid_request", e.to_string()))?;
    let ca = load(ca_cert_pem, ca_key_pem)?;
    let req = SignRequest {
        csr: csr.into_bytes(),
        ..Default::default()
    };
    let issued = ca
        .sign(&client_policy(hours)?, &req, now)
        .map_err(|e| ApiError::invalid("invalid_request", e.to_string()))?;
    let mut pw = [0u8; 18];
    aws_lc_rs::rand::fill(&mut pw)
        .map_err(|_| ApiError::internal("the system random source failed"))?;
    let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pw);
    let p12 = pkcs12(&issued.der, ca.cert_der(), &key, &password)?;
    Ok(IssuedWithKey {
        private_key: key.to_pem().to_string(),
        pkcs12: base64::engine::general_purpose::STANDARD.encode(&*p12),
        pkcs12_password: password,
        cert: IssuedCert::from_issued(issued),
    })
}

/// PKCS#12 with the key and the chain (leaf, CA), PBES2 (AES-256-CBC,
/// PBKDF2-SHA256) and an HMAC-SHA256 MAC: what OpenSSL 3, curl and
/// browsers read.
fn pkcs12(
    leaf: &[u8],
    ca: &[u8],
    key: &PrivateKey,
    password: &str,
) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKeyChain};
    let leaf_c = Certificate::from_der(leaf).map_err(ApiError::internal)?;
    let ca_c = Certificate::from_der(ca).map_err(ApiError::internal)?;
    let mut local_id = [0u8; 20];
    local_id.copy_from_slice(
        &aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, leaf).as_ref()[..20],
    );
    let chain = PrivateKeyChain::new(&*key.to_pkcs8_der(), local_id, [leaf_c, ca_c]);
    let mut ks = KeyStore::new();
    ks.add_entry("client", KeyStoreEntry::PrivateKeyChain(chain));
    let out = ks
        .writer(password)
        .encryption_algorithm(p12_keystore::EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
        .mac_algorithm(p12_keystore::MacAlgorithm::HmacSha256)
        .write()
        .map_err(ApiError::internal)?;
    Ok(Zeroizing::new(out))
}

/// Signs the managed CA's CRL over every revoked entry.
pub fn crl(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    revoked: &[RevokedEntry],
    crl_number: u64,
    now: OffsetDateTime,
) -> Result<String, ApiError> {
    let ca = load(ca_cert_pem, ca_key_pem)?;
    let der = pki::crl::make_crl(
        ca.cert_der(),
        ca.key(),
        revoked,
        crl_number,
        now - time::Duration::minutes(5),
        now + CRL_VALIDITY,
    )
    .map_err(ApiError::internal)?;
    Ok(pki::crl::crl_to_pem(&der))
}

/// A server certificate for a hostname, issued by the account's managed CA
/// (for hostnames created without one): certificate PEM (leaf, CA) and key.
pub fn issue_server(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    hostname: &str,
    now: OffsetDateTime,
) -> Result<(String, Zeroizing<String>), ApiError> {
    let spec = CsrSpec {
        cn: hostname.to_owned(),
        hosts: vec![hostname.to_owned()],
        key: Some(pki::key::KeyRequest {
            algo: "ecdsa".into(),
            size: 256,
        }),
        ..Default::default()
    };
    let (key, csr) = spec.generate().map_err(ApiError::internal)?;
    let ca = load(ca_cert_pem, ca_key_pem)?;
    let config = serde_json::json!({
        "signing": {"default": {
            "usages": ["digital signature", "key encipherment", "server auth"],
            "expiry": "8760h",
        }}
    });
    let policy =
        SigningPolicy::from_json(config.to_string().as_bytes()).map_err(ApiError::internal)?;
    let req = SignRequest {
        csr: csr.into_bytes(),
        ..Default::default()
    };
    let issued = ca.sign(&policy, &req, now).map_err(ApiError::internal)?;
    Ok((format!("{}{}", issued.pem, ca.cert_pem()), key.to_pem()))
}

/// Every revoked certificate of an account's managed CA, with the time and
/// reason it was revoked (read from the store's issued-certificate list).
pub async fn revoked_entries(
    store: &dyn store::Store,
    account: store::AccountId,
) -> Result<Vec<RevokedEntry>, ApiError> {
    use pki::revocation::RevocationReason;
    let mut out = Vec::new();
    let mut page = store::Page {
        after_id: None,
        limit: Some(1000),
    };
    loop {
        let certs = store.list_issued_certs(account, page).await?;
        let Some(last) = certs.last().map(|c| c.id) else {
            break;
        };
        for c in &certs {
            let Some(at) = c.revoked_at else { continue };
            out.push(RevokedEntry {
                serial: hex::decode(&c.serial).map_err(ApiError::internal)?,
                revoked_at: OffsetDateTime::from_unix_timestamp(at).map_err(ApiError::internal)?,
                reason: c
                    .revocation_reason
                    .as_deref()
                    .and_then(|r| r.parse::<RevocationReason>().ok())
                    .unwrap_or(RevocationReason::Unspecified),
            });
        }
        page.after_id = Some(last);
    }
    Ok(out)
}

/// A CRL number that only grows: the time in milliseconds.
pub fn crl_number(now: OffsetDateTime) -> u64 {
    u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// Signs again the CRL of every managed CA whose published CRL is past
/// half of its validity (or unreadable), so a CRL never expires under the
/// gateways. Returns how many were renewed. `portcullis serve` runs it
/// hourly.
pub async fn refresh_crls(
    store: &dyn store::Store,
    now: OffsetDateTime,
) -> Result<usize, ApiError> {
    let mut renewed = 0;
    let mut page = store::Page {
        after_id: None,
        limit: Some(1000),
    };
    loop {
        let accounts = store.list_accounts(page).await?;
        let Some(last) = accounts.last().map(|a| a.id) else {
            break;
        };
        for a in &accounts {
            let Ok(m) = store.get_managed_ca(a.id).await else {
                continue;
            };
            let Some(crl_pem) = &m.crl_pem else { continue };
            let due = pem::parse(crl_pem)
                .ok()
                .and_then(|p| {
                    use x509_parser::prelude::FromDer as _;
                    let der = p.into_contents();
                    let (_, crl) =
                        x509_parser::revocation_list::CertificateRevocationList::from_der(&der)
                            .ok()?;
                    crl.next_update().map(|t| t.to_datetime())
                })
                .is_none_or(|next| next - now < CRL_VALIDITY / 2);
            if !due {
                continue;
            }
            let entries = revoked_entries(store, a.id).await?;
            let key = store.managed_ca_key(a.id).await?;
            let key = std::str::from_utf8(key.expose()).map_err(ApiError::internal)?;
            let crl = crl(&m.cert_pem, key, &entries, crl_number(now), now)?;
            store
                .set_managed_ca_crl(&store::Actor::System, a.id, crl)
                .await?;
            renewed += 1;
        }
        page.after_id = Some(last);
    }
    Ok(renewed)
}
