//! The domain types: what callers put in and get back. No SQL type leaks
//! out of this crate; times are Unix seconds (UTC).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Row id of an account.
pub type AccountId = i64;
/// Row id of an API token.
pub type TokenId = i64;
/// Row id of an uploaded CA.
pub type CaId = i64;
/// Row id of a hostname.
pub type HostnameId = i64;
/// Row id of an origin-pull certificate.
pub type OriginPullId = i64;
/// Monotonically increasing configuration version (0 = nothing yet).
pub type ConfigVersion = u64;

/// Default number of CAs an account may upload.
pub const DEFAULT_CA_LIMIT: u32 = 5;

/// Secret bytes (private keys, key references): never printed, zeroed on
/// drop, never serialized.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Secret {
        Secret(Zeroizing::new(bytes.into()))
    }
    /// The bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret elided]")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret::new(s.as_bytes().to_vec())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret::new(s.into_bytes())
    }
}

/// Who makes a change: written into the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// An API token (admin or account token).
    Token {
        /// The token's id.
        id: TokenId,
        /// Its public prefix (what an operator recognises).
        prefix: String,
    },
    /// Portcullis itself (bootstrap, maintenance).
    System,
}

impl Actor {
    /// The audit log's text for this actor: `token:<id>:<prefix>` or `system`.
    pub fn describe(&self) -> String {
        match self {
            Actor::Token { id, prefix } => format!("token:{id}:{prefix}"),
            Actor::System => "system".to_owned(),
        }
    }
}

/// A tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Id.
    pub id: AccountId,
    /// Unique display name.
    pub name: String,
    /// How many CAs the account may upload (`None`: the store default).
    pub ca_limit: Option<u32>,
    /// Creation time.
    pub created_at: i64,
}

/// Input of [`crate::Store::create_account`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAccount {
    /// Unique name.
    pub name: String,
    /// CA limit override.
    pub ca_limit: Option<u32>,
}

/// Partial update of an account; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountUpdate {
    /// New name.
    pub name: Option<String>,
    /// New CA limit (`Some(None)`: back to the default).
    pub ca_limit: Option<Option<u32>>,
}

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Read the account's resources.
    Read,
    /// Change the account's resources.
    Write,
    /// Everything, every account (only for tokens without an account).
    Admin,
}

impl Scope {
    /// `read`, `write` or `admin`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }
    /// Parses `read`, `write` or `admin`.
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// An API token as stored (the secret itself is never stored, only its
/// SHA-256).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Id.
    pub id: TokenId,
    /// The account it acts for; `None` for an operator (admin) token.
    pub account_id: Option<AccountId>,
    /// Label.
    pub name: String,
    /// Scopes, sorted, without duplicates.
    pub scopes: Vec<Scope>,
    /// The first characters of the secret, to recognise a token.
    pub prefix: String,
    /// Creation time.
    pub created_at: i64,
    /// Expiry, if any.
    pub expires_at: Option<i64>,
}

impl ApiToken {
    /// True when the token carries `scope` (admin implies every scope).
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&Scope::Admin) || self.scopes.contains(&scope)
    }
    /// The audit actor for this token.
    pub fn actor(&self) -> Actor {
        Actor::Token {
            id: self.id,
            prefix: self.prefix.clone(),
        }
    }
}

/// Input of [`crate::Store::create_token`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewToken {
    /// The account (`None`: an operator token; then `scopes` must be
    /// `[Admin]`).
    pub account_id: Option<AccountId>,
    /// Label.
    pub name: String,
    /// Scopes (non-empty).
    pub scopes: Vec<Scope>,
    /// Expiry.
    pub expires_at: Option<i64>,
    /// Use this secret instead of generating one (a bootstrap token taken
    /// from the environment). At least 32 characters.
    pub secret: Option<String>,
}

/// A token secret, shown once at creation.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(pub Zeroizing<String>);

impl TokenSecret {
    /// The secret text (`pcs_…`).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[token secret elided]")
    }
}

/// An uploaded CA (trust anchor set) of an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ca {
    /// Id.
    pub id: CaId,
    /// Owner.
    pub account_id: AccountId,
    /// Name, unique in the account.
    pub name: String,
    /// PEM bundle (root and/or intermediates).
    pub pem: String,
    /// Subject of the first certificate (RFC 4514).
    pub subject: String,
    /// Earliest expiry in the bundle.
    pub not_after: i64,
    /// Optional CRL (PEM).
    pub crl_pem: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// Input of [`crate::Store::create_ca`]. The caller validates the PEM
/// (CA constraints, expiry) and passes the facts it read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCa {
    /// Name, unique in the account.
    pub name: String,
    /// PEM bundle.
    pub pem: String,
    /// Subject.
    pub subject: String,
    /// Earliest expiry.
    pub not_after: i64,
    /// Optional CRL.
    pub crl_pem: Option<String>,
}

/// Client-certificate mode of a hostname.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MtlsMode {
    /// No certificate requested.
    #[default]
    Off,
    /// Requested; verdict forwarded in headers.
    Report,
    /// Requested; no valid certificate → block response.
    Enforce,
}

impl MtlsMode {
    /// `off`, `report` or `enforce`.
    pub const fn as_str(self) -> &'static str {
        match self {
            MtlsMode::Off => "off",
            MtlsMode::Report => "report",
            MtlsMode::Enforce => "enforce",
        }
    }
    /// Parses `off`, `report` or `enforce`.
    pub fn parse(s: &str) -> Option<MtlsMode> {
        match s {
            "off" => Some(MtlsMode::Off),
            "report" => Some(MtlsMode::Report),
            "enforce" => Some(MtlsMode::Enforce),
            _ => None,
        }
    }
}

/// What `enforce` answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockSettings {
    /// HTTP status (400–599).
    pub status: u16,
    /// Content type.
    pub content_type: String,
    /// Body (`None`: the gateway's default JSON body).
    pub body: Option<String>,
}

impl Default for BlockSettings {
    fn default() -> Self {
        BlockSettings {
            status: 403,
            content_type: "application/json".to_owned(),
            body: None,
        }
    }
}

/// Identity-header settings of a hostname.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderSettings {
    /// Standard header name → the name to send instead.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// Extra header name → certificate field (e.g. `subject.CN`, `san.uri`).
    #[serde(default)]
    pub map: BTreeMap<String, String>,
}

/// A hostname (custom hostname) as the API shows it: the private key is
/// never part of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hostname {
    /// Id.
    pub id: HostnameId,
    /// Owner.
    pub account_id: AccountId,
    /// SNI name (lowercase), unique across all accounts.
    pub name: String,
    /// Server certificate chain (PEM, leaf first).
    pub cert_pem: String,
    /// Origin base URL.
    pub origin: String,
    /// mTLS mode.
    pub mode: MtlsMode,
    /// Block response.
    pub block: BlockSettings,
    /// Header settings.
    pub headers: HeaderSettings,
    /// Edge policy (tokens, rules, rate limits) as one JSON document; never
    /// serialized here (it holds token secrets): see the `/edge` route.
    #[serde(skip)]
    pub edge: serde_json::Value,
    /// Associated CAs (sorted).
    pub ca_ids: Vec<CaId>,
    /// Also trust the account's managed CA.
    pub trust_managed_ca: bool,
    /// Origin-pull certificate used toward an `https://` origin.
    pub origin_pull_id: Option<OriginPullId>,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// Input of [`crate::Store::create_hostname`]. The caller validates the
/// name, certificate, key and origin.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewHostname {
    /// SNI name (stored lowercase).
    pub name: String,
    /// Server certificate chain (PEM).
    pub cert_pem: String,
    /// Server private key (PEM); stored sealed, never returned by the API
    /// types.
    pub key_pem: Secret,
    /// Origin URL.
    pub origin: String,
    /// Mode.
    pub mode: MtlsMode,
    /// Block response.
    pub block: BlockSettings,
    /// Header settings.
    pub headers: HeaderSettings,
    /// Associated CAs (must belong to the same account).
    pub ca_ids: Vec<CaId>,
    /// Trust the managed CA too.
    pub trust_managed_ca: bool,
    /// Origin-pull certificate (same account).
    pub origin_pull_id: Option<OriginPullId>,
}

impl Default for Secret {
    fn default() -> Self {
        Secret::new(Vec::new())
    }
}

/// Partial update of a hostname; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostnameUpdate {
    /// New certificate and key (together).
    pub cert: Option<(String, Secret)>,
    /// New origin.
    pub origin: Option<String>,
    /// New mode.
    pub mode: Option<MtlsMode>,
    /// New block response.
    pub block: Option<BlockSettings>,
    /// New header settings.
    pub headers: Option<HeaderSettings>,
    /// New edge policy (replaces the document; the caller validates it).
    pub edge: Option<serde_json::Value>,
    /// New CA association (replaces the set).
    pub ca_ids: Option<Vec<CaId>>,
    /// Trust the managed CA.
    pub trust_managed_ca: Option<bool>,
    /// Origin pull (`Some(None)`: none).
    pub origin_pull_id: Option<Option<OriginPullId>>,
}

/// The dedicated CA Portcullis runs for an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedCa {
    /// Owner.
    pub account_id: AccountId,
    /// CA certificate (PEM).
    pub cert_pem: String,
    /// Current CRL (PEM), if one was published.
    pub crl_pem: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// A certificate issued by an account's managed CA.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCert {
    /// Id.
    pub id: i64,
    /// Owner.
    pub account_id: AccountId,
    /// Serial, lowercase hex.
    pub serial: String,
    /// SHA-256 of the DER, lowercase hex.
    pub fingerprint: String,
    /// Subject (RFC 4514).
    pub subject: String,
    /// Validity start.
    pub not_before: i64,
    /// Validity end.
    pub not_after: i64,
    /// The certificate (PEM).
    pub pem: String,
    /// Issue time.
    pub created_at: i64,
    /// Revocation time.
    pub revoked_at: Option<i64>,
    /// Revocation reason.
    pub revocation_reason: Option<String>,
}

/// Input of [`crate::Store::record_issued_cert`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewIssuedCert {
    /// Serial, lowercase hex.
    pub serial: String,
    /// Fingerprint.
    pub fingerprint: String,
    /// Subject.
    pub subject: String,
    /// Validity start.
    pub not_before: i64,
    /// Validity end.
    pub not_after: i64,
    /// The certificate (PEM).
    pub pem: String,
}

/// A client certificate the gateway presents to an origin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginPull {
    /// Id.
    pub id: OriginPullId,
    /// Owner.
    pub account_id: AccountId,
    /// Name, unique in the account.
    pub name: String,
    /// Certificate chain (PEM).
    pub cert_pem: String,
    /// CAs the origin's server certificate must chain to (PEM).
    pub origin_ca_pem: String,
    /// Creation time.
    pub created_at: i64,
}

/// Input of [`crate::Store::create_origin_pull`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewOriginPull {
    /// Name.
    pub name: String,
    /// Certificate chain.
    pub cert_pem: String,
    /// Key (stored sealed).
    pub key_pem: Secret,
    /// Origin CAs.
    pub origin_ca_pem: String,
}

/// One stored verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Id (increasing).
    pub id: i64,
    /// Owner of the hostname, when known.
    pub account_id: Option<AccountId>,
    /// Hostname (SNI).
    pub hostname: String,
    /// Time (Unix seconds).
    pub at: i64,
    /// `none`, `valid` or `invalid`.
    pub verdict: String,
    /// Reason when invalid.
    pub reason: Option<String>,
    /// Client certificate SKI (hex).
    pub ski: Option<String>,
    /// Client certificate fingerprint (hex).
    pub fingerprint: Option<String>,
    /// Client IP.
    pub client_ip: Option<String>,
    /// What the gateway did: `forwarded` or `blocked`.
    pub action: String,
}

/// Input of [`crate::Store::record_events`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Hostname (the account is looked up from it).
    pub hostname: String,
    /// Time.
    pub at: i64,
    /// Verdict.
    pub verdict: String,
    /// Reason.
    pub reason: Option<String>,
    /// SKI.
    pub ski: Option<String>,
    /// Fingerprint.
    pub fingerprint: Option<String>,
    /// Client IP.
    pub client_ip: Option<String>,
    /// Action.
    pub action: String,
}

/// Filter of [`crate::Store::query_events`] and [`crate::Store::event_counts`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventQuery {
    /// Only this account's hostnames.
    pub account_id: Option<AccountId>,
    /// Only this hostname.
    pub hostname: Option<String>,
    /// Only this verdict.
    pub verdict: Option<String>,
    /// From (inclusive).
    pub from: Option<i64>,
    /// Until (exclusive).
    pub until: Option<i64>,
    /// Most rows (default and cap 1,000); newest first.
    pub limit: Option<u32>,
}

/// Events of one minute with one verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteCount {
    /// Start of the minute (Unix seconds, multiple of 60).
    pub minute: i64,
    /// Verdict.
    pub verdict: String,
    /// Count.
    pub count: u64,
}

/// An audit-log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Id (increasing).
    pub id: i64,
    /// Time.
    pub at: i64,
    /// Who ([`Actor::describe`]).
    pub actor: String,
    /// The account concerned, if any.
    pub account_id: Option<AccountId>,
    /// What (`hostname.create`, …).
    pub action: String,
    /// Which object (`hostname:api.acme.test`, …).
    pub target: String,
    /// Details (JSON, never secrets).
    pub detail: serde_json::Value,
}

/// Filter of [`crate::Store::list_audit`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// Only this account.
    pub account_id: Option<AccountId>,
    /// Entries with an id below this (paging backwards).
    pub before_id: Option<i64>,
    /// Most rows (default and cap 1,000); newest first.
    pub limit: Option<u32>,
}

/// Paging for lists: ids above `after_id`, ascending.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// Start after this id.
    pub after_id: Option<i64>,
    /// Most rows (default and cap 1,000).
    pub limit: Option<u32>,
}

/// What changed since a version: the hostnames to rebuild.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Changes {
    /// Nothing newer.
    UpToDate,
    /// These hostnames changed (added, updated, removed, or one of their
    /// CAs/CRLs/origin pulls changed) up to `version`.
    Hostnames {
        /// The version the caller is at after applying them.
        version: ConfigVersion,
        /// Names, sorted, without duplicates.
        names: Vec<String>,
    },
    /// The caller is too far behind (the feed was pruned): load everything.
    Full {
        /// Current version.
        version: ConfigVersion,
    },
}

/// A CA as the gateway needs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedCa {
    /// PEM bundle.
    pub pem: String,
    /// CRL (PEM).
    pub crl_pem: Option<String>,
}

/// Origin TLS as the gateway needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedOriginPull {
    /// Client certificate chain.
    pub cert_pem: String,
    /// Its key.
    pub key_pem: Secret,
    /// Origin CAs.
    pub origin_ca_pem: String,
}

/// One hostname as the gateway serves it, key included.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedHostname {
    /// SNI name.
    pub name: String,
    /// Owner.
    pub account_id: AccountId,
    /// Server certificate chain.
    pub cert_pem: String,
    /// Server key.
    pub key_pem: Secret,
    /// Origin URL.
    pub origin: String,
    /// Mode.
    pub mode: MtlsMode,
    /// Block response.
    pub block: BlockSettings,
    /// Header settings.
    pub headers: HeaderSettings,
    /// Edge policy document (`{}`: none).
    pub edge: serde_json::Value,
    /// Trusted CAs: keys of [`SnapshotData::cas`] (uploaded CAs as
    /// `ca:<id>`, the managed CA as `managed:<account>`), sorted.
    pub trust: Vec<String>,
    /// Origin pull.
    pub origin_pull: Option<ServedOriginPull>,
}

/// The store's state as the gateway needs it, at one version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotData {
    /// The version this data is consistent with.
    pub version: ConfigVersion,
    /// Hostnames (all, or the ones asked for that exist).
    pub hostnames: Vec<ServedHostname>,
    /// Every CA referenced by `hostnames`, by key.
    pub cas: BTreeMap<String, ServedCa>,
}
