//! Token verifiers (`tokens`) and rule expressions (`policy::rules`).

use policy::rules::{ActionSpec, CertFacts, RequestFacts, RuleSpec};
use tokens::cloudflare::{self, Expiry, Verifier};
use tokens::{akamai, nginx, Secret};

use crate::Input;

const CF_SECRETS: &[u8] = b"mysecrettoken";
const AKAMAI_KEY: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";

fn cf_secret() -> Secret {
    Secret::new(CF_SECRETS.to_vec()).expect("constant secret")
}

fn akamai_secret() -> Secret {
    Secret::from_hex(AKAMAI_KEY).expect("constant key")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `data[0] & 1 == 0`: raw hostile text to every verifier (never panics).
/// Otherwise a structured round trip: a token signed with `sign` for a
/// message, time and fields from the input verifies, and one byte of it
/// changed (position and value from the input) is refused.
pub fn tokens(data: &[u8]) {
    let mut inp = Input::new(data);
    if inp.byte() & 1 == 0 {
        raw(&mut inp);
    } else {
        round_trip(&mut inp);
    }
}

fn raw(inp: &mut Input<'_>) {
    let now = 1_700_000_000 + u64::from(inp.byte());
    let a = inp.string(512, &["/a?verify=", "/p?x=1&verify=1700000000-"]);
    let b = text(inp.rest());
    let secrets = [cf_secret()];
    for expiry in [Expiry::Ttl(60), Expiry::Absolute] {
        let v = Verifier {
            secrets: &secrets,
            expiry,
            max_future_skew: 5,
        };
        let _ = v.verify(&a, &b, now);
        for url in [&a, &b] {
            if let Ok((m, t)) = cloudflare::split_url(url, cloudflare::DEFAULT_PARAM) {
                let _ = v.verify(m, &t, now);
            }
        }
    }
    if let Ok(expr) = nginx::Expression::parse(&a) {
        let _ = nginx::verify(&expr, &secrets, "/p", "127.0.0.1", &b, Some(&b), now);
        let _ = nginx::verify(&expr, &secrets, &b, &b, &b, None, now);
    }
    let _ = nginx::Expression::parse(&b);
    let ak = [akamai_secret()];
    let _ = akamai::verify(&ak, &b, &a, Some("127.0.0.1"), now, 5);
    let _ = akamai::verify(&ak, &b, "/", None, now, 5);
}

/// Changes the byte at `pos % len` to `new` (when it differs and the text
/// stays UTF-8).
fn change_one(token: &str, pos: usize, new: u8) -> Option<String> {
    if token.is_empty() {
        return None;
    }
    let mut b = token.as_bytes().to_vec();
    let i = pos % b.len();
    if b[i] == new {
        return None;
    }
    b[i] = new;
    String::from_utf8(b).ok()
}

/// Akamai's MAC is hex, read case-insensitively: flipping the case of one
/// of its letters gives the same MAC bytes (not a forgery).
fn is_hex_case_flip(orig: &str, changed: &str) -> bool {
    let Some((_, mac)) = orig.rsplit_once("~hmac=") else {
        return false;
    };
    let start = orig.len() - mac.len();
    orig.bytes()
        .zip(changed.bytes())
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .is_some_and(|(i, (a, b))| i >= start && a.eq_ignore_ascii_case(&b))
}

fn round_trip(inp: &mut Input<'_>) {
    let scheme = inp.choose(4);
    // 10-digit Unix times, as Cloudflare requires.
    let ts = 1_000_000_000
        + u64::from(u32::from_le_bytes([
            inp.byte(),
            inp.byte(),
            inp.byte(),
            inp.byte(),
        ]));
    let pos = usize::from(inp.byte()) | (usize::from(inp.byte()) << 8);
    let new = inp.byte();
    let secret = cf_secret();
    let secrets = [secret.clone()];
    match scheme {
        // Cloudflare, the token in a header (both alphabets).
        0 | 1 => {
            let message = inp.string(256, &["/images/cat.jpg", "/a?b=c", ""]);
            let token = if scheme == 0 {
                cloudflare::token(&secret, &message, ts)
            } else {
                cloudflare::token_url_safe(&secret, &message, ts)
            };
            let v = Verifier {
                secrets: &secrets,
                expiry: Expiry::Ttl(60),
                max_future_skew: 5,
            };
            if let Err(e) = v.verify(&message, &token, ts) {
                panic!("cloudflare: a signed token is refused: {e} ({message:?}, {token:?})");
            }
            if let Some(bad) = change_one(&token, pos, new) {
                assert!(
                    v.verify(&message, &bad, ts).is_err(),
                    "cloudflare: a changed token verifies: {bad:?} (was {token:?}, message {message:?})"
                );
            }
            // The same token in a URL.
            let path = format!("/{}", message.trim_start_matches('/'));
            let url = cloudflare::sign_url(&secret, &path, ts);
            match cloudflare::split_url(&url, cloudflare::DEFAULT_PARAM) {
                Ok((m, t)) => {
                    assert_eq!(m, path, "cloudflare: split_url changed the message");
                    if let Err(e) = v.verify(m, &t, ts) {
                        panic!("cloudflare: a signed URL is refused: {e} ({url:?})");
                    }
                    if let Some(bad) = change_one(&t, pos, new) {
                        assert!(
                            v.verify(m, &bad, ts).is_err(),
                            "cloudflare: a changed URL token verifies: {bad:?} (was {t:?})"
                        );
                    }
                }
                Err(e) => panic!("cloudflare: a signed URL does not split: {e} ({url:?})"),
            }
        }
        // nginx secure_link_md5.
        2 => {
            let expr_text = inp.string(
                128,
                &[
                    nginx::DEFAULT_EXPRESSION,
                    "$secret$uri$secure_link_expires",
                    "$uri $secret",
                ],
            );
            let uri = inp.string(256, &["/p", "/a b"]);
            let addr = inp.string(64, &["127.0.0.1", "::1"]);
            let Ok(expr) = nginx::Expression::parse(&expr_text) else {
                return;
            };
            let keyed = expr_text.contains("$secret");
            let expires = if inp.flag() { Some(ts) } else { None };
            let md5 = nginx::sign(&expr, &secret, &uri, &addr, expires);
            let exp_text = expires.map(|e| e.to_string());
            if let Err(e) =
                nginx::verify(&expr, &secrets, &uri, &addr, &md5, exp_text.as_deref(), ts)
            {
                panic!("nginx: a signed link is refused: {e} ({expr_text:?}, {uri:?})");
            }
            if !keyed {
                // Without $secret the hash is not a MAC: nothing to refuse.
                return;
            }
            if let Some(bad) = change_one(&md5, pos, new) {
                assert!(
                    nginx::verify(&expr, &secrets, &uri, &addr, &bad, exp_text.as_deref(), ts)
                        .is_err(),
                    "nginx: a changed md5 verifies: {bad:?} (was {md5:?})"
                );
            }
            // Changing expires is refused when the expression covers it.
            if let (Some(e), true) = (&exp_text, expr_text.contains("$secure_link_expires")) {
                if let Some(bad) = change_one(e, pos, new) {
                    assert!(
                        nginx::verify(&expr, &secrets, &uri, &addr, &md5, Some(&bad), ts).is_err(),
                        "nginx: a changed expires verifies: {bad:?} (was {e:?})"
                    );
                }
            }
        }
        // Akamai EdgeAuth. Field values never hold `~`, the field
        // separator (an EdgeAuth token cannot carry one).
        // `sign` does not refuse one: see docs/reliability.md.
        _ => {
            let no_tilde = |s: String| s.replace('~', "");
            let ip = inp
                .flag()
                .then(|| no_tilde(inp.string(40, &["127.0.0.1", "::1"])));
            let start = inp.flag().then_some(ts);
            let exp = ts.saturating_add(1 + u64::from(inp.byte()));
            // `!` separates ACL patterns and `*` is their wildcard: the
            // path is also used as an ACL, so it holds neither.
            let path = format!("/{}", no_tilde(inp.string(128, &["p/q", "a b/%41"])))
                .replace(['!', '*'], "");
            let acl = inp
                .flag()
                .then(|| ["/*", "*", path.as_str()][inp.choose(3)].to_owned());
            let id = inp.flag().then(|| no_tilde(inp.string(32, &["id1"])));
            let data = inp.flag().then(|| no_tilde(inp.string(64, &["x=y"])));
            let key = akamai_secret();
            let params = akamai::Params {
                ip: ip.as_deref(),
                start,
                exp,
                acl: acl.as_deref(),
                url: acl.is_none().then_some(path.as_str()),
                id: id.as_deref(),
                data: data.as_deref(),
            };
            let token = akamai::sign(&key, &params);
            let keys = [key];
            let verify = |t: &str| akamai::verify(&keys, t, &path, ip.as_deref(), ts, 5);
            if let Err(e) = verify(&token) {
                panic!("akamai: a signed token is refused: {e} ({token:?}, path {path:?})");
            }
            if let Some(bad) = change_one(&token, pos, new) {
                assert!(
                    verify(&bad).is_err() || is_hex_case_flip(&token, &bad),
                    "akamai: a changed token verifies: {bad:?} (was {token:?})"
                );
            }
        }
    }
}

/// Rule expressions: `compile` of arbitrary text never panics; a syntax
/// error carries a position inside the text; compiled rules evaluate on
/// fixed request and certificate facts without panicking.
pub fn rules(data: &[u8]) {
    let mut inp = Input::new(data);
    let n = 1 + inp.choose(3);
    let mut specs = Vec::with_capacity(n);
    for i in 0..n {
        let expression = if i + 1 == n {
            text(inp.rest())
        } else {
            inp.string(
                512,
                &["true", "cf.verified", "http.request.method == \"GET\""],
            )
        };
        specs.push(RuleSpec {
            name: format!("r{i}"),
            expression,
            action: [
                ActionSpec::Log,
                ActionSpec::Skip,
                ActionSpec::Block(Default::default()),
            ][i % 3]
                .clone(),
            simulate: i == 1,
        });
    }
    let env = cel::Env::stdlib();
    match policy::rules::compile(&specs) {
        Ok(set) => {
            assert_eq!(set.len(), specs.len());
            let cert = CertFacts {
                presented: true,
                verified: true,
                subject_dn: "CN=client,O=Acme".into(),
                serial: "01ab".into(),
                sans_dns: vec!["a.test".into()],
                sans_ip: vec!["127.0.0.1".into()],
                ..CertFacts::default()
            };
            for c in [&cert, &CertFacts::default()] {
                let conn = set.connection(c);
                let req = RequestFacts {
                    host: "api.test",
                    method: "POST",
                    path: "/v1/pay",
                    query: "a=1&b=%00",
                    headers: vec![("x-a", "1"), ("user-agent", "\u{0}\u{7f}")],
                    ip: "::1",
                    timestamp: i64::MAX,
                };
                let _ = set.evaluate(&conn, &req);
                let _ = set.evaluate(&conn, &RequestFacts::default());
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "compile failed without an error");
            for e in &errors {
                assert!(!e.message.is_empty(), "an empty error message: {e:?}");
                let spec = &specs[e.index];
                assert_eq!(e.rule, spec.name);
                let syntax =
                    !spec.expression.trim().is_empty() && env.compile(&spec.expression).is_err();
                if syntax && e.message != "another rule has the same name" {
                    let Some((line, col)) = e.position else {
                        panic!("a syntax error without a position: {e:?}");
                    };
                    let lines = spec.expression.split('\n').count() as u32;
                    assert!(
                        line >= 1 && line <= lines + 1 && col >= 1,
                        "position outside the text: {e:?} ({:?})",
                        spec.expression
                    );
                }
            }
        }
    }
}
