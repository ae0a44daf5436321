//! Rate limits against a real Redis (a `redis-server` started on an
//! ephemeral port by the test).

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use policy::ratelimit::{Check, LimitSpec, Limiter, OnError, Store};

struct Redis {
    child: Child,
    port: u16,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn start_redis() -> Redis {
    let port = free_port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be installed (scripts/install-test-deps.sh)");
    let r = Redis { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "redis-server did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    r
}

fn spec(port: u16, name: &str, on_error: OnError) -> LimitSpec {
    LimitSpec {
        name: name.into(),
        namespace: "it.test".into(),
        period: Duration::from_secs(60),
        limit: 5,
        mitigation_timeout: Duration::from_secs(30),
        store: Store::Redis {
            url: format!("redis://127.0.0.1:{port}"),
            on_error,
        },
    }
}

#[tokio::test]
async fn two_limiters_share_one_budget_and_redis_down_follows_on_error() {
    let redis = start_redis();
    // Two limiters = two gateway nodes: each has its own connection.
    let a = Limiter::new(spec(redis.port, "shared", OnError::Open)).expect("limiter");
    let b = Limiter::new(spec(redis.port, "shared", OnError::Open)).expect("limiter");
    let mut allowed = 0;
    let mut limited = 0;
    for i in 0..12 {
        let l = if i % 2 == 0 { &a } else { &b };
        match l.check("client-1").await {
            Check::Allowed => allowed += 1,
            Check::Limited { retry_after } => {
                assert!((1..=30).contains(&retry_after), "{retry_after}");
                limited += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((allowed, limited), (5, 7), "one budget of 5 for both nodes");
    assert_eq!(
        b.check("client-2").await,
        Check::Allowed,
        "other keys unaffected"
    );

    let closed = Limiter::new(spec(redis.port, "closed", OnError::Closed)).expect("limiter");
    assert_eq!(closed.check("k").await, Check::Allowed);
    drop(redis);
    assert_eq!(a.check("client-3").await, Check::FailedOpen);
    assert_eq!(closed.check("k").await, Check::Unavailable);
}

#[tokio::test]
async fn unreachable_redis_from_the_start() {
    let port = free_port(); // nothing listens there
    let open = Limiter::new(spec(port, "o", OnError::Open)).expect("limiter");
    let closed = Limiter::new(spec(port, "c", OnError::Closed)).expect("limiter");
    assert_eq!(open.check("k").await, Check::FailedOpen);
    assert_eq!(closed.check("k").await, Check::Unavailable);
}
