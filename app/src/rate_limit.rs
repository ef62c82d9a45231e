//! Per-writer limits on writes: a writer who posts faster than
//! `WRITE_RATE_LIMIT` gets 429 with `Retry-After`, and nothing is stored.
//!
//! The limiter is governor's GCRA (the generic cell rate algorithm): per
//! writer it keeps one instant, the time at which its allowance would be
//! full again, so a burst of up to the whole allowance passes and then
//! requests are let through at the steady rate. Reads are never limited.
//!
//! A writer ([`Writer`]) is the person signed in, with `AUTH=oidc`, and
//! otherwise the client: an IPv4 address or an IPv6 /64
//! ([`crate::client`]). Keyed on the address alone, colleagues behind one
//! office proxy would share one allowance, and one person moving between
//! networks would get a fresh one on each.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::Request;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::auth::SessionCookies;
use crate::client::{Client, ClientIp};

/// Above this many remembered writers, those whose allowance is full again
/// are forgotten (they would be let through anyway).
const PRUNE_ABOVE: usize = 10_000;

/// `count` writes per `period`, as `WRITE_RATE_LIMIT` gives it: `300/minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub count: NonZeroU32,
    pub period: Duration,
}

impl RateLimit {
    /// The default: far above what a person does, well below a script.
    pub const DEFAULT: RateLimit = RateLimit {
        count: NonZeroU32::new(300).expect("300 is not zero"),
        period: Duration::from_secs(60),
    };
}

impl FromStr for RateLimit {
    type Err = String;

    /// `<count>/<second|minute|hour>`, e.g. `300/minute`.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let expected = || format!("expected `<count>/<second|minute|hour>` or `off`, got `{raw}`");
        let (count, unit) = raw.trim().split_once('/').ok_or_else(expected)?;
        let count = count.trim().parse::<NonZeroU32>().map_err(|_| expected())?;
        let period = match unit.trim() {
            "s" | "second" => Duration::from_secs(1),
            "m" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(expected()),
        };
        Ok(RateLimit { count, period })
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.period.as_secs() {
            1 => "second",
            60 => "minute",
            _ => "hour",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// Whom a write counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Writer {
    /// Nobody is signed in (or the request is to the JSON API, whose
    /// tokens name no person): the address it comes from.
    Client(Client),
    /// The subject of a current session, from any address.
    Subject(Arc<str>),
}

impl From<Client> for Writer {
    fn from(client: Client) -> Self {
        Writer::Client(client)
    }
}

/// The per-writer allowances of one limit.
pub struct WriteLimiter<C: Clock = DefaultClock> {
    client_ip: ClientIp,
    /// With `AUTH=oidc`: the session cookies, to key signed-in writes on
    /// the person.
    sessions: Option<SessionCookies>,
    allowances: RateLimiter<Writer, DashMapStateStore<Writer>, C, NoOpMiddleware<C::Instant>>,
}

impl WriteLimiter {
    pub fn new(limit: RateLimit, client_ip: ClientIp, sessions: Option<SessionCookies>) -> Self {
        Self::with_clock(limit, client_ip, sessions, DefaultClock::default())
    }
}

impl<C: Clock> WriteLimiter<C> {
    fn with_clock(
        limit: RateLimit,
        client_ip: ClientIp,
        sessions: Option<SessionCookies>,
        clock: C,
    ) -> Self {
        let interval = limit.period / limit.count.get();
        let quota = Quota::with_period(interval)
            .expect("a period of at least a second over a u32 count is not zero")
            .allow_burst(limit.count);
        Self {
            client_ip,
            sessions,
            allowances: RateLimiter::dashmap_with_clock(quota, clock),
        }
    }

    /// The client (address) a request comes from.
    pub fn client_of(&self, request: &Request) -> Client {
        self.client_ip.of(request)
    }

    /// Who a page write counts against: the person of a current session,
    /// else the client. A cookie that does not open (made up, altered,
    /// expired) is no session, so it cannot buy a fresh allowance.
    pub fn writer_of(&self, request: &mut Request) -> Writer {
        self.sessions
            .as_ref()
            .and_then(|sessions| sessions.session_of(request, SystemTime::now()))
            .map_or_else(
                || Writer::Client(self.client_of(request)),
                |session| Writer::Subject(session.person.subject().into()),
            )
    }

    /// Takes one write from `writer`'s allowance, or says how long until
    /// one is free.
    pub fn check(&self, writer: impl Into<Writer>) -> Result<(), Duration> {
        if self.allowances.len() > PRUNE_ABOVE {
            self.allowances.retain_recent();
        }
        self.allowances
            .check_key(&writer.into())
            .map_err(|not_until| not_until.wait_time_from(self.allowances.clock().now()))
    }
}

impl<C: Clock> fmt::Debug for WriteLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteLimiter")
            .field("client_ip", &self.client_ip)
            .field("signed_in", &self.sessions.is_some())
            .field("writers", &self.allowances.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use governor::clock::FakeRelativeClock;

    use super::*;

    /// A limiter whose time moves only when the test advances it.
    fn limiter(limit: &str) -> (WriteLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let limiter =
            WriteLimiter::with_clock(limit.parse().unwrap(), ClientIp::Peer, None, clock.clone());
        (limiter, clock)
    }

    const A: Client = Client::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: Client = Client::V4(Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn a_burst_of_the_whole_allowance_passes_then_the_steady_rate() {
        let (limiter, clock) = limiter("6/minute");
        for _ in 0..6 {
            assert_eq!(limiter.check(A), Ok(()));
        }
        let wait = limiter.check(A).unwrap_err();
        assert_eq!(wait, Duration::from_secs(10));
        // Another client has its own allowance.
        assert_eq!(limiter.check(B), Ok(()));
        // One interval later, exactly one more write is free.
        clock.advance(Duration::from_secs(10));
        assert_eq!(limiter.check(A), Ok(()));
        assert!(limiter.check(A).is_err());
        // After a whole period the full burst is back.
        clock.advance(Duration::from_secs(60));
        for _ in 0..6 {
            assert_eq!(limiter.check(A), Ok(()));
        }
        assert!(limiter.check(A).is_err());
    }

    #[test]
    fn refused_requests_do_not_use_up_the_allowance() {
        let (limiter, clock) = limiter("1/second");
        assert_eq!(limiter.check(A), Ok(()));
        for _ in 0..100 {
            assert!(limiter.check(A).is_err());
        }
        clock.advance(Duration::from_secs(1));
        assert_eq!(limiter.check(A), Ok(()));
    }

    #[test]
    fn an_ipv6_clients_allowance_is_shared_by_its_slash_64() {
        let address = |text: &str| Client::from(text.parse::<IpAddr>().unwrap());
        let (limiter, _clock) = limiter("2/minute");
        // Two writes from one address, then a third from another address in
        // the same /64: the allowance is shared.
        assert_eq!(limiter.check(address("2001:db8:1:2::1")), Ok(()));
        assert_eq!(limiter.check(address("2001:db8:1:2::1")), Ok(()));
        assert!(
            limiter
                .check(address("2001:db8:1:2:ffff:ffff:ffff:ffff"))
                .is_err()
        );
        // The next /64 is another client.
        assert_eq!(limiter.check(address("2001:db8:1:3::1")), Ok(()));
    }

    #[test]
    fn forgotten_clients_are_pruned_once_there_are_many() {
        let (limiter, clock) = limiter("1/second");
        for i in 0..=PRUNE_ABOVE as u32 {
            assert_eq!(limiter.check(Client::V4(Ipv4Addr::from_bits(i))), Ok(()));
        }
        assert_eq!(limiter.allowances.len(), PRUNE_ABOVE + 1);
        // governor forgets a client once its state is indistinguishable
        // from a fresh one: a full interval after its allowance was full.
        clock.advance(Duration::from_secs(2));
        assert_eq!(limiter.check(A), Ok(()));
        assert_eq!(limiter.allowances.len(), 1, "only the client just seen");
    }

    /// A limiter that keys signed-in writes on the person, and a request
    /// from `address` with `cookie`.
    mod signed_in {
        use std::net::SocketAddr;

        use axum::extract::ConnectInfo;
        use axum::http::header::COOKIE;

        use super::*;
        use crate::auth::{Jar, Session};
        use crate::write_marker::CookieKey;

        pub fn limiter(limit: &str) -> (WriteLimiter<FakeRelativeClock>, SessionCookies) {
            let sessions = SessionCookies::new(&CookieKey::random(), false);
            let limiter = WriteLimiter::with_clock(
                limit.parse().unwrap(),
                ClientIp::Peer,
                Some(sessions.clone()),
                FakeRelativeClock::default(),
            );
            (limiter, sessions)
        }

        /// `name=value` of a current session cookie for `subject`.
        pub fn cookie(sessions: &SessionCookies, subject: &str) -> String {
            let session = Session::new(
                crate::domain::Person::parse(subject, subject).unwrap(),
                SystemTime::now(),
                Duration::from_secs(3600),
            );
            let set_cookie = sessions.seal(Jar::Session, &session, Duration::from_secs(3600));
            let set_cookie = set_cookie.to_str().unwrap();
            set_cookie.split(';').next().unwrap().to_owned()
        }

        pub fn request(address: &str, cookie: Option<&str>) -> Request {
            let mut request = Request::new(axum::body::Body::empty());
            if let Some(cookie) = cookie {
                request
                    .headers_mut()
                    .insert(COOKIE, cookie.parse().unwrap());
            }
            let peer = SocketAddr::new(address.parse().unwrap(), 40_000);
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        }
    }

    #[test]
    fn two_people_behind_one_address_have_their_own_allowances() {
        let (limiter, sessions) = signed_in::limiter("1/hour");
        let (ada, grace) = (
            signed_in::cookie(&sessions, "ada"),
            signed_in::cookie(&sessions, "grace"),
        );
        let from_proxy = |cookie| limiter.writer_of(&mut signed_in::request("10.0.0.1", cookie));

        assert_eq!(from_proxy(Some(&ada)), Writer::Subject("ada".into()));
        assert_eq!(limiter.check(from_proxy(Some(&ada))), Ok(()));
        assert_eq!(limiter.check(from_proxy(Some(&grace))), Ok(()));
        assert!(limiter.check(from_proxy(Some(&ada))).is_err());
        // Nobody signed in at that address: its own allowance, untouched
        // by the two people's writes.
        assert_eq!(from_proxy(None), Writer::Client(A));
        assert_eq!(limiter.check(from_proxy(None)), Ok(()));
        assert!(limiter.check(from_proxy(None)).is_err());
    }

    #[test]
    fn one_person_from_two_addresses_shares_one_allowance() {
        let (limiter, sessions) = signed_in::limiter("1/hour");
        let ada = signed_in::cookie(&sessions, "ada");

        let from_a = limiter.writer_of(&mut signed_in::request("10.0.0.1", Some(&ada)));
        let from_b = limiter.writer_of(&mut signed_in::request("10.0.0.2", Some(&ada)));

        assert_eq!(from_a, from_b);
        assert_eq!(limiter.check(from_a), Ok(()));
        assert!(limiter.check(from_b).is_err());
    }

    #[test]
    fn a_cookie_that_does_not_open_counts_against_the_address() {
        let (keyed, sessions) = signed_in::limiter("1/hour");
        let ada = signed_in::cookie(&sessions, "ada");
        let (name, value) = ada.split_once('=').unwrap();
        // One base64 character changed: the sealed value no longer decrypts.
        let flipped = if value.as_bytes()[10] == b'A' {
            "B"
        } else {
            "A"
        };
        let altered = format!("{name}={}{flipped}{}", &value[..10], &value[11..]);
        let other_key = signed_in::cookie(
            &SessionCookies::new(&crate::write_marker::CookieKey::random(), false),
            "mallory",
        );
        for cookie in [altered, other_key, format!("{name}=made-up")] {
            assert_eq!(
                keyed.writer_of(&mut signed_in::request("10.0.0.1", Some(&cookie))),
                Writer::Client(A),
                "{cookie}"
            );
        }
        // Without sign-in (`AUTH=off`) a real session cookie is no person.
        let (anonymous, _clock) = limiter("1/hour");
        assert_eq!(
            anonymous.writer_of(&mut signed_in::request("10.0.0.1", Some(&ada))),
            Writer::Client(A)
        );
    }

    #[test]
    fn limits_parse_and_print() {
        let limit: RateLimit = "300/minute".parse().unwrap();
        assert_eq!(limit, RateLimit::DEFAULT);
        assert_eq!(limit.to_string(), "300/minute");
        assert_eq!(
            " 20 / s ".parse::<RateLimit>().unwrap().period,
            Duration::from_secs(1)
        );
        for bad in [
            "",
            "300",
            "0/minute",
            "-1/minute",
            "300/fortnight",
            "x/hour",
        ] {
            let err = bad.parse::<RateLimit>().unwrap_err();
            assert!(err.contains("expected `<count>/"), "{bad}: {err}");
        }
    }
}
