//! CFSSL's signing configuration JSON, read into a raw form ([`ConfigFile`])
//! and validated into the policy that issuance follows ([`SigningPolicy`]).

use crate::duration::parse_go_duration;
use crate::{PkiError, Result};
use rcgen::{ExtendedKeyUsagePurpose as Eku, KeyUsagePurpose as Ku};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use zeroize::Zeroizing;

/// The config file as written (CFSSL's `config.json`). Unknown keys are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConfigFile {
    /// `signing.default` and `signing.profiles`.
    #[serde(default)]
    pub signing: Option<SigningFile>,
    /// Named HMAC keys for `authsign`.
    #[serde(default)]
    pub auth_keys: BTreeMap<String, AuthKeyFile>,
    /// Named remote CA servers.
    #[serde(default)]
    pub remotes: BTreeMap<String, String>,
}

/// `signing` section as written.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SigningFile {
    /// Profile used when a request names none.
    #[serde(default)]
    pub default: Option<ProfileFile>,
    /// Named profiles.
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileFile>,
}

/// A signing profile as written.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProfileFile {
    /// CFSSL usage strings (`signing`, `key encipherment`, `client auth`, …).
    #[serde(default)]
    pub usages: Vec<String>,
    /// Lifetime as a Go duration (`8760h`).
    #[serde(default)]
    pub expiry: String,
    /// How far NotBefore is set back (Go duration); default 5m.
    #[serde(default)]
    pub backdate: String,
    /// Name of the auth key required to sign with this profile.
    #[serde(default)]
    pub auth_key: String,
    /// Remote CA name (or URL) to forward requests to.
    #[serde(default)]
    pub remote: String,
    /// Remote CA with authenticated signing.
    #[serde(default)]
    pub auth_remote: Option<AuthRemoteFile>,
    /// CA certificate issuance permission.
    #[serde(default)]
    pub ca_constraint: Option<CaConstraintFile>,
    /// Regular expression every name in the request must match.
    #[serde(default)]
    pub name_whitelist: String,
    /// OCSP responder URL.
    #[serde(default)]
    pub ocsp_url: String,
    /// CRL distribution point URL.
    #[serde(default)]
    pub crl_url: String,
}

/// `auth_remote` as written.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthRemoteFile {
    /// Remote name from `remotes`, or a URL.
    #[serde(default)]
    pub remote: String,
    /// Auth key name from `auth_keys`.
    #[serde(default)]
    pub auth_key: String,
}

/// `ca_constraint` as written.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CaConstraintFile {
    /// Whether this profile issues CA certificates.
    #[serde(default)]
    pub is_ca: bool,
    /// Maximum path length of issued CAs.
    #[serde(default)]
    pub max_path_len: u8,
    /// Makes `max_path_len: 0` mean zero rather than "unset".
    #[serde(default)]
    pub max_path_len_zero: bool,
}

/// An auth key as written: `key` is hex, `env:VAR` or `file:PATH`.
#[derive(Clone, Default, Deserialize)]
pub struct AuthKeyFile {
    /// `standard` (the only type).
    #[serde(default, rename = "type")]
    pub kind: String,
    /// The key material reference.
    #[serde(default)]
    pub key: String,
}

impl std::fmt::Debug for AuthKeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthKeyFile")
            .field("kind", &self.kind)
            .field("key", &"[secret elided]")
            .finish()
    }
}

/// An HMAC key for authenticated signing. Never printed.
#[derive(Clone)]
pub struct AuthKey {
    /// Name in `auth_keys`.
    pub name: String,
    secret: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuthKey({:?}, [secret elided])", self.name)
    }
}

impl AuthKey {
    /// Makes a key from raw bytes.
    pub fn new(name: impl Into<String>, secret: Vec<u8>) -> Self {
        AuthKey {
            name: name.into(),
            secret: Zeroizing::new(secret),
        }
    }

    /// HMAC-SHA256 of `msg` under this key (CFSSL's authsign token).
    pub fn token(&self, msg: &[u8]) -> Vec<u8> {
        let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.secret);
        aws_lc_rs::hmac::sign(&k, msg).as_ref().to_vec()
    }

    /// Checks a token in constant time.
    pub fn verify(&self, msg: &[u8], token: &[u8]) -> bool {
        let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.secret);
        aws_lc_rs::hmac::verify(&k, msg, token).is_ok()
    }
}

/// CA issuance permission of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaConstraint {
    /// Maximum path length of issued CAs (`None`: not constrained by the profile).
    pub max_path_len: Option<u8>,
}

/// A validated signing profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Key usages.
    pub key_usages: Vec<Ku>,
    /// Extended key usages.
    pub extended_key_usages: Vec<Eku>,
    /// The usage strings as configured (for `info`).
    pub usage_names: Vec<String>,
    /// Lifetime of issued certificates.
    pub expiry: Duration,
    /// NotBefore set-back.
    pub backdate: Duration,
    /// Required auth key (authsign only).
    pub auth_key: Option<AuthKey>,
    /// Remote CA URL for this profile (`remote` or `auth_remote.remote`).
    pub remote: Option<String>,
    /// Auth key to use toward the remote (`auth_remote.auth_key`).
    pub remote_auth_key: Option<AuthKey>,
    /// Present when the profile issues CA certificates.
    pub ca: Option<CaConstraint>,
    /// Names must match this.
    pub name_whitelist: Option<regex::Regex>,
    /// OCSP URL for AIA.
    pub ocsp_url: Option<String>,
    /// CRL distribution point.
    pub crl_url: Option<String>,
}

/// The validated signing configuration.
#[derive(Debug, Clone)]
pub struct SigningPolicy {
    /// The profile for requests without a profile name.
    pub default: Profile,
    /// Named profiles.
    pub profiles: BTreeMap<String, Profile>,
    /// Named remotes (as URLs).
    pub remotes: BTreeMap<String, String>,
}

const DEFAULT_EXPIRY: Duration = Duration::from_secs(168 * 3600);
const DEFAULT_BACKDATE: Duration = Duration::from_secs(5 * 60);

fn usage(name: &str) -> Option<std::result::Result<Ku, Eku>> {
    use std::result::Result::{Err as E, Ok as K};
    Some(match name.to_ascii_lowercase().as_str() {
        "signing" | "digital signature" => K(Ku::DigitalSignature),
        "content commitment" => K(Ku::ContentCommitment),
        "key encipherment" => K(Ku::KeyEncipherment),
        "key agreement" => K(Ku::KeyAgreement),
        "data encipherment" => K(Ku::DataEncipherment),
        "cert sign" => K(Ku::KeyCertSign),
        "crl sign" => K(Ku::CrlSign),
        "encipher only" => K(Ku::EncipherOnly),
        "decipher only" => K(Ku::DecipherOnly),
        "any" => E(Eku::Any),
        "server auth" => E(Eku::ServerAuth),
        "client auth" => E(Eku::ClientAuth),
        "code signing" => E(Eku::CodeSigning),
        "email protection" | "s/mime" => E(Eku::EmailProtection),
        "ipsec end system" => E(Eku::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 5])),
        "ipsec tunnel" => E(Eku::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 6])),
        "ipsec user" => E(Eku::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 7])),
        "timestamping" => E(Eku::TimeStamping),
        "ocsp signing" => E(Eku::OcspSigning),
        "microsoft sgc" => E(Eku::Other(vec![1, 3, 6, 1, 4, 1, 311, 10, 3, 3])),
        "netscape sgc" => E(Eku::Other(vec![2, 16, 840, 1, 113730, 4, 1])),
        _ => return None,
    })
}

impl AuthKeyFile {
    /// Resolves the reference (hex, `env:VAR` or `file:PATH`) into the key
    /// named `name`; errors name the key, never show its bytes.
    pub fn resolve(&self, name: &str) -> Result<AuthKey> {
        resolve_key(name, self)
    }
}

/// Resolves an auth key reference: hex, `env:VAR` or `file:PATH`.
fn resolve_key(name: &str, f: &AuthKeyFile) -> Result<AuthKey> {
    if !f.kind.is_empty() && f.kind != "standard" {
        return Err(PkiError::BadConfig(format!(
            "auth key {name:?}: unknown type {:?} (only \"standard\")",
            f.kind
        )));
    }
    let text: Zeroizing<String> = if let Some(var) = f.key.strip_prefix("env:") {
        Zeroizing::new(std::env::var(var).map_err(|_| {
            PkiError::BadConfig(format!(
                "auth key {name:?}: environment variable {var} is not set"
            ))
        })?)
    } else if let Some(path) = f.key.strip_prefix("file:") {
        Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| {
                    PkiError::BadConfig(format!("auth key {name:?}: cannot read {path}: {e}"))
                })?
                .trim()
                .to_string(),
        )
    } else {
        Zeroizing::new(f.key.clone())
    };
    let bytes = hex::decode(text.trim())
        .map_err(|_| PkiError::BadConfig(format!("auth key {name:?}: key is not valid hex")))?;
    if bytes.is_empty() {
        return Err(PkiError::BadConfig(format!("auth key {name:?} is empty")));
    }
    Ok(AuthKey::new(name, bytes))
}

impl ConfigFile {
    /// Parses config JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|e| PkiError::BadConfig(e.to_string()))
    }
}

impl SigningPolicy {
    /// Parses and validates a CFSSL config in one go.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        Self::from_file(&ConfigFile::from_json(bytes)?)
    }

    /// CFSSL's built-in default: one week, signing + key encipherment + server/client auth.
    pub fn builtin() -> Self {
        let file = ConfigFile::default();
        // The default config is known-good: unreachable failure falls back below.
        Self::from_file(&file).unwrap_or_else(|_| unreachable!("built-in config is valid"))
    }

    /// Validates a parsed config, listing every problem found.
    pub fn from_file(file: &ConfigFile) -> Result<Self> {
        let mut problems = Vec::new();
        let mut keys = BTreeMap::new();
        for (name, k) in &file.auth_keys {
            match resolve_key(name, k) {
                Ok(k) => {
                    keys.insert(name.clone(), k);
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
        let remotes: BTreeMap<String, String> = file
            .remotes
            .iter()
            .map(|(k, v)| (k.clone(), remote_url(v)))
            .collect();
        let signing = file.signing.clone().unwrap_or_default();
        let default_file = signing.default.clone().unwrap_or_else(|| ProfileFile {
            usages: vec![
                "signing".into(),
                "key encipherment".into(),
                "server auth".into(),
                "client auth".into(),
            ],
            ..ProfileFile::default()
        });
        let mut build = |name: &str, p: &ProfileFile| -> Option<Profile> {
            match build_profile(name, p, &keys, &remotes) {
                Ok(p) => Some(p),
                Err(e) => {
                    problems.push(e);
                    None
                }
            }
        };
        let default = build("default", &default_file);
        let mut profiles = BTreeMap::new();
        for (name, p) in &signing.profiles {
            if let Some(p) = build(name, p) {
                profiles.insert(name.clone(), p);
            }
        }
        match default {
            Some(default) if problems.is_empty() => Ok(SigningPolicy {
                default,
                profiles,
                remotes,
            }),
            _ => Err(PkiError::BadConfig(problems.join("; "))),
        }
    }

    /// The profile for a request: empty name means `default`; an unknown
    /// name is an error (CFSSL silently falls back to the default; we do not).
    pub fn profile(&self, name: &str) -> Result<&Profile> {
        if name.is_empty() || name == "default" && !self.profiles.contains_key("default") {
            return Ok(&self.default);
        }
        self.profiles
            .get(name)
            .ok_or_else(|| PkiError::UnknownProfile(name.to_string()))
    }
}

/// CFSSL remotes may be `host:port`; we always speak URLs.
pub fn remote_url(r: &str) -> String {
    let r = r.trim().trim_end_matches('/');
    if r.contains("://") {
        r.to_string()
    } else {
        format!("http://{r}")
    }
}

fn build_profile(
    name: &str,
    p: &ProfileFile,
    keys: &BTreeMap<String, AuthKey>,
    remotes: &BTreeMap<String, String>,
) -> std::result::Result<Profile, String> {
    let mut key_usages = Vec::new();
    let mut extended_key_usages = Vec::new();
    for u in &p.usages {
        match usage(u) {
            Some(Ok(k)) => {
                if !key_usages.contains(&k) {
                    key_usages.push(k)
                }
            }
            Some(Err(e)) => {
                if !extended_key_usages.contains(&e) {
                    extended_key_usages.push(e)
                }
            }
            None => return Err(format!("profile {name:?}: unknown usage {u:?}")),
        }
    }
    let dur = |field: &str, s: &str, default: Duration| {
        if s.is_empty() {
            Ok(default)
        } else {
            parse_go_duration(s).map_err(|e| format!("profile {name:?}: {field}: {e}"))
        }
    };
    let expiry = dur("expiry", &p.expiry, DEFAULT_EXPIRY)?;
    if expiry.is_zero() {
        return Err(format!("profile {name:?}: expiry must be positive"));
    }
    let backdate = dur("backdate", &p.backdate, DEFAULT_BACKDATE)?;
    // Refused here so that a server never starts with a profile that
    // cannot sign (X.509 validity starts at 1950).
    let reaches_before_1950 = time::Duration::try_from(backdate)
        .ok()
        .and_then(|d| time::OffsetDateTime::now_utc().checked_sub(d))
        .is_none_or(|t| t.year() < 1950);
    if reaches_before_1950 {
        return Err(format!(
            "profile {name:?}: backdate {:?} reaches before 1950",
            p.backdate
        ));
    }
    let key = |k: &str| {
        keys.get(k)
            .cloned()
            .ok_or_else(|| format!("profile {name:?}: auth key {k:?} is not in auth_keys"))
    };
    let auth_key = if p.auth_key.is_empty() {
        None
    } else {
        Some(key(&p.auth_key)?)
    };
    let resolve_remote = |r: &str| -> std::result::Result<String, String> {
        if let Some(u) = remotes.get(r) {
            Ok(u.clone())
        } else if r.contains("://") || r.contains(':') {
            Ok(remote_url(r))
        } else {
            Err(format!("profile {name:?}: remote {r:?} is not in remotes"))
        }
    };
    let (remote, remote_auth_key) = match &p.auth_remote {
        Some(ar) if !ar.remote.is_empty() => {
            let k = if ar.auth_key.is_empty() {
                return Err(format!("profile {name:?}: auth_remote needs an auth_key"));
            } else {
                key(&ar.auth_key)?
            };
            (Some(resolve_remote(&ar.remote)?), Some(k))
        }
        _ if !p.remote.is_empty() => (Some(resolve_remote(&p.remote)?), auth_key.clone()),
        _ => (None, None),
    };
    let ca = p
        .ca_constraint
        .as_ref()
        .filter(|c| c.is_ca)
        .map(|c| CaConstraint {
            max_path_len: if c.max_path_len > 0 || c.max_path_len_zero {
                Some(c.max_path_len)
            } else {
                None
            },
        });
    let name_whitelist = if p.name_whitelist.is_empty() {
        None
    } else {
        Some(
            regex::Regex::new(&p.name_whitelist)
                .map_err(|e| format!("profile {name:?}: name_whitelist: {e}"))?,
        )
    };
    let opt = |s: &String| (!s.is_empty()).then(|| s.clone());
    Ok(Profile {
        key_usages,
        extended_key_usages,
        usage_names: p.usages.clone(),
        expiry,
        backdate,
        auth_key,
        remote,
        remote_auth_key,
        ca,
        name_whitelist,
        ocsp_url: opt(&p.ocsp_url),
        crl_url: opt(&p.crl_url),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = r#"{
      "signing": {
        "default": {"expiry": "168h"},
        "profiles": {
          "client": {"usages": ["signing","key encipherment","client auth"], "expiry": "8760h",
                     "auth_key": "k1", "name_whitelist": "^[a-z]+\\.acme\\.test$"},
          "remote-client": {"usages": ["client auth"], "expiry": "1h",
                            "auth_remote": {"remote": "ca", "auth_key": "k1"}},
          "intermediate": {"usages": ["cert sign","crl sign"], "expiry": "43800h",
                           "ca_constraint": {"is_ca": true, "max_path_len": 0, "max_path_len_zero": true}}
        }
      },
      "auth_keys": {"k1": {"type": "standard", "key": "0123456789ABCDEF0123456789ABCDEF"}},
      "remotes": {"ca": "127.0.0.1:8888"}
    }"#;

    #[test]
    fn parses_cfssl_config() {
        let p = SigningPolicy::from_json(CFG.as_bytes()).unwrap();
        let c = p.profile("client").unwrap();
        assert_eq!(c.expiry, Duration::from_secs(8760 * 3600));
        assert_eq!(c.extended_key_usages, vec![Eku::ClientAuth]);
        assert!(c.auth_key.is_some());
        let r = p.profile("remote-client").unwrap();
        assert_eq!(r.remote.as_deref(), Some("http://127.0.0.1:8888"));
        assert!(r.remote_auth_key.is_some());
        let i = p.profile("intermediate").unwrap();
        assert_eq!(
            i.ca,
            Some(CaConstraint {
                max_path_len: Some(0)
            })
        );
        assert!(matches!(
            p.profile("nope"),
            Err(PkiError::UnknownProfile(_))
        ));
        assert_eq!(
            p.profile("").unwrap().expiry,
            Duration::from_secs(168 * 3600)
        );
        assert!(!format!("{:?}", c.auth_key).contains("0123"));
    }

    #[test]
    fn lists_every_problem() {
        let bad = r#"{"signing":{"profiles":{
            "a":{"usages":["flying"]},
            "b":{"expiry":"forever"},
            "c":{"auth_key":"missing"}}}}"#;
        let e = SigningPolicy::from_json(bad.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("flying") && e.contains("forever") && e.contains("missing"),
            "{e}"
        );
    }

    #[test]
    fn auth_key_from_env_and_hmac() {
        std::env::set_var("PORTCULLIS_TEST_AUTHKEY", "00112233");
        let cfg = r#"{"auth_keys":{"e":{"type":"standard","key":"env:PORTCULLIS_TEST_AUTHKEY"}},
                      "signing":{"default":{"auth_key":"e"}}}"#;
        let p = SigningPolicy::from_json(cfg.as_bytes()).unwrap();
        let k = p.default.auth_key.clone().unwrap();
        let t = k.token(b"hello");
        assert!(k.verify(b"hello", &t));
        assert!(!k.verify(b"hellO", &t));
    }
}
