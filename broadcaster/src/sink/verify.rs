//! Standard Webhooks signature verification, written from the spec.
//!
//! Deliberately separate from the signer in `delivery::generic` (which uses
//! the `standardwebhooks` crate): this one uses `hmac` + `sha2` directly,
//! so a mistake in either shows up as a failed verification instead of
//! being agreed on by both ends.
//!
//! The spec: the signed content is `{webhook-id}.{webhook-timestamp}.{body}`;
//! the key is the base64 part of `whsec_<base64>`; `webhook-signature` is a
//! space-separated list of `v1,<base64 HMAC-SHA256>` and one match is
//! enough; a timestamp more than five minutes from now is refused, which
//! stops replays of captured requests.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far the timestamp may be from our clock.
const TOLERANCE_SECONDS: i64 = 5 * 60;

/// Checks signatures made with one secret.
#[derive(Clone)]
pub struct Verifier {
    key: Vec<u8>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier([REDACTED])")
    }
}

impl Verifier {
    /// From `whsec_<base64>`.
    pub fn new(secret: &str) -> Result<Verifier, &'static str> {
        let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| "the secret must be `whsec_` followed by base64")?;
        if key.is_empty() {
            return Err("the secret is empty");
        }
        Ok(Verifier { key })
    }

    /// `Ok` if one of the `v1` signatures in `signatures` matches and
    /// `timestamp` is within tolerance of `now` (Unix seconds).
    pub fn verify(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), &'static str> {
        let sent: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| "webhook-timestamp is not a number")?;
        // abs_diff: a timestamp near i64::MIN must not overflow (a panic per request).
        if now.abs_diff(sent) > TOLERANCE_SECONDS.unsigned_abs() {
            return Err("webhook-timestamp is more than five minutes off");
        }
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.trim().as_bytes());
        mac.update(b".");
        mac.update(body);
        let matches = signatures
            .split(' ')
            .filter_map(|candidate| candidate.strip_prefix("v1,"))
            .filter_map(|encoded| STANDARD.decode(encoded).ok())
            // verify_slice compares in constant time.
            .any(|signature| mac.clone().verify_slice(&signature).is_ok());
        if matches {
            Ok(())
        } else {
            Err("no v1 signature matches")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TIMESTAMP: &str = "1649367553";
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    fn verify(signatures: &str, body: &[u8], now: i64) -> Result<(), &'static str> {
        Verifier::new(SECRET)
            .unwrap()
            .verify(ID, TIMESTAMP, signatures, body, now)
    }

    /// The spec's published test vector.
    #[test]
    fn accepts_the_spec_test_vector() {
        assert_eq!(verify(SIGNATURE, BODY, 1649367553 + 10), Ok(()));
    }

    #[test]
    fn accepts_one_match_among_several_signatures() {
        let list = format!("v1,Zm9vYmFy v2,abc {SIGNATURE}");
        assert_eq!(verify(&list, BODY, 1649367553), Ok(()));
    }

    #[test]
    fn refuses_a_changed_body_a_wrong_secret_and_old_timestamps() {
        assert!(
            verify(
                SIGNATURE,
                br#"{"email":"evil@example.com","username":"test_user"}"#,
                1649367553
            )
            .is_err()
        );
        let other = Verifier::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert!(
            other
                .verify(ID, TIMESTAMP, SIGNATURE, BODY, 1649367553)
                .is_err()
        );
        assert!(verify(SIGNATURE, BODY, 1649367553 + 301).is_err());
        assert!(verify(SIGNATURE, BODY, 1649367553 - 301).is_err());
        assert!(verify("v1,", BODY, 1649367553).is_err());
        assert!(verify(&SIGNATURE[..10], BODY, 1649367553).is_err());
    }
}
