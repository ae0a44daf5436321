//! Fresh stores for the suite.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use store::{Backend, SqlStore, StoreOptions};

/// The PostgreSQL the suite uses.
pub fn pg_url() -> String {
    std::env::var("PORTCULLIS_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A store and what it takes to open it again.
pub struct Db {
    pub store: Arc<SqlStore>,
    pub backend: Backend,
    dir: tempfile::TempDir,
    schema: Option<String>,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// 32 bytes for sealing tests.
pub const KEY: [u8; 32] = [7u8; 32];

impl Db {
    pub async fn sqlite() -> Db {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store::open_sqlite(&dir.path().join("store.db"), StoreOptions::default())
            .await
            .expect("open sqlite store");
        Db {
            store,
            backend: Backend::Sqlite,
            dir,
            schema: None,
        }
    }

    pub async fn postgres() -> Db {
        let dir = tempfile::tempdir().expect("tempdir");
        let schema = format!(
            "t_{}_{}_{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        );
        let opts = StoreOptions {
            pg_schema: Some(schema.clone()),
            poll_interval: std::time::Duration::from_millis(500),
            ..StoreOptions::default()
        };
        let store = match store::open_postgres(&pg_url(), opts).await {
            Ok(s) => s,
            Err(e) => panic!(
                "PostgreSQL is not reachable at {} ({e}); run scripts/install-test-deps.sh \
                 or set PORTCULLIS_TEST_PG",
                pg_url()
            ),
        };
        Db {
            store,
            backend: Backend::Postgres,
            dir,
            schema: Some(schema),
        }
    }

    /// Opens the same database again with other options.
    pub async fn reopen(&self, mut opts: StoreOptions) -> store::Result<Arc<SqlStore>> {
        match self.backend {
            Backend::Sqlite => store::open_sqlite(&self.dir.path().join("store.db"), opts).await,
            Backend::Postgres => {
                opts.pg_schema = self.schema.clone();
                store::open_postgres(&pg_url(), opts).await
            }
        }
    }

    /// Opens a store sealing keys with [`KEY`] on a fresh database of the
    /// same backend.
    pub async fn fresh_sealed(&self) -> (Db, Arc<SqlStore>) {
        let db = match self.backend {
            Backend::Sqlite => Db::sqlite().await,
            Backend::Postgres => Db::postgres().await,
        };
        let s = db
            .reopen(StoreOptions {
                secret_key: Some(KEY),
                ..StoreOptions::default()
            })
            .await
            .expect("reopen with key");
        (db, s)
    }

    /// Raw bytes of every `key_sealed` of `table` (to check sealing).
    pub async fn raw_keys(&self, table: &str) -> Vec<Vec<u8>> {
        match self.backend {
            Backend::Sqlite => {
                let c = rusqlite::Connection::open(self.dir.path().join("store.db")).expect("open");
                let mut st = c
                    .prepare(&format!("SELECT key_sealed FROM {table}"))
                    .expect("prepare");
                st.query_map([], |r| r.get::<_, Vec<u8>>(0))
                    .expect("query")
                    .map(|r| r.expect("row"))
                    .collect()
            }
            Backend::Postgres => {
                let (c, conn) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls)
                    .await
                    .expect("connect");
                tokio::spawn(conn);
                let schema = self.schema.as_deref().unwrap_or("public");
                c.query(&format!("SELECT key_sealed FROM \"{schema}\".{table}"), &[])
                    .await
                    .expect("query")
                    .iter()
                    .map(|r| r.get::<_, Vec<u8>>(0))
                    .collect()
            }
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let Some(schema) = self.schema.take() else {
            return;
        };
        // Drop the schema on a thread of its own: we may be inside the
        // test's runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok((c, conn)) =
                    tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = c
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}
