//! nginx `secure_link_md5`: the token is the MD5 of an expression the
//! operator writes (`"$secure_link_expires$uri$remote_addr $secret"`),
//! base64url without padding, usually in `?md5=…&expires=…`.
//!
//! The expression is parsed once ([`Expression::parse`]); variables are
//! `$secure_link_expires`, `$uri`, `$remote_addr` and `$secret` (the
//! configured secret, so it need not be written into the expression as
//! nginx does). A request whose `expires` is in the past is refused; no
//! `expires` means the link does not expire (as in nginx).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use md5::{Digest as _, Md5};
use zeroize::Zeroizing;

use crate::{Error, Secret, SetupError, Verified};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Expires,
    Uri,
    RemoteAddr,
    Secret,
}

/// A parsed `secure_link_md5` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expression(Vec<Part>);

/// The expression nginx documents, with the secret as a variable.
pub const DEFAULT_EXPRESSION: &str = "$secure_link_expires$uri$remote_addr $secret";

impl Expression {
    /// Parses `text`; an unknown `$variable` is an error.
    pub fn parse(text: &str) -> Result<Expression, SetupError> {
        const VARS: [(&str, Part); 4] = [
            ("secure_link_expires", Part::Expires),
            ("remote_addr", Part::RemoteAddr),
            ("secret", Part::Secret),
            ("uri", Part::Uri),
        ];
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(i) = rest.find('$') {
            if i > 0 {
                parts.push(Part::Text(rest[..i].to_owned()));
            }
            let after = &rest[i + 1..];
            let name_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            let name = &after[..name_len];
            // Longest known name that prefixes the word (nginx variables
            // are written back to back: `$secure_link_expires$uri`).
            let Some((n, p)) = VARS.iter().find(|(n, _)| name == *n) else {
                return Err(SetupError::UnknownVariable(name.to_owned()));
            };
            parts.push(p.clone());
            rest = &after[n.len()..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Expression(parts))
    }

    /// The expression's text for these values (zeroed on drop: it may
    /// hold the secret).
    fn expand(
        &self,
        expires: &str,
        uri: &str,
        remote_addr: &str,
        secret: &[u8],
    ) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(64));
        for p in &self.0 {
            match p {
                Part::Text(t) => out.extend_from_slice(t.as_bytes()),
                Part::Expires => out.extend_from_slice(expires.as_bytes()),
                Part::Uri => out.extend_from_slice(uri.as_bytes()),
                Part::RemoteAddr => out.extend_from_slice(remote_addr.as_bytes()),
                Part::Secret => out.extend_from_slice(secret),
            }
        }
        out
    }
}

/// The token for an already expanded expression: base64url(MD5(text)).
pub fn hash(expanded: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Md5::digest(expanded))
}

/// The token for `uri` from `remote_addr`, expiring at `expires` (`None`:
/// the `$secure_link_expires` variable is empty).
pub fn sign(
    expression: &Expression,
    secret: &Secret,
    uri: &str,
    remote_addr: &str,
    expires: Option<u64>,
) -> String {
    let e = expires.map(|e| e.to_string()).unwrap_or_default();
    hash(&expression.expand(&e, uri, remote_addr, secret.raw()))
}

/// Verifies the `md5` value (and `expires`, when the request has one).
pub fn verify(
    expression: &Expression,
    secrets: &[Secret],
    uri: &str,
    remote_addr: &str,
    md5: &str,
    expires: Option<&str>,
    now: u64,
) -> Result<Verified, Error> {
    let tag = URL_SAFE_NO_PAD
        .decode(md5)
        .map_err(|_| Error::Malformed("the md5 value is not base64url"))?;
    let exp = match expires {
        None => None,
        Some(e) => Some(
            e.parse::<u64>()
                .map_err(|_| Error::Malformed("expires is not a Unix time"))?,
        ),
    };
    let exp_text = expires.unwrap_or("");
    let secret_index = secrets
        .iter()
        .position(|s| {
            let d = Md5::digest(expression.expand(exp_text, uri, remote_addr, s.raw()));
            crate::ct_eq(d.as_slice(), &tag)
        })
        .ok_or(Error::BadMac)?;
    if let Some(e) = exp {
        // nginx: expired when expires < now.
        if e < now {
            return Err(Error::Expired { expired_at: e, now });
        }
    }
    Ok(Verified::new(&tag, None, exp, secret_index))
}

#[cfg(test)]
mod tests {
    use super::*;

    // nginx documentation (ngx_http_secure_link_module): the expression
    // "2147483647/s/link127.0.0.1 secret" gives _e4Nc3iduzkWRm01TBBNYw.
    #[test]
    fn doc_vector() {
        assert_eq!(
            hash(b"2147483647/s/link127.0.0.1 secret"),
            "_e4Nc3iduzkWRm01TBBNYw"
        );
        let e = Expression::parse(DEFAULT_EXPRESSION).expect("parse");
        let s = Secret::new(b"secret".to_vec()).expect("secret");
        assert_eq!(
            sign(&e, &s, "/s/link", "127.0.0.1", Some(2147483647)),
            "_e4Nc3iduzkWRm01TBBNYw"
        );
        let ok = verify(
            &e,
            std::slice::from_ref(&s),
            "/s/link",
            "127.0.0.1",
            "_e4Nc3iduzkWRm01TBBNYw",
            Some("2147483647"),
            1700000000,
        )
        .expect("valid");
        assert_eq!(ok.expires, Some(2147483647));
    }

    #[test]
    fn refusals() {
        let e = Expression::parse(DEFAULT_EXPRESSION).expect("parse");
        let s = [Secret::new(b"secret".to_vec()).expect("secret")];
        let v = |uri: &str, ip: &str, md5: &str, exp: Option<&str>, now: u64| {
            verify(&e, &s, uri, ip, md5, exp, now)
        };
        let good = "_e4Nc3iduzkWRm01TBBNYw";
        assert_eq!(
            v("/s/other", "127.0.0.1", good, Some("2147483647"), 1),
            Err(Error::BadMac)
        );
        assert_eq!(
            v("/s/link", "127.0.0.2", good, Some("2147483647"), 1),
            Err(Error::BadMac)
        );
        assert_eq!(
            v("/s/link", "127.0.0.1", good, Some("2147483646"), 1),
            Err(Error::BadMac)
        );
        assert_eq!(
            v("/s/link", "127.0.0.1", &good[..12], Some("2147483647"), 1),
            Err(Error::BadMac)
        );
        assert!(v("/s/link", "127.0.0.1", &good[..10], Some("2147483647"), 1).is_err());
        assert!(matches!(
            v("/s/link", "127.0.0.1", "%%", None, 1),
            Err(Error::Malformed(_))
        ));
        let t = sign(&e, &s[0], "/x", "::1", Some(100));
        assert_eq!(
            v("/x", "::1", &t, Some("100"), 101),
            Err(Error::Expired {
                expired_at: 100,
                now: 101
            })
        );
        assert!(v("/x", "::1", &t, Some("100"), 100).is_ok());
        let forever = sign(&e, &s[0], "/x", "::1", None);
        assert!(v("/x", "::1", &forever, None, u64::MAX).is_ok());
    }

    #[test]
    fn expression_variables() {
        assert_eq!(
            Expression::parse("$uri $nope"),
            Err(SetupError::UnknownVariable("nope".into()))
        );
        let e = Expression::parse("$secret:$uri").expect("parse");
        let s = Secret::new(b"k".to_vec()).expect("secret");
        assert_eq!(sign(&e, &s, "/a", "ip", None), hash(b"k:/a"));
    }
}
