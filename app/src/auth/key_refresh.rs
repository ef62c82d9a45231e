//! How often the provider's signing keys (its JWKS) may be read again.
//!
//! A provider rotates its keys on its own schedule; an ID token signed
//! with a key id the app has not read is the sign that it did. But anyone
//! can make up a token with any key id, so an unknown key id alone must
//! not make the app call the provider every time: the keys are read again
//! at most once per [`REREAD_INTERVAL`], and a token whose key is still
//! unknown after that is refused.

use std::time::{Duration, Instant};

/// The least time between two reads of the provider's keys. Short enough
/// that a rotation is followed within a minute whatever happens, long
/// enough that made-up tokens cannot make the app hammer the provider.
pub const REREAD_INTERVAL: Duration = Duration::from_secs(60);

/// When the keys were last read again (not counting discovery: a rotation
/// right after start-up is followed at once).
#[derive(Debug, Default)]
pub struct KeyRefresh {
    last: Option<Instant>,
}

impl KeyRefresh {
    /// Whether the keys may be read again at `now`; if so, `now` counts as
    /// the last read, whether or not the read then works (a provider that
    /// does not answer is not asked more often).
    pub fn claim(&mut self, now: Instant) -> bool {
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= REREAD_INTERVAL);
        if due {
            self.last = Some(now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_are_read_again_at_most_once_per_interval() {
        let start = Instant::now();
        let mut refresh = KeyRefresh::default();
        assert!(refresh.claim(start), "the first unknown key id reads them");
        assert!(!refresh.claim(start));
        assert!(!refresh.claim(start + REREAD_INTERVAL - Duration::from_millis(1)));
        assert!(refresh.claim(start + REREAD_INTERVAL));
        assert!(!refresh.claim(start + REREAD_INTERVAL + Duration::from_secs(1)));
        // A clock that seems to go back (another thread's `now`) is no read.
        assert!(!refresh.claim(start));
    }
}
