//! Cloudflare `is_timed_hmac_valid_v0` (CONTRACT section 5).
//!
//! The token is `<ts>-<mac>`: `ts` a 10-digit Unix time and
//! `mac = base64(HMAC-SHA256(secret, message ‖ ts))`, where `message` is
//! the request target up to the token: the path, and any query parameters
//! before it. It is sent as the **last** query parameter (`verify` by
//! default), percent-encoded standard base64
//! (`…?verify=1484063787-XsZ5…u3U%3D`); the URL-safe unpadded alphabet is
//! accepted too. Or it comes alone in a header, and then the message is the
//! path (with the query, if any).
//!
//! Validity: with [`Expiry::Ttl`], `ts` is the signing time and the token is
//! valid while `now < ts + ttl`; a `ts` more than `max_future_skew` seconds
//! ahead of `now` is refused. With [`Expiry::Absolute`], the origin chose
//! the expiry and put it in `ts`: valid while `now < ts`.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::{Error, Secret, Verified};

/// The query parameter Cloudflare's examples use.
pub const DEFAULT_PARAM: &str = "verify";

/// What to escape in the token's query value: everything but unreserved
/// characters and `-` (so `+`, `/`, `=` become `%2B`, `%2F`, `%3D`).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The MAC of `message ‖ ts`.
pub fn mac(secret: &Secret, message: &str, ts: u64) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(secret.key());
    ctx.update(message.as_bytes());
    ctx.update(ts.to_string().as_bytes());
    ctx.sign()
}

/// The token `<ts>-<standard base64 mac>` (not percent-encoded).
pub fn token(secret: &Secret, message: &str, ts: u64) -> String {
    format!("{ts}-{}", STANDARD.encode(mac(secret, message, ts)))
}

/// The token with the URL-safe unpadded alphabet.
pub fn token_url_safe(secret: &Secret, message: &str, ts: u64) -> String {
    format!("{ts}-{}", URL_SAFE_NO_PAD.encode(mac(secret, message, ts)))
}

/// `path_and_query` with the token appended as the last `verify`
/// parameter, percent-encoded. The message signed is `path_and_query`.
pub fn sign_url(secret: &Secret, path_and_query: &str, ts: u64) -> String {
    sign_url_param(secret, path_and_query, ts, DEFAULT_PARAM)
}

/// Like [`sign_url`] with another parameter name.
pub fn sign_url_param(secret: &Secret, path_and_query: &str, ts: u64, param: &str) -> String {
    let sep = if path_and_query.contains('?') {
        '&'
    } else {
        '?'
    };
    let t = token(secret, path_and_query, ts);
    format!(
        "{path_and_query}{sep}{param}={}",
        utf8_percent_encode(&t, QUERY_VALUE)
    )
}

/// Splits a request target into the signed message and the (decoded)
/// token, which must be the last query parameter named `param`.
///
/// `Missing` when there is no such parameter; `Malformed` when it is there
/// but not last, or not valid percent-encoding.
pub fn split_url<'u>(path_and_query: &'u str, param: &str) -> Result<(&'u str, String), Error> {
    let Some(q) = path_and_query.find('?') else {
        return Err(Error::Missing);
    };
    let query = &path_and_query[q + 1..];
    // The last parameter starts after the last '&' (or at the query start).
    let last_start = query.rfind('&').map_or(0, |i| i + 1);
    let last = &query[last_start..];
    let is_param = |p: &str| p.split_once('=').is_some_and(|(k, _)| k == param);
    if let Some((_, value)) = last.split_once('=').filter(|_| is_param(last)) {
        // The message ends at the '?' or '&' before the token.
        let message = &path_and_query[..q + last_start];
        let token = percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| Error::Malformed("token is not valid percent-encoded UTF-8"))?;
        return Ok((message, token.into_owned()));
    }
    if query.split('&').any(is_param) {
        return Err(Error::Malformed(
            "the token must be the last query parameter",
        ));
    }
    Err(Error::Missing)
}

/// How a token's timestamp is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// `ts` is the signing time; valid for this many seconds after it.
    Ttl(u64),
    /// `ts` is the expiry chosen by the origin.
    Absolute,
}

/// Checks tokens against a set of active secrets.
#[derive(Debug, Clone)]
pub struct Verifier<'s> {
    /// Active secrets, any of which may have signed the token.
    pub secrets: &'s [Secret],
    /// How `ts` is read.
    pub expiry: Expiry,
    /// Seconds a signing time may be ahead of our clock ([`Expiry::Ttl`]).
    pub max_future_skew: u64,
}

/// `<ts>-<mac>` parsed: the timestamp text, its value and the MAC bytes
/// (decoded into a stack buffer: no allocation on the hot path).
fn parse(token: &str) -> Result<(&str, u64, [u8; 48], usize), Error> {
    let (ts_text, mac_text) = token
        .split_once('-')
        .ok_or(Error::Malformed("expected <timestamp>-<mac>"))?;
    if ts_text.len() != 10 || !ts_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Malformed("the timestamp must be 10 decimal digits"));
    }
    let ts: u64 = ts_text
        .parse()
        .map_err(|_| Error::Malformed("the timestamp must be 10 decimal digits"))?;
    if mac_text.len() > 64 {
        return Err(Error::Malformed("the MAC is too long"));
    }
    let mut buf = [0u8; 48];
    let n = STANDARD
        .decode_slice(mac_text, &mut buf)
        .or_else(|_| URL_SAFE_NO_PAD.decode_slice(mac_text, &mut buf))
        .map_err(|_| Error::Malformed("the MAC is not base64"))?;
    Ok((ts_text, ts, buf, n))
}

impl Verifier<'_> {
    /// Verifies `token` (decoded, `<ts>-<mac>`) for `message` at `now`.
    /// The MAC is checked first, in constant time against each secret;
    /// only an authentic token is told apart as expired or future.
    pub fn verify(&self, message: &str, token: &str, now: u64) -> Result<Verified, Error> {
        let (ts_text, ts, buf, n) = parse(token)?;
        let tag = &buf[..n];
        let secret_index = self
            .secrets
            .iter()
            .position(|s| {
                let mut ctx = hmac::Context::with_key(s.key());
                ctx.update(message.as_bytes());
                ctx.update(ts_text.as_bytes());
                let ours = ctx.sign();
                crate::ct_eq(ours.as_ref(), tag)
            })
            .ok_or(Error::BadMac)?;
        let expires = match self.expiry {
            Expiry::Ttl(ttl) => {
                if ts > now.saturating_add(self.max_future_skew) {
                    return Err(Error::Future {
                        ts,
                        now,
                        skew: self.max_future_skew,
                    });
                }
                ts.saturating_add(ttl)
            }
            Expiry::Absolute => ts,
        };
        if now >= expires {
            return Err(Error::Expired {
                expired_at: expires,
                now,
            });
        }
        Ok(Verified::new(tag, None, Some(expires), secret_index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::new(b"mysecrettoken".to_vec()).expect("secret")
    }

    // Vectors from issue 6 / CONTRACT section 5.
    #[test]
    fn contract_vectors() {
        let s = secret();
        assert_eq!(
            token(&s, "/images/cat.jpg", 1484063787),
            "1484063787-XsZ5NmtNBxOd4f4fBOtqVmpWRnDRNkHKVZieqDPKu3U="
        );
        assert_eq!(
            token(&s, "/images/cat.jpg", 1700000003),
            "1700000003-jyIqK4eTfM7QzAbKCZWvrPgWUcnwNH/2NTzSNKi+COM="
        );
        assert_eq!(
            token_url_safe(&s, "/images/cat.jpg", 1700000003),
            "1700000003-jyIqK4eTfM7QzAbKCZWvrPgWUcnwNH_2NTzSNKi-COM"
        );
        assert_eq!(
            sign_url(&s, "/images/cat.jpg", 1484063787),
            "/images/cat.jpg?verify=1484063787-XsZ5NmtNBxOd4f4fBOtqVmpWRnDRNkHKVZieqDPKu3U%3D"
        );
    }

    fn verifier(secrets: &[Secret]) -> Verifier<'_> {
        Verifier {
            secrets,
            expiry: Expiry::Ttl(60),
            max_future_skew: 5,
        }
    }

    #[test]
    fn accepts_both_alphabets_and_rejects_tampering() {
        let s = [secret()];
        let v = verifier(&s);
        let now = 1700000003 + 1;
        for t in [
            "1700000003-jyIqK4eTfM7QzAbKCZWvrPgWUcnwNH/2NTzSNKi+COM=",
            "1700000003-jyIqK4eTfM7QzAbKCZWvrPgWUcnwNH_2NTzSNKi-COM",
        ] {
            let ok = v.verify("/images/cat.jpg", t, now).expect("valid");
            assert_eq!(ok.expires, Some(1700000063));
        }
        let good = "1700000003-jyIqK4eTfM7QzAbKCZWvrPgWUcnwNH/2NTzSNKi+COM=";
        assert_eq!(v.verify("/images/dog.jpg", good, now), Err(Error::BadMac));
        let ts_changed = good.replace("1700000003", "1700000004");
        assert_eq!(
            v.verify("/images/cat.jpg", &ts_changed, now),
            Err(Error::BadMac)
        );
        // Truncated: either not base64 any more or a short MAC.
        let truncated = &good[..good.len() - 5];
        assert!(v.verify("/images/cat.jpg", truncated, now).is_err());
        assert_eq!(
            v.verify(
                "/images/cat.jpg",
                "1700000003-jyIqK4eTfM7QzAbKCZWvrPgWUcnwNH_2NTzS",
                now
            ),
            Err(Error::BadMac)
        );
        assert!(matches!(
            v.verify("/images/cat.jpg", "170000000-abc", now),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            v.verify("/images/cat.jpg", "nothing", now),
            Err(Error::Malformed(_))
        ));
    }

    #[test]
    fn time_window() {
        let s = [secret()];
        let v = verifier(&s);
        let t = "1700000003-jyIqK4eTfM7QzAbKCZWvrPgWUcnwNH/2NTzSNKi+COM=";
        assert!(v.verify("/images/cat.jpg", t, 1700000003 + 59).is_ok());
        assert_eq!(
            v.verify("/images/cat.jpg", t, 1700000003 + 60),
            Err(Error::Expired {
                expired_at: 1700000063,
                now: 1700000063
            })
        );
        assert!(v.verify("/images/cat.jpg", t, 1700000003 - 5).is_ok());
        assert_eq!(
            v.verify("/images/cat.jpg", t, 1700000003 - 6),
            Err(Error::Future {
                ts: 1700000003,
                now: 1699999997,
                skew: 5
            })
        );
        let abs = Verifier {
            expiry: Expiry::Absolute,
            ..v
        };
        assert!(abs.verify("/images/cat.jpg", t, 1600000000).is_ok());
        assert!(matches!(
            abs.verify("/images/cat.jpg", t, 1700000003),
            Err(Error::Expired { .. })
        ));
    }

    #[test]
    fn rotation() {
        let old = Secret::new(b"old".to_vec()).expect("secret");
        let new = Secret::new(b"new".to_vec()).expect("secret");
        let t = token(&old, "/a", 1700000000);
        let both = [new.clone(), old.clone()];
        assert_eq!(
            verifier(&both)
                .verify("/a", &t, 1700000001)
                .map(|v| v.secret_index),
            Ok(1)
        );
        let only_new = [new];
        assert_eq!(
            verifier(&only_new).verify("/a", &t, 1700000001),
            Err(Error::BadMac)
        );
    }

    #[test]
    fn split() {
        let url =
            "/images/cat.jpg?verify=1484063787-XsZ5NmtNBxOd4f4fBOtqVmpWRnDRNkHKVZieqDPKu3U%3D";
        let (m, t) = split_url(url, "verify").expect("split");
        assert_eq!(m, "/images/cat.jpg");
        assert_eq!(t, "1484063787-XsZ5NmtNBxOd4f4fBOtqVmpWRnDRNkHKVZieqDPKu3U=");
        let (m, t) = split_url("/a?x=1&verify=1-2", "verify").expect("split");
        assert_eq!((m, t.as_str()), ("/a?x=1", "1-2"));
        assert_eq!(split_url("/a", "verify"), Err(Error::Missing));
        assert_eq!(split_url("/a?v=1-2", "verify"), Err(Error::Missing));
        assert_eq!(split_url("/a?xverify=1-2", "verify"), Err(Error::Missing));
        assert!(matches!(
            split_url("/a?verify=1-2&x=1", "verify"),
            Err(Error::Malformed(_))
        ));
        // A signed URL with extra query parameters signs them too.
        let s = secret();
        let url = sign_url(&s, "/a?x=1", 1700000000);
        let (m, t) = split_url(&url, "verify").expect("split");
        assert!(verifier(std::slice::from_ref(&s))
            .verify(m, &t, 1700000001)
            .is_ok());
    }
}
