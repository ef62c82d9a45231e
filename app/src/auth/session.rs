//! The signed-in session: an encrypted, authenticated cookie (AES-256-GCM
//! through the `cookie` crate's private jar) holding who signed in and when
//! the session ends. Nothing is kept on the server, so every replica reads
//! it alike (with the same `COOKIE_KEY`), and sign-out is the browser
//! dropping the cookie.
//!
//! The expiry is inside the encrypted value and checked on every request:
//! the cookie's `Max-Age` only tells the browser when to forget it, and a
//! client could keep it longer. A cookie that does not decrypt (altered,
//! made up, from another deployment's key) counts as no session.
//!
//! The same sealing keeps the sign-in's `state`, `nonce` and PKCE verifier
//! between `/auth/login` and `/auth/callback` (see [`super::flow`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use cookie::{Cookie, CookieJar, Key, SameSite};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::Person;
use crate::write_marker::CookieKey;

/// Who is signed in, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Who signed in: stored as the `subject` and `name` fields beside
    /// `expires`, and parsed again when the cookie is opened.
    #[serde(flatten)]
    pub person: Person,
    /// Unix seconds after which the session is over.
    pub expires: u64,
}

impl Session {
    /// A session for `person`, from `now` for `lifetime`.
    pub fn new(person: Person, now: SystemTime, lifetime: Duration) -> Session {
        Session {
            person,
            expires: unix_seconds(now).saturating_add(lifetime.as_secs()),
        }
    }

    pub fn is_current(&self, now: SystemTime) -> bool {
        unix_seconds(now) < self.expires
    }
}

/// A request's session as it was first opened (none is a result too).
#[derive(Clone)]
struct Opened(Option<Session>);

/// The two cookies sign-in uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jar {
    /// The session itself.
    Session,
    /// The sign-in under way (`state`, `nonce`, PKCE verifier).
    SignIn,
}

/// Seals and opens the sign-in cookies.
#[derive(Clone)]
pub struct SessionCookies {
    key: Key,
    /// `PUBLIC_URL` is https: `Secure` and the `__Host-` prefix.
    secure: bool,
}

impl std::fmt::Debug for SessionCookies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCookies")
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

impl SessionCookies {
    /// Cookies encrypted with a key derived from `key` for sessions only.
    pub fn new(key: &CookieKey, secure: bool) -> SessionCookies {
        // `Key::from` wants 64 bytes (signing and encryption halves); the
        // private jar uses the encryption half.
        let mut master = [0u8; 64];
        master[..32].copy_from_slice(&key.derive("session cookie signing"));
        master[32..].copy_from_slice(&key.derive("session cookie encryption"));
        SessionCookies {
            key: Key::from(&master),
            secure,
        }
    }

    /// The cookie's name: `__Host-` when secure, so that neither another
    /// subdomain nor a plain-HTTP page can set it.
    pub fn name(&self, jar: Jar) -> &'static str {
        match (jar, self.secure) {
            (Jar::Session, true) => "__Host-docket_session",
            (Jar::Session, false) => "docket_session",
            (Jar::SignIn, true) => "__Host-docket_signin",
            (Jar::SignIn, false) => "docket_signin",
        }
    }

    /// The `Set-Cookie` that stores `value`, encrypted, for `max_age`.
    pub fn seal<T: Serialize>(&self, jar: Jar, value: &T, max_age: Duration) -> HeaderValue {
        let json = serde_json::to_string(value).expect("sign-in values serialize");
        let mut cookies = CookieJar::new();
        cookies
            .private_mut(&self.key)
            .add(self.cookie(jar, json, max_age));
        let sealed = cookies.delta().next().expect("the cookie just added");
        HeaderValue::try_from(sealed.to_string()).expect("base64 and attributes are a header value")
    }

    /// The `Set-Cookie` that makes the browser drop `jar`'s cookie.
    pub fn clear(&self, jar: Jar) -> HeaderValue {
        let cookie = self.cookie(jar, String::new(), Duration::ZERO);
        HeaderValue::try_from(cookie.to_string()).expect("attributes are a header value")
    }

    /// What `jar`'s cookie in `headers` holds, if it decrypts with this key
    /// and reads as a `T`.
    pub fn open<T: DeserializeOwned>(&self, jar: Jar, headers: &HeaderMap) -> Option<T> {
        let name = self.name(jar);
        let mut cookies = CookieJar::new();
        for value in headers.get_all(header::COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            for cookie in Cookie::split_parse(value.to_owned()).flatten() {
                if cookie.name() == name {
                    cookies.add_original(cookie.into_owned());
                }
            }
        }
        let opened = cookies.private(&self.key).get(name)?;
        serde_json::from_str(opened.value()).ok()
    }

    /// The session in `headers`, if there is one and it is not over.
    pub fn session(&self, headers: &HeaderMap, now: SystemTime) -> Option<Session> {
        self.open::<Session>(Jar::Session, headers)
            .filter(|session| session.is_current(now))
    }

    /// The session of `request`, opened once per request and kept in its
    /// extensions: a page write asks three times (its write limit, its CSRF
    /// check, its handler), and each opening decrypts and parses the cookie.
    pub fn session_of(&self, request: &mut Request, now: SystemTime) -> Option<Session> {
        if let Some(Opened(session)) = request.extensions().get() {
            return session.clone();
        }
        let session = self.session(request.headers(), now);
        request.extensions_mut().insert(Opened(session.clone()));
        session
    }

    /// The session in a request's `parts`: the one opened for it before
    /// ([`Self::session_of`]), else opened now.
    pub fn session_in(&self, parts: &Parts, now: SystemTime) -> Option<Session> {
        match parts.extensions.get() {
            Some(Opened(session)) => session.clone(),
            None => self.session(&parts.headers, now),
        }
    }

    fn cookie(&self, jar: Jar, value: String, max_age: Duration) -> Cookie<'static> {
        let max_age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
        Cookie::build((self.name(jar), value))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            // Lax: the provider's redirect back to `/auth/callback` is a
            // top-level GET, which must carry the sign-in cookie.
            .same_site(SameSite::Lax)
            .max_age(cookie::time::Duration::seconds(max_age))
            .build()
    }
}

pub fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn cookies(key: &str, secure: bool) -> SessionCookies {
        SessionCookies::new(&CookieKey::parse(&key.repeat(32)).unwrap(), secure)
    }

    /// A request sending back what `set` stored.
    fn sent(set: &HeaderValue) -> HeaderMap {
        let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::try_from(format!("theme=dark; {pair}")).unwrap(),
        );
        headers
    }

    fn ada(now: SystemTime) -> Session {
        Session::new(Person::parse("ada", "Ada Lovelace").unwrap(), now, HOUR)
    }

    #[test]
    fn a_session_reads_back_until_it_expires() {
        let cookies = cookies("k", false);
        let now = SystemTime::now();
        let set = cookies.seal(Jar::Session, &ada(now), HOUR);
        let text = set.to_str().unwrap();
        assert!(text.starts_with("docket_session="), "{text}");
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=3600"] {
            assert!(text.contains(attribute), "{attribute}: {text}");
        }
        assert!(!text.contains("Secure"), "{text}");
        assert!(!text.contains("Ada"), "the value is encrypted: {text}");

        let headers = sent(&set);
        assert_eq!(cookies.session(&headers, now), Some(ada(now)));
        assert_eq!(cookies.session(&headers, now + HOUR), None);
    }

    #[test]
    fn a_request_opens_its_session_once_and_later_readers_get_that_one() {
        let cookies = cookies("k", false);
        let now = SystemTime::now();
        let mut request = Request::new(axum::body::Body::empty());
        *request.headers_mut() = sent(&cookies.seal(Jar::Session, &ada(now), HOUR));
        assert_eq!(cookies.session_of(&mut request, now), Some(ada(now)));
        // Had these asked the cookie again, the session would be over.
        assert_eq!(cookies.session_of(&mut request, now + HOUR), Some(ada(now)));
        let (parts, _) = request.into_parts();
        assert_eq!(cookies.session_in(&parts, now + HOUR), Some(ada(now)));

        // Not opened before: opened from the cookie, and none is kept too.
        let mut fresh = Request::new(axum::body::Body::empty());
        *fresh.headers_mut() = sent(&cookies.seal(Jar::Session, &ada(now), HOUR));
        let (parts, _) = fresh.into_parts();
        assert_eq!(cookies.session_in(&parts, now), Some(ada(now)));
        let mut anonymous = Request::new(axum::body::Body::empty());
        assert_eq!(cookies.session_of(&mut anonymous, now), None);
        *anonymous.headers_mut() = sent(&cookies.seal(Jar::Session, &ada(now), HOUR));
        assert_eq!(cookies.session_of(&mut anonymous, now), None);
    }

    #[test]
    fn over_https_the_cookie_is_secure_and_host_prefixed() {
        let cookies = cookies("k", true);
        let set = cookies.seal(Jar::Session, &ada(SystemTime::now()), HOUR);
        let text = set.to_str().unwrap();
        assert!(text.starts_with("__Host-docket_session="), "{text}");
        assert!(text.contains("Secure"), "{text}");
        let cleared = cookies.clear(Jar::Session);
        assert!(
            cleared
                .to_str()
                .unwrap()
                .starts_with("__Host-docket_session=;"),
            "{cleared:?}"
        );
    }

    #[test]
    fn altered_foreign_or_misplaced_cookies_are_no_session() {
        let cookies = cookies("k", false);
        let now = SystemTime::now();
        let set = cookies.seal(Jar::Session, &ada(now), HOUR);
        let pair = set.to_str().unwrap().split(';').next().unwrap();
        let (_, value) = pair.split_once('=').unwrap();
        let mut flipped = value.as_bytes().to_vec();
        flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        let other_deployment = self::cookies("x", false).seal(Jar::Session, &ada(now), HOUR);
        let sign_in_cookie = cookies.seal(Jar::SignIn, &ada(now), HOUR);
        let sign_in_value = sign_in_cookie.to_str().unwrap().split(';').next().unwrap();
        let (_, sign_in_value) = sign_in_value.split_once('=').unwrap();
        for forged in [
            format!("docket_session={flipped}"),
            "docket_session={\"subject\":\"ada\",\"name\":\"Ada\",\"expires\":99999999999}"
                .to_owned(),
            format!("docket_session={sign_in_value}"),
            other_deployment
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned(),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::COOKIE,
                HeaderValue::try_from(forged.as_str()).unwrap(),
            );
            assert_eq!(cookies.session(&headers, now), None, "{forged}");
        }
    }

    #[test]
    fn a_sealed_person_is_parsed_again_when_opened() {
        let cookies = cookies("k", false);
        let now = SystemTime::now();
        // The stored shape: the person's two claims beside the expiry.
        let stored = serde_json::to_value(ada(now)).unwrap();
        assert_eq!(stored["subject"], "ada");
        assert_eq!(stored["name"], "Ada Lovelace");
        // A session sealed with this key whose name breaks the rules (one
        // made before they changed) opens as no session, not as a person
        // no change could record.
        let expires = unix_seconds(now) + 60;
        let bad = serde_json::json!({"subject": "ada", "name": "Ada\nEvil", "expires": expires});
        let set = cookies.seal(Jar::Session, &bad, HOUR);
        assert_eq!(cookies.session(&sent(&set), now), None);
    }

    #[test]
    fn the_session_key_is_not_the_write_marker_key() {
        let key = CookieKey::parse(&"k".repeat(32)).unwrap();
        assert_ne!(
            key.derive("session cookie encryption").as_slice(),
            "k".repeat(32).as_bytes()
        );
        assert_ne!(key.derive("session cookie encryption"), key.derive("csrf"));
    }
}
