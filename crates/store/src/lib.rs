//! The Portcullis control-plane store: accounts, API tokens, CAs,
//! hostnames, the managed CA per account, origin-pull certificates, events,
//! the audit log and the configuration change feed, behind one [`Store`]
//! trait with two backends: SQLite (embedded, one WAL file under the data
//! dir) and PostgreSQL (a fleet's shared truth).
//!
//! Every change runs in one transaction with its audit entry; a change that
//! affects what gateways serve also bumps the configuration version and
//! records which hostnames changed ([`Store::changes_since`]), and the new
//! version is announced to [`Store::subscribe`]rs (SQLite: in-process;
//! PostgreSQL: `LISTEN/NOTIFY` plus a periodic check).
//!
//! ```no_run
//! # async fn run() -> Result<(), store::StoreError> {
//! use store::{Actor, NewAccount, Store};
//! let db = store::open_sqlite("data/portcullis.db".as_ref(), store::StoreOptions::default()).await?;
//! let acme = db.create_account(&Actor::System, NewAccount { name: "acme".into(), ca_limit: None }).await?;
//! println!("account {} at version {}", acme.id, db.config_version().await?);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod db;
mod error;
mod migrations;
mod model;
mod ops;
mod seal;
mod sql;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

pub use error::{Result, StoreError};
pub use model::*;

use db::{announce, Db, OpFuture};
use seal::Sealer;
use sql::Tx;

/// Which backend a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// How a store is opened.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// CAs per account when the account sets no limit (default 5).
    pub default_ca_limit: u32,
    /// 32-byte key sealing private keys at rest (AES-256-GCM). `None`:
    /// keys are stored unencrypted (still never returned by the API types).
    pub secret_key: Option<[u8; 32]>,
    /// PostgreSQL: use this schema (created if missing) instead of the
    /// connection's default; lowercase letters, digits and `_`.
    pub pg_schema: Option<String>,
    /// PostgreSQL: connections in the pool (default 4).
    pub pg_pool_size: usize,
    /// PostgreSQL: how often the version is checked besides NOTIFY
    /// (default 2 s).
    pub poll_interval: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            default_ca_limit: DEFAULT_CA_LIMIT,
            secret_key: None,
            pg_schema: None,
            pg_pool_size: 4,
            poll_interval: Duration::from_secs(2),
        }
    }
}

/// The store. Every method is one transaction. Account-scoped methods take
/// the account id and answer [`StoreError::NotFound`] for another
/// account's object, so tenant isolation does not depend on the caller
/// remembering to compare ids.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The backend.
    fn backend(&self) -> Backend;

    // ---- accounts
    /// Creates an account.
    async fn create_account(&self, actor: &Actor, new: NewAccount) -> Result<Account>;
    /// Creates an account and its managed CA in one transaction: a crash
    /// leaves both or neither (never an account without its CA, whose
    /// name a retry could then not take).
    async fn create_account_with_managed_ca(
        &self,
        actor: &Actor,
        new: NewAccount,
        cert_pem: String,
        key: Secret,
    ) -> Result<(Account, ManagedCa)>;
    /// One account.
    async fn get_account(&self, id: AccountId) -> Result<Account>;
    /// Accounts by id.
    async fn list_accounts(&self, page: Page) -> Result<Vec<Account>>;
    /// Renames or changes the CA limit.
    async fn update_account(
        &self,
        actor: &Actor,
        id: AccountId,
        update: AccountUpdate,
    ) -> Result<Account>;
    /// Deletes an account and everything it owns (its hostnames stop
    /// being served).
    async fn delete_account(&self, actor: &Actor, id: AccountId) -> Result<()>;

    // ---- tokens
    /// Creates a token; the secret is returned only here.
    async fn create_token(&self, actor: &Actor, new: NewToken) -> Result<(ApiToken, TokenSecret)>;
    /// The token a secret belongs to (not expired), if any.
    async fn authenticate(&self, secret: &str) -> Result<Option<ApiToken>>;
    /// Tokens of an account, or the operator tokens (`None`).
    async fn list_tokens(&self, account: Option<AccountId>) -> Result<Vec<ApiToken>>;
    /// Number of operator (admin) tokens: 0 means bootstrap is due.
    async fn count_admin_tokens(&self) -> Result<u64>;
    /// Deletes a token; `account`: only if it belongs to that account.
    async fn delete_token(
        &self,
        actor: &Actor,
        account: Option<AccountId>,
        id: TokenId,
    ) -> Result<()>;

    // ---- CAs
    /// Uploads a CA (the caller has validated it); enforces the limit.
    async fn create_ca(&self, actor: &Actor, account: AccountId, new: NewCa) -> Result<Ca>;
    /// One CA.
    async fn get_ca(&self, account: AccountId, id: CaId) -> Result<Ca>;
    /// An account's CAs.
    async fn list_cas(&self, account: AccountId) -> Result<Vec<Ca>>;
    /// Sets or clears a CA's CRL (the caller has validated it).
    async fn set_ca_crl(
        &self,
        actor: &Actor,
        account: AccountId,
        id: CaId,
        crl_pem: Option<String>,
    ) -> Result<Ca>;
    /// Deletes a CA; refused with [`StoreError::InUse`] while hostnames
    /// use it unless `cascade` (then they are dissociated).
    async fn delete_ca(
        &self,
        actor: &Actor,
        account: AccountId,
        id: CaId,
        cascade: bool,
    ) -> Result<()>;

    // ---- hostnames
    /// Creates a hostname (name unique across all accounts).
    async fn create_hostname(
        &self,
        actor: &Actor,
        account: AccountId,
        new: NewHostname,
    ) -> Result<Hostname>;
    /// Imports many hostnames in one transaction (all or nothing, one
    /// version); the number created. A name already taken is a
    /// [`StoreError::Conflict`].
    async fn create_hostnames(
        &self,
        actor: &Actor,
        account: AccountId,
        new: Vec<NewHostname>,
    ) -> Result<u64>;
    /// One hostname.
    async fn get_hostname(&self, account: AccountId, id: HostnameId) -> Result<Hostname>;
    /// A hostname by name, any account (for operators and the gateway).
    async fn find_hostname(&self, name: &str) -> Result<Option<Hostname>>;
    /// An account's hostnames by id.
    async fn list_hostnames(&self, account: AccountId, page: Page) -> Result<Vec<Hostname>>;
    /// Changes a hostname (settings, certificate, CA association).
    async fn update_hostname(
        &self,
        actor: &Actor,
        account: AccountId,
        id: HostnameId,
        update: HostnameUpdate,
    ) -> Result<Hostname>;
    /// Deletes a hostname.
    async fn delete_hostname(
        &self,
        actor: &Actor,
        account: AccountId,
        id: HostnameId,
    ) -> Result<()>;

    // ---- managed CA
    /// Creates or replaces the account's managed CA (certificate and key
    /// or key reference, sealed at rest).
    async fn put_managed_ca(
        &self,
        actor: &Actor,
        account: AccountId,
        cert_pem: String,
        key: Secret,
    ) -> Result<ManagedCa>;
    /// The managed CA.
    async fn get_managed_ca(&self, account: AccountId) -> Result<ManagedCa>;
    /// The managed CA's key (to sign with; never for an API answer).
    async fn managed_ca_key(&self, account: AccountId) -> Result<Secret>;
    /// Publishes a new CRL of the managed CA.
    async fn set_managed_ca_crl(
        &self,
        actor: &Actor,
        account: AccountId,
        crl_pem: String,
    ) -> Result<()>;
    /// Records a certificate the managed CA issued.
    async fn record_issued_cert(
        &self,
        actor: &Actor,
        account: AccountId,
        new: NewIssuedCert,
    ) -> Result<IssuedCert>;
    /// One issued certificate by serial (hex).
    async fn get_issued_cert(&self, account: AccountId, serial: &str) -> Result<IssuedCert>;
    /// Issued certificates by id.
    async fn list_issued_certs(&self, account: AccountId, page: Page) -> Result<Vec<IssuedCert>>;
    /// Revoked serials with revocation times (to build the CRL).
    async fn revoked_serials(&self, account: AccountId) -> Result<Vec<(String, i64)>>;
    /// Marks a certificate revoked and, in the same transaction, publishes
    /// the new CRL (`new_crl_pem`), so gateways follow at once.
    async fn revoke_issued_cert(
        &self,
        actor: &Actor,
        account: AccountId,
        serial: &str,
        reason: &str,
        new_crl_pem: Option<String>,
    ) -> Result<IssuedCert>;

    // ---- origin pulls
    /// Stores an origin-pull certificate.
    async fn create_origin_pull(
        &self,
        actor: &Actor,
        account: AccountId,
        new: NewOriginPull,
    ) -> Result<OriginPull>;
    /// One origin pull.
    async fn get_origin_pull(&self, account: AccountId, id: OriginPullId) -> Result<OriginPull>;
    /// An account's origin pulls.
    async fn list_origin_pulls(&self, account: AccountId) -> Result<Vec<OriginPull>>;
    /// Deletes one (refused while a hostname uses it).
    async fn delete_origin_pull(
        &self,
        actor: &Actor,
        account: AccountId,
        id: OriginPullId,
    ) -> Result<()>;

    // ---- events
    /// Stores a batch of events (one transaction).
    async fn record_events(&self, events: Vec<NewEvent>) -> Result<u64>;
    /// Events, newest first.
    async fn query_events(&self, query: EventQuery) -> Result<Vec<Event>>;
    /// Per-minute counts by verdict.
    async fn event_counts(&self, query: EventQuery) -> Result<Vec<MinuteCount>>;
    /// Deletes events older than `older_than` and beyond the newest
    /// `keep_max`; the number deleted.
    async fn prune_events(&self, older_than: i64, keep_max: u64) -> Result<u64>;

    // ---- audit
    /// Audit entries, newest first.
    async fn list_audit(&self, query: AuditQuery) -> Result<Vec<AuditEntry>>;

    // ---- configuration feed
    /// The current configuration version.
    async fn config_version(&self) -> Result<ConfigVersion>;
    /// What changed after `since`.
    async fn changes_since(&self, since: ConfigVersion) -> Result<Changes>;
    /// Forgets change records more than `keep` versions old (callers that
    /// far behind get [`Changes::Full`]).
    async fn prune_changes(&self, keep: u64) -> Result<u64>;
    /// What gateways serve: everything, or only the named hostnames.
    async fn snapshot(&self, only: Option<Vec<String>>) -> Result<SnapshotData>;
    /// Announces each new version (within this process at once; from other
    /// processes via NOTIFY or the periodic check).
    fn subscribe(&self) -> watch::Receiver<ConfigVersion>;
}

/// The [`Store`] on either backend.
pub struct SqlStore {
    db: Db,
    sealer: Arc<Sealer>,
    options: StoreOptions,
    version: Arc<watch::Sender<u64>>,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend())
            .field("sealer", &self.sealer)
            .finish()
    }
}

/// Opens (creating and migrating) an SQLite store at `path`.
pub async fn open_sqlite(path: &Path, options: StoreOptions) -> Result<Arc<SqlStore>> {
    let p = path.to_owned();
    let sqlite = tokio::task::spawn_blocking(move || db::Sqlite::open(&p))
        .await
        .map_err(|e| StoreError::Internal(e.to_string()))??;
    SqlStore::finish(Db::Sqlite(Arc::new(sqlite)), options).await
}

/// Opens (migrating) a PostgreSQL store; starts the change listener.
pub async fn open_postgres(url: &str, options: StoreOptions) -> Result<Arc<SqlStore>> {
    let pg =
        Arc::new(db::Postgres::open(url, options.pg_schema.clone(), options.pg_pool_size).await?);
    let store = SqlStore::finish(Db::Postgres(pg.clone()), options).await?;
    pg.listen(store.version.clone(), store.options.poll_interval);
    Ok(store)
}

/// Opens `postgres://…`/`postgresql://…` URLs with PostgreSQL, anything
/// else as an SQLite file path.
pub async fn open(location: &str, options: StoreOptions) -> Result<Arc<dyn Store>> {
    if location.starts_with("postgres://") || location.starts_with("postgresql://") {
        Ok(open_postgres(location, options).await?)
    } else {
        Ok(open_sqlite(Path::new(location), options).await?)
    }
}

/// Reads the 32-byte store key at `path`, creating it (random, mode 0600)
/// when missing.
pub fn load_or_create_key(path: &Path) -> Result<[u8; 32]> {
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    let io = |e: std::io::Error| StoreError::Io(format!("{}: {e}", path.display()));
    match std::fs::read(path) {
        Ok(b) => {
            let text = String::from_utf8_lossy(&b);
            let raw = hex::decode(text.trim())
                .map_err(|_| StoreError::Io(format!("{}: not a hex key", path.display())))?;
            raw.try_into().map_err(|_| {
                StoreError::Io(format!("{}: the key must be 32 bytes", path.display()))
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            SystemRandom::new()
                .fill(&mut key)
                .map_err(|_| StoreError::Internal("no randomness".into()))?;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(path).map_err(io)?;
            std::io::Write::write_all(&mut f, hex::encode(key).as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
            Ok(key)
        }
        Err(e) => Err(io(e)),
    }
}

/// Seals secrets with a store key the way the store does (AES-256-GCM),
/// for copies kept outside the store (a fleet node's local snapshot).
#[derive(Debug)]
pub struct KeySealer(Sealer);

impl KeySealer {
    /// With `key`; `None` keeps secrets as they are (behind a marker).
    pub fn new(key: Option<&[u8; 32]>) -> Result<KeySealer> {
        Ok(KeySealer(Sealer::new(key)?))
    }
    /// Seals `secret`; `context` must be given again to open it.
    pub fn seal(&self, secret: &Secret, context: &str) -> Result<Vec<u8>> {
        self.0.seal(secret, context)
    }
    /// Opens what [`KeySealer::seal`] sealed.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Secret> {
        self.0.open(sealed, context)
    }
}

macro_rules! run {
    ($self:ident, $write:expr, |$tx:ident| $body:expr) => {
        $self
            .run($write, move |$tx: &mut Tx<'_>| -> OpFuture<'_, _> {
                Box::pin(async move { $body })
            })
            .await
    };
}

impl SqlStore {
    async fn finish(db: Db, options: StoreOptions) -> Result<Arc<SqlStore>> {
        let sealer = Arc::new(Sealer::new(options.secret_key.as_ref())?);
        let (tx, _) = watch::channel(0);
        let store = SqlStore {
            db,
            sealer,
            options,
            version: Arc::new(tx),
        };
        let v = store.config_version().await?;
        announce(&store.version, v);
        Ok(Arc::new(store))
    }

    async fn run<T, F>(&self, write: bool, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut Tx<'a>) -> OpFuture<'a, T> + Send + 'static,
    {
        let (v, bumped) = self.db.run(write, f).await?;
        if let Some(b) = bumped {
            announce(&self.version, b);
        }
        Ok(v)
    }
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    async fn create_account(&self, actor: &Actor, new: NewAccount) -> Result<Account> {
        let actor = actor.clone();
        run!(self, true, |tx| ops::create_account(tx, &actor, &new).await)
    }
    async fn create_account_with_managed_ca(
        &self,
        actor: &Actor,
        new: NewAccount,
        cert_pem: String,
        key: Secret,
    ) -> Result<(Account, ManagedCa)> {
        let actor = actor.clone();
        let s = self.sealer.clone();
        run!(self, true, |tx| {
            let account = ops::create_account(tx, &actor, &new).await?;
            let m = ops::put_managed_ca(tx, &actor, account.id, &cert_pem, &key, &s).await?;
            Ok((account, m))
        })
    }
    async fn get_account(&self, id: AccountId) -> Result<Account> {
        run!(self, false, |tx| ops::get_account(tx, id).await)
    }
    async fn list_accounts(&self, page: Page) -> Result<Vec<Account>> {
        run!(self, false, |tx| ops::list_accounts(tx, page).await)
    }
    async fn update_account(
        &self,
        actor: &Actor,
        id: AccountId,
        update: AccountUpdate,
    ) -> Result<Account> {
        let actor = actor.clone();
        run!(self, true, |tx| ops::update_account(
            tx, &actor, id, &update
        )
        .await)
    }
    async fn delete_account(&self, actor: &Actor, id: AccountId) -> Result<()> {
        let actor = actor.clone();
        run!(self, true, |tx| ops::delete_account(tx, &actor, id).await)
    }

    async fn create_token(&self, actor: &Actor, new: NewToken) -> Result<(ApiToken, TokenSecret)> {
        let actor = actor.clone();
        run!(self, true, |tx| ops::create_token(tx, &actor, &new).await)
    }
    async fn authenticate(&self, secret: &str) -> Result<Option<ApiToken>> {
        let secret = zeroize::Zeroizing::new(secret.to_owned());
        run!(self, false, |tx| ops::authenticate(tx, &secret).await)
    }
    async fn list_tokens(&self, account: Option<AccountId>) -> Result<Vec<ApiToken>> {
        run!(self, false, |tx| ops::list_tokens(tx, account).await)
    }
    async fn count_admin_tokens(&self) -> Result<u64> {
        run!(self, false, |tx| ops::count_admin_tokens(tx).await)
    }
    async fn delete_token(
        &self,
        actor: &Actor,
        account: Option<AccountId>,
        id: TokenId,
    ) -> Result<()> {
        let actor = actor.clone();
        run!(self, true, |tx| ops::delete_token(tx, &actor, account, id)
            .await)
    }

    async fn create_ca(&self, actor: &Actor, account: AccountId, new: NewCa) -> Result<Ca> {
        let actor = actor.clone();
        let lim = self.options.default_ca_limit;
        run!(self, true, |tx| ops::create_ca(
            tx, &actor, account, &new, lim
        )
        .await)
    }
    async fn get_ca(&self, account: AccountId, id: CaId) -> Result<Ca> {
        run!(self, false, |tx| ops::get_ca(tx, account, id).await)
    }
    async fn list_cas(&self, account: AccountId) -> Result<Vec<Ca>> {
        run!(self, false, |tx| ops::list_cas(tx, account).await)
    }
    async fn set_ca_crl(
        &self,
        actor: &Actor,
        account: AccountId,
        id: CaId,
        crl_pem: Option<String>,
    ) -> Result<Ca> {
        let actor = actor.clone();
        run!(self, true, |tx| ops::set_ca_crl(
            tx,
            &actor,
            account,
            id,
            crl_pem.as_deref()
        )
        .await)
    }
    async fn delete_ca(
        &self,
        actor: &Actor,
        account: AccountId,
        id: CaId,
        cascade: bool,
    ) -> Result<()> {
        let actor = actor.clone();
        run!(self, true, |tx| ops::delete_ca(
            tx, &actor, account, id, cascade
        )
        .await)
    }

    async fn create_hostname(
        &self,
        actor: &Actor,
        account: AccountId,
        new: NewHostname,
    ) -> Result<Hostname> {
        let actor = actor.clone();
        let s = self.sealer.clone();
        run!(self, true, |tx| ops::create_hostname(
            tx, &actor, account, &new, &s
        )
        .await)
    }
    async fn create_hostnames(
        &self,
        actor: &Actor,
        account: AccountId,
        new: Vec<NewHostname>,
    ) -> Result<u64> {
        let actor = actor.clone();
        let s = self.sealer.clone();
        run!(self, true, |tx| ops::create_hostnames(
            tx, &actor, account, &new, &s
        )
        .await)
    }
    async fn get_hostname(&self, account: AccountId, id: HostnameId) -> Result<Hostname> {
        run!(self, false, |tx| ops::get_hostname(tx, account, id).await)
    }
    async fn find_hostname(&self, name: &str) -> Result<Option<Hostname>> {
        let name = name.to_owned();
        run!(self, false, |tx| ops::find_hostname(tx, &name).await)
    }
    async fn list_hostnames(&self, account: AccountId, page: Page) -> Result<Vec<Hostname>> {
        run!(self, false, |tx| ops::list_hostnames(tx, account, page)
            .await)
    }
    async fn update_hostname(
        &self,
        actor: &Actor,
        account: AccountId,
        id: HostnameId,
        update: HostnameUpdate,
    ) -> Result<Hostname> {
        let actor = actor.clone();
        let s = self.sealer.clone();
        run!(self, true, |tx| ops::update_hostname(
            tx, &actor, account, id, &update, &s
        )
        .await)
    }
    async fn delete_hostname(
        &self,
        actor: &Actor,
        account: AccountId,
        id: HostnameId,
    ) -> Result<()> {
        let actor = actor.clone();
        run!(self, true, |tx| ops::delete_hostname(
            tx, &actor, account, id
        )
        .await)
    }

    async fn put_managed_ca(
        &self,
        actor: &Actor,
        account: AccountId,
        cert_pem: String,
        key: Secret,
    ) -> Result<ManagedCa> {
        let actor = actor.clone();
        let s = self.sealer.clone();
        run!(self, true, |tx| ops::put_managed_ca(
            tx, &actor, account, &cert_pem, &key, &s
        )
        .await)
    }
    async fn get_managed_ca(&self, account: AccountId) -> Result<ManagedCa> {
        run!(self, false, |tx| ops::get_managed_ca(tx, account).await)
    }
    async fn managed_ca_key(&self, account: AccountId) -> Result<Secret> {
        let s = self.sealer.clone();
        run!(self, false, |tx| ops::managed_ca_key(tx, account, &s).await)
    }
    async fn set_managed_ca_crl(
        &self,
        actor: &Actor,
        account: AccountId,
        crl_pem: String,
    ) -> Result<()> {
        let actor = actor.clone();
        run!(self, true, |tx| ops::set_managed_ca_crl(
            tx, &actor, account, &crl_pem
        )
        .await)
    }
    async fn record_issued_cert(
        &self,
        actor: &Actor,
        account: AccountId,
        new: NewIssuedCert,
    ) -> Result<IssuedCert> {
        let actor = actor.clone();
        run!(self, true, |tx| ops::record_issued(
            tx, &actor, account, &new
        )
        .await)
    }
    async fn get_issued_cert(&self, account: AccountId, serial: &str) -> Result<IssuedCert> {
        let serial = serial.to_owned();
        run!(self, false, |tx| ops::get_issued(tx, account, &serial)
            .await)
    }
    async fn list_issued_certs(&self, account: AccountId, page: Page) -> Result<Vec<IssuedCert>> {
        run!(self, false, |tx| ops::list_issued(tx, account, page).await)
    }
    async fn revoked_serials(&self, account: AccountId) -> Result<Vec<(String, i64)>> {
        run!(self, false, |tx| ops::revoked_serials(tx, account).await)
    }
    async fn revoke_issued_cert(
        &self,
        actor: &Actor,
        account: AccountId,
        serial: &str,
        reason: &str,
        new_crl_pem: Option<String>,
    ) -> Result<IssuedCert> {
        let actor = actor.clone();
        let (serial, reason) = (serial.to_owned(), reason.to_owned());
        run!(self, true, |tx| ops::revoke_issued(
            tx,
            &actor,
            account,
            &serial,
            &reason,
            new_crl_pem.as_deref()
        )
        .await)
    }

    async fn create_origin_pull(
        &self,
        actor: &Actor,
        account: AccountId,
        new: NewOriginPull,
    ) -> Result<OriginPull> {
        let actor = actor.clone();
        let s = self.sealer.clone();
        run!(self, true, |tx| ops::create_origin_pull(
            tx, &actor, account, &new, &s
        )
        .await)
    }
    async fn get_origin_pull(&self, account: AccountId, id: OriginPullId) -> Result<OriginPull> {
        run!(self, false, |tx| ops::get_origin_pull(tx, account, id)
            .await)
    }
    async fn list_origin_pulls(&self, account: AccountId) -> Result<Vec<OriginPull>> {
        run!(self, false, |tx| ops::list_origin_pulls(tx, account).await)
    }
    async fn delete_origin_pull(
        &self,
        actor: &Actor,
        account: AccountId,
        id: OriginPullId,
    ) -> Result<()> {
        let actor = actor.clone();
        run!(self, true, |tx| ops::delete_origin_pull(
            tx, &actor, account, id
        )
        .await)
    }

    async fn record_events(&self, events: Vec<NewEvent>) -> Result<u64> {
        run!(self, true, |tx| ops::record_events(tx, &events).await)
    }
    async fn query_events(&self, query: EventQuery) -> Result<Vec<Event>> {
        run!(self, false, |tx| ops::query_events(tx, &query).await)
    }
    async fn event_counts(&self, query: EventQuery) -> Result<Vec<MinuteCount>> {
        run!(self, false, |tx| ops::event_counts(tx, &query).await)
    }
    async fn prune_events(&self, older_than: i64, keep_max: u64) -> Result<u64> {
        run!(self, true, |tx| ops::prune_events(tx, older_than, keep_max)
            .await)
    }

    async fn list_audit(&self, query: AuditQuery) -> Result<Vec<AuditEntry>> {
        run!(self, false, |tx| ops::list_audit(tx, &query).await)
    }

    async fn config_version(&self) -> Result<ConfigVersion> {
        run!(self, false, |tx| ops::config_version(tx).await)
    }
    async fn changes_since(&self, since: ConfigVersion) -> Result<Changes> {
        run!(self, false, |tx| ops::changes_since(tx, since).await)
    }
    async fn prune_changes(&self, keep: u64) -> Result<u64> {
        run!(self, true, |tx| ops::prune_changes(tx, keep).await)
    }
    async fn snapshot(&self, only: Option<Vec<String>>) -> Result<SnapshotData> {
        let s = self.sealer.clone();
        run!(self, false, |tx| ops::snapshot(tx, only.as_deref(), &s)
            .await)
    }
    fn subscribe(&self) -> watch::Receiver<ConfigVersion> {
        self.version.subscribe()
    }
}
