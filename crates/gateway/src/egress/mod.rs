//! Egress listeners (`[[egress]]`, docs/egress.md): an app that cannot
//! speak mutual TLS sends plain HTTP or TCP to a listener on 127.0.0.1, and
//! the gateway opens a mutually authenticated TLS connection to the
//! upstream with that service's own certificate, verifying the upstream
//! against the CA the egress names (and no other).
//!
//! * [`config`]: the `[[egress]]` TOML, raw and validated.
//! * [`Egresses`]: the validated config plus the files it names, turned
//!   into connectors: one pooled client per distinct identity + upstream
//!   ([`config::Binding`]).
//! * [`EgressListeners`]: the running listeners; a reload swaps what they
//!   forward with, and rebinds the ones whose address changed.
//! * HTTP mode (`http`): per-route upstreams and identities; TLS failures
//!   become `502 {"error":"upstream_tls","message":…}`, timeouts 504.
//! * TCP mode (`tcp`): TLS to the upstream (optionally after PostgreSQL's
//!   `SSLRequest`), then bytes both ways.

pub mod config;
mod http;
mod metrics;
mod tcp;
mod token;
pub mod upstream;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use client_auth::pem_or_der_certs;
use hyper::http::uri::Authority;
use hyper::http::HeaderValue;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use crate::config::ConfigErrors;
use config::{Binding, EgressConfig, EgressMode, StartTls};
pub use metrics::EgressMetrics;
pub use upstream::{UpstreamConnector, UpstreamError};

/// A pooled HTTP/1.1 client to one upstream with one identity.
type UpstreamClient = Client<UpstreamConnector, hyper::body::Incoming>;

/// One upstream with one identity, ready to connect.
#[derive(Debug)]
struct Upstream {
    connector: UpstreamConnector,
    /// HTTP mode: the pool of TLS connections for this binding.
    client: Option<UpstreamClient>,
    /// `host:port` for request URIs.
    authority: Authority,
    /// `Host` sent upstream: the expected name (or host) and port.
    host_header: HeaderValue,
}

/// One egress, ready to serve. Immutable; a reload builds a new one.
#[derive(Debug)]
pub struct Egress {
    /// Its name.
    pub name: String,
    /// Listen address.
    pub listen: SocketAddr,
    /// `http` or `tcp`.
    pub mode: EgressMode,
    /// Most app connections at once.
    pub max_connections: usize,
    default: Arc<Upstream>,
    /// Path prefix → upstream, longest prefix first.
    routes: Vec<(String, Arc<Upstream>)>,
    starttls: Option<StartTls>,
    response_timeout: Duration,
    idle_timeout: Option<Duration>,
    metrics: Arc<EgressMetrics>,
}

impl Egress {
    /// The upstream for a request path: the longest matching route prefix,
    /// else the egress's own upstream.
    fn route(&self, path: &str) -> &Arc<Upstream> {
        self.routes
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            .map_or(&self.default, |(_, u)| u)
    }
}

/// Every egress of a configuration, loaded.
#[derive(Debug, Default)]
pub struct Egresses {
    list: Vec<Arc<Egress>>,
    metrics: Arc<EgressMetrics>,
}

impl Egresses {
    /// Number of egresses.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Reads the certificates, keys and CAs the egresses name through
    /// `read` and builds one connector (and, for HTTP, one connection
    /// pool) per distinct identity + upstream; every problem is listed.
    pub fn load(
        configs: &[EgressConfig],
        read: &dyn Fn(&Path) -> io::Result<Vec<u8>>,
    ) -> Result<Egresses, ConfigErrors> {
        Self::load_with_metrics(configs, read, Arc::default())
    }

    /// [`Egresses::load`], counting into `metrics` (pass the same counters
    /// to every reload so that they never go back).
    pub fn load_with_metrics(
        configs: &[EgressConfig],
        read: &dyn Fn(&Path) -> io::Result<Vec<u8>>,
        metrics: Arc<EgressMetrics>,
    ) -> Result<Egresses, ConfigErrors> {
        let mut p = Vec::new();
        let provider = crate::tls::provider();
        let file = |path: &Path, p: &mut Vec<String>| match read(path) {
            Ok(b) => Some(b),
            Err(e) => {
                p.push(format!("cannot read {}: {e}", path.display()));
                None
            }
        };
        // Shared by the routes of an egress: the same identity to the same
        // upstream with the same expectations is one pool.
        type Key = (String, Binding, Option<StartTls>, Duration);
        let mut built: HashMap<Key, Arc<Upstream>> = HashMap::new();
        let mut list = Vec::new();
        for e in configs {
            let at = format!("egress {:?}", e.name);
            let mut one = |b: &Binding, p: &mut Vec<String>| -> Option<Arc<Upstream>> {
                let key = (e.name.clone(), b.clone(), e.starttls, e.connect_timeout);
                if let Some(u) = built.get(&key) {
                    return Some(u.clone());
                }
                let before = p.len();
                let identity = match &b.key {
                    config::KeySource::File(key) => {
                        crate::site::certified_key(&at, &b.cert, key, &provider, &file, p)
                    }
                    config::KeySource::Pkcs11(uri) => {
                        token::token_identity(&at, &b.cert, uri, &file, p)
                    }
                };
                let mut roots = rustls::RootCertStore::empty();
                if let Some(bytes) = file(&b.ca, p) {
                    match pem_or_der_certs(&bytes) {
                        Ok(certs) if certs.is_empty() => {
                            p.push(format!("{at}: ca {}: no certificate", b.ca.display()));
                        }
                        Ok(certs) => {
                            for c in certs {
                                if let Err(err) = roots.add(c) {
                                    p.push(format!("{at}: ca {}: {err}", b.ca.display()));
                                }
                            }
                        }
                        Err(err) => p.push(format!("{at}: ca {}: {err}", b.ca.display())),
                    }
                }
                let identity = identity?;
                if p.len() != before {
                    return None;
                }
                let alpn = match e.mode {
                    EgressMode::Http => vec![b"http/1.1".to_vec()],
                    EgressMode::Tcp => Vec::new(),
                };
                let connector = match UpstreamConnector::new(
                    b,
                    identity,
                    roots,
                    e.connect_timeout,
                    e.starttls,
                    alpn,
                    (metrics.clone(), Arc::from(e.name.as_str())),
                ) {
                    Ok(c) => c,
                    Err(err) => {
                        p.push(format!("{at}: {err}"));
                        return None;
                    }
                };
                let authority = match b.authority().parse::<Authority>() {
                    Ok(a) => a,
                    Err(_) => {
                        p.push(format!(
                            "{at}: upstream {} is not a URI authority",
                            b.authority()
                        ));
                        return None;
                    }
                };
                let host_header = match HeaderValue::from_str(&config_authority(b)) {
                    Ok(h) => h,
                    Err(_) => {
                        p.push(format!(
                            "{at}: {} is not a Host header",
                            config_authority(b)
                        ));
                        return None;
                    }
                };
                let client = (e.mode == EgressMode::Http).then(|| {
                    Client::builder(TokioExecutor::new())
                        .pool_idle_timeout(Duration::from_secs(90))
                        .pool_timer(hyper_util::rt::TokioTimer::new())
                        .build(connector.clone())
                });
                let u = Arc::new(Upstream {
                    connector,
                    client,
                    authority,
                    host_header,
                });
                built.insert(key, u.clone());
                Some(u)
            };
            let default = one(&e.binding, &mut p);
            let routes: Vec<_> = e
                .routes
                .iter()
                .filter_map(|r| Some((r.path.clone(), one(&r.binding, &mut p)?)))
                .collect();
            let Some(default) = default else { continue };
            list.push(Arc::new(Egress {
                name: e.name.clone(),
                listen: e.listen,
                mode: e.mode,
                max_connections: e.max_connections,
                default,
                routes,
                starttls: e.starttls,
                response_timeout: e.response_timeout,
                idle_timeout: e.idle_timeout,
                metrics: metrics.clone(),
            }));
        }
        if p.is_empty() {
            Ok(Egresses { list, metrics })
        } else {
            Err(ConfigErrors(p))
        }
    }
}

/// `Host` for the upstream: the name its certificate is checked against
/// (which the ingress compares with the SNI), with the port.
fn config_authority(b: &Binding) -> String {
    let host = b.tls_name();
    if host.contains(':') {
        format!("[{host}]:{}", b.port)
    } else {
        format!("{host}:{}", b.port)
    }
}

/// A running listener.
struct Running {
    /// Permits of open connections (all back: none open).
    slots: Arc<Semaphore>,
    listen: SocketAddr,
    local: SocketAddr,
    mode: EgressMode,
    max_connections: usize,
    current: Arc<RwLock<Arc<Egress>>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The running egress listeners, by egress name.
#[derive(Default)]
pub struct EgressListeners {
    running: HashMap<String, Running>,
    metrics: Arc<EgressMetrics>,
    /// After [`EgressListeners::shutdown`]: nothing is bound again.
    closed: bool,
}

/// How long open egress connections may finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

impl std::fmt::Debug for EgressListeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.running.iter().map(|(n, r)| (n, r.local)))
            .finish()
    }
}

impl EgressListeners {
    /// Binds every egress's listener and starts serving. A listener that
    /// cannot be bound is an error (nothing is left running).
    pub async fn start(egresses: Egresses) -> Result<EgressListeners, String> {
        let mut me = EgressListeners {
            running: HashMap::new(),
            metrics: egresses.metrics.clone(),
            closed: false,
        };
        for e in egresses.list {
            if let Err(err) = me.spawn(e.clone()).await {
                me.stop_all().await;
                return Err(format!(
                    "egress {:?}: cannot listen on {}: {err}",
                    e.name, e.listen
                ));
            }
        }
        Ok(me)
    }

    /// The counters (pass them to [`Egresses::load_with_metrics`] on reload).
    pub fn metrics(&self) -> Arc<EgressMetrics> {
        self.metrics.clone()
    }

    /// `(name, local address)` of every running listener.
    pub fn local_addrs(&self) -> Vec<(String, SocketAddr)> {
        let mut v: Vec<_> = self
            .running
            .iter()
            .map(|(n, r)| (n.clone(), r.local))
            .collect();
        v.sort();
        v
    }

    async fn spawn(&mut self, e: Arc<Egress>) -> io::Result<()> {
        let listener = TcpListener::bind(e.listen).await?;
        let local = listener.local_addr()?;
        tracing::info!(egress = %e.name, listen = %local, mode = e.mode.as_str(), "egress listening");
        let (stop, stop_rx) = watch::channel(false);
        let current = Arc::new(RwLock::new(e.clone()));
        let slots = Arc::new(Semaphore::new(e.max_connections.max(1)));
        let task = tokio::spawn(accept_loop(
            listener,
            current.clone(),
            slots.clone(),
            e.max_connections,
            stop_rx,
        ));
        self.running.insert(
            e.name.clone(),
            Running {
                slots,
                listen: e.listen,
                local,
                mode: e.mode,
                max_connections: e.max_connections,
                current,
                stop,
                task,
            },
        );
        Ok(())
    }

    async fn stop(&mut self, name: &str) {
        if let Some(r) = self.running.remove(name) {
            let _ = r.stop.send(true);
            let _ = r.task.await;
            tracing::info!(egress = name, "egress listener stopped");
        }
    }

    /// At shutdown: stops accepting on every listener, asks open HTTP
    /// connections to finish (close after the current response), waits up
    /// to 10 s for every connection to end, and leaves the rest to be cut.
    /// A reload afterwards changes nothing.
    pub async fn shutdown(&mut self) {
        self.closed = true;
        let slots: Vec<(Arc<Semaphore>, usize)> = self
            .running
            .values()
            .map(|r| (r.slots.clone(), r.max_connections.max(1)))
            .collect();
        self.stop_all().await;
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            for (s, max) in slots {
                let _ = s.acquire_many(u32::try_from(max).unwrap_or(u32::MAX)).await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!("egress drain timed out; closing the remaining connections");
        }
    }

    /// Stops every listener (open connections finish on their own).
    pub async fn stop_all(&mut self) {
        let names: Vec<String> = self.running.keys().cloned().collect();
        for n in names {
            self.stop(&n).await;
        }
    }

    /// Applies a reloaded configuration: an egress whose address, mode and
    /// connection limit are unchanged keeps its listener and forwards new
    /// connections (and requests) with the new certificates; a changed
    /// one is rebound, a removed one stopped, a new one bound. Open
    /// connections finish with what they started with. Returns one message
    /// per listener that could not be bound.
    pub async fn apply(&mut self, egresses: Egresses) -> Vec<String> {
        let mut problems = Vec::new();
        if self.closed {
            return problems;
        }
        let mut keep = HashMap::new();
        for e in &egresses.list {
            keep.insert(e.name.clone(), e.clone());
        }
        // Stop what goes away or changes shape first, so that a new
        // listener can take a freed address.
        let names: Vec<String> = self.running.keys().cloned().collect();
        for n in names {
            let same = match (keep.get(&n), self.running.get(&n)) {
                (Some(e), Some(r)) => {
                    e.listen == r.listen
                        && e.mode == r.mode
                        && e.max_connections == r.max_connections
                }
                _ => false,
            };
            if !same {
                self.stop(&n).await;
            }
        }
        for e in egresses.list {
            if let Some(r) = self.running.get(&e.name) {
                let mut g = r.current.write().unwrap_or_else(PoisonError::into_inner);
                *g = e;
            } else if let Err(err) = self.spawn(e.clone()).await {
                problems.push(format!(
                    "egress {:?}: cannot listen on {}: {err}",
                    e.name, e.listen
                ));
            }
        }
        problems
    }
}

/// Accepts until `stop`; at most `max` connections at once (at the limit,
/// new connections wait in the kernel's accept queue).
async fn accept_loop(
    listener: TcpListener,
    current: Arc<RwLock<Arc<Egress>>>,
    slots: Arc<Semaphore>,
    max: usize,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let slot = tokio::select! {
            _ = stop.changed() => return,
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => return,
            },
        };
        if slots.available_permits() == 0 {
            tracing::warn!(
                max_connections = max,
                "egress connection limit reached; new connections wait"
            );
        }
        let (tcp, peer) = tokio::select! {
            _ = stop.changed() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "egress accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let e = current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let span = tracing::info_span!(
            "egress_conn",
            egress = %e.name,
            mode = e.mode.as_str(),
            %peer,
        );
        let conn_stop = stop.clone();
        tokio::spawn(
            async move {
                let _ = tcp.set_nodelay(true);
                match e.mode {
                    EgressMode::Http => http::serve_connection(e, tcp, conn_stop).await,
                    EgressMode::Tcp => tcp::serve_connection(e, tcp).await,
                }
                drop(slot);
            }
            .instrument(span),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    use std::path::PathBuf;

    /// A CA and a client certificate signed by it, as files in memory.
    fn files() -> HashMap<PathBuf, Vec<u8>> {
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.distinguished_name.push(DnType::CommonName, "Svc Root");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().expect("key");
        let ca_pem = ca.self_signed(&ca_key).expect("ca").pem();
        let issuer = Issuer::new(ca, ca_key);
        let mut leaf = CertificateParams::new(Vec::<String>::new()).expect("params");
        leaf.distinguished_name.push(DnType::CommonName, "api");
        let k = KeyPair::generate().expect("key");
        let leaf_pem = leaf.signed_by(&k, &issuer).expect("sign").pem();
        let mut m = HashMap::new();
        m.insert(PathBuf::from("/e/ca.pem"), ca_pem.into_bytes());
        m.insert(PathBuf::from("/e/api.pem"), leaf_pem.into_bytes());
        m.insert(
            PathBuf::from("/e/api-key.pem"),
            k.serialize_pem().into_bytes(),
        );
        m.insert(
            PathBuf::from("/e/other-key.pem"),
            KeyPair::generate()
                .expect("key")
                .serialize_pem()
                .into_bytes(),
        );
        m.insert(PathBuf::from("/e/empty.pem"), b"# nothing\n".to_vec());
        m
    }

    fn config(extra: &str) -> Config {
        let text = format!(
            "[server]\nhttps = \"127.0.0.1:0\"\n\n[[egress]]\nname = \"x\"\n\
             listen = \"127.0.0.1:0\"\nmode = \"http\"\nupstream = \"https://orders.test:8443\"\n\
             cert = \"api.pem\"\nkey = \"api-key.pem\"\nca = \"ca.pem\"\n{extra}"
        );
        Config::parse(&text, Path::new("/e")).expect("config")
    }

    fn load(c: &Config) -> Result<Egresses, ConfigErrors> {
        let f = files();
        Egresses::load(&c.egress, &move |p| {
            f.get(p)
                .cloned()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        })
    }

    #[test]
    fn identical_bindings_share_one_pool_and_problems_are_all_listed() {
        let c = config("\n[[egress.route]]\npath = \"/same/\"\n\n[[egress.route]]\npath = \"/other/\"\nca = \"api.pem\"\n");
        let e = load(&c).expect("loads");
        let x = &e.list[0];
        assert!(Arc::ptr_eq(&x.default, x.route("/same/1")));
        assert!(!Arc::ptr_eq(&x.default, x.route("/other/1")));
        assert!(Arc::ptr_eq(&x.default, x.route("/elsewhere")));
        assert_eq!(x.default.host_header, "orders.test:8443");

        let c = config(
            "\n[[egress.route]]\npath = \"/a/\"\nkey = \"other-key.pem\"\ncert = \"api.pem\"\n\
             \n[[egress.route]]\npath = \"/b/\"\nca = \"empty.pem\"\n\
             \n[[egress.route]]\npath = \"/c/\"\ncert = \"missing.pem\"\nkey = \"api-key.pem\"\n",
        );
        let e = load(&c).expect_err("bad files");
        let all = e.to_string();
        for needle in [
            "the key /e/other-key.pem does not match the certificate /e/api.pem",
            "ca /e/empty.pem",
            "cannot read /e/missing.pem",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in {all}");
        }
        assert_eq!(e.0.len(), 3, "{all}");
        // Key material never appears in the messages.
        assert!(!all.contains("PRIVATE KEY"), "{all}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_stops_accepting_and_waits_for_open_connections() {
        let c = Config::parse(
            "[server]\nhttps = \"127.0.0.1:0\"\n[[egress]]\nname = \"db\"\nlisten = \"127.0.0.1:0\"\n\
             mode = \"tcp\"\nupstream = \"db.test:5432\"\nstarttls = \"postgres\"\n\
             cert = \"api.pem\"\nkey = \"api-key.pem\"\nca = \"ca.pem\"\n",
            Path::new("/e"),
        )
        .expect("config");
        let mut l = EgressListeners::start(load(&c).expect("loads"))
            .await
            .expect("binds");
        let addr = l.local_addrs()[0].1;
        // An app connection that has not sent its first message yet.
        let app = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (done_tx, mut done_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            l.shutdown().await;
            let _ = done_tx.send(l);
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            done_rx.try_recv().is_err(),
            "shutdown did not wait for the open connection"
        );
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "still accepting after shutdown"
        );
        drop(app);
        let mut l = done_rx.await.expect("shutdown finished");
        assert!(l.local_addrs().is_empty());
        // A reload after shutdown binds nothing.
        assert!(l.apply(load(&c).expect("loads")).await.is_empty());
        assert!(l.local_addrs().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn reload_keeps_unchanged_listeners_and_rebinds_changed_ones() {
        let c = config("");
        let mut l = EgressListeners::start(load(&c).expect("loads"))
            .await
            .expect("binds");
        let first = l.local_addrs();
        assert_eq!(first.len(), 1);
        // Same address, mode and limit: the same socket.
        assert!(l.apply(load(&c).expect("loads")).await.is_empty());
        assert_eq!(l.local_addrs(), first);
        // Another limit: rebound.
        let c2 = config("max_connections = 3\n");
        assert!(l.apply(load(&c2).expect("loads")).await.is_empty());
        assert_eq!(l.local_addrs().len(), 1);
        // Removed: stopped.
        let none = Config::parse(
            "[server]\nhttps = \"127.0.0.1:0\"\n[[egress]]\nname = \"y\"\nlisten = \"127.0.0.1:0\"\n\
             mode = \"tcp\"\nupstream = \"db.test:5432\"\ncert = \"api.pem\"\nkey = \"api-key.pem\"\n\
             ca = \"ca.pem\"\n",
            Path::new("/e"),
        )
        .expect("config");
        assert!(l.apply(load(&none).expect("loads")).await.is_empty());
        let names: Vec<String> = l.local_addrs().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["y"]);
        l.stop_all().await;
        assert!(l.local_addrs().is_empty());
    }
}
