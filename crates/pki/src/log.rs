//! The issuance log: every certificate is recorded durably in an embedded
//! SQLite file **before** it is handed to anyone.
//!
//! Writes go through one writer thread that commits in groups: whoever is
//! waiting when a commit starts is in that commit, and each waiter is told
//! only after the commit (WAL, `synchronous=FULL`) returned. Throughput
//! grows with concurrency while durability stays per certificate.

use crate::revocation::{RevocationReason, RevokedEntry};
use crate::{PkiError, Result};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// What the log stores for each certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRecord {
    /// Serial as decimal text.
    pub serial: String,
    /// Issuer key identifier, lowercase hex.
    pub aki: String,
    /// CA label (free text; the CA's subject by default).
    pub ca_label: String,
    /// Profile name.
    pub profile: String,
    /// Subject as text.
    pub subject: String,
    /// SANs.
    pub sans: Vec<String>,
    /// Validity start.
    pub not_before: OffsetDateTime,
    /// Validity end.
    pub not_after: OffsetDateTime,
    /// The certificate PEM.
    pub pem: String,
    /// `good` or `revoked`.
    pub status: String,
    /// Revocation reason code (0 when good).
    pub reason: u8,
    /// Revocation time.
    pub revoked_at: Option<OffsetDateTime>,
}

impl CertRecord {
    /// The record of a freshly issued certificate.
    pub fn from_issued(i: &crate::issue::Issued, ca_label: &str) -> Self {
        CertRecord {
            serial: i.serial.to_decimal(),
            aki: i.aki_hex.clone(),
            ca_label: ca_label.to_string(),
            profile: i.profile.clone(),
            subject: i.subject.clone(),
            sans: i.sans.clone(),
            not_before: i.not_before,
            not_after: i.not_after,
            pem: i.pem.clone(),
            status: "good".into(),
            reason: 0,
            revoked_at: None,
        }
    }
}

struct Job {
    rec: CertRecord,
    done: tokio::sync::oneshot::Sender<Result<()>>,
}

/// The issuance log (one SQLite file).
pub struct CertLog {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    conn: Mutex<Connection>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    path: PathBuf,
}

impl std::fmt::Debug for CertLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertLog").field("path", &self.path).finish()
    }
}

const SCHEMA_VERSION: i64 = 2;

fn db_err(e: rusqlite::Error) -> PkiError {
    PkiError::Log(e.to_string())
}

fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn parse_ts(s: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| PkiError::Log(format!("bad time {s:?}: {e}")))
}

fn open_conn(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(db_err)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(db_err)?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
        .map_err(db_err)?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> Result<()> {
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db_err)?;
    if v > SCHEMA_VERSION {
        return Err(PkiError::Log(format!(
            "the issuance log has schema version {v}, newer than this build ({SCHEMA_VERSION})"
        )));
    }
    if v < 1 {
        conn.execute_batch(
            "BEGIN;
             CREATE TABLE IF NOT EXISTS certificates (
               serial_number TEXT NOT NULL,
               authority_key_identifier TEXT NOT NULL,
               ca_label TEXT NOT NULL,
               profile TEXT NOT NULL,
               subject TEXT NOT NULL,
               sans TEXT NOT NULL,
               not_before TEXT NOT NULL,
               expiry TEXT NOT NULL,
               status TEXT NOT NULL CHECK (status IN ('good','revoked')),
               reason INTEGER NOT NULL DEFAULT 0,
               revoked_at TEXT,
               issued_at TEXT NOT NULL,
               pem TEXT NOT NULL,
               PRIMARY KEY (serial_number, authority_key_identifier)
             );
             -- Partial: issuing a (good) certificate never touches it.
             CREATE INDEX IF NOT EXISTS certificates_revoked
               ON certificates (authority_key_identifier) WHERE status = 'revoked';
             CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
             PRAGMA user_version = 1;
             COMMIT;",
        )
        .map_err(db_err)?;
    }
    if v < 2 {
        // The key-use audit log: append-only, each entry chained to the
        // previous one by hash (see `audit_verify`).
        conn.execute_batch(
            "BEGIN;
             CREATE TABLE IF NOT EXISTS audit (
               seq INTEGER PRIMARY KEY,
               at TEXT NOT NULL,
               event TEXT NOT NULL,
               detail TEXT NOT NULL,
               prev_hash TEXT NOT NULL,
               hash TEXT NOT NULL
             );
             PRAGMA user_version = 2;
             COMMIT;",
        )
        .map_err(db_err)?;
    }
    Ok(())
}

impl CertLog {
    /// Opens (creating if needed, mode 0600) the log at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if !path.exists() {
            create_private_file(&path)?;
        }
        let writer_conn = open_conn(&path)?;
        migrate(&writer_conn)?;
        let conn = open_conn(&path)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let writer = std::thread::Builder::new()
            .name("cert-log-writer".into())
            .spawn(move || writer_loop(writer_conn, rx))
            .map_err(|e| PkiError::Log(format!("cannot start writer: {e}")))?;
        Ok(CertLog {
            tx: Mutex::new(Some(tx)),
            conn: Mutex::new(conn),
            writer: Mutex::new(Some(writer)),
            path,
        })
    }

    /// Path of the SQLite file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn submit(&self, rec: CertRecord) -> Result<tokio::sync::oneshot::Receiver<Result<()>>> {
        let (done, wait) = tokio::sync::oneshot::channel();
        let tx = self
            .tx
            .lock()
            .map_err(|_| PkiError::Log("writer lock poisoned".into()))?;
        let tx = tx
            .as_ref()
            .ok_or_else(|| PkiError::Log("issuance log is closed".into()))?;
        tx.send(Job { rec, done })
            .map_err(|_| PkiError::Log("issuance log writer stopped".into()))?;
        Ok(wait)
    }

    /// Records a certificate; returns only once it is durable. A duplicate
    /// (serial, AKI) is an error: serials never repeat. Blocks the calling
    /// thread: not for use inside an async runtime (see [`Self::record_async`]).
    pub fn record(&self, rec: CertRecord) -> Result<()> {
        self.submit(rec)?
            .blocking_recv()
            .map_err(|_| PkiError::Log("issuance log writer stopped".into()))?
    }

    /// [`Self::record`] for async callers: waits for the group commit
    /// without holding a thread.
    pub async fn record_async(&self, rec: CertRecord) -> Result<()> {
        let wait = self.submit(rec)?;
        wait.await
            .map_err(|_| PkiError::Log("issuance log writer stopped".into()))?
    }

    fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let c = self
            .conn
            .lock()
            .map_err(|_| PkiError::Log("connection lock poisoned".into()))?;
        f(&c).map_err(db_err)
    }

    /// Looks a certificate up.
    pub fn get(&self, serial: &str, aki: &str) -> Result<Option<CertRecord>> {
        let row = self.with_conn(|c| {
            c.query_row(
                "SELECT serial_number, authority_key_identifier, ca_label, profile, subject, sans,
                        not_before, expiry, pem, status, reason, revoked_at
                 FROM certificates WHERE serial_number = ?1 AND authority_key_identifier = ?2",
                params![serial, aki],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, String>(6)?,
                        r.get::<_, String>(7)?,
                        r.get::<_, String>(8)?,
                        r.get::<_, String>(9)?,
                        r.get::<_, i64>(10)?,
                        r.get::<_, Option<String>>(11)?,
                    ))
                },
            )
            .optional()
        })?;
        let Some((serial, aki, ca_label, profile, subject, sans, nb, na, pem, status, reason, ra)) =
            row
        else {
            return Ok(None);
        };
        Ok(Some(CertRecord {
            serial,
            aki,
            ca_label,
            profile,
            subject,
            sans: serde_json::from_str(&sans).unwrap_or_default(),
            not_before: parse_ts(&nb)?,
            not_after: parse_ts(&na)?,
            pem,
            status,
            reason: u8::try_from(reason).unwrap_or(0),
            revoked_at: ra.as_deref().map(parse_ts).transpose()?,
        }))
    }

    /// Marks a certificate revoked. `NotFound` if the log never issued it.
    /// Revoking twice keeps the first time and reason.
    pub fn revoke(
        &self,
        serial: &str,
        aki: &str,
        reason: RevocationReason,
        at: OffsetDateTime,
    ) -> Result<()> {
        let n = self.with_conn(|c| {
            let tx = Transaction::new_unchecked(c, TransactionBehavior::Immediate)?;
            let n = tx.execute(
                "UPDATE certificates SET status = 'revoked', reason = ?3, revoked_at = ?4
                 WHERE serial_number = ?1 AND authority_key_identifier = ?2 AND status = 'good'",
                params![serial, aki, reason.code(), ts(at)],
            )?;
            if n > 0 {
                let detail = serde_json::json!({
                    "serial": serial, "aki": aki, "reason": reason.as_str(),
                });
                append_audit(&tx, "revoke", &detail.to_string(), at)?;
            }
            tx.commit()?;
            Ok(n)
        })?;
        if n == 0 && self.get(serial, aki)?.is_none() {
            return Err(PkiError::NotFound);
        }
        Ok(())
    }

    /// Revoked, unexpired certificates of one issuer (what a CRL lists).
    pub fn revoked(&self, aki: &str, now: OffsetDateTime) -> Result<Vec<RevokedEntry>> {
        let rows = self.with_conn(|c| {
            let mut st = c.prepare_cached(
                "SELECT serial_number, revoked_at, reason, expiry FROM certificates
                 WHERE authority_key_identifier = ?1 AND status = 'revoked'",
            )?;
            let rows = st
                .query_map(params![aki], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        let mut out = Vec::new();
        for (serial, ra, reason, expiry) in rows {
            if parse_ts(&expiry)? < now {
                continue;
            }
            let serial = crate::serial::Serial::from_decimal(&serial)
                .ok_or_else(|| PkiError::Log(format!("bad serial {serial:?} in log")))?;
            let reason = u8::try_from(reason)
                .ok()
                .and_then(RevocationReason::from_code)
                .unwrap_or(RevocationReason::Unspecified);
            out.push(RevokedEntry {
                serial: serial.as_bytes().to_vec(),
                revoked_at: ra.as_deref().map(parse_ts).transpose()?.unwrap_or(now),
                reason,
            });
        }
        Ok(out)
    }

    /// Increments and returns a named counter (CRL numbers).
    pub fn next_counter(&self, name: &str) -> Result<u64> {
        let v: i64 = self.with_conn(|c| {
            c.query_row(
                "INSERT INTO counters (name, value) VALUES (?1, 1)
                 ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
                params![name],
                |r| r.get(0),
            )
        })?;
        Ok(u64::try_from(v).unwrap_or(0))
    }

    /// Appends one entry to the key-use audit log, chained to the last one.
    /// `event` names the use (`issue`, `revoke`, `crl`, `ocsp`, `unseal`,
    /// `seal`, …); `detail` is JSON and must never hold secrets.
    pub fn audit_append(&self, event: &str, detail: &serde_json::Value) -> Result<()> {
        let now = OffsetDateTime::now_utc();
        self.with_conn(|c| {
            let tx = Transaction::new_unchecked(c, TransactionBehavior::Immediate)?;
            append_audit(&tx, event, &detail.to_string(), now)?;
            tx.commit()
        })
    }

    /// Checks the audit log's hash chain from the first entry; stops at the
    /// first broken one.
    pub fn audit_verify(&self) -> Result<AuditReport> {
        self.with_conn(|c| {
            let mut st = c.prepare(
                "SELECT seq, at, event, detail, prev_hash, hash FROM audit ORDER BY seq",
            )?;
            let mut rows = st.query([])?;
            let mut prev = GENESIS.to_string();
            let mut expect_seq = 1i64;
            let mut entries = 0u64;
            while let Some(r) = rows.next()? {
                let seq: i64 = r.get(0)?;
                let (at, event, detail, prev_hash, hash): (String, String, String, String, String) =
                    (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?);
                let broken = |reason: &str| AuditReport {
                    entries,
                    broken: Some(BrokenEntry {
                        seq,
                        reason: reason.to_string(),
                    }),
                };
                if seq != expect_seq {
                    return Ok(broken(&format!(
                        "entry {expect_seq} is missing (next entry is {seq})"
                    )));
                }
                if prev_hash != prev {
                    return Ok(broken(
                        "its previous-entry hash does not match the previous entry",
                    ));
                }
                if entry_hash(&prev_hash, seq, &at, &event, &detail) != hash {
                    return Ok(broken("its contents do not match its hash (edited)"));
                }
                prev = hash;
                expect_seq += 1;
                entries += 1;
            }
            Ok(AuditReport {
                entries,
                broken: None,
            })
        })
    }

    /// All audit entries in order (for tests and operators).
    pub fn audit_entries(&self) -> Result<Vec<AuditEntry>> {
        self.with_conn(|c| {
            let mut st =
                c.prepare("SELECT seq, at, event, detail, hash FROM audit ORDER BY seq")?;
            let v = st
                .query_map([], |r| {
                    Ok(AuditEntry {
                        seq: r.get(0)?,
                        at: r.get(1)?,
                        event: r.get(2)?,
                        detail: r.get(3)?,
                        hash: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(v)
        })
    }

    /// Number of certificates recorded.
    pub fn count(&self) -> Result<u64> {
        let n: i64 =
            self.with_conn(|c| c.query_row("SELECT count(*) FROM certificates", [], |r| r.get(0)))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// All serials (decimal) of one issuer; for tests and audits.
    pub fn serials(&self, aki: &str) -> Result<Vec<String>> {
        self.with_conn(|c| {
            let mut st = c.prepare(
                "SELECT serial_number FROM certificates WHERE authority_key_identifier = ?1",
            )?;
            let v = st
                .query_map(params![aki], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(v)
        })
    }
}

impl Drop for CertLog {
    fn drop(&mut self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Ok(mut w) = self.writer.lock() {
            if let Some(h) = w.take() {
                let _ = h.join();
            }
        }
    }
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When (RFC 3339).
    pub at: String,
    /// What the key was used for.
    pub event: String,
    /// JSON details (serials, reasons; never secrets).
    pub detail: String,
    /// This entry's hash (hex SHA-256).
    pub hash: String,
}

/// The outcome of [`CertLog::audit_verify`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditReport {
    /// Entries checked and found intact (before the broken one, if any).
    pub entries: u64,
    /// The first broken entry.
    pub broken: Option<BrokenEntry>,
}

/// Where and why the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BrokenEntry {
    /// The entry's sequence number.
    pub seq: i64,
    /// What is wrong with it.
    pub reason: String,
}

/// The previous-entry hash of the first entry.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// hex SHA-256 over the previous hash and the entry's fields, each
/// length-prefixed so that no two different entries hash alike.
fn entry_hash(prev: &str, seq: i64, at: &str, event: &str, detail: &str) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(b"portcullis-audit-v1");
    for field in [
        prev.as_bytes(),
        seq.to_string().as_bytes(),
        at.as_bytes(),
        event.as_bytes(),
        detail.as_bytes(),
    ] {
        ctx.update(&(field.len() as u64).to_be_bytes());
        ctx.update(field);
    }
    hex::encode(ctx.finish().as_ref())
}

/// The newest audit entry's sequence number and hash (0 and the genesis
/// hash for an empty log).
fn audit_tip(c: &Connection) -> rusqlite::Result<(i64, String)> {
    Ok(
        c.prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .unwrap_or_else(|| (0, GENESIS.to_string())),
    )
}

/// Appends an audit entry after `tip` and moves `tip` to it. Must run inside
/// the caller's (IMMEDIATE) transaction, so reading the tip and writing the
/// next entry cannot interleave with another writer.
fn append_audit_after(
    c: &Connection,
    tip: &mut (i64, String),
    event: &str,
    detail: &str,
    at: OffsetDateTime,
) -> rusqlite::Result<()> {
    let seq = tip.0 + 1;
    let at = ts(at);
    let hash = entry_hash(&tip.1, seq, &at, event, detail);
    c.prepare_cached(
        "INSERT INTO audit (seq, at, event, detail, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![seq, at, event, detail, tip.1, hash])?;
    *tip = (seq, hash);
    Ok(())
}

/// Appends one audit entry inside the caller's (IMMEDIATE) transaction.
fn append_audit(
    c: &Connection,
    event: &str,
    detail: &str,
    at: OffsetDateTime,
) -> rusqlite::Result<()> {
    let mut tip = audit_tip(c)?;
    append_audit_after(c, &mut tip, event, detail, at)
}

const INSERT: &str = "INSERT INTO certificates
    (serial_number, authority_key_identifier, ca_label, profile, subject, sans, not_before,
     expiry, status, reason, revoked_at, issued_at, pem)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

const MAX_GROUP: usize = 1024;

fn writer_loop(conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let now_t = OffsetDateTime::now_utc();
        let now = ts(now_t);
        let outcome = (|| -> rusqlite::Result<Vec<Result<()>>> {
            // IMMEDIATE: the audit chain's last hash is read and extended
            // under the write lock.
            let tx = Transaction::new_unchecked(&conn, TransactionBehavior::Immediate)?;
            let mut results = Vec::with_capacity(batch.len());
            // One read of the chain's tip per group, then extended in memory.
            let mut tip = audit_tip(&tx)?;
            {
                let mut st = tx.prepare_cached(INSERT)?;
                for j in &batch {
                    let r = &j.rec;
                    let sans = serde_json::to_string(&r.sans).unwrap_or_else(|_| "[]".into());
                    let res = st
                        .execute(params![
                            r.serial,
                            r.aki,
                            r.ca_label,
                            r.profile,
                            r.subject,
                            sans,
                            ts(r.not_before),
                            ts(r.not_after),
                            r.status,
                            r.reason,
                            r.revoked_at.map(ts),
                            now,
                            r.pem
                        ])
                        .map(|_| ())
                        .map_err(|e| match e {
                            rusqlite::Error::SqliteFailure(f, _)
                                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                            {
                                PkiError::Log(format!(
                                    "serial {} is already in the issuance log",
                                    r.serial
                                ))
                            }
                            e => db_err(e),
                        });
                    if res.is_ok() {
                        let detail = serde_json::json!({
                            "serial": r.serial, "aki": r.aki, "profile": r.profile,
                            "subject": r.subject,
                        });
                        append_audit_after(&tx, &mut tip, "issue", &detail.to_string(), now_t)?;
                    }
                    results.push(res);
                }
            }
            tx.commit()?;
            Ok(results)
        })();
        match outcome {
            Ok(results) => {
                for (j, r) in batch.into_iter().zip(results) {
                    let _ = j.done.send(r);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "issuance log commit failed");
                for j in batch {
                    let _ = j.done.send(Err(PkiError::Log(e.to_string())));
                }
            }
        }
    }
}

/// Creates an empty file readable and writable by the owner only.
pub fn create_private_file(path: &Path) -> Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
        .map_err(|e| PkiError::Log(format!("cannot create {}: {e}", path.display())))
}
