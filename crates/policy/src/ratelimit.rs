//! Rate limits: a fixed-window counter per key (client certificate
//! fingerprint, IP, token id or header value: the caller computes the key
//! and passes it as text), a request limit per period, and a mitigation
//! timeout during which a key over its limit is refused outright.
//!
//! Two places to count:
//!
//! * [`Store::Local`]: in this process, in a table of at most
//!   `max_keys` entries. When the table is full, expired entries are
//!   dropped; if it is still full, a new key is not tracked and is allowed
//!   (memory stays bounded; [`Check::Untracked`] says so).
//! * [`Store::Redis`]: one budget for every gateway that uses the same
//!   Redis. A small Lua script makes `INCR` + `PEXPIRE` + the block key one
//!   atomic step. Each gateway adds its own requests, so the shared budget
//!   holds exactly; the window starts at a key's first request.
//!
//! When Redis cannot be reached within [`REDIS_TIMEOUT`], the rule's
//! [`OnError`] decides: `Open` lets the request through, `Closed` refuses
//! it ([`Check::Unavailable`], answered 503 by the gateway). After a
//! failure Redis is not tried again for [`REDIS_RETRY_AFTER`], so a dead
//! Redis costs one timeout per second, not one per request.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use tokio::sync::OnceCell;

/// Longest wait for Redis (connect or answer).
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// After a Redis failure, how long it is left alone.
pub const REDIS_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Default bound of the local table.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// What to do when Redis is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Let the request through (availability first).
    Open,
    /// Refuse it (the limit first).
    Closed,
}

/// Where requests are counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// In this process.
    Local {
        /// Most keys tracked at once.
        max_keys: usize,
    },
    /// On Redis, shared by every gateway using it.
    Redis {
        /// `redis://host:port[/db]`.
        url: String,
        /// Unreachable Redis: open or closed.
        on_error: OnError,
    },
}

/// A rate limit as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitSpec {
    /// Name (unique per hostname; part of the Redis key).
    pub name: String,
    /// Namespace of the Redis keys, e.g. the hostname.
    pub namespace: String,
    /// Counting window.
    pub period: Duration,
    /// Requests allowed per window and key.
    pub limit: u64,
    /// How long a key over its limit is refused; zero: until its window
    /// ends.
    pub mitigation_timeout: Duration,
    /// Where to count.
    pub store: Store,
}

/// A limit that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// Period zero, limit zero and the like.
    #[error("{0}")]
    Invalid(&'static str),
    /// The Redis URL does not parse.
    #[error("redis url: {0}")]
    RedisUrl(String),
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Under the limit.
    Allowed,
    /// Local table full: not counted, allowed.
    Untracked,
    /// Over the limit: refuse, and say when to come back.
    Limited {
        /// Seconds until the key may try again (at least 1).
        retry_after: u64,
    },
    /// Redis is unreachable and the limit is fail-open: allowed.
    FailedOpen,
    /// Redis is unreachable and the limit is fail-closed: refuse.
    Unavailable,
}

#[derive(Debug)]
struct Entry {
    window_start: Instant,
    count: u64,
    blocked_until: Option<Instant>,
}

#[derive(Debug, Default)]
struct Table {
    entries: HashMap<String, Entry>,
}

/// The state of a Redis-backed limit.
struct RedisState {
    client: redis::Client,
    conn: OnceCell<redis::aio::ConnectionManager>,
    down_until: Mutex<Option<Instant>>,
    script: redis::Script,
    on_error: OnError,
}

/// One rate limit with its counters.
pub struct Limiter {
    spec: LimitSpec,
    local: Mutex<Table>,
    max_keys: usize,
    redis: Option<RedisState>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

/// KEYS[1] counter, KEYS[2] block flag; ARGV period ms, limit, block ms.
/// Returns {allowed(1|0), retry-after ms}.
const SCRIPT: &str = r"
local b = redis.call('PTTL', KEYS[2])
if b > 0 then return {0, b} end
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n > tonumber(ARGV[2]) then
  local ms = tonumber(ARGV[3])
  if ms <= 0 then ms = redis.call('PTTL', KEYS[1]) end
  if ms <= 0 then ms = tonumber(ARGV[1]) end
  redis.call('SET', KEYS[2], '1', 'PX', ms)
  return {0, ms}
end
return {1, 0}
";

fn ceil_secs(d: Duration) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(1)
}

impl Limiter {
    /// Builds a limiter (no I/O: Redis is connected at first use).
    pub fn new(spec: LimitSpec) -> Result<Limiter, SetupError> {
        if spec.period.is_zero() {
            return Err(SetupError::Invalid("period must be at least 1 second"));
        }
        if spec.limit == 0 {
            return Err(SetupError::Invalid("limit must be at least 1"));
        }
        let (max_keys, redis) = match &spec.store {
            Store::Local { max_keys } => {
                if *max_keys == 0 {
                    return Err(SetupError::Invalid("max_keys must be at least 1"));
                }
                (*max_keys, None)
            }
            Store::Redis { url, on_error } => {
                let client = redis::Client::open(url.as_str())
                    .map_err(|e| SetupError::RedisUrl(e.to_string()))?;
                (
                    0,
                    Some(RedisState {
                        client,
                        conn: OnceCell::new(),
                        down_until: Mutex::new(None),
                        script: redis::Script::new(SCRIPT),
                        on_error: *on_error,
                    }),
                )
            }
        };
        Ok(Limiter {
            spec,
            local: Mutex::new(Table::default()),
            max_keys,
            redis,
        })
    }

    /// The configuration.
    pub fn spec(&self) -> &LimitSpec {
        &self.spec
    }

    /// Counts one request for `key` and says whether it may go on.
    pub async fn check(&self, key: &str) -> Check {
        match &self.redis {
            None => self.check_local(key, Instant::now()),
            Some(r) => self.check_redis(r, key).await,
        }
    }

    /// Local counting at `now` (public for tests and benchmarks).
    pub fn check_local(&self, key: &str, now: Instant) -> Check {
        let mut t = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        let period = self.spec.period;
        if !t.entries.contains_key(key) && t.entries.len() >= self.max_keys {
            t.entries.retain(|_, e| {
                now.duration_since(e.window_start) < period
                    || e.blocked_until.is_some_and(|b| b > now)
            });
            if t.entries.len() >= self.max_keys {
                return Check::Untracked;
            }
        }
        let e = t.entries.entry(key.to_owned()).or_insert(Entry {
            window_start: now,
            count: 0,
            blocked_until: None,
        });
        if let Some(b) = e.blocked_until {
            if b > now {
                return Check::Limited {
                    retry_after: ceil_secs(b - now),
                };
            }
            e.blocked_until = None;
        }
        if now.duration_since(e.window_start) >= period {
            e.window_start = now;
            e.count = 0;
        }
        e.count += 1;
        if e.count > self.spec.limit {
            let until = if self.spec.mitigation_timeout.is_zero() {
                e.window_start + period
            } else {
                now + self.spec.mitigation_timeout
            };
            e.blocked_until = Some(until);
            return Check::Limited {
                retry_after: ceil_secs(until.saturating_duration_since(now)),
            };
        }
        Check::Allowed
    }

    /// Number of keys in the local table.
    pub fn tracked_keys(&self) -> usize {
        self.local
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .len()
    }

    fn redis_keys(&self, key: &str) -> (String, String) {
        // Keys are hashed: bounded length whatever a header carries.
        let h = digest::digest(&digest::SHA256, key.as_bytes());
        let h = hex::encode(&h.as_ref()[..16]);
        let base = format!(
            "portcullis:rl:{}:{}:{h}",
            self.spec.namespace, self.spec.name
        );
        (format!("{base}:n"), format!("{base}:b"))
    }

    async fn check_redis(&self, r: &RedisState, key: &str) -> Check {
        let failed = || match r.on_error {
            OnError::Open => Check::FailedOpen,
            OnError::Closed => Check::Unavailable,
        };
        {
            let mut d = r.down_until.lock().unwrap_or_else(PoisonError::into_inner);
            match *d {
                Some(until) if Instant::now() < until => return failed(),
                Some(_) => *d = None,
                None => {}
            }
        }
        let (n, b) = self.redis_keys(key);
        let period_ms = u64::try_from(self.spec.period.as_millis()).unwrap_or(u64::MAX);
        let block_ms = u64::try_from(self.spec.mitigation_timeout.as_millis()).unwrap_or(u64::MAX);
        let attempt = async {
            let conn = r
                .conn
                .get_or_try_init(|| async {
                    let cfg = redis::aio::ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(REDIS_TIMEOUT))
                        .set_response_timeout(Some(REDIS_TIMEOUT))
                        .set_number_of_retries(1);
                    redis::aio::ConnectionManager::new_with_config(r.client.clone(), cfg).await
                })
                .await?;
            let mut conn = conn.clone();
            let (allowed, ms): (i64, i64) = r
                .script
                .key(&n)
                .key(&b)
                .arg(period_ms)
                .arg(self.spec.limit)
                .arg(block_ms)
                .invoke_async(&mut conn)
                .await?;
            Ok::<_, redis::RedisError>((allowed, ms))
        };
        match tokio::time::timeout(REDIS_TIMEOUT * 2, attempt).await {
            Ok(Ok((1, _))) => Check::Allowed,
            Ok(Ok((_, ms))) => Check::Limited {
                retry_after: ceil_secs(Duration::from_millis(ms.max(1).unsigned_abs())),
            },
            Ok(Err(e)) => {
                tracing::warn!(limit = %self.spec.name, error = %e, "rate limit: redis unavailable");
                self.mark_down(r);
                failed()
            }
            Err(_) => {
                tracing::warn!(limit = %self.spec.name, "rate limit: redis timed out");
                self.mark_down(r);
                failed()
            }
        }
    }

    fn mark_down(&self, r: &RedisState) {
        *r.down_until.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(Instant::now() + REDIS_RETRY_AFTER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(limit: u64, period: u64, block: u64, max_keys: usize) -> LimitSpec {
        LimitSpec {
            name: "t".into(),
            namespace: "h".into(),
            period: Duration::from_secs(period),
            limit,
            mitigation_timeout: Duration::from_secs(block),
            store: Store::Local { max_keys },
        }
    }

    #[test]
    fn window_and_mitigation() {
        let l = Limiter::new(spec(2, 10, 30, 10)).expect("limiter");
        let t0 = Instant::now();
        assert_eq!(l.check_local("a", t0), Check::Allowed);
        assert_eq!(l.check_local("a", t0), Check::Allowed);
        assert_eq!(l.check_local("a", t0), Check::Limited { retry_after: 30 });
        assert_eq!(l.check_local("b", t0), Check::Allowed, "keys are separate");
        // Still blocked after the window, until the mitigation ends.
        let t1 = t0 + Duration::from_secs(11);
        assert_eq!(l.check_local("a", t1), Check::Limited { retry_after: 19 });
        let t2 = t0 + Duration::from_secs(31);
        assert_eq!(l.check_local("a", t2), Check::Allowed);
    }

    #[test]
    fn no_mitigation_means_until_window_end() {
        let l = Limiter::new(spec(1, 10, 0, 10)).expect("limiter");
        let t0 = Instant::now();
        assert_eq!(l.check_local("a", t0), Check::Allowed);
        assert_eq!(
            l.check_local("a", t0 + Duration::from_secs(4)),
            Check::Limited { retry_after: 6 }
        );
        assert_eq!(
            l.check_local("a", t0 + Duration::from_secs(10)),
            Check::Allowed
        );
    }

    #[test]
    fn memory_is_bounded() {
        let l = Limiter::new(spec(5, 10, 0, 3)).expect("limiter");
        let t0 = Instant::now();
        for k in ["a", "b", "c"] {
            assert_eq!(l.check_local(k, t0), Check::Allowed);
        }
        assert_eq!(l.check_local("d", t0), Check::Untracked);
        assert_eq!(l.tracked_keys(), 3);
        // Once the old windows are over, their room is reused.
        assert_eq!(
            l.check_local("d", t0 + Duration::from_secs(10)),
            Check::Allowed
        );
        assert_eq!(l.tracked_keys(), 1);
    }

    #[test]
    fn bad_specs() {
        assert!(Limiter::new(spec(0, 10, 0, 3)).is_err());
        assert!(Limiter::new(spec(1, 0, 0, 3)).is_err());
        let mut s = spec(1, 1, 0, 3);
        s.store = Store::Redis {
            url: "nope://".into(),
            on_error: OnError::Open,
        };
        assert!(matches!(Limiter::new(s), Err(SetupError::RedisUrl(_))));
    }
}
