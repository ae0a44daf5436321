//! Test PKI made with rcgen (our own CA is not ready yet) and helpers.
#![allow(dead_code)]

use client_auth::{CertificateDer, UnixTime};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SerialNumber,
};
use time::{Duration, OffsetDateTime};

/// A fixed "now" for deterministic tests: 2026-01-01T00:00:00Z.
pub const NOW: i64 = 1_767_225_600;

pub fn t(secs: i64) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs as u64))
}

pub fn now() -> UnixTime {
    t(NOW)
}

pub fn odt(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).expect("time")
}

pub struct Ca {
    pub der: CertificateDer<'static>,
    pub pem: String,
    pub issuer: Issuer<'static, KeyPair>,
}

pub struct CaOpts {
    pub not_before: i64,
    pub not_after: i64,
}

impl Default for CaOpts {
    fn default() -> Self {
        CaOpts {
            not_before: NOW - 86_400 * 365,
            not_after: NOW + 86_400 * 365 * 10,
        }
    }
}

fn ca_params(name: &str, o: &CaOpts) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, name);
    p.distinguished_name
        .push(DnType::OrganizationName, "Portcullis tests");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = odt(o.not_before);
    p.not_after = odt(o.not_after);
    p.use_authority_key_identifier_extension = true;
    p.key_identifier_method = KeyIdMethod::Sha256;
    p
}

pub fn root(name: &str) -> Ca {
    root_with(name, &CaOpts::default())
}

pub fn root_with(name: &str, o: &CaOpts) -> Ca {
    let key = KeyPair::generate().expect("key");
    let p = ca_params(name, o);
    let cert = p.self_signed(&key).expect("self-signed");
    Ca {
        der: cert.der().clone(),
        pem: cert.pem(),
        issuer: Issuer::new(p, key),
    }
}

pub fn intermediate(name: &str, parent: &Ca) -> Ca {
    intermediate_with(name, parent, &CaOpts::default())
}

pub fn intermediate_with(name: &str, parent: &Ca, o: &CaOpts) -> Ca {
    let key = KeyPair::generate().expect("key");
    let p = ca_params(name, o);
    let cert = p.signed_by(&key, &parent.issuer).expect("signed");
    Ca {
        der: cert.der().clone(),
        pem: cert.pem(),
        issuer: Issuer::new(p, key),
    }
}

pub struct LeafOpts {
    pub cn: String,
    pub eku: Vec<ExtendedKeyUsagePurpose>,
    pub not_before: i64,
    pub not_after: i64,
    pub serial: u64,
    pub sans: Vec<String>,
    pub extra: Vec<rcgen::CustomExtension>,
}

impl Default for LeafOpts {
    fn default() -> Self {
        LeafOpts {
            cn: "client-1".into(),
            eku: vec![ExtendedKeyUsagePurpose::ClientAuth],
            not_before: NOW - 86_400,
            not_after: NOW + 86_400 * 90,
            serial: 0x1001,
            sans: vec!["client-1.test".into()],
            extra: vec![],
        }
    }
}

pub fn leaf_params(o: &LeafOpts) -> CertificateParams {
    let mut p = CertificateParams::new(o.sans.clone()).expect("params");
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, o.cn.as_str());
    p.extended_key_usages = o.eku.clone();
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.not_before = odt(o.not_before);
    p.not_after = odt(o.not_after);
    p.serial_number = Some(SerialNumber::from(o.serial));
    p.use_authority_key_identifier_extension = true;
    p.custom_extensions = o.extra.clone();
    p
}

pub fn leaf(parent: &Ca) -> CertificateDer<'static> {
    leaf_with(parent, &LeafOpts::default())
}

pub fn leaf_with(parent: &Ca, o: &LeafOpts) -> CertificateDer<'static> {
    let key = KeyPair::generate().expect("key");
    leaf_params(o)
        .signed_by(&key, &parent.issuer)
        .expect("signed")
        .der()
        .clone()
}

/// A CRL from `ca` revoking `serials`, valid [this_update, next_update).
pub fn crl(ca: &Ca, serials: &[u64], this_update: i64, next_update: i64, number: u64) -> Vec<u8> {
    let p = CertificateRevocationListParams {
        this_update: odt(this_update),
        next_update: odt(next_update),
        crl_number: SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from(*s),
                revocation_time: odt(this_update - 60),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    p.signed_by(&ca.issuer).expect("crl").der().to_vec()
}

pub fn fresh_crl(ca: &Ca, serials: &[u64], number: u64) -> Vec<u8> {
    crl(ca, serials, NOW - 3600, NOW + 86_400 * 7, number)
}

pub fn days(n: i64) -> i64 {
    Duration::days(n).whole_seconds()
}
