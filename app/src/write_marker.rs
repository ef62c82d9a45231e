//! The cookie that marks a client which just changed something, so its page
//! loads read the database instead of the page cache ([`crate::page_cache`]'s
//! read-your-writes guarantee).
//!
//! Its value is signed: `<expiry, Unix seconds>.<HMAC-SHA-256 of it>`, keyed
//! with `COOKIE_KEY`. A client cannot make one up to push every page load
//! onto the database; it can only replay one it earned by writing (which
//! the write limit bounds), and only until it expires. Every replica must
//! share the key for a marker from one to count on another; without
//! `COOKIE_KEY` each process draws a random key, right for one replica.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;

/// The cookie's name.
pub const COOKIE: &str = "docket_wrote";
/// How long a marker counts; also the longest maximum age a page may be
/// kept, which is what makes the writer's guarantee hold.
pub const MAX_AGE: Duration = Duration::from_secs(60);
/// The shortest `COOKIE_KEY`: 256 bits, as long as the MAC.
pub const MIN_KEY_BYTES: usize = 32;

/// The key markers are signed with.
#[derive(Clone)]
pub struct CookieKey(SecretSlice<u8>);

impl CookieKey {
    /// `COOKIE_KEY` as given: any text of at least [`MIN_KEY_BYTES`] bytes
    /// (e.g. `openssl rand -hex 32`).
    pub fn parse(raw: &str) -> Result<CookieKey, String> {
        let raw = raw.trim();
        if raw.len() < MIN_KEY_BYTES {
            return Err(format!(
                "must be at least {MIN_KEY_BYTES} bytes (e.g. `openssl rand -hex 32`), got {}",
                raw.len()
            ));
        }
        Ok(CookieKey(SecretSlice::from(raw.as_bytes().to_vec())))
    }

    /// A key for `purpose` alone, derived from this one (HMAC-SHA-256 of
    /// the purpose): the session cookie and the CSRF tokens each get their
    /// own, so none of them is the key the write marker is signed with.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose_secret())
            .expect("HMAC takes keys of any length");
        mac.update(b"docket key derivation|");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A key of this process alone.
    pub fn random() -> CookieKey {
        CookieKey(SecretSlice::from(rand::random::<[u8; 32]>().to_vec()))
    }
}

impl std::fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieKey([redacted])")
    }
}

/// Signs and checks write markers.
#[derive(Clone, Debug)]
pub struct WriteMarker {
    key: CookieKey,
}

impl WriteMarker {
    pub fn new(key: CookieKey) -> Self {
        Self { key }
    }

    /// The `Set-Cookie` value a change answers with. Not `Secure`: it must
    /// work over plain HTTP on a developer's machine too, and it only says
    /// "read the database".
    pub fn cookie(&self, now: SystemTime) -> HeaderValue {
        let expires = unix_seconds(now) + MAX_AGE.as_secs();
        let value = format!(
            "{COOKIE}={expires}.{}; Max-Age={}; Path=/; HttpOnly; SameSite=Lax",
            URL_SAFE_NO_PAD.encode(self.mac(expires).finalize().into_bytes()),
            MAX_AGE.as_secs()
        );
        HeaderValue::try_from(value).expect("digits, base64url and ASCII are a header value")
    }

    /// Whether the request carries a marker this key signed that has not
    /// expired. Made-up, altered and expired ones do not count.
    pub fn wrote_recently(&self, headers: &HeaderMap, now: SystemTime) -> bool {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim_start().strip_prefix(COOKIE)?.strip_prefix('='))
            .any(|value| self.is_valid(value, now))
    }

    fn is_valid(&self, value: &str, now: SystemTime) -> bool {
        let Some((expires, signature)) = value.split_once('.') else {
            return false;
        };
        let Ok(expires) = expires.parse::<u64>() else {
            return false;
        };
        let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        let now = unix_seconds(now);
        // Not yet expired, and never further away than a marker is issued
        // for (a key leak aside, that cannot be signed; this is a second line).
        let fresh = expires > now && expires <= now + MAX_AGE.as_secs();
        // `verify_slice` compares in constant time.
        fresh && self.mac(expires).verify_slice(&signature).is_ok()
    }

    fn mac(&self, expires: u64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.0.expose_secret())
            .expect("HMAC takes keys of any length");
        mac.update(COOKIE.as_bytes());
        mac.update(b"|");
        mac.update(expires.to_string().as_bytes());
        mac
    }
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker() -> WriteMarker {
        WriteMarker::new(CookieKey::parse(&"k".repeat(32)).unwrap())
    }

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::try_from(value).unwrap());
        headers
    }

    /// The `name=value` part of a `Set-Cookie`.
    fn pair(set: &HeaderValue) -> String {
        set.to_str().unwrap().split(';').next().unwrap().to_owned()
    }

    #[test]
    fn a_marker_it_set_counts_until_it_expires() {
        let marker = marker();
        let now = SystemTime::now();
        let set = marker.cookie(now);
        let text = set.to_str().unwrap();
        assert!(text.starts_with("docket_wrote="), "{text}");
        assert!(text.contains("; Max-Age=60;"), "{text}");
        assert!(
            text.contains("HttpOnly") && text.contains("SameSite=Lax"),
            "{text}"
        );

        let headers = with_cookie(&format!("theme=dark; {}", pair(&set)));
        assert!(marker.wrote_recently(&headers, now));
        assert!(marker.wrote_recently(&headers, now + Duration::from_secs(59)));
        assert!(!marker.wrote_recently(&headers, now + MAX_AGE));
    }

    #[test]
    fn made_up_altered_or_foreign_markers_do_not_count() {
        let marker = marker();
        let now = SystemTime::now();
        let genuine = pair(&marker.cookie(now));
        let (_, value) = genuine.split_once('=').unwrap();
        let (expires, signature) = value.split_once('.').unwrap();
        let later: u64 = expires.parse::<u64>().unwrap() + 30;
        let other_key = WriteMarker::new(CookieKey::parse(&"x".repeat(32)).unwrap());
        for forged in [
            "docket_wrote=1".to_owned(),
            "docket_wrote=".to_owned(),
            format!("docket_wrote={expires}"),
            format!("docket_wrote={expires}.AAAA"),
            format!("docket_wrote={later}.{signature}"),
            format!("docket_wrote={expires}.{signature}x"),
            format!("docket_wrote_not={value}"),
            pair(&other_key.cookie(now)),
        ] {
            assert!(
                !marker.wrote_recently(&with_cookie(&forged), now),
                "{forged}"
            );
        }
        assert!(!marker.wrote_recently(&HeaderMap::new(), now));
    }

    #[test]
    fn a_marker_dated_beyond_its_lifetime_does_not_count_even_if_signed() {
        let marker = marker();
        let now = SystemTime::now();
        let from_the_future = marker.cookie(now + Duration::from_secs(3600));
        assert!(!marker.wrote_recently(&with_cookie(&pair(&from_the_future)), now));
    }

    #[test]
    fn short_keys_are_refused_and_keys_are_never_printed() {
        let error = CookieKey::parse("too short").unwrap_err();
        assert!(error.contains("at least 32 bytes"), "{error}");
        let key = CookieKey::parse(&"s3cret".repeat(6)).unwrap();
        assert!(!format!("{key:?}").contains("s3cret"));
    }
}
