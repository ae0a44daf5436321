//! The gateway following the control-plane store: hostnames from the store
//! are built one at a time ([`gateway::snapshot::SiteBuilder`]) and applied
//! copy-on-write ([`gateway::Sites::with_changes`]) as the store announces
//! new versions; access records of `report`/`enforce` hostnames become
//! stored events, batched off the request path.
//!
//! Precedence: a hostname named in the TOML file wins over a store
//! hostname of the same name (the store's is not served, with a warning).
//!
//! A fleet node keeps a local copy of the last snapshot (`snapshot.db` in
//! its data dir, mode 0600, keys sealed with the store key when one is
//! configured) and starts from it when PostgreSQL cannot be reached.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use gateway::config::{BlockResponse, Config, Mode};
use gateway::snapshot::{CaSource, OriginTlsSource, SiteBuilder, SiteSource};
use gateway::{Gateway, Site, Sites};
use hyper::http::{HeaderValue, StatusCode, Uri};
use store::{
    BlockSettings, Changes, HeaderSettings, MtlsMode, NewEvent, ServedCa, ServedHostname,
    ServedOriginPull, SnapshotData, Store, StoreOptions,
};

/// How often the follower checks the store even without an announcement:
/// PostgreSQL announces through NOTIFY (this is the safety net); SQLite
/// announces in-process only, so changes written by another process (an
/// operator's tool on the same file) are found by this check.
fn safety_poll(store: &dyn Store) -> Duration {
    match store.backend() {
        store::Backend::Postgres => Duration::from_secs(1),
        _ => Duration::from_millis(250),
    }
}

/// Opens the store a config names: `server.store` (PostgreSQL), else the
/// SQLite file `portcullis.db` under `server.data_dir`. `None` when neither
/// is set.
pub async fn open_store(config: &Config) -> anyhow::Result<Option<Arc<dyn Store>>> {
    let key = store_key(config)?;
    let opts = StoreOptions {
        secret_key: key,
        ..StoreOptions::default()
    };
    if let Some(url) = &config.store {
        let s = store::open_postgres(url, opts)
            .await
            .context("cannot open the PostgreSQL store (server.store)")?;
        return Ok(Some(s));
    }
    let Some(dir) = &config.data_dir else {
        return Ok(None);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("portcullis.db");
    let s = store::open_sqlite(&path, opts)
        .await
        .with_context(|| format!("cannot open the store {}", path.display()))?;
    Ok(Some(s))
}

/// The key sealing private keys in the store: `server.store_key`, else
/// (SQLite) `<data_dir>/store.key`, created on first use.
pub fn store_key(config: &Config) -> anyhow::Result<Option<[u8; 32]>> {
    let path = match (&config.store_key, &config.store, &config.data_dir) {
        (Some(k), _, _) => k.clone(),
        (None, None, Some(d)) => {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            d.join("store.key")
        }
        _ => return Ok(None),
    };
    Ok(Some(store::load_or_create_key(&path)?))
}

/// The two sources of hostnames and how they are merged into what the
/// gateway serves.
#[derive(Default)]
pub struct Layers {
    inner: Mutex<LayerState>,
}

#[derive(Default)]
struct LayerState {
    file: HashSet<String>,
    store: HashMap<String, Arc<Site>>,
}

impl Layers {
    /// New TOML hostnames (start or reload): they replace the previous
    /// file hostnames; store hostnames of other names stay.
    pub fn set_file(&self, gw: &Gateway, file: Sites) {
        let mut st = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        st.file = file.iter().map(|s| s.name.clone()).collect();
        let from_store: Vec<Arc<Site>> = st
            .store
            .values()
            .filter(|s| !st.file.contains(&s.name))
            .cloned()
            .collect();
        gw.replace_sites(file.with_changes(from_store, std::iter::empty::<&str>()));
    }

    /// Store hostnames changed: `upserts` built, `removals` gone. Names the
    /// file defines are left alone.
    fn apply_store(&self, gw: &Gateway, upserts: Vec<Arc<Site>>, removals: Vec<String>) {
        let mut st = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        for r in &removals {
            st.store.remove(r);
        }
        for s in &upserts {
            if st.file.contains(&s.name) {
                tracing::warn!(hostname = %s.name, "hostname is in the config file and the store; the file wins");
            }
            st.store.insert(s.name.clone(), s.clone());
        }
        let ups: Vec<Arc<Site>> = upserts
            .into_iter()
            .filter(|s| !st.file.contains(&s.name))
            .collect();
        let rems: Vec<&str> = removals
            .iter()
            .filter(|r| !st.file.contains(*r))
            .map(String::as_str)
            .collect();
        gw.update_sites(|cur| cur.with_changes(ups, rems));
    }

    /// Names currently served from the store.
    fn store_names(&self) -> HashSet<String> {
        let st = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        st.store.keys().cloned().collect()
    }
}

fn mode(m: MtlsMode) -> Mode {
    match m {
        MtlsMode::Off => Mode::Off,
        MtlsMode::Report => Mode::Report,
        MtlsMode::Enforce => Mode::Enforce,
    }
}

fn block(b: &BlockSettings) -> Result<BlockResponse, String> {
    Ok(BlockResponse {
        status: StatusCode::from_u16(b.status)
            .map_err(|_| format!("block status {} is not an HTTP status", b.status))?,
        content_type: HeaderValue::from_str(&b.content_type)
            .map_err(|_| "block content type is not a header value".to_owned())?,
        body: b.body.clone(),
    })
}

/// Builds the sites of `data`'s hostnames; the ones that cannot be built
/// are reported and left out (fail closed).
fn build_all(b: &mut SiteBuilder, data: &SnapshotData) -> Vec<Arc<Site>> {
    let cas: BTreeMap<&str, CaSource> = data
        .cas
        .iter()
        .map(|(k, c)| {
            (
                k.as_str(),
                CaSource {
                    pem: c.pem.as_bytes().to_vec(),
                    crl: c.crl_pem.as_ref().map(|c| c.as_bytes().to_vec()),
                },
            )
        })
        .collect();
    let mut out = Vec::with_capacity(data.hostnames.len());
    for h in &data.hostnames {
        match build_one(b, h, &cas) {
            Ok(s) => out.push(s),
            Err(e) => {
                tracing::error!(error = %e, "store hostname not served");
                eprintln!("portcullis: store hostname not served: {e}");
            }
        }
    }
    out
}

fn build_one(
    b: &mut SiteBuilder,
    h: &ServedHostname,
    cas: &BTreeMap<&str, CaSource>,
) -> Result<Arc<Site>, String> {
    let origin: Uri = h
        .origin
        .parse()
        .map_err(|_| format!("hostname {:?}: origin {:?} is not a URL", h.name, h.origin))?;
    let mut set = Vec::new();
    for t in &h.trust {
        match cas.get(t.as_str()) {
            Some(c) => set.push(c),
            None => return Err(format!("hostname {:?}: CA {t} is missing", h.name)),
        }
    }
    let src = SiteSource {
        name: &h.name,
        cert_pem: h.cert_pem.as_bytes(),
        key_pem: h.key_pem.expose(),
        origin,
        origin_tls: h.origin_pull.as_ref().map(|p| OriginTlsSource {
            ca_pem: p.origin_ca_pem.as_bytes(),
            client: Some((p.cert_pem.as_bytes(), p.key_pem.expose())),
        }),
        mode: mode(h.mode),
        block: block(&h.block).map_err(|e| format!("hostname {:?}: {e}", h.name))?,
        cas: set,
        identity: gateway::identity::IdentityHeaders::from_settings(
            &format!("hostname {:?}", h.name),
            &h.headers.rename,
            &h.headers.map,
        )
        .map_err(|p| p.join("; "))?,
        edge: gateway::edge::config::from_json(
            &format!("hostname {:?}: edge", h.name),
            &h.name,
            &h.edge,
        )
        .map_err(|p| p.join("; "))?,
    };
    b.build(&src)
}

/// Follows the store: applies every announced version to the gateway.
pub struct Follower {
    layers: Arc<Layers>,
    gw: Arc<Gateway>,
    builder: SiteBuilder,
    version: Option<u64>,
    local: Option<LocalCopy>,
}

impl Follower {
    /// A follower for `gw`; `local`: where a fleet node keeps its copy.
    pub fn new(
        layers: Arc<Layers>,
        gw: Arc<Gateway>,
        config: &Config,
        local: Option<&Path>,
    ) -> anyhow::Result<Follower> {
        let local = match local {
            Some(dir) => Some(LocalCopy::open(
                &dir.join("snapshot.db"),
                store_key(config)?,
            )?),
            None => None,
        };
        Ok(Follower {
            layers,
            gw,
            builder: SiteBuilder::new(config.origin_timeouts)
                .with_idle_timeout(config.idle_timeout),
            version: None,
            local,
        })
    }

    /// Serves the local copy (a fleet node starting without PostgreSQL).
    /// Returns the number of hostnames loaded.
    pub fn load_local(&mut self) -> anyhow::Result<usize> {
        let Some(local) = &self.local else {
            return Ok(0);
        };
        let Some(data) = local.load()? else {
            return Ok(0);
        };
        let sites = build_all(&mut self.builder, &data);
        let n = sites.len();
        let removals: Vec<String> = self.layers.store_names().into_iter().collect();
        self.layers.apply_store(&self.gw, sites, removals);
        self.version = Some(data.version);
        Ok(n)
    }

    /// One round: whatever changed since the last applied version.
    pub async fn sync(&mut self, store: &dyn Store) -> store::Result<bool> {
        let changes = match self.version {
            None => Changes::Full {
                version: store.config_version().await?,
            },
            Some(v) => store.changes_since(v).await?,
        };
        match changes {
            Changes::UpToDate => Ok(false),
            Changes::Full { .. } => {
                let data = store.snapshot(None).await?;
                let sites = build_all(&mut self.builder, &data);
                // What could not be built is not served (fail closed).
                let keep: HashSet<&str> = sites.iter().map(|s| s.name.as_str()).collect();
                let removals: Vec<String> = self
                    .layers
                    .store_names()
                    .into_iter()
                    .filter(|n| !keep.contains(n.as_str()))
                    .collect();
                tracing::info!(
                    version = data.version,
                    hostnames = sites.len(),
                    "store snapshot loaded"
                );
                self.layers.apply_store(&self.gw, sites, removals);
                if let Some(l) = &self.local {
                    if let Err(e) = l.save_full(&data) {
                        eprintln!("portcullis: cannot save the local snapshot copy: {e:#}");
                    }
                }
                self.version = Some(data.version);
                Ok(true)
            }
            Changes::Hostnames { names, .. } => {
                let data = store.snapshot(Some(names.clone())).await?;
                let sites = build_all(&mut self.builder, &data);
                let present: HashSet<&str> = sites.iter().map(|s| s.name.as_str()).collect();
                let removals: Vec<String> = names
                    .iter()
                    .filter(|n| !present.contains(n.as_str()))
                    .cloned()
                    .collect();
                tracing::info!(
                    version = data.version,
                    changed = names.len(),
                    "store changes applied"
                );
                self.layers.apply_store(&self.gw, sites, removals.clone());
                if let Some(l) = &self.local {
                    if let Err(e) = l.apply(&data, &removals) {
                        eprintln!("portcullis: cannot update the local snapshot copy: {e:#}");
                    }
                }
                self.version = Some(data.version);
                Ok(true)
            }
        }
    }

    /// Follows `store` forever: on each announcement, and every second as
    /// a safety net (and to retry while the database is down).
    pub async fn run(mut self, store: Arc<dyn Store>) {
        let mut rx = store.subscribe();
        let poll = safety_poll(store.as_ref());
        let mut failing = false;
        loop {
            match self.sync(store.as_ref()).await {
                Ok(_) => {
                    if failing {
                        eprintln!("portcullis: store reachable again; caught up");
                        failing = false;
                    }
                }
                Err(e) => {
                    if !failing {
                        eprintln!("portcullis: store unavailable, serving the last snapshot: {e}");
                        failing = true;
                    }
                }
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                () = tokio::time::sleep(poll) => {},
            }
        }
    }
}

/// Opens the store of a fleet node, retrying until PostgreSQL answers
/// (meanwhile the node serves its local copy), hands it to `opened` (the
/// event writer) and follows it.
pub async fn follow_when_reachable(
    config: Config,
    follower: Follower,
    opened: tokio::sync::oneshot::Sender<Arc<dyn Store>>,
) {
    let mut delay = Duration::from_millis(250);
    let store = loop {
        match open_store(&config).await {
            Ok(Some(s)) => break s,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "store not reachable yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    };
    eprintln!("portcullis: following the PostgreSQL store");
    let _ = opened.send(store.clone());
    follower.run(store).await;
}

/// Change records kept (versions); a node further behind reloads all.
const CHANGES_KEPT: u64 = 100_000;

/// Housekeeping of the control plane: prunes the change feed every ten
/// minutes.
pub fn start_maintenance(store: Arc<dyn Store>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            if let Err(e) = store.prune_changes(CHANGES_KEPT).await {
                tracing::warn!(error = %e, "change feed pruning failed");
            }
        }
    });
}

// ------------------------------------------------------------------ events

/// Events waiting to be written at most; beyond, new ones are dropped and
/// counted.
const EVENT_QUEUE: usize = 10_000;
/// Events per transaction at most.
const EVENT_BATCH: usize = 500;
/// Events are kept this long (seconds)...
const EVENT_RETENTION_SECS: i64 = 7 * 24 * 3600;
/// ...and at most this many.
const EVENT_MAX_ROWS: u64 = 1_000_000;

/// The access-log side of events: non-blocking, bounded.
#[derive(Clone)]
pub struct EventSink {
    tx: tokio::sync::mpsc::Sender<NewEvent>,
    dropped: Arc<AtomicU64>,
}

impl EventSink {
    /// Queues the event of one access record: every request of a
    /// report/enforce hostname, and on any hostname the requests an edge
    /// policy refused (token, rule, rate limit) or a rule logged.
    pub fn record(&self, r: &gateway::proxy::AccessRecord<'_>) {
        let logged = r.action == Some("log") || !r.rules_logged.is_empty();
        let edge_block = matches!(
            r.outcome,
            "token" | "rule" | "rate-limited" | "rate-limit-unavailable"
        );
        if r.mode == "off" && !logged && !edge_block {
            return;
        }
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let e = NewEvent {
            hostname: r.hostname.to_owned(),
            at,
            verdict: r.verdict.to_owned(),
            reason: r.reason.map(str::to_owned),
            ski: r.ski.map(str::to_owned),
            fingerprint: r.fingerprint.map(str::to_owned),
            client_ip: Some(r.peer.ip().to_string()),
            action: if r.outcome == "origin" && logged {
                "log".to_owned()
            } else if r.outcome == "origin" {
                "forwarded".to_owned()
            } else {
                r.outcome.to_owned()
            },
        };
        if self.tx.try_send(e).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Starts the writer of events into the store `store` resolves to (a fleet
/// node may get it late; until then events queue, then are dropped);
/// returns the sink for the access log.
pub fn start_events(
    store: impl std::future::Future<Output = Option<Arc<dyn Store>>> + Send + 'static,
) -> EventSink {
    let (tx, mut rx) = tokio::sync::mpsc::channel(EVENT_QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let d = dropped.clone();
    tokio::spawn(async move {
        let Some(store) = store.await else { return };
        let mut reported = 0;
        let mut last_prune = std::time::Instant::now();
        let mut batch = Vec::with_capacity(EVENT_BATCH);
        while rx.recv_many(&mut batch, EVENT_BATCH).await > 0 {
            let n = batch.len();
            if let Err(e) = store.record_events(std::mem::take(&mut batch)).await {
                d.fetch_add(n as u64, Ordering::Relaxed);
                tracing::warn!(error = %e, events = n, "events not stored");
            }
            let now_dropped = d.load(Ordering::Relaxed);
            if now_dropped != reported {
                eprintln!(
                    "portcullis: {now_dropped} events dropped so far (queue full or store down)"
                );
                reported = now_dropped;
            }
            if last_prune.elapsed() > Duration::from_secs(60) {
                last_prune = std::time::Instant::now();
                let cutoff = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64)
                    - EVENT_RETENTION_SECS;
                if let Err(e) = store.prune_events(cutoff, EVENT_MAX_ROWS).await {
                    tracing::warn!(error = %e, "event retention failed");
                }
            }
            // Batching: let a burst accumulate a little.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    EventSink { tx, dropped }
}

// ------------------------------------------------------------------ local copy

/// A fleet node's copy of the last snapshot: an SQLite file updated with
/// each change (not rewritten whole). Keys are sealed with the store key
/// when one is configured.
pub struct LocalCopy {
    conn: Mutex<rusqlite::Connection>,
    path: PathBuf,
    sealer: store::KeySealer,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct HostRow {
    account_id: i64,
    cert_pem: String,
    origin: String,
    mode: MtlsMode,
    block: BlockSettings,
    headers: HeaderSettings,
    /// Edge policy (token secrets inline; the file is 0600).
    #[serde(default)]
    edge: serde_json::Value,
    trust: Vec<String>,
    pull: Option<(String, String)>,
}

impl LocalCopy {
    fn open(path: &Path, key: Option<[u8; 32]>) -> anyhow::Result<LocalCopy> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        let conn = rusqlite::Connection::open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot restrict {}", path.display()))?;
        }
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS meta (id INTEGER PRIMARY KEY, version INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS hostnames (name TEXT PRIMARY KEY, body TEXT NOT NULL,
                 key BLOB NOT NULL, pull_key BLOB);
             CREATE TABLE IF NOT EXISTS cas (key TEXT PRIMARY KEY, pem TEXT NOT NULL, crl TEXT);",
        )?;
        Ok(LocalCopy {
            conn: Mutex::new(conn),
            path: path.to_owned(),
            sealer: store::KeySealer::new(key.as_ref())?,
        })
    }

    fn write(&self, data: &SnapshotData, removals: &[String], full: bool) -> anyhow::Result<()> {
        let mut c = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = c.transaction()?;
        if full {
            tx.execute_batch("DELETE FROM hostnames; DELETE FROM cas;")?;
        }
        for r in removals {
            tx.execute("DELETE FROM hostnames WHERE name = ?1", [r])?;
        }
        for h in &data.hostnames {
            let row = HostRow {
                account_id: h.account_id,
                cert_pem: h.cert_pem.clone(),
                origin: h.origin.clone(),
                mode: h.mode,
                block: h.block.clone(),
                headers: h.headers.clone(),
                edge: h.edge.clone(),
                trust: h.trust.clone(),
                pull: h
                    .origin_pull
                    .as_ref()
                    .map(|p| (p.cert_pem.clone(), p.origin_ca_pem.clone())),
            };
            tx.execute(
                "INSERT OR REPLACE INTO hostnames (name, body, key, pull_key) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![
                    h.name,
                    serde_json::to_string(&row)?,
                    self.sealer.seal(&h.key_pem, "local-hostname")?,
                    h.origin_pull
                        .as_ref()
                        .map(|p| self.sealer.seal(&p.key_pem, "local-origin-pull"))
                        .transpose()?,
                ],
            )?;
        }
        for (k, ca) in &data.cas {
            tx.execute(
                "INSERT OR REPLACE INTO cas (key, pem, crl) VALUES (?1, ?2, ?3)",
                rusqlite::params![k, ca.pem, ca.crl_pem],
            )?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO meta (id, version) VALUES (1, ?1)",
            [data.version as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn save_full(&self, data: &SnapshotData) -> anyhow::Result<()> {
        self.write(data, &[], true)
            .with_context(|| format!("{}", self.path.display()))
    }

    fn apply(&self, data: &SnapshotData, removals: &[String]) -> anyhow::Result<()> {
        self.write(data, removals, false)
            .with_context(|| format!("{}", self.path.display()))
    }

    fn load(&self) -> anyhow::Result<Option<SnapshotData>> {
        let c = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let version: Option<i64> = c
            .query_row("SELECT version FROM meta WHERE id = 1", [], |r| r.get(0))
            .ok();
        let Some(version) = version else {
            return Ok(None);
        };
        let mut data = SnapshotData {
            version: version as u64,
            ..SnapshotData::default()
        };
        let mut st = c.prepare("SELECT name, body, key, pull_key FROM hostnames")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, Option<Vec<u8>>>(3)?,
            ))
        })?;
        for row in rows {
            let (name, body, key, pull_key) = row?;
            let h: HostRow = serde_json::from_str(&body)
                .with_context(|| format!("{}: hostname {name}", self.path.display()))?;
            data.hostnames.push(ServedHostname {
                name,
                account_id: h.account_id,
                cert_pem: h.cert_pem,
                key_pem: self.sealer.open(&key, "local-hostname")?,
                origin: h.origin,
                mode: h.mode,
                block: h.block,
                headers: h.headers,
                edge: h.edge,
                trust: h.trust,
                origin_pull: match (h.pull, pull_key) {
                    (Some((cert_pem, origin_ca_pem)), Some(k)) => Some(ServedOriginPull {
                        cert_pem,
                        key_pem: self.sealer.open(&k, "local-origin-pull")?,
                        origin_ca_pem,
                    }),
                    _ => None,
                },
            });
        }
        let mut st = c.prepare("SELECT key, pem, crl FROM cas")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })?;
        for row in rows {
            let (k, pem, crl_pem) = row?;
            data.cas.insert(k, ServedCa { pem, crl_pem });
        }
        Ok(Some(data))
    }
}
