//! CFSSL's certificate request JSON ("CSR JSON"): the subject, hosts, key
//! and CA options of a certificate to make.

use crate::key::{KeyRequest, PrivateKey};
use crate::{PkiError, Result};
use rcgen::{DistinguishedName, DnType, SanType};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// A CFSSL certificate request spec. Unknown keys are ignored, as CFSSL does.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CsrSpec {
    /// Common name.
    #[serde(rename = "CN", default)]
    pub cn: String,
    /// Subject name parts.
    #[serde(default, deserialize_with = "null_as_default")]
    pub names: Vec<NameSpec>,
    /// DNS names, IP addresses, email addresses and URIs for the SAN extension.
    #[serde(default, deserialize_with = "null_as_default")]
    pub hosts: Vec<String>,
    /// The key to generate.
    #[serde(default)]
    pub key: Option<KeyRequest>,
    /// CA options (only for `ca init` and CA requests).
    #[serde(default)]
    pub ca: Option<CaSpec>,
    /// Subject serialNumber attribute.
    #[serde(
        default,
        rename = "serialnumber",
        skip_serializing_if = "String::is_empty"
    )]
    pub serial_number: String,
}

/// One element of `names`: C, ST, L, O, OU.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[allow(non_snake_case)]
pub struct NameSpec {
    /// Country.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub C: Option<String>,
    /// State or province.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ST: Option<String>,
    /// Locality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub L: Option<String>,
    /// Organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub O: Option<String>,
    /// Organizational unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub OU: Option<String>,
}

/// CA options of a request: `{"expiry": "43800h", "pathlen": 1, "pathlenzero": false}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CaSpec {
    /// Lifetime as a Go duration; CFSSL's default for a root is 5 years.
    #[serde(default)]
    pub expiry: String,
    /// Maximum path length below this CA; 0 means unlimited unless `pathlenzero`.
    #[serde(default)]
    pub pathlen: u8,
    /// Makes `pathlen: 0` mean "no CA below this one".
    #[serde(default)]
    pub pathlenzero: bool,
}

fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// How CFSSL sorts an entry of `hosts` into a SAN type.
pub fn classify_host(h: &str) -> Result<SanType> {
    let h = h.trim();
    if h.is_empty() {
        return Err(PkiError::BadRequest("empty entry in hosts".into()));
    }
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let bad = |what: &str| PkiError::BadRequest(format!("{what} {h:?} in hosts is not valid"));
    if let Some((local, domain)) = h.split_once('@') {
        if !local.is_empty() && !domain.is_empty() && !h.contains(char::is_whitespace) {
            return Ok(SanType::Rfc822Name(h.try_into().map_err(|_| bad("email"))?));
        }
        return Err(bad("email"));
    }
    if let Some(idx) = h.find("://") {
        let scheme = &h[..idx];
        if !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return Ok(SanType::URI(h.try_into().map_err(|_| bad("URI"))?));
        }
        return Err(bad("URI"));
    }
    let valid_dns = h.len() <= 253
        && h.split('.').enumerate().all(|(i, label)| {
            (!label.is_empty() && label.len() <= 63)
                && (label == "*" && i == 0
                    || label
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        });
    if !valid_dns {
        return Err(bad("DNS name"));
    }
    Ok(SanType::DnsName(h.try_into().map_err(|_| bad("DNS name"))?))
}

/// Converts a list of hosts into SANs, rejecting any invalid entry.
pub fn hosts_to_sans(hosts: &[String]) -> Result<Vec<SanType>> {
    hosts.iter().map(|h| classify_host(h)).collect()
}

impl CsrSpec {
    /// Parses CSR JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let spec: CsrSpec =
            serde_json::from_slice(bytes).map_err(|e| PkiError::BadCsrJson(e.to_string()))?;
        spec.validate()?;
        Ok(spec)
    }

    /// Checks what can be checked without making anything.
    pub fn validate(&self) -> Result<()> {
        if self.cn.is_empty() && self.hosts.is_empty() && self.names.is_empty() {
            return Err(PkiError::BadCsrJson(
                "the request has no CN, no names and no hosts".into(),
            ));
        }
        self.key_request().algorithm()?;
        hosts_to_sans(&self.hosts)?;
        if let Some(ca) = &self.ca {
            if !ca.expiry.is_empty() {
                let d = crate::duration::parse_go_duration(&ca.expiry)
                    .map_err(|e| PkiError::BadCsrJson(format!("ca.expiry: {e}")))?;
                if d.is_zero() {
                    return Err(PkiError::BadCsrJson(
                        "ca.expiry must be positive (leave it out for the default)".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The key request, defaulting to ECDSA P-256.
    pub fn key_request(&self) -> KeyRequest {
        self.key.clone().unwrap_or_default()
    }

    /// The subject in CFSSL's (Go's) attribute order: C, ST, L, O, OU, CN,
    /// serialNumber. rcgen keeps one value per attribute type, so the last
    /// of repeated `names` values wins.
    pub fn distinguished_name(&self) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        let mut push_all = |ty: DnType, get: fn(&NameSpec) -> &Option<String>| {
            for n in &self.names {
                if let Some(v) = get(n).as_deref().filter(|v| !v.is_empty()) {
                    // X.520 asks for PrintableString where the value allows
                    // it (countries always); UTF8String otherwise.
                    match rcgen::string::PrintableString::try_from(v) {
                        Ok(p) => dn.push(ty.clone(), rcgen::DnValue::PrintableString(p)),
                        Err(_) => dn.push(ty.clone(), v),
                    }
                }
            }
        };
        push_all(DnType::CountryName, |n| &n.C);
        push_all(DnType::StateOrProvinceName, |n| &n.ST);
        push_all(DnType::LocalityName, |n| &n.L);
        push_all(DnType::OrganizationName, |n| &n.O);
        push_all(DnType::OrganizationalUnitName, |n| &n.OU);
        if !self.cn.is_empty() {
            dn.push(DnType::CommonName, self.cn.as_str());
        }
        if !self.serial_number.is_empty() {
            // id-at-serialNumber (2.5.4.5)
            dn.push(
                DnType::CustomDnType(vec![2, 5, 4, 5]),
                match rcgen::string::PrintableString::try_from(self.serial_number.as_str()) {
                    Ok(p) => rcgen::DnValue::PrintableString(p),
                    Err(_) => rcgen::DnValue::Utf8String(self.serial_number.clone()),
                },
            );
        }
        dn
    }

    /// Certificate parameters (subject and SANs) for this request.
    pub fn params(&self) -> Result<rcgen::CertificateParams> {
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name = self.distinguished_name();
        p.subject_alt_names = hosts_to_sans(&self.hosts)?;
        Ok(p)
    }

    /// Generates a key and a PKCS#10 CSR (PEM) for this spec, on this machine.
    pub fn generate(&self) -> Result<(PrivateKey, String)> {
        let key = PrivateKey::generate(self.key_request().algorithm()?)?;
        let params = self.params()?;
        let csr = params
            .serialize_request(&key)
            .map_err(|e| PkiError::Generate(format!("CSR: {e}")))?;
        let pem = csr
            .pem()
            .map_err(|e| PkiError::Generate(format!("CSR PEM: {e}")))?;
        Ok((key, pem))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_hosts_like_cfssl() {
        assert!(matches!(
            classify_host("127.0.0.1").unwrap(),
            SanType::IpAddress(_)
        ));
        assert!(matches!(
            classify_host("::1").unwrap(),
            SanType::IpAddress(_)
        ));
        assert!(matches!(
            classify_host("ops@example.com").unwrap(),
            SanType::Rfc822Name(_)
        ));
        assert!(matches!(
            classify_host("spiffe://acme.test/ns/prod/sa/api").unwrap(),
            SanType::URI(_)
        ));
        assert!(matches!(
            classify_host("api.acme.test").unwrap(),
            SanType::DnsName(_)
        ));
        assert!(matches!(
            classify_host("*.acme.test").unwrap(),
            SanType::DnsName(_)
        ));
        assert!(classify_host("bad host").is_err());
        assert!(classify_host("").is_err());
        assert!(classify_host("a..b").is_err());
    }

    #[test]
    fn parses_cfssl_csr_json() {
        let j = br#"{"CN":"svc","hosts":["svc.test","10.0.0.1"],"key":{"algo":"rsa","size":2048},
            "names":[{"C":"US","ST":"CA","L":"SF","O":"Acme","OU":"Ops"}],"unknown":1}"#;
        let s = CsrSpec::from_json(j).unwrap();
        assert_eq!(s.cn, "svc");
        assert_eq!(s.hosts.len(), 2);
        let null_hosts = CsrSpec::from_json(br#"{"CN":"x","hosts":null}"#).unwrap();
        assert!(null_hosts.hosts.is_empty());
    }

    #[test]
    fn rejects_bad_json() {
        assert!(matches!(
            CsrSpec::from_json(b"{"),
            Err(PkiError::BadCsrJson(_))
        ));
        assert!(matches!(
            CsrSpec::from_json(b"{}"),
            Err(PkiError::BadCsrJson(_))
        ));
        assert!(matches!(
            CsrSpec::from_json(br#"{"CN":"x","key":{"algo":"rsa","size":1024}}"#),
            Err(PkiError::BadKeyRequest(_))
        ));
        assert!(CsrSpec::from_json(br#"{"CN":"x","hosts":["no spaces allowed"]}"#).is_err());
    }
}
