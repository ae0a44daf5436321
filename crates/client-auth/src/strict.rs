//! Checks rustls-webpki leaves out, run over x509-parser views of the path
//! webpki built (leaf first, trust anchor last) and over CRLs at load time.
//!
//! [`Strictness::Standard`] holds the RFC 5280 rules that certificates of
//! working deployments satisfy; [`Strictness::Strict`] adds rules that some
//! private PKIs break. The crate docs list both.

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension, X509Extension};
use x509_parser::oid_registry::{
    Oid, OID_PKIX_AUTHORITY_INFO_ACCESS, OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER,
    OID_X509_EXT_BASIC_CONSTRAINTS, OID_X509_EXT_CRL_DISTRIBUTION_POINTS, OID_X509_EXT_CRL_NUMBER,
    OID_X509_EXT_EXTENDED_KEY_USAGE, OID_X509_EXT_KEY_USAGE, OID_X509_EXT_NAME_CONSTRAINTS,
    OID_X509_EXT_POLICY_CONSTRAINTS, OID_X509_EXT_SUBJECT_ALT_NAME,
    OID_X509_EXT_SUBJECT_KEY_IDENTIFIER,
};
use x509_parser::public_key::PublicKey;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::store::{Crls, EkuPolicy, Policy, Strictness};
use crate::verdict::Reason;

/// Name constraints beyond this many subtrees in one certificate are
/// refused (denial of service: the comparisons grow as names × subtrees).
pub(crate) const MAX_NAME_CONSTRAINT_SUBTREES: usize = 1024;
/// Names with more attributes than this are refused (same reason).
pub(crate) const MAX_NAME_ATTRIBUTES: usize = 256;

/// A rule the path breaks.
#[derive(Debug, Clone)]
pub(crate) struct Violation {
    pub(crate) reason: Reason,
    pub(crate) detail: String,
}

impl Violation {
    /// The webpki error handed back from the path callback. webpki never
    /// returns `UnsupportedNameType` here (we do not check names), so it
    /// marks "refused by our checks" without ambiguity.
    pub(crate) fn as_webpki(&self) -> webpki::Error {
        webpki::Error::UnsupportedNameType
    }
}

fn v(reason: Reason, role: &str, what: impl std::fmt::Display) -> Violation {
    Violation {
        reason,
        detail: format!("{role}: {what}"),
    }
}

/// CRL rules checked when a CRL is loaded (Standard and above).
pub(crate) fn check_crl(crl: &CertificateRevocationList<'_>) -> Result<(), String> {
    let mut found = false;
    for ext in crl.extensions() {
        if ext.oid == OID_X509_EXT_CRL_NUMBER {
            if ext.critical {
                return Err("CRLNumber extension is critical (RFC 5280 5.2.3)".into());
            }
            found = true;
        }
    }
    if !found {
        return Err("CRLNumber extension is missing (RFC 5280 5.2.3)".into());
    }
    Ok(())
}

/// Check a path (DER, leaf first, anchor last) at Unix time `now`.
/// Returns the earliest notAfter of the path.
pub(crate) fn check_path(
    ders: &[&[u8]],
    crls: &Crls,
    now: u64,
    policy: &Policy,
) -> Result<u64, Violation> {
    let mut certs = Vec::with_capacity(ders.len());
    for (i, der) in ders.iter().enumerate() {
        match x509_parser::parse_x509_certificate(der) {
            Ok((_, c)) => certs.push(c),
            Err(e) => return Err(v(Reason::Malformed, &role(i, ders.len()), e)),
        }
    }
    let not_after = certs
        .iter()
        .map(|c| u64::try_from(c.validity().not_after.timestamp()).unwrap_or(0))
        .min()
        .unwrap_or(0);
    if policy.strictness == Strictness::WebpkiOnly {
        return Ok(not_after);
    }
    let n = certs.len();
    for (i, c) in certs.iter().enumerate() {
        let role = role(i, n);
        standard(c, i, n, &role, crls, now, policy)?;
        if policy.strictness >= Strictness::Strict {
            strict(c, i, n, &role, policy)?;
        }
    }
    Ok(not_after)
}

fn role(i: usize, n: usize) -> String {
    if i == 0 {
        "leaf".into()
    } else if i + 1 == n {
        "trust anchor".into()
    } else {
        format!("intermediate #{i}")
    }
}

fn ext<'a, 'b>(c: &'b X509Certificate<'a>, oid: &Oid<'_>) -> Option<&'b X509Extension<'a>> {
    c.extensions().iter().find(|e| &e.oid == oid)
}

fn self_issued(c: &X509Certificate<'_>) -> bool {
    c.subject().as_raw() == c.issuer().as_raw()
}

#[allow(clippy::too_many_arguments)]
fn standard(
    c: &X509Certificate<'_>,
    i: usize,
    n: usize,
    role: &str,
    crls: &Crls,
    now: u64,
    policy: &Policy,
) -> Result<(), Violation> {
    let is_leaf = i == 0;
    let is_anchor = i + 1 == n;
    let malformed = |what: &str| v(Reason::Malformed, role, what);

    for e in c.extensions() {
        if e.critical
            && (e.oid == OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER
                || e.oid == OID_X509_EXT_SUBJECT_KEY_IDENTIFIER)
        {
            return Err(malformed(
                "AKI/SKI extension marked critical (RFC 5280 4.2.1.1/2)",
            ));
        }
        if e.oid == OID_X509_EXT_POLICY_CONSTRAINTS && !e.critical {
            return Err(malformed(
                "policyConstraints not critical (RFC 5280 4.2.1.11)",
            ));
        }
        if let ParsedExtension::NameConstraints(nc) = e.parsed_extension() {
            if is_leaf {
                return Err(malformed("name constraints in an end-entity certificate"));
            }
            let p = nc.permitted_subtrees.as_ref().map_or(0, |s| s.len());
            let x = nc.excluded_subtrees.as_ref().map_or(0, |s| s.len());
            if p == 0 && x == 0 {
                return Err(malformed("empty name constraints (RFC 5280 4.2.1.10)"));
            }
            if p + x > MAX_NAME_CONSTRAINT_SUBTREES {
                return Err(v(
                    Reason::Other,
                    role,
                    format!("{} name-constraint subtrees exceed the limit of {MAX_NAME_CONSTRAINT_SUBTREES}", p + x),
                ));
            }
        }
        if e.oid == OID_X509_EXT_NAME_CONSTRAINTS
            && matches!(e.parsed_extension(), ParsedExtension::ParseError { .. })
        {
            return Err(malformed("undecodable name constraints"));
        }
    }
    for (name, which) in [(c.subject(), "subject"), (c.issuer(), "issuer")] {
        let count = name.iter_attributes().count();
        if count > MAX_NAME_ATTRIBUTES {
            return Err(v(
                Reason::Other,
                role,
                format!("{which} has {count} attributes, limit {MAX_NAME_ATTRIBUTES}"),
            ));
        }
    }
    if !is_leaf && c.subject().iter_attributes().next().is_none() {
        return Err(malformed(
            "CA certificate with an empty subject (RFC 5280 4.1.2.6)",
        ));
    }
    let ku = match ext(c, &OID_X509_EXT_KEY_USAGE).map(|e| e.parsed_extension()) {
        Some(ParsedExtension::KeyUsage(ku)) => Some(*ku),
        _ => None,
    };
    let bc_ca = match ext(c, &OID_X509_EXT_BASIC_CONSTRAINTS).map(|e| e.parsed_extension()) {
        Some(ParsedExtension::BasicConstraints(bc)) => bc.ca,
        _ => false,
    };
    if is_leaf {
        if ku.is_some_and(|k| k.key_cert_sign()) && !bc_ca {
            return Err(v(
                Reason::BadUsage,
                role,
                "keyCertSign without basicConstraints cA (RFC 5280 4.2.1.9)",
            ));
        }
        // The leaf's key signs the TLS CertificateVerify.
        if ku.is_some_and(|k| !k.digital_signature()) {
            return Err(v(
                Reason::BadUsage,
                role,
                "key usage lacks digitalSignature, needed to authenticate in TLS",
            ));
        }
        leaf_key(c, role, policy.strictness)?;
    }
    if is_anchor {
        let skew = policy.skew_secs as i64;
        let t = i64::try_from(now).unwrap_or(i64::MAX);
        let nb = c.validity().not_before.timestamp();
        let na = c.validity().not_after.timestamp();
        if t > na.saturating_add(skew) {
            return Err(v(
                Reason::Expired,
                role,
                format!("expired at {}", crate::verdict::rfc3339(na.max(0) as u64)),
            ));
        }
        if t < nb.saturating_sub(skew) {
            return Err(v(
                Reason::NotYetValid,
                role,
                format!(
                    "not valid before {}",
                    crate::verdict::rfc3339(nb.max(0) as u64)
                ),
            ));
        }
        const UNDERSTOOD: [Oid<'static>; 6] = [
            OID_X509_EXT_KEY_USAGE,
            OID_X509_EXT_SUBJECT_ALT_NAME,
            OID_X509_EXT_BASIC_CONSTRAINTS,
            OID_X509_EXT_NAME_CONSTRAINTS,
            OID_X509_EXT_EXTENDED_KEY_USAGE,
            OID_X509_EXT_CRL_DISTRIBUTION_POINTS,
        ];
        if let Some(e) = c
            .extensions()
            .iter()
            .find(|e| e.critical && !UNDERSTOOD.contains(&e.oid))
        {
            return Err(malformed(&format!(
                "unsupported critical extension {}",
                e.oid
            )));
        }
        if ku.is_some_and(|k| !k.key_cert_sign()) {
            return Err(v(Reason::BadUsage, role, "key usage lacks keyCertSign"));
        }
    }
    if !is_leaf {
        // This CA issued the next certificate down the path; a CRL under
        // its name is only authoritative if it may sign CRLs.
        let subject = c.subject().as_raw();
        if crls.issuers.iter().any(|iss| iss.as_slice() == subject)
            && ku.is_some_and(|k| !k.crl_sign())
        {
            return Err(v(
                Reason::Other,
                role,
                "issues a CRL but its key usage lacks cRLSign; revocation status unknown",
            ));
        }
    }
    Ok(())
}

/// The leaf's key must be one the TLS layer can accept a CertificateVerify
/// from: RSA 2048..=8192, ECDSA P-256/P-384/P-521, Ed25519.
fn leaf_key(c: &X509Certificate<'_>, role: &str, _s: Strictness) -> Result<(), Violation> {
    let spki = c.public_key();
    let bad = |what: String| v(Reason::BadSignature, role, what);
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => {
            let bits = rsa_bits(rsa.modulus);
            if !(2048..=8192).contains(&bits) {
                return Err(bad(format!("RSA key of {bits} bits")));
            }
        }
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") | Some("1.3.132.0.34") | Some("1.3.132.0.35") => {}
                other => return Err(bad(format!("EC key on unsupported curve {other:?}"))),
            }
        }
        Ok(PublicKey::Unknown(_)) if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => {}
        Ok(PublicKey::DSA(_)) => return Err(bad("DSA key".into())),
        Ok(_) => {
            return Err(bad(format!(
                "unsupported key algorithm {}",
                spki.algorithm.algorithm
            )))
        }
        Err(e) => return Err(v(Reason::Malformed, role, format!("public key: {e}"))),
    }
    Ok(())
}

fn rsa_bits(modulus: &[u8]) -> usize {
    let m: &[u8] = {
        let start = modulus
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(modulus.len());
        &modulus[start..]
    };
    match m.first() {
        Some(b) => m.len() * 8 - b.leading_zeros() as usize,
        None => 0,
    }
}

fn strict(
    c: &X509Certificate<'_>,
    i: usize,
    n: usize,
    role: &str,
    policy: &Policy,
) -> Result<(), Violation> {
    let is_leaf = i == 0;
    let is_anchor = i + 1 == n;
    let malformed = |what: &str| v(Reason::Malformed, role, what);

    if let Some(e) = c
        .extensions()
        .iter()
        .find(|e| matches!(e.parsed_extension(), ParsedExtension::ParseError { .. }))
    {
        return Err(malformed(&format!("undecodable extension {}", e.oid)));
    }
    // Serial: positive, at most 20 octets (RFC 5280 4.1.2.2). Not for
    // trust anchors: deployed public roots have serial 0.
    let serial = c.raw_serial();
    if !is_anchor && serial.len() > 20 {
        return Err(malformed("serial number longer than 20 octets"));
    }
    if !is_anchor && serial.iter().all(|b| *b == 0) {
        return Err(malformed("serial number is zero"));
    }
    // RSA modulus a whole number of bytes (CABF 6.1.5).
    if let Ok(PublicKey::RSA(rsa)) = c.public_key().parsed() {
        if rsa_bits(rsa.modulus) & 7 != 0 {
            return Err(malformed("RSA modulus size not a multiple of 8"));
        }
    }
    // AKI keyIdentifier in everything not self-issued (RFC 5280 4.2.1.1).
    let aki = match ext(c, &OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER).map(|e| e.parsed_extension()) {
        Some(ParsedExtension::AuthorityKeyIdentifier(a)) => Some(a),
        _ => None,
    };
    if !self_issued(c) && aki.and_then(|a| a.key_identifier.as_ref()).is_none() {
        return Err(malformed(
            "authorityKeyIdentifier keyIdentifier missing (RFC 5280 4.2.1.1)",
        ));
    }
    let ski = match ext(c, &OID_X509_EXT_SUBJECT_KEY_IDENTIFIER).map(|e| e.parsed_extension()) {
        Some(ParsedExtension::SubjectKeyIdentifier(k)) => Some(k.0),
        _ => None,
    };
    if !is_leaf && ski.is_none() {
        return Err(malformed(
            "CA certificate without subjectKeyIdentifier (RFC 5280 4.2.1.2)",
        ));
    }
    if let Some(nc) = ext(c, &OID_X509_EXT_NAME_CONSTRAINTS) {
        if !nc.critical {
            return Err(malformed(
                "name constraints not critical (RFC 5280 4.2.1.10)",
            ));
        }
        if let ParsedExtension::NameConstraints(nc) = nc.parsed_extension() {
            let all = nc
                .permitted_subtrees
                .iter()
                .chain(nc.excluded_subtrees.iter())
                .flatten();
            for s in all {
                if let GeneralName::DNSName(d) = s.base {
                    if d.starts_with('.') {
                        return Err(malformed("DNS name constraint with a leading period"));
                    }
                }
            }
        }
    }
    if let Some(aia) = ext(c, &OID_PKIX_AUTHORITY_INFO_ACCESS) {
        match aia.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(a) if !a.accessdescs.is_empty() => {}
            _ => return Err(malformed("malformed authorityInfoAccess")),
        }
    }
    if is_leaf {
        let empty_subject = c.subject().iter_attributes().next().is_none();
        if let Some(san) = ext(c, &OID_X509_EXT_SUBJECT_ALT_NAME) {
            if empty_subject && !san.critical {
                return Err(malformed(
                    "empty subject with a non-critical SAN (RFC 5280 4.2.1.6)",
                ));
            }
            if !empty_subject && san.critical {
                return Err(malformed("critical SAN with a non-empty subject (CABF)"));
            }
        }
        match ext(c, &OID_X509_EXT_EXTENDED_KEY_USAGE) {
            None => return Err(v(Reason::BadUsage, role, "no extendedKeyUsage (CABF)")),
            Some(e) => {
                if e.critical {
                    return Err(malformed("critical extendedKeyUsage (CABF)"));
                }
                if let ParsedExtension::ExtendedKeyUsage(eku) = e.parsed_extension() {
                    if eku.any && policy.eku != EkuPolicy::Any {
                        return Err(v(
                            Reason::BadUsage,
                            role,
                            "anyExtendedKeyUsage in a leaf (CABF)",
                        ));
                    }
                }
            }
        }
    }
    if is_anchor {
        match ext(c, &OID_X509_EXT_BASIC_CONSTRAINTS) {
            None => return Err(malformed("trust anchor without basicConstraints")),
            Some(e) if !e.critical => {
                return Err(malformed("trust anchor basicConstraints not critical"))
            }
            _ => {}
        }
        if ext(c, &OID_X509_EXT_EXTENDED_KEY_USAGE).is_some() {
            return Err(v(
                Reason::BadUsage,
                role,
                "trust anchor with extendedKeyUsage (CABF)",
            ));
        }
        // CABF root AKI rules, for self-signed roots only (an intermediate
        // trusted as an anchor has an AKI naming its issuer).
        if let Some(a) = aki.filter(|_| self_issued(c)) {
            let ok = a.authority_cert_issuer.is_none()
                && a.authority_cert_serial.is_none()
                && match (&a.key_identifier, ski) {
                    (Some(k), Some(s)) => k.0 == s,
                    _ => false,
                };
            if !ok {
                return Err(malformed(
                    "trust anchor AKI must hold only a keyIdentifier equal to its SKI (CABF)",
                ));
            }
        }
    }
    Ok(())
}
