//! The two backends: how a transaction is begun, run and committed, and
//! how a committed version is announced.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::error::{Result, StoreError};
use crate::migrations;
use crate::ops;
use crate::sql::{pg_err, Conn, Tx};

/// The future an operation returns.
pub(crate) type OpFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// SQLite: one writer and one reader connection (WAL lets them run at the
/// same time); every statement runs on tokio's blocking pool.
pub(crate) struct Sqlite {
    writer: Mutex<rusqlite::Connection>,
    reader: Mutex<rusqlite::Connection>,
}

/// PostgreSQL: a small pool of connections, each used by one transaction
/// at a time, reconnected when broken.
pub(crate) struct Postgres {
    config: tokio_postgres::Config,
    schema: Option<String>,
    pool: Vec<tokio::sync::Mutex<Option<tokio_postgres::Client>>>,
    next: AtomicUsize,
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(h) = self
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            h.abort();
        }
    }
}

pub(crate) enum Db {
    Sqlite(Arc<Sqlite>),
    Postgres(Arc<Postgres>),
}

/// Polls a future that never waits (every SQLite statement is
/// synchronous) to its end.
fn poll_now<F: Future>(f: F) -> Result<F::Output> {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Ok(v),
        Poll::Pending => Err(StoreError::Internal(
            "an SQLite operation tried to wait".into(),
        )),
    }
}

fn sqlite_open(path: &Path) -> Result<rusqlite::Connection> {
    let c = rusqlite::Connection::open(path)
        .map_err(|e| StoreError::Io(format!("cannot open {}: {e}", path.display())))?;
    c.busy_timeout(Duration::from_secs(10))?;
    // Every operation's statements stay prepared.
    c.set_prepared_statement_cache_capacity(256);
    c.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
    )?;
    Ok(c)
}

impl Sqlite {
    pub(crate) fn open(path: &Path) -> Result<Sqlite> {
        let mut writer = sqlite_open(path)?;
        writer.execute_batch(migrations::BOOTSTRAP)?;
        writer.execute_batch("BEGIN IMMEDIATE")?;
        let r = {
            let mut tx = Tx::new(Conn::Sqlite(&mut writer));
            poll_now(migrations::apply(&mut tx, ops::now())).and_then(|r| r)
        };
        match r {
            Ok(_) => writer.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = writer.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
        let reader = sqlite_open(path)?;
        Ok(Sqlite {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }
}

type PgConnection =
    tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>;

async fn pg_connect(
    config: &tokio_postgres::Config,
) -> Result<(tokio_postgres::Client, PgConnection)> {
    let mut config = config.clone();
    config.connect_timeout(Duration::from_secs(5));
    config
        .connect(NoTls)
        .await
        .map_err(|e| StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))
}

async fn pg_setup(client: &tokio_postgres::Client, schema: Option<&str>) -> Result<()> {
    if let Some(s) = schema {
        client
            .batch_execute(&format!("SET search_path TO \"{s}\""))
            .await
            .map_err(pg_err)?;
    }
    Ok(())
}

/// A schema name we are willing to quote into SQL.
pub(crate) fn valid_schema(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 60
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl Postgres {
    pub(crate) async fn open(
        url: &str,
        schema: Option<String>,
        pool_size: usize,
    ) -> Result<Postgres> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Invalid(format!("bad PostgreSQL URL: {e}")))?;
        if let Some(s) = &schema {
            if !valid_schema(s) {
                return Err(StoreError::Invalid(format!(
                    "bad schema name {s:?} (lowercase letters, digits, _)"
                )));
            }
        }
        let pg = Postgres {
            config,
            schema,
            pool: (0..pool_size.max(1))
                .map(|_| tokio::sync::Mutex::new(None))
                .collect(),
            next: AtomicUsize::new(0),
            listener: Mutex::new(None),
        };
        // Migrate under an advisory lock, so nodes starting together do
        // not race.
        let mut slot = pg.pool[0].lock().await;
        let client = pg.client(&mut slot).await?;
        if let Some(s) = &pg.schema {
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{s}\""))
                .await
                .map_err(pg_err)?;
        }
        client.batch_execute("BEGIN").await.map_err(pg_err)?;
        let r = async {
            client
                .batch_execute("SELECT pg_advisory_xact_lock(7403554431)")
                .await
                .map_err(pg_err)?;
            client
                .batch_execute(migrations::BOOTSTRAP)
                .await
                .map_err(pg_err)?;
            let mut tx = Tx::new(Conn::Postgres(client));
            migrations::apply(&mut tx, ops::now()).await
        }
        .await;
        match r {
            Ok(_) => client.batch_execute("COMMIT").await.map_err(pg_err)?,
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(e);
            }
        }
        drop(slot);
        Ok(pg)
    }

    /// The slot's client, connecting when there is none or it broke.
    async fn client<'s>(
        &self,
        slot: &'s mut Option<tokio_postgres::Client>,
    ) -> Result<&'s tokio_postgres::Client> {
        if slot.as_ref().is_none_or(|c| c.is_closed()) {
            *slot = None;
            let (client, conn) = pg_connect(&self.config).await?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "PostgreSQL connection ended");
                }
            });
            pg_setup(&client, self.schema.as_deref()).await?;
            *slot = Some(client);
        }
        slot.as_ref()
            .ok_or_else(|| StoreError::Internal("no connection".into()))
    }

    /// Starts the task that turns NOTIFY (and a periodic check) into
    /// version announcements.
    pub(crate) fn listen(self: &Arc<Self>, version: Arc<watch::Sender<u64>>, poll: Duration) {
        let me = Arc::downgrade(self);
        let h = tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            loop {
                let Some(pg) = me.upgrade() else { return };
                let config = pg.config.clone();
                let schema = pg.schema.clone();
                drop(pg);
                match listen_once(&config, schema.as_deref(), &version, poll).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "PostgreSQL change listener lost; reconnecting");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        });
        *self.listener.lock().unwrap_or_else(PoisonError::into_inner) = Some(h);
    }
}

/// One LISTEN session; returns an error when the connection is lost.
async fn listen_once(
    config: &tokio_postgres::Config,
    schema: Option<&str>,
    version: &watch::Sender<u64>,
    poll: Duration,
) -> Result<()> {
    let (client, mut conn) = pg_connect(config).await?;
    let (ntx, mut nrx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let driver = tokio::spawn(async move {
        while let Some(m) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
            match m {
                Ok(AsyncMessage::Notification(_)) => {
                    if ntx.send(()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    let _abort = AbortOnDrop(driver);
    pg_setup(&client, schema).await?;
    client
        .batch_execute(&format!("LISTEN {}", ops::NOTIFY_CHANNEL))
        .await
        .map_err(pg_err)?;
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            n = nrx.recv() => if n.is_none() {
                return Err(StoreError::Unavailable("listener connection closed".into()));
            },
            _ = tick.tick() => {},
        }
        let row = client
            .query_one("SELECT version FROM config_version WHERE id = 1", &[])
            .await
            .map_err(pg_err)?;
        let v: i64 = row.try_get(0).map_err(pg_err)?;
        announce(version, u64::try_from(v).unwrap_or(0));
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Raises the announced version (never lowers it).
pub(crate) fn announce(version: &watch::Sender<u64>, v: u64) {
    version.send_if_modified(|cur| {
        if v > *cur {
            *cur = v;
            true
        } else {
            false
        }
    });
}

impl Db {
    /// Runs `f` in one transaction: committed when it returns `Ok`, rolled
    /// back otherwise. Returns the value and the version it bumped to.
    pub(crate) async fn run<T, F>(&self, write: bool, f: F) -> Result<(T, Option<u64>)>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut Tx<'a>) -> OpFuture<'a, T> + Send + 'static,
    {
        match self {
            Db::Sqlite(db) => {
                let db = db.clone();
                tokio::task::spawn_blocking(move || {
                    let lock = if write { &db.writer } else { &db.reader };
                    let mut guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
                    guard.execute_batch(if write { "BEGIN IMMEDIATE" } else { "BEGIN" })?;
                    let (r, bumped) = {
                        let mut tx = Tx::new(Conn::Sqlite(&mut guard));
                        let bumped = tx.bumped.clone();
                        let r = poll_now(f(&mut tx)).and_then(|r| r);
                        (r, bumped.load(Ordering::Relaxed))
                    };
                    match r {
                        Ok(v) => {
                            guard.execute_batch("COMMIT")?;
                            Ok((v, (bumped > 0).then_some(bumped)))
                        }
                        Err(e) => {
                            let _ = guard.execute_batch("ROLLBACK");
                            Err(e)
                        }
                    }
                })
                .await
                .map_err(|e| StoreError::Internal(format!("store task failed: {e}")))?
            }
            Db::Postgres(db) => {
                let n = db.pool.len();
                let start = db.next.fetch_add(1, Ordering::Relaxed);
                // A free connection if there is one, else wait on ours.
                let mut slot = None;
                for i in 0..n {
                    if let Ok(g) = db.pool[(start + i) % n].try_lock() {
                        slot = Some(g);
                        break;
                    }
                }
                let mut slot = match slot {
                    Some(s) => s,
                    None => db.pool[start % n].lock().await,
                };
                let client = db.client(&mut slot).await?;
                let begin = if write {
                    "BEGIN"
                } else {
                    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                };
                if let Err(e) = client.batch_execute(begin).await {
                    *slot = None;
                    return Err(pg_err(e));
                }
                let (r, bumped) = {
                    let mut tx = Tx::new(Conn::Postgres(client));
                    let bumped = tx.bumped.clone();
                    let r = f(&mut tx).await;
                    (r, bumped.load(Ordering::Relaxed))
                };
                match r {
                    Ok(v) => match client.batch_execute("COMMIT").await {
                        Ok(()) => Ok((v, (bumped > 0).then_some(bumped))),
                        Err(e) => {
                            *slot = None;
                            Err(pg_err(e))
                        }
                    },
                    Err(e) => {
                        if client.batch_execute("ROLLBACK").await.is_err() {
                            *slot = None;
                        }
                        Err(e)
                    }
                }
            }
        }
    }
}
