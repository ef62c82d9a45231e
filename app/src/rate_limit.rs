//! Per-client limits on writes: a client that posts faster than
//! `WRITE_RATE_LIMIT` gets 429 with `Retry-After`, and nothing is stored.
//!
//! The limiter is governor's GCRA (the generic cell rate algorithm): per
//! client it keeps one instant, the time at which its allowance would be
//! full again, so a burst of up to the whole allowance passes and then
//! requests are let through at the steady rate. Reads are never limited.
//! A client is an IPv4 address or an IPv6 /64 ([`crate::client`]).

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use axum::extract::Request;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::client::{Client, ClientIp};

/// Above this many remembered clients, those whose allowance is full again
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

/// The per-client allowances of one limit.
pub struct WriteLimiter<C: Clock = DefaultClock> {
    client_ip: ClientIp,
    allowances: RateLimiter<Client, DashMapStateStore<Client>, C, NoOpMiddleware<C::Instant>>,
}

impl WriteLimiter {
    pub fn new(limit: RateLimit, client_ip: ClientIp) -> Self {
        Self::with_clock(limit, client_ip, DefaultClock::default())
    }
}

impl<C: Clock> WriteLimiter<C> {
    fn with_clock(limit: RateLimit, client_ip: ClientIp, clock: C) -> Self {
        let interval = limit.period / limit.count.get();
        let quota = Quota::with_period(interval)
            .expect("a period of at least a second over a u32 count is not zero")
            .allow_burst(limit.count);
        Self {
            client_ip,
            allowances: RateLimiter::dashmap_with_clock(quota, clock),
        }
    }

    /// The client a request counts against.
    pub fn client_of(&self, request: &Request) -> Client {
        self.client_ip.of(request)
    }

    /// Takes one write from `client`'s allowance, or says how long until
    /// one is free.
    pub fn check(&self, client: Client) -> Result<(), Duration> {
        if self.allowances.len() > PRUNE_ABOVE {
            self.allowances.retain_recent();
        }
        self.allowances
            .check_key(&client)
            .map_err(|not_until| not_until.wait_time_from(self.allowances.clock().now()))
    }
}

impl<C: Clock> fmt::Debug for WriteLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteLimiter")
            .field("client_ip", &self.client_ip)
            .field("clients", &self.allowances.len())
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
            WriteLimiter::with_clock(limit.parse().unwrap(), ClientIp::Peer, clock.clone());
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
