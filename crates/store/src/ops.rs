//! Every operation, written once over [`Tx`]: the backends only begin and
//! commit. A change that affects what the gateway serves bumps the
//! configuration version and records the hostnames concerned in the same
//! transaction as the change and its audit entry.

use std::collections::{BTreeMap, BTreeSet};

use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use serde_json::json;
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};
use crate::model::*;
use crate::seal::Sealer;
use crate::sql::{Dialect, Row, Tx, Value};

/// The PostgreSQL channel the version is announced on.
pub(crate) const NOTIFY_CHANNEL: &str = "portcullis_config";

/// Most rows a list returns.
const MAX_LIMIT: u32 = 1000;

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn limit(l: Option<u32>) -> i64 {
    i64::from(l.unwrap_or(MAX_LIMIT).clamp(1, MAX_LIMIT))
}

/// One page of an account's rows of `table`, in id order: the paging rule
/// of every per-account listing.
async fn account_page(
    tx: &mut Tx<'_>,
    cols: &str,
    table: &str,
    account: AccountId,
    page: Page,
) -> Result<Vec<Row>> {
    tx.query(
        &format!(
            "SELECT {cols} FROM {table} WHERE account_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
        ),
        &[
            Value::Int(account),
            Value::Int(page.after_id.unwrap_or(0)),
            Value::Int(limit(page.limit)),
        ],
    )
    .await
}

fn json_text<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Internal(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Internal(format!("stored JSON: {e}")))
}

fn non_empty(what: &str, v: &str) -> Result<()> {
    if v.trim().is_empty() {
        Err(StoreError::Invalid(format!("{what} must not be empty")))
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------- audit, feed

pub(crate) async fn audit(
    tx: &mut Tx<'_>,
    actor: &Actor,
    account: Option<AccountId>,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> Result<()> {
    tx.exec(
        "INSERT INTO audit_log (at, actor, account_id, action, target, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        &[
            Value::Int(now()),
            actor.describe().into(),
            account.into(),
            action.into(),
            target.into(),
            detail.to_string().into(),
        ],
    )
    .await?;
    Ok(())
}

/// Bumps the configuration version and records which hostnames changed.
pub(crate) async fn bump(tx: &mut Tx<'_>, hostnames: &[String]) -> Result<u64> {
    if hostnames.is_empty() {
        return Ok(tx.bumped.load(std::sync::atomic::Ordering::Relaxed));
    }
    let v = tx
        .query_one(
            "UPDATE config_version SET version = version + 1 WHERE id = 1 RETURNING version",
            &[],
        )
        .await?
        .i64(0)?;
    for h in hostnames.iter().collect::<BTreeSet<_>>() {
        tx.exec(
            "INSERT INTO config_changes (version, hostname) VALUES (?1, ?2)",
            &[Value::Int(v), h.into()],
        )
        .await?;
    }
    if tx.dialect() == Dialect::Postgres {
        tx.exec(
            "SELECT pg_notify(?1, ?2)",
            &[NOTIFY_CHANNEL.into(), v.to_string().into()],
        )
        .await?;
    }
    let v = u64::try_from(v).unwrap_or(0);
    tx.bumped.store(v, std::sync::atomic::Ordering::Relaxed);
    Ok(v)
}

pub(crate) async fn config_version(tx: &mut Tx<'_>) -> Result<u64> {
    let v = tx
        .query_one("SELECT version FROM config_version WHERE id = 1", &[])
        .await?
        .i64(0)?;
    Ok(u64::try_from(v).unwrap_or(0))
}

pub(crate) async fn changes_since(tx: &mut Tx<'_>, since: u64) -> Result<Changes> {
    let row = tx
        .query_one(
            "SELECT version, pruned_through FROM config_version WHERE id = 1",
            &[],
        )
        .await?;
    let current = u64::try_from(row.i64(0)?).unwrap_or(0);
    let pruned = u64::try_from(row.i64(1)?).unwrap_or(0);
    if since == current {
        return Ok(Changes::UpToDate);
    }
    if since > current || since < pruned {
        return Ok(Changes::Full { version: current });
    }
    let rows = tx
        .query(
            "SELECT DISTINCT hostname FROM config_changes WHERE version > ?1 AND version <= ?2 \
             ORDER BY hostname",
            &[Value::Int(since as i64), Value::Int(current as i64)],
        )
        .await?;
    let mut names = Vec::with_capacity(rows.len());
    for mut r in rows {
        names.push(r.text(0)?);
    }
    Ok(Changes::Hostnames {
        version: current,
        names,
    })
}

/// Drops change records older than `keep` versions behind the current one.
pub(crate) async fn prune_changes(tx: &mut Tx<'_>, keep: u64) -> Result<u64> {
    let current = config_version(tx).await?;
    let through = current.saturating_sub(keep);
    if through == 0 {
        return Ok(0);
    }
    let n = tx
        .exec(
            "DELETE FROM config_changes WHERE version <= ?1",
            &[Value::Int(through as i64)],
        )
        .await?;
    tx.exec(
        "UPDATE config_version SET pruned_through = ?1 WHERE id = 1 AND pruned_through < ?1",
        &[Value::Int(through as i64)],
    )
    .await?;
    Ok(n)
}

// ---------------------------------------------------------------- accounts

const ACCOUNT_COLS: &str = "id, name, ca_limit, created_at";

fn account_row(mut r: Row) -> Result<Account> {
    Ok(Account {
        id: r.i64(0)?,
        name: r.text(1)?,
        ca_limit: r.opt_i64(2)?.map(|v| u32::try_from(v).unwrap_or(u32::MAX)),
        created_at: r.i64(3)?,
    })
}

pub(crate) async fn get_account(tx: &mut Tx<'_>, id: AccountId) -> Result<Account> {
    let r = tx
        .query_opt(
            &format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = ?1"),
            &[Value::Int(id)],
        )
        .await?
        .ok_or(StoreError::NotFound { kind: "account" })?;
    account_row(r)
}

pub(crate) async fn create_account(
    tx: &mut Tx<'_>,
    actor: &Actor,
    new: &NewAccount,
) -> Result<Account> {
    non_empty("account name", &new.name)?;
    if tx
        .query_opt(
            "SELECT id FROM accounts WHERE name = ?1",
            &[(&new.name).into()],
        )
        .await?
        .is_some()
    {
        return Err(StoreError::Conflict {
            kind: "account",
            name: new.name.clone(),
        });
    }
    let id = tx
        .query_one(
            "INSERT INTO accounts (name, ca_limit, created_at) VALUES (?1, ?2, ?3) RETURNING id",
            &[(&new.name).into(), new.ca_limit.into(), Value::Int(now())],
        )
        .await?
        .i64(0)?;
    audit(
        tx,
        actor,
        Some(id),
        "account.create",
        &format!("account:{id}"),
        json!({"name": new.name, "ca_limit": new.ca_limit}),
    )
    .await?;
    get_account(tx, id).await
}

pub(crate) async fn list_accounts(tx: &mut Tx<'_>, page: Page) -> Result<Vec<Account>> {
    let rows = tx
        .query(
            &format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id > ?1 ORDER BY id LIMIT ?2"),
            &[
                Value::Int(page.after_id.unwrap_or(0)),
                Value::Int(limit(page.limit)),
            ],
        )
        .await?;
    rows.into_iter().map(account_row).collect()
}

pub(crate) async fn update_account(
    tx: &mut Tx<'_>,
    actor: &Actor,
    id: AccountId,
    up: &AccountUpdate,
) -> Result<Account> {
    let cur = get_account(tx, id).await?;
    if let Some(name) = &up.name {
        non_empty("account name", name)?;
        if *name != cur.name
            && tx
                .query_opt("SELECT id FROM accounts WHERE name = ?1", &[name.into()])
                .await?
                .is_some()
        {
            return Err(StoreError::Conflict {
                kind: "account",
                name: name.clone(),
            });
        }
    }
    let name = up.name.clone().unwrap_or(cur.name);
    let ca_limit = up.ca_limit.unwrap_or(cur.ca_limit);
    tx.exec(
        "UPDATE accounts SET name = ?1, ca_limit = ?2 WHERE id = ?3",
        &[(&name).into(), ca_limit.into(), Value::Int(id)],
    )
    .await?;
    audit(
        tx,
        actor,
        Some(id),
        "account.update",
        &format!("account:{id}"),
        json!({"name": name, "ca_limit": ca_limit}),
    )
    .await?;
    get_account(tx, id).await
}

pub(crate) async fn delete_account(tx: &mut Tx<'_>, actor: &Actor, id: AccountId) -> Result<()> {
    let acc = get_account(tx, id).await?;
    let rows = tx
        .query(
            "SELECT name FROM hostnames WHERE account_id = ?1",
            &[Value::Int(id)],
        )
        .await?;
    let mut names = Vec::with_capacity(rows.len());
    for mut r in rows {
        names.push(r.text(0)?);
    }
    // hostname_cas rows go with their hostnames (cascade), so the CAs can go.
    tx.exec(
        "DELETE FROM hostnames WHERE account_id = ?1",
        &[Value::Int(id)],
    )
    .await?;
    tx.exec("DELETE FROM accounts WHERE id = ?1", &[Value::Int(id)])
        .await?;
    bump(tx, &names).await?;
    audit(
        tx,
        actor,
        Some(id),
        "account.delete",
        &format!("account:{id}"),
        json!({"name": acc.name, "hostnames_removed": names.len()}),
    )
    .await
}

// ---------------------------------------------------------------- tokens

const TOKEN_COLS: &str = "id, account_id, name, scopes, prefix, created_at, expires_at";
/// Length of the shown prefix (`pcs_` + 8 hex digits).
const PREFIX_LEN: usize = 12;

fn token_row(mut r: Row) -> Result<ApiToken> {
    let scopes = r.text(3)?;
    Ok(ApiToken {
        id: r.i64(0)?,
        account_id: r.opt_i64(1)?,
        name: r.text(2)?,
        scopes: scopes.split(',').filter_map(Scope::parse).collect(),
        prefix: r.text(4)?,
        created_at: r.i64(5)?,
        expires_at: r.opt_i64(6)?,
    })
}

pub(crate) fn token_hash(secret: &str) -> Vec<u8> {
    digest(&SHA256, secret.as_bytes()).as_ref().to_vec()
}

pub(crate) async fn create_token(
    tx: &mut Tx<'_>,
    actor: &Actor,
    new: &NewToken,
) -> Result<(ApiToken, TokenSecret)> {
    non_empty("token name", &new.name)?;
    let scopes: BTreeSet<Scope> = new.scopes.iter().copied().collect();
    if scopes.is_empty() {
        return Err(StoreError::Invalid(
            "a token needs at least one scope".into(),
        ));
    }
    match new.account_id {
        None if scopes != BTreeSet::from([Scope::Admin]) => {
            return Err(StoreError::Invalid(
                "a token without an account must have exactly the admin scope".into(),
            ))
        }
        Some(_) if scopes.contains(&Scope::Admin) => {
            return Err(StoreError::Invalid(
                "an account token cannot have the admin scope".into(),
            ))
        }
        Some(a) => {
            get_account(tx, a).await?;
        }
        None => {}
    }
    let secret = match &new.secret {
        Some(s) => {
            if s.len() < 32 || !s.is_ascii() || s.chars().any(|c| c.is_ascii_whitespace()) {
                return Err(StoreError::Invalid(
                    "a given token secret must be at least 32 printable ASCII characters".into(),
                ));
            }
            Zeroizing::new(s.clone())
        }
        None => {
            let mut raw = Zeroizing::new([0u8; 32]);
            SystemRandom::new()
                .fill(raw.as_mut())
                .map_err(|_| StoreError::Internal("no randomness".into()))?;
            Zeroizing::new(format!("pcs_{}", hex::encode(raw.as_ref())))
        }
    };
    let prefix: String = secret.chars().take(PREFIX_LEN).collect();
    let scopes_text = scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let id = tx
        .query_one(
            "INSERT INTO api_tokens (account_id, name, scopes, prefix, hash, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
            &[
                new.account_id.into(),
                (&new.name).into(),
                scopes_text.clone().into(),
                (&prefix).into(),
                token_hash(&secret).into(),
                Value::Int(now()),
                new.expires_at.into(),
            ],
        )
        .await?
        .i64(0)?;
    audit(
        tx,
        actor,
        new.account_id,
        "token.create",
        &format!("token:{id}"),
        json!({"name": new.name, "scopes": scopes_text, "prefix": prefix}),
    )
    .await?;
    let r = tx
        .query_one(
            &format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE id = ?1"),
            &[Value::Int(id)],
        )
        .await?;
    Ok((token_row(r)?, TokenSecret(secret)))
}

pub(crate) async fn authenticate(tx: &mut Tx<'_>, secret: &str) -> Result<Option<ApiToken>> {
    // The lookup is by the secret's SHA-256: equal hashes mean equal
    // secrets, and timing reveals nothing usable about other tokens.
    let Some(r) = tx
        .query_opt(
            &format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE hash = ?1"),
            &[token_hash(secret).into()],
        )
        .await?
    else {
        return Ok(None);
    };
    let t = token_row(r)?;
    if t.expires_at.is_some_and(|e| e <= now()) {
        return Ok(None);
    }
    Ok(Some(t))
}

pub(crate) async fn list_tokens(
    tx: &mut Tx<'_>,
    account: Option<AccountId>,
) -> Result<Vec<ApiToken>> {
    let rows = match account {
        Some(a) => {
            tx.query(
                &format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE account_id = ?1 ORDER BY id"),
                &[Value::Int(a)],
            )
            .await?
        }
        None => {
            tx.query(
                &format!(
                    "SELECT {TOKEN_COLS} FROM api_tokens WHERE account_id IS NULL ORDER BY id"
                ),
                &[],
            )
            .await?
        }
    };
    rows.into_iter().map(token_row).collect()
}

pub(crate) async fn count_admin_tokens(tx: &mut Tx<'_>) -> Result<u64> {
    let n = tx
        .query_one(
            "SELECT COUNT(*) FROM api_tokens WHERE account_id IS NULL",
            &[],
        )
        .await?
        .i64(0)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(crate) async fn delete_token(
    tx: &mut Tx<'_>,
    actor: &Actor,
    account: Option<AccountId>,
    id: TokenId,
) -> Result<()> {
    let r = tx
        .query_opt(
            &format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE id = ?1"),
            &[Value::Int(id)],
        )
        .await?
        .ok_or(StoreError::NotFound { kind: "token" })?;
    let t = token_row(r)?;
    if account.is_some() && t.account_id != account {
        return Err(StoreError::NotFound { kind: "token" });
    }
    tx.exec("DELETE FROM api_tokens WHERE id = ?1", &[Value::Int(id)])
        .await?;
    audit(
        tx,
        actor,
        t.account_id,
        "token.delete",
        &format!("token:{id}"),
        json!({"name": t.name, "prefix": t.prefix}),
    )
    .await
}

// ---------------------------------------------------------------- CAs

const CA_COLS: &str =
    "id, account_id, name, pem, subject, not_after, crl_pem, created_at, updated_at";

fn ca_row(mut r: Row) -> Result<Ca> {
    Ok(Ca {
        id: r.i64(0)?,
        account_id: r.i64(1)?,
        name: r.text(2)?,
        pem: r.text(3)?,
        subject: r.text(4)?,
        not_after: r.i64(5)?,
        crl_pem: r.opt_text(6)?,
        created_at: r.i64(7)?,
        updated_at: r.i64(8)?,
    })
}

pub(crate) async fn get_ca(tx: &mut Tx<'_>, account: AccountId, id: CaId) -> Result<Ca> {
    let r = tx
        .query_opt(
            &format!("SELECT {CA_COLS} FROM cas WHERE id = ?1 AND account_id = ?2"),
            &[Value::Int(id), Value::Int(account)],
        )
        .await?
        .ok_or(StoreError::NotFound { kind: "ca" })?;
    ca_row(r)
}

pub(crate) async fn list_cas(tx: &mut Tx<'_>, account: AccountId) -> Result<Vec<Ca>> {
    let rows = tx
        .query(
            &format!("SELECT {CA_COLS} FROM cas WHERE account_id = ?1 ORDER BY id"),
            &[Value::Int(account)],
        )
        .await?;
    rows.into_iter().map(ca_row).collect()
}

pub(crate) async fn create_ca(
    tx: &mut Tx<'_>,
    actor: &Actor,
    account: AccountId,
    new: &NewCa,
    default_limit: u32,
) -> Result<Ca> {
    non_empty("CA name", &new.name)?;
    non_empty("CA PEM", &new.pem)?;
    let acc = get_account(tx, account).await?;
    let have = tx
        .query_one(
            "SELECT COUNT(*) FROM cas WHERE account_id = ?1",
            &[Value::Int(account)],
        )
        .await?
        .i64(0)?;
    let lim = acc.ca_limit.unwrap_or(default_limit);
    if have >= i64::from(lim) {
        return Err(StoreError::LimitReached(format!(
            "the account has {have} CAs; its limit is {lim}"
        )));
    }
    if tx
        .query_opt(
            "SELECT id FROM cas WHERE account_id = ?1 AND name = ?2",
            &[Value::Int(account), (&new.name).into()],
        )
        .await?
        .is_some()
    {
        return Err(StoreError::Conflict {
            kind: "ca",
            name: new.name.clone(),
        });
    }
    let t = now();
    let id = tx
        .query_one(
            "INSERT INTO cas (account_id, name, pem, subject, not_after, crl_pem, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) RETURNING id",
            &[
                Value::Int(account),
                (&new.name).into(),
                (&new.pem).into(),
                (&new.subject).into(),
                Value::Int(new.not_after),
                new.crl_pem.clone().into(),
                Value::Int(t),
            ],
        )
        .await?
        .i64(0)?;
    audit(
        tx,
        actor,
        Some(account),
        "ca.create",
        &format!("ca:{id}"),
        json!({"name": new.name, "subject": new.subject, "not_after": new.not_after}),
    )
    .await?;
    get_ca(tx, account, id).await
}

async fn hostnames_using_ca(tx: &mut Tx<'_>, ca: CaId) -> Result<Vec<String>> {
    let rows = tx
        .query(
            "SELECT h.name FROM hostname_cas hc JOIN hostnames h ON h.id = hc.hostname_id \
             WHERE hc.ca_id = ?1 ORDER BY h.name",
            &[Value::Int(ca)],
        )
        .await?;
    rows.into_iter().map(|mut r| r.text(0)).collect()
}

pub(crate) async fn set_ca_crl(
    tx: &mut Tx<'_>,
    actor: &Actor,
    account: AccountId,
    id: CaId,
    crl_pem: Option<&str>,
) -> Result<Ca> {
    get_ca(tx, account, id).await?;
    tx.exec(
        "UPDATE cas SET crl_pem = ?1, updated_at = ?2 WHERE id = ?3",
        &[crl_pem.into(), Value::Int(now()), Value::Int(id)],
    )
    .await?;
    let users = hostnames_using_ca(tx, id).await?;
    bump(tx, &users).await?;
    audit(
        tx,
        actor,
        Some(account),
        "ca.crl",
        &format!("ca:{id}"),
        json!({"crl": crl_pem.is_some()}),
    )
    .await?;
    get_ca(tx, account, id).await
}

pub(crate) async fn delete_ca(
    tx: &mut Tx<'_>,
    actor: &Actor,
    account: AccountId,
    id: CaId,
    cascade: bool,
) -> Result<()> {
    let ca = get_ca(tx, account, id).await?;
    let users = hostnames_using_ca(tx, id).await?;
    if !users.is_empty() && !cascade {
        return Err(StoreError::InUse { kind: "ca", users });
    }
    tx.exec(
        "DELETE FROM hostname_cas WHERE ca_id = ?1",
        &[Value::Int(id)],
    )
    .await?;
    tx.exec("DELETE FROM cas WHERE id = ?1", &[Value::Int(id)])
        .await?;
    bump(tx, &users).await?;
    audit(
        tx,
        actor,
        Some(account),
        "ca.delete",
        &format!("ca:{id}"),
        json!({"name": ca.name, "dissociated": users}),
    )
    .await
}

// ---------------------------------------------------------------- hostnames

const HOST_COLS: &str = "id, account_id, name, cert_pem, origin, mode, block, headers, \
                         trust_managed_ca, origin_pull_id, created_at, updated_at, edge";

fn host_row(mut r: Row, ca_ids: Vec<CaId>) -> Result<Hostname> {
    let mode = r.text(5)?;
    Ok(Hostname {
        id: r.i64(0)?,
        account_id: r.i64(1)?,
        name: r.text(2)?,
        cert_pem: r.text(3)?,
        origin: r.text(4)?,
        mode: MtlsMode::parse(&mode)
            .ok_or_else(|| StoreError::Internal(format!("stored mode {mode:?}")))?,
        block: from_json(&r.text(6)?)?,
        headers: from_json(&r.text(7)?)?,
        edge: from_json(&r.text(12)?)?,
        trust_managed_ca: r.bool(8)?,
        origin_pull_id: r.opt_i64(9)?,
        ca_ids,
        created_at: r.i64(10)?,
        updated_at: r.i64(11)?,
    })
}

async fn ca_ids_of(tx: &mut Tx<'_>, hostname: HostnameId) -> Result<Vec<CaId>> {
    let rows = tx
        .query(
            "SELECT ca_id FROM hostname_cas WHERE hostname_id = ?1 ORDER BY ca_id",
            &[Value::Int(hostname)],
        )
        .await?;
    rows.iter().map(|r| r.i64(0)).collect()
}

pub(crate) async fn get_hostname(
    tx: &mut Tx<'_>,
    account: AccountId,
    id: HostnameId,
) -> Result<Hostname> {
    let r = tx
        .query_opt(
            &format!("SELECT {HOST_COLS} FROM hostnames WHERE id = ?1 AND account_id = ?2"),
            &[Value::Int(id), Value::Int(account)],
        )
        .await?
        .ok_or(StoreError::NotFound { kind: "hostname" })?;
    let cas = ca_ids_of(tx, id).await?;
    host_row(r, cas)
}

pub(crate) async fn find_hostname(tx: &mut Tx<'_>, name: &str) -> Result<Option<Hostname>> {
    let Some(r) = tx
        .query_opt(
            &format!("SELECT {HOST_COLS} FROM hostnames WHERE name = ?1"),
            &[name.to_ascii_lowercase().into()],
        )
        .await?
    else {
        return Ok(None);
    };
    let cas = ca_ids_of(tx, r.i64(0)?).await?;
    host_row(r, cas).map(Some)
}

pub(crate) async fn list_hostnames(
    tx: &mut Tx<'_>,
    account: AccountId,
    page: Page,
) -> Result<Vec<Hostname>> {
    let rows = account_page(tx, HOST_COLS, "hostnames", account, page).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let cas = ca_ids_of(tx, r.i64(0)?).await?;
        out.push(host_row(r, cas)?);
    }
    Ok(out)
}

async fn check_refs(
    tx: &mut Tx<'_>,
    account: AccountId,
    ca_ids: &[CaId],
    origin_pull: Option<OriginPullId>,
) -> Result<()> {
    for id in ca_ids {
        if tx
            .query_opt(
                "SELECT id FROM cas WHERE id = ?1 AND account_id = ?2",
                &[Value::Int(*id), Value::Int(account)],
            )
            .await?
            .is_none()
        {
            return Err(StoreError::Invalid(format!(
                "CA {id} does not exist in this account"
            )));
        }
    }
    if let Some(op) = origin_pull {
        if tx
            .query_opt(
                "SELECT id FROM origin_pulls WHERE id = ?1 AND account_id = ?2",
                &[Value::Int(op), Value::Int(account)],
            )
            .await?
            .is_none()
        {
            return Err(StoreError::Invalid(format!(
                "origin pull {op} does not exist in this account"
            )));
        }
    }
    Ok(())
}

async fn set_cas(tx: &mut Tx<'_>, hostname: HostnameId, ca_ids: &[CaId]) -> Result<()> {
    tx.exec(
        "DELETE FROM hostname_cas WHERE hostname_id = ?1",
        &[Value::Int(hostname)],
    )
    .await?;
    for id in ca_ids.iter().collect::<BTreeSet<_>>() {
        tx.exec(
            "INSERT INTO hostname_cas (hostname_id, ca_id) VALUES (?1, ?2)",
            &[Value::Int(hostname), Value::Int(*id)],
        )
        .await?;
    }
    Ok(())
}

pub(crate) async fn create_hostname(
    tx: &mut Tx<'_>,
    actor: &Actor,
    account: AccountId,
    new: &NewHostname,
    sealer: &Sealer,
) -> Result<Hostname> {
    let name = new.name.trim().to_ascii_lowercase();
    non_empty("hostname", &name)?;
    non_empty("certificate", &new.cert_pem)?;
    non_empty("origin", &new.origin)?;
    if new.key_pem.expose().is_empty() {
        return Err(StoreError::Invalid("key must not be empty".into()));
    }
    get_account(tx, account).await?;
    if tx
        .query_opt(
            "SELECT id FROM hostnames WHERE name = ?1",
            &[(&name).into()],
        )
        .await?
        .is_some()
    {
        return Err(StoreError::Conflict {
            kind: "hostname",
            name,
        });
    }
    check_refs(tx, account, &new.ca_ids, new.origin_pull_id).await?;
    let t = now();
    let id = tx
        .query_one(
            "INSERT INTO hostnames (account_id, name, cert_pem, key_sealed, origin, mode, block, \
             headers, trust_managed_ca, origin_pull_id, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11) RETURNING id",
            &[
                Value::Int(account),
                (&name).into(),
                (&new.cert_pem).into(),
                sealer.seal(&new.key_pem, "hostname")?.into(),
                (&new.origin).into(),
                new.mode.as_str().into(),
                json_text(&new.block)?.into(),
                json_text(&new.headers)?.into(),
                new.trust_managed_ca.into(),
                new.origin_pull_id.into(),
                Value::Int(t),
            ],
        )
        .await?
        .i64(0)?;
    set_cas(tx, id, &new.ca_ids).await?;
    bump(tx, std::slice::from_ref(&name)).await?;
    audit(
        tx,
        actor,
        Some(account),
        "hostname.create",
        &format!("hostname:{name}"),
        json!({"id": id, "origin": new.origin, "mode": new.mode, "ca_ids": new.ca_ids,
               "trust_managed_ca": new.trust_managed_ca}),
    )
    .await?;
    get_hostname(tx, account, id).await
}

pub(crate) async fn update_hostname(
    tx: &mut Tx<'_>,
    actor: &Actor,
    account: AccountId,
    id: HostnameId,
    up: &HostnameUpdate,
    sealer: &Sealer,
) -> Result<Hostname> {
    let cur = get_hostname(tx, account, id).await?;
    if let Some(cas) = &up.ca_ids {
        check_refs(tx, account, cas, None).await?;
    }
    if let Some(Some(op)) = up.origin_pull_id {
        check_refs(tx, account, &[], Some(op)).await?;
    }
    let mut changed = Vec::new();
    if let Some((cert, key)) = &up.cert {
        non_empty("certificate", cert)?;
        if key.expose().is_empty() {
            return Err(StoreError::Invalid("key must not be empty".into()));
        }
        tx.exec(
            "UPDATE hostnames SET cert_pem = ?1, key_sealed = ?2 WHERE id = ?3",
            &[
                cert.into(),
                sealer.seal(key, "hostname")?.into(),
                Value::Int(id),
            ],
        )
        .await?;
        changed.push("cert");
    }
    let origin = match &up.origin {
        Some(o) => {
            non_empty("origin", o)?;
            changed.push("origin");
            o.clone()
        }
        None => cur.origin.clone(),
    };
    let mode = up.mode.unwrap_or(cur.mode);
    if up.mode.is_some() {
        changed.push("mode");
    }
    let block = up.block.clone().unwrap_or(cur.block.clone());
    if up.block.is_some() {
        changed.push("block");
    }
    let headers = up.headers.clone().unwrap_or(cur.headers.clone());
    if up.headers.is_some() {
        changed.push("headers");
    }
    let edge = up.edge.clone().unwrap_or(cur.edge.clone());
    if up.edge.is_some() {
        changed.push("edge");
    }
    let tm = up.trust_managed_ca.unwrap_or(cur.trust_managed_ca);
    if up.trust_managed_ca.is_some() {
        changed.push("trust_managed_ca");
    }
    let op = up.origin_pull_id.unwrap_or(cur.origin_pull_id);
    if up.origin_pull_id.is_some() {
        changed.push("origin_pull_id");
    }
    tx.exec(
        "UPDATE hostnames SET origin = ?1, mode = ?2, block = ?3, headers = ?4, \
         trust_managed_ca = ?5, origin_pull_id = ?6, updated_at = ?7, edge = ?9 WHERE id = ?8",
        &[
            origin.into(),
            mode.as_str().into(),
            json_text(&block)?.into(),
            json_text(&headers)?.into(),
            tm.into(),
            op.into(),
            Value::Int(now()),
            Value::Int(id),
            json_text(&edge)?.into(),
        ],
    )
    .await?;
    if let Some(cas) = &up.ca_ids {
        set_cas(tx, id, cas).await?;
        changed.push("ca_ids");
    }
    bump(tx, std::slice::from_ref(&cur.name)).await?;
    audit(
        tx,
        actor,
        Some(account),
        "hostname.update",
        &format!("hostname:{}", cur.name),
        json!({"id": id, "changed": changed, "mode": mode, "ca_ids": up.ca_ids}),
    )
    .await?;
    get_hostname(tx, account, id).await
}

pub(crate) async fn delete_hostname(
    tx: &mut Tx<'_>,
    actor: &Actor,
    account: AccountId,
    id: HostnameId,
) -> Result<()> {
    let cur = get_hostname(tx, account, id).await?;
    tx.exec("DELETE FROM hostnames WHERE id = ?1", &[Value::Int(id)])
        .await?;
    bump(tx, std::slice::from_ref(&cur.name)).await?;
    audit(
        tx,
        actor,
        Some(account),
        "hostname.delete",
        &format!("hostname:{}", cur.name),
        json!({"id": id}),
    )
    .await
}

// ---------------------------------------------------------------- managed CA

const MANAGED_COLS: &str = "account_id, cert_pem, crl_pem, created_at, updated_at";

fn managed_row(mut r: Row) -> Result<ManagedCa> {
    Ok(ManagedCa {
        account_id: r.i64(0)?,
        cert_pem: r.text(1)?,
        crl_pem: r.opt_text(2)?,
        created_at: r.i64(3)?,
        updated_at: r.i64(4)?,
    })
}

async fn managed_users(tx: &mut Tx<'_>, account: AccountId) -> Result<Vec<String>> {
    let rows = tx
        .query(
            "SELECT name FROM hostnames WHERE account_id = ?1 AND trust_managed_ca <> 0",
            &[Value::Int(account)],
        )
        .await?;
    rows.into_iter().map(|mut r| r.text(0)).collect()
}

pub(crate) async fn get_managed_ca(tx: &mut Tx<'_>, account: AccountId) -> Result<ManagedCa> {
    let r = tx
        .query_opt(
            &format!("SELECT {MANAGED_COLS} FROM managed_cas WHERE account_id = ?1"),
            &[Value::Int(account)],
        )
        .await?
        .ok_or(StoreError::NotFound { kind: "managed ca" })?;
    managed_row(r)
}

pub(crate) async fn managed_ca_key(
    tx: &mut Tx<'_>,
    account: AccountId,
    sealer: &Sealer,
) -> Result<Secret> {
    let mut r = tx
        .query_opt(
            "SELECT key_sealed FROM managed_cas WHERE account_id = ?1",
            &[Value::Int(account)],
        )
        .await?
        .ok_or(StoreError::NotFound { kind: "managed ca" })?;
    sealer.open(&r.blob(0)?, "managed_ca")
}

pub(crate) async fn put_managed_ca(
    tx: &mut Tx<'_>,
    actor: &Actor,
    account: AccountId,
    cert_pem: &str,
    key: &Secret,
    sealer: &Sealer,
) -> Result<ManagedCa> {
    non_empty("certificate", cert_pem)?;
    get_account(tx, account).await?;
    let t = now();
    let sealed = sealer.seal(key, "managed_ca")?;
    let n = tx
        .exec(
            "UPDATE managed_cas SET cert_pem = ?1, key_sealed = ?2, crl_pem = NULL, updated_at = ?3 \
             WHERE account_id = ?4",
            &[cert_pem.into(), sealed.clone().into(), Value::Int(t), Value::Int(account)],
        )
        .await?;
    if n == 0 {
        tx.exec(
            "INSERT INTO managed_cas (account_id, cert_pem, key_sealed, crl_pem, created_at, updated_at) \
             VALUES (?1, ?2, ?3, NULL, ?4, ?4)",
            &[Value::Int(account), cert_pem.into(), sealed.into(), Value::Int(t)],
        )
        .await?;
    }
    let users = managed_users(tx, account).await?;
    bump(tx, &users).await?;
    audit(
        tx,
        actor,
        Some(account),
        if n == 0 {
            "managed_ca.create"
        } else {
            "managed_ca.replace"
        },
        &format!("managed_ca:{account}"),
        json!({}),
    )
    .await?;
    get_managed_ca(tx, account).await
}

pub(crate) async fn set_managed_ca_crl(
    tx: &mut Tx<'_>,
    actor: &Actor,
    account: AccountId,
    crl_pem: &str,
) -> Result<()> {
    get_managed_ca(tx, account).await?;
    tx.exec(
        "UPDATE managed_cas SET crl_pem = ?1, updated_at = ?2 WHERE account_id = ?3",
        &[crl_pem.into(), Value::Int(now()), Value::Int(account)],
    )
    .await?;
    let users = managed_users(tx, account).await?;
    bump(tx, &users).await?;
    audit(
        tx,
        actor,
        Some(account),
        "managed_ca.crl",
        &format!("managed_ca:{account}"),
        json!({}),
    )
    .await
}

const ISSUED_COLS: &str = "id, account_id, serial, fingerprint, subject, not_before, not_after, \
                           pem, created_at, revoked_at, revocation_reason";

fn issued_row(mut r: Row) -> Result<IssuedCert> {
    Ok(IssuedCert {
        id: r.i64(0)?,
        account_id: r.i64(1)?,
        serial: r.text(2)?,
        fingerprint: r.text(3)?,
        subject: r.text(4)?,
        not_before: r.i64(5)?,
        not_after: r.i64(6)?,
        pem: r.text(7)?,
        created_at: r.i64(8)?,
        revoked_at: r.opt_i64(9)?,
        revocation_reason: r.opt_text(10)?,
    })
}

pub(crate) async fn get_issued(
    tx: &mut Tx<'_>,
    account: AccountId,
    serial: &str,
) -> Result<IssuedCert> {
    let r = tx
        .query_opt(
            &format!(
                "SELECT {ISSUED_COLS} FROM issued_certs WHERE account_id = ?1 AND serial = ?2"
            ),
            &[Value::Int(account), serial.to_ascii_lowercase().into()],
        )
        .await?
        .ok_or(StoreError::NotFound {
            kind: "certificate",
        })?;
    issued_row(r)
}

pub(crate) async fn record_issued(
    tx: &mut Tx<'_>,
    actor: &Actor,
    account: AccountId,
    new: &NewIssuedCert,
) -> Result<IssuedCert> {
    non_empty("serial", &new.serial)?;
    get_managed_ca(tx, account).await?;
    let serial = new.serial.to_ascii_lowercase();
    tx.exec(
        "INSERT INTO issued_certs (account_id, serial, fingerprint, subject, not_before, not_after, \
         pem, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        &[
            Value::Int(account),
            (&serial).into(),
            (&new.fingerprint).into(),
            (&new.subject).into(),
            Value::Int(new.not_before),
            Value::Int(new.not_after),
            (&new.pem).into(),
            Value::Int(now()),
        ],
    )
    .await?;
    audit(
        tx,
        actor,
        Some(account),
        "certificate.issue",
        &format!("certificate:{serial}"),
        json!({"subject": new.subject, "fingerprint": new.fingerprint, "not_after": new.not_after}),
    )
    .await?;
    get_issued(tx, account, &serial).await
}

pub(crate) async fn list_issued(
    tx: &mut Tx<'_>,
    account: AccountId,
    page: Page,
) -> Result<Vec<IssuedCert>> {
    let rows = account_page(tx, ISSUED_COLS, "issued_certs", account, page).await?;
    rows.into_iter().map(issued_row).collect()
}

pub(crate) async fn revoke_issued(
    tx: &mut Tx<'_>,
    actor: &Actor,
    account: AccountId,
    serial: &str,
    reason: &str,
    new_crl_pem: Option<&str>,
) -> Result<IssuedCert> {
    let cur = get_issued(tx, account, serial).await?;
    if cur.revoked_at.is_none() {
        tx.exec(
            "UPDATE issued_certs SET revoked_at = ?1, revocation_reason = ?2 WHERE id = ?3",
            &[Value::Int(now()), reason.into(), Value::Int(cur.id)],
        )
        .await?;
    }
    if let Some(crl) = new_crl_pem {
        tx.exec(
            "UPDATE managed_cas SET crl_pem = ?1, updated_at = ?2 WHERE account_id = ?3",
            &[crl.into(), Value::Int(now()), Value::Int(account)],
        )
        .await?;
        let users = managed_users(tx, account).await?;
        bump(tx, &users).await?;
    }
    audit(
        tx,
        actor,
        Some(account),
        "certificate.revoke",
        &format!("certificate:{}", cur.serial),
        json!({"reason": reason, "crl_published": new_crl_pem.is_some()}),
    )
    .await?;
    get_issued(tx, account, &cur.serial).await
}

/// Serials of an account's revoked certificates with their revocation time
/// (to build a CRL).
pub(crate) async fn revoked_serials(
    tx: &mut Tx<'_>,
    account: AccountId,
) -> Result<Vec<(String, i64)>> {
    let rows = tx
        .query(
            "SELECT serial, revoked_at FROM issued_certs WHERE account_id = ?1 \
             AND revoked_at IS NOT NULL ORDER BY id",
            &[Value::Int(account)],
        )
        .await?;
    rows.into_iter()
        .map(|mut r| Ok((r.text(0)?, r.i64(1)?)))
        .collect()
}

// ---------------------------------------------------------------- origin pulls

const PULL_COLS: &str = "id, account_id, name, cert_pem, origin_ca_pem, created_at";

fn pull_row(mut r: Row) -> Result<OriginPull> {
    Ok(OriginPull {
        id: r.i64(0)?,
        account_id: r.i64(1)?,
        name: r.text(2)?,
        cert_pem: r.text(3)?,
        origin_ca_pem: r.text(4)?,
        created_at: r.i64(5)?,
    })
}

pub(crate) async fn get_origin_pull(
    tx: &mut Tx<'_>,
    account: AccountId,
    id: OriginPullId,
) -> Result<OriginPull> {
    let r = tx
        .query_opt(
            &format!("SELECT {PULL_COLS} FROM origin_pulls WHERE id = ?1 AND account_id = ?2"),
            &[Value::Int(id), Value::Int(account)],
        )
        .await?
        .ok_or(StoreError::NotFound {
            kind: "origin pull",
        })?;
    pull_row(r)
}

pub(crate) async fn list_origin_pulls(
    tx: &mut Tx<'_>,
    account: AccountId,
) -> Result<Vec<OriginPull>> {
    let rows = tx
        .query(
            &format!("SELECT {PULL_COLS} FROM origin_pulls WHERE account_id = ?1 ORDER BY id"),
            &[Value::Int(account)],
        )
        .await?;
    rows.into_iter().map(pull_row).collect()
}

pub(crate) async fn create_origin_pull(
    tx: &mut Tx<'_>,
    actor: &Actor,
    account: AccountId,
    new: &NewOriginPull,
    sealer: &Sealer,
) -> Result<OriginPull> {
    non_empty("name", &new.name)?;
    non_empty("certificate", &new.cert_pem)?;
    non_empty("origin CA", &new.origin_ca_pem)?;
    get_account(tx, account).await?;
    if tx
        .query_opt(
            "SELECT id FROM origin_pulls WHERE account_id = ?1 AND name = ?2",
            &[Value::Int(account), (&new.name).into()],
        )
        .await?
        .is_some()
    {
        return Err(StoreError::Conflict {
            kind: "origin pull",
            name: new.name.clone(),
        });
    }
    let id = tx
        .query_one(
            "INSERT INTO origin_pulls (account_id, name, cert_pem, key_sealed, origin_ca_pem, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
            &[
                Value::Int(account),
                (&new.name).into(),
                (&new.cert_pem).into(),
                sealer.seal(&new.key_pem, "origin_pull")?.into(),
                (&new.origin_ca_pem).into(),
                Value::Int(now()),
            ],
        )
        .await?
        .i64(0)?;
    audit(
        tx,
        actor,
        Some(account),
        "origin_pull.create",
        &format!("origin_pull:{id}"),
        json!({"name": new.name}),
    )
    .await?;
    get_origin_pull(tx, account, id).await
}

pub(crate) async fn delete_origin_pull(
    tx: &mut Tx<'_>,
    actor: &Actor,
    account: AccountId,
    id: OriginPullId,
) -> Result<()> {
    let p = get_origin_pull(tx, account, id).await?;
    let users: Vec<String> = tx
        .query(
            "SELECT name FROM hostnames WHERE origin_pull_id = ?1 ORDER BY name",
            &[Value::Int(id)],
        )
        .await?
        .into_iter()
        .map(|mut r| r.text(0))
        .collect::<Result<_>>()?;
    if !users.is_empty() {
        return Err(StoreError::InUse {
            kind: "origin pull",
            users,
        });
    }
    tx.exec("DELETE FROM origin_pulls WHERE id = ?1", &[Value::Int(id)])
        .await?;
    audit(
        tx,
        actor,
        Some(account),
        "origin_pull.delete",
        &format!("origin_pull:{id}"),
        json!({"name": p.name}),
    )
    .await
}

// ---------------------------------------------------------------- events

pub(crate) async fn record_events(tx: &mut Tx<'_>, events: &[NewEvent]) -> Result<u64> {
    // Multi-row inserts: one statement per 200 events.
    let mut n = 0;
    for chunk in events.chunks(200) {
        let mut sql = String::from(
            "INSERT INTO events (account_id, hostname, at, verdict, reason, ski, fingerprint, \
             client_ip, action) VALUES ",
        );
        let mut params = Vec::with_capacity(chunk.len() * 8);
        for (i, e) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            let b = i * 8;
            sql.push_str(&format!(
                "((SELECT account_id FROM hostnames WHERE name = ?{h}), ?{h}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{})",
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8,
                h = b + 1,
            ));
            params.extend([
                e.hostname.to_ascii_lowercase().into(),
                Value::Int(e.at),
                (&e.verdict).into(),
                e.reason.clone().into(),
                e.ski.clone().into(),
                e.fingerprint.clone().into(),
                e.client_ip.clone().into(),
                (&e.action).into(),
            ]);
        }
        n += tx.exec(&sql, &params).await?;
    }
    Ok(n)
}

fn event_where(q: &EventQuery, params: &mut Vec<Value>) -> String {
    let mut w = vec!["1 = 1".to_owned()];
    let mut add = |cond: &str, v: Value, params: &mut Vec<Value>| {
        params.push(v);
        w.push(cond.replace('#', &format!("?{}", params.len())));
    };
    if let Some(a) = q.account_id {
        add("account_id = #", Value::Int(a), params);
    }
    if let Some(h) = &q.hostname {
        add("hostname = #", h.to_ascii_lowercase().into(), params);
    }
    if let Some(v) = &q.verdict {
        add("verdict = #", v.into(), params);
    }
    if let Some(f) = q.from {
        add("at >= #", Value::Int(f), params);
    }
    if let Some(u) = q.until {
        add("at < #", Value::Int(u), params);
    }
    w.join(" AND ")
}

pub(crate) async fn query_events(tx: &mut Tx<'_>, q: &EventQuery) -> Result<Vec<Event>> {
    let mut params = Vec::new();
    let w = event_where(q, &mut params);
    params.push(Value::Int(limit(q.limit)));
    let sql = format!(
        "SELECT id, account_id, hostname, at, verdict, reason, ski, fingerprint, client_ip, action \
         FROM events WHERE {w} ORDER BY id DESC LIMIT ?{}",
        params.len()
    );
    let rows = tx.query(&sql, &params).await?;
    rows.into_iter()
        .map(|mut r| {
            Ok(Event {
                id: r.i64(0)?,
                account_id: r.opt_i64(1)?,
                hostname: r.text(2)?,
                at: r.i64(3)?,
                verdict: r.text(4)?,
                reason: r.opt_text(5)?,
                ski: r.opt_text(6)?,
                fingerprint: r.opt_text(7)?,
                client_ip: r.opt_text(8)?,
                action: r.text(9)?,
            })
        })
        .collect()
}

pub(crate) async fn event_counts(tx: &mut Tx<'_>, q: &EventQuery) -> Result<Vec<MinuteCount>> {
    let mut params = Vec::new();
    let w = event_where(q, &mut params);
    let sql = format!(
        "SELECT (at / 60) * 60, verdict, COUNT(*) FROM events WHERE {w} \
         GROUP BY (at / 60) * 60, verdict ORDER BY 1, 2"
    );
    let rows = tx.query(&sql, &params).await?;
    rows.into_iter()
        .map(|mut r| {
            Ok(MinuteCount {
                minute: r.i64(0)?,
                verdict: r.text(1)?,
                count: u64::try_from(r.i64(2)?).unwrap_or(0),
            })
        })
        .collect()
}

pub(crate) async fn prune_events(tx: &mut Tx<'_>, older_than: i64, keep_max: u64) -> Result<u64> {
    let mut n = tx
        .exec(
            "DELETE FROM events WHERE at < ?1",
            &[Value::Int(older_than)],
        )
        .await?;
    let keep = i64::try_from(keep_max).unwrap_or(i64::MAX);
    if let Some(r) = tx
        .query_opt(
            "SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?1",
            &[Value::Int(keep)],
        )
        .await?
    {
        n += tx
            .exec(
                "DELETE FROM events WHERE id <= ?1",
                &[Value::Int(r.i64(0)?)],
            )
            .await?;
    }
    Ok(n)
}

// ---------------------------------------------------------------- audit log

pub(crate) async fn list_audit(tx: &mut Tx<'_>, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
    let mut params = vec![Value::Int(q.before_id.unwrap_or(i64::MAX))];
    let mut sql =
        "SELECT id, at, actor, account_id, action, target, detail FROM audit_log WHERE id < ?1"
            .to_owned();
    if let Some(a) = q.account_id {
        params.push(Value::Int(a));
        sql.push_str(" AND account_id = ?2");
    }
    params.push(Value::Int(limit(q.limit)));
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ?{}", params.len()));
    let rows = tx.query(&sql, &params).await?;
    rows.into_iter()
        .map(|mut r| {
            Ok(AuditEntry {
                id: r.i64(0)?,
                at: r.i64(1)?,
                actor: r.text(2)?,
                account_id: r.opt_i64(3)?,
                action: r.text(4)?,
                target: r.text(5)?,
                detail: from_json(&r.text(6)?)?,
            })
        })
        .collect()
}

// ---------------------------------------------------------------- snapshot

const SERVED_COLS: &str = "h.id, h.name, h.account_id, h.cert_pem, h.key_sealed, h.origin, \
     h.mode, h.block, h.headers, h.trust_managed_ca, h.origin_pull_id, h.edge";

/// The gateway's view. `only`: just these hostnames (the ones that exist).
pub(crate) async fn snapshot(
    tx: &mut Tx<'_>,
    only: Option<&[String]>,
    sealer: &Sealer,
) -> Result<SnapshotData> {
    let version = config_version(tx).await?;
    let mut rows = Vec::new();
    let mut assoc: BTreeMap<HostnameId, Vec<CaId>> = BTreeMap::new();
    match only {
        None => {
            rows = tx
                .query(
                    &format!("SELECT {SERVED_COLS} FROM hostnames h ORDER BY h.id"),
                    &[],
                )
                .await?;
            for r in tx
                .query("SELECT hostname_id, ca_id FROM hostname_cas", &[])
                .await?
            {
                assoc.entry(r.i64(0)?).or_default().push(r.i64(1)?);
            }
        }
        Some(names) => {
            for n in names {
                if let Some(r) = tx
                    .query_opt(
                        &format!("SELECT {SERVED_COLS} FROM hostnames h WHERE h.name = ?1"),
                        &[n.to_ascii_lowercase().into()],
                    )
                    .await?
                {
                    let id = r.i64(0)?;
                    assoc.insert(id, ca_ids_of(tx, id).await?);
                    rows.push(r);
                }
            }
        }
    }

    let mut data = SnapshotData {
        version,
        ..SnapshotData::default()
    };
    let mut want_cas: BTreeSet<CaId> = BTreeSet::new();
    let mut want_managed: BTreeSet<AccountId> = BTreeSet::new();
    let mut pulls: BTreeMap<OriginPullId, Option<ServedOriginPull>> = BTreeMap::new();
    let mut pending = Vec::with_capacity(rows.len());
    for mut r in rows {
        let id = r.i64(0)?;
        let name = r.text(1)?;
        let account_id = r.i64(2)?;
        let mode_s = r.text(6)?;
        let mode = MtlsMode::parse(&mode_s)
            .ok_or_else(|| StoreError::Internal(format!("stored mode {mode_s:?}")))?;
        let mut trust = Vec::new();
        for ca in assoc.remove(&id).unwrap_or_default() {
            want_cas.insert(ca);
            trust.push(format!("ca:{ca}"));
        }
        if r.bool(9)? {
            want_managed.insert(account_id);
            trust.push(format!("managed:{account_id}"));
        }
        trust.sort();
        let pull = r.opt_i64(10)?;
        if let Some(p) = pull {
            pulls.insert(p, None);
        }
        let h = ServedHostname {
            key_pem: sealer.open(&r.blob(4)?, "hostname")?,
            name,
            account_id,
            cert_pem: r.text(3)?,
            origin: r.text(5)?,
            mode,
            block: from_json(&r.text(7)?)?,
            headers: from_json(&r.text(8)?)?,
            edge: from_json(&r.text(11)?)?,
            trust,
            origin_pull: None,
        };
        pending.push((h, pull));
    }
    let all = only.is_none();
    if all {
        for mut r in tx.query("SELECT id, pem, crl_pem FROM cas", &[]).await? {
            let id = r.i64(0)?;
            if want_cas.contains(&id) {
                data.cas.insert(
                    format!("ca:{id}"),
                    ServedCa {
                        pem: r.text(1)?,
                        crl_pem: r.opt_text(2)?,
                    },
                );
            }
        }
    } else {
        for id in &want_cas {
            if let Some(mut r) = tx
                .query_opt(
                    "SELECT pem, crl_pem FROM cas WHERE id = ?1",
                    &[Value::Int(*id)],
                )
                .await?
            {
                data.cas.insert(
                    format!("ca:{id}"),
                    ServedCa {
                        pem: r.text(0)?,
                        crl_pem: r.opt_text(1)?,
                    },
                );
            }
        }
    }
    for a in &want_managed {
        if let Some(mut r) = tx
            .query_opt(
                "SELECT cert_pem, crl_pem FROM managed_cas WHERE account_id = ?1",
                &[Value::Int(*a)],
            )
            .await?
        {
            data.cas.insert(
                format!("managed:{a}"),
                ServedCa {
                    pem: r.text(0)?,
                    crl_pem: r.opt_text(1)?,
                },
            );
        }
    }
    for (id, slot) in pulls.iter_mut() {
        if let Some(mut r) = tx
            .query_opt(
                "SELECT cert_pem, key_sealed, origin_ca_pem FROM origin_pulls WHERE id = ?1",
                &[Value::Int(*id)],
            )
            .await?
        {
            *slot = Some(ServedOriginPull {
                cert_pem: r.text(0)?,
                key_pem: sealer.open(&r.blob(1)?, "origin_pull")?,
                origin_ca_pem: r.text(2)?,
            });
        }
    }
    data.hostnames = pending
        .into_iter()
        .map(|(mut h, pull)| {
            h.origin_pull = pull.and_then(|p| pulls.get(&p).cloned().flatten());
            h
        })
        .collect();
    Ok(data)
}

/// Many hostnames in one transaction (an import): multi-row statements,
/// one version bump, one audit entry. All or nothing.
pub(crate) async fn create_hostnames(
    tx: &mut Tx<'_>,
    actor: &Actor,
    account: AccountId,
    new: &[NewHostname],
    sealer: &Sealer,
) -> Result<u64> {
    const CHUNK: usize = 400;
    get_account(tx, account).await?;
    let mut all_cas: BTreeSet<CaId> = BTreeSet::new();
    let mut pulls: BTreeSet<OriginPullId> = BTreeSet::new();
    let mut names = BTreeSet::new();
    for h in new {
        let name = h.name.trim().to_ascii_lowercase();
        non_empty("hostname", &name)?;
        non_empty("certificate", &h.cert_pem)?;
        non_empty("origin", &h.origin)?;
        if h.key_pem.expose().is_empty() {
            return Err(StoreError::Invalid(format!(
                "{name}: key must not be empty"
            )));
        }
        if !names.insert(name.clone()) {
            return Err(StoreError::Conflict {
                kind: "hostname",
                name,
            });
        }
        all_cas.extend(h.ca_ids.iter().copied());
        pulls.extend(h.origin_pull_id);
    }
    for ca in &all_cas {
        check_refs(tx, account, &[*ca], None).await?;
    }
    for p in &pulls {
        check_refs(tx, account, &[], Some(*p)).await?;
    }
    let t = now();
    let mut created: Vec<String> = Vec::with_capacity(new.len());
    for chunk in new.chunks(CHUNK) {
        let mut sql = String::from(
            "INSERT INTO hostnames (account_id, name, cert_pem, key_sealed, origin, mode, block, \
             headers, trust_managed_ca, origin_pull_id, created_at, updated_at) VALUES ",
        );
        let mut params = Vec::with_capacity(chunk.len() * 12);
        for (i, h) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            let b = params.len();
            sql.push('(');
            for k in 1..=12 {
                if k > 1 {
                    sql.push(',');
                }
                sql.push_str(&format!("?{}", b + k));
            }
            sql.push(')');
            params.extend([
                Value::Int(account),
                h.name.trim().to_ascii_lowercase().into(),
                (&h.cert_pem).into(),
                sealer.seal(&h.key_pem, "hostname")?.into(),
                (&h.origin).into(),
                h.mode.as_str().into(),
                json_text(&h.block)?.into(),
                json_text(&h.headers)?.into(),
                h.trust_managed_ca.into(),
                h.origin_pull_id.into(),
                Value::Int(t),
                Value::Int(t),
            ]);
        }
        sql.push_str(" RETURNING id, name");
        let rows = tx.query(&sql, &params).await?;
        let ids: BTreeMap<String, HostnameId> = rows
            .into_iter()
            .map(|mut r| Ok((r.text(1)?, r.i64(0)?)))
            .collect::<Result<_>>()?;
        let mut assoc = Vec::new();
        for h in chunk {
            let name = h.name.trim().to_ascii_lowercase();
            let id = *ids
                .get(&name)
                .ok_or_else(|| StoreError::Internal("bulk insert lost a row".into()))?;
            for ca in h.ca_ids.iter().collect::<BTreeSet<_>>() {
                assoc.push(Value::Int(id));
                assoc.push(Value::Int(*ca));
            }
            created.push(name);
        }
        for pairs in assoc.chunks(2 * CHUNK) {
            let mut sql = String::from("INSERT INTO hostname_cas (hostname_id, ca_id) VALUES ");
            for i in 0..pairs.len() / 2 {
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("(?{}, ?{})", 2 * i + 1, 2 * i + 2));
            }
            tx.exec(&sql, pairs).await?;
        }
    }
    // One version for the whole import.
    let v = tx
        .query_one(
            "UPDATE config_version SET version = version + 1 WHERE id = 1 RETURNING version",
            &[],
        )
        .await?
        .i64(0)?;
    for chunk in created.chunks(CHUNK) {
        let mut sql = String::from("INSERT INTO config_changes (version, hostname) VALUES ");
        let mut params = Vec::with_capacity(chunk.len() * 2);
        for (i, n) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("(?{}, ?{})", 2 * i + 1, 2 * i + 2));
            params.push(Value::Int(v));
            params.push(n.into());
        }
        tx.exec(&sql, &params).await?;
    }
    if tx.dialect() == Dialect::Postgres {
        tx.exec(
            "SELECT pg_notify(?1, ?2)",
            &[NOTIFY_CHANNEL.into(), v.to_string().into()],
        )
        .await?;
    }
    tx.bumped.store(
        u64::try_from(v).unwrap_or(0),
        std::sync::atomic::Ordering::Relaxed,
    );
    audit(
        tx,
        actor,
        Some(account),
        "hostname.import",
        &format!("account:{account}"),
        json!({"count": created.len()}),
    )
    .await?;
    Ok(created.len() as u64)
}
