//! The forms' CSRF token for a signed-in session (a synchronizer token):
//! an HMAC of the session's subject and expiry with a key derived for this
//! purpose. The origin checks (`Sec-Fetch-Site`, `Origin`) stop cross-site
//! posts from browsers that send those headers; the token stops them from
//! browsers that send neither, since another site cannot read it from the
//! page. It changes with every sign-in (a new expiry), and needs no storage.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Session;
use crate::write_marker::CookieKey;

/// The form field the token travels in.
pub const FIELD: &str = "csrf";

/// Makes and checks tokens.
#[derive(Clone)]
pub struct CsrfTokens {
    key: [u8; 32],
}

impl std::fmt::Debug for CsrfTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfTokens([redacted])")
    }
}

impl CsrfTokens {
    pub fn new(key: &CookieKey) -> CsrfTokens {
        CsrfTokens {
            key: key.derive("csrf token"),
        }
    }

    /// The token `session`'s forms carry.
    pub fn token(&self, session: &Session) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(session).finalize().into_bytes())
    }

    /// Whether `presented` is `session`'s token (compared in constant time).
    pub fn is_valid(&self, session: &Session, presented: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(presented.trim())
            .is_ok_and(|bytes| self.mac(session).verify_slice(&bytes).is_ok())
    }

    fn mac(&self, session: &Session) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        // Lengths first, so no two (subject, expiry) pairs hash alike.
        let subject = session.person.subject();
        mac.update(&(subject.len() as u64).to_be_bytes());
        mac.update(subject.as_bytes());
        mac.update(&session.expires.to_be_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::domain::Person;

    fn tokens(key: &str) -> CsrfTokens {
        CsrfTokens::new(&CookieKey::parse(&key.repeat(32)).unwrap())
    }

    #[test]
    fn a_session_s_token_is_valid_for_it_alone() {
        let tokens = tokens("k");
        let now = SystemTime::now();
        let hour = Duration::from_secs(3600);
        let person = |subject: &str, name: &str| Person::parse(subject, name).unwrap();
        let ada = Session::new(person("ada", "Ada"), now, hour);
        let token = tokens.token(&ada);
        assert!(tokens.is_valid(&ada, &token));

        let grace = Session::new(person("grace", "Grace"), now, hour);
        let later = Session::new(person("ada", "Ada"), now, hour * 2);
        assert!(!tokens.is_valid(&grace, &token));
        assert!(
            !tokens.is_valid(&later, &token),
            "a new sign-in, a new token"
        );
        assert!(!self::tokens("x").is_valid(&ada, &token));
        for bad in ["", "AAAA", &token[1..], "not base64!"] {
            assert!(!tokens.is_valid(&ada, bad), "{bad}");
        }
    }
}
