//! Per-client limits on writes: a client that posts faster than
//! `WRITE_RATE_LIMIT` gets 429 with `Retry-After`, and nothing is stored.
//!
//! The limiter is GCRA (the generic cell rate algorithm): per client it
//! keeps one instant, the time at which its allowance would be full again,
//! so a burst of up to the whole allowance passes and then requests are let
//! through at the steady rate. Reads are never limited.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderName};

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

/// Where a client's address comes from.
#[derive(Debug, Clone)]
pub enum ClientIp {
    /// The TCP peer: right when clients connect directly.
    Peer,
    /// A header a trusted proxy in front sets (`X-Real-IP`), or appends to
    /// (`X-Forwarded-For`: its last address is the one the proxy saw).
    /// Falls back to the peer when the header is missing or malformed.
    Header(HeaderName),
}

impl ClientIp {
    fn of(&self, request: &Request) -> IpAddr {
        let peer = || {
            request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
        };
        match self {
            ClientIp::Peer => peer(),
            ClientIp::Header(name) => from_header(request.headers(), name).unwrap_or_else(peer),
        }
    }
}

fn from_header(headers: &HeaderMap, name: &HeaderName) -> Option<IpAddr> {
    let last_line = headers.get_all(name).iter().next_back()?;
    let last = last_line.to_str().ok()?.rsplit(',').next()?;
    last.trim().parse().ok()
}

/// The per-client state of one limit.
#[derive(Debug)]
pub struct WriteLimiter {
    limit: RateLimit,
    client_ip: ClientIp,
    /// Per client, when its allowance is full again ("theoretical arrival
    /// time"). One lock: it is held for a map lookup, far shorter than the
    /// write it guards.
    full_again: Mutex<HashMap<IpAddr, Instant>>,
}

impl WriteLimiter {
    pub fn new(limit: RateLimit, client_ip: ClientIp) -> Self {
        Self {
            limit,
            client_ip,
            full_again: Mutex::new(HashMap::new()),
        }
    }

    /// The client a request counts against.
    pub fn client_of(&self, request: &Request) -> IpAddr {
        self.client_ip.of(request)
    }

    /// Takes one write from `client`'s allowance, or says how long until
    /// one is free.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let interval = self.limit.period / self.limit.count.get();
        let tolerance = self.limit.period - interval;
        let mut full_again = self.full_again.lock().unwrap_or_else(|e| e.into_inner());
        if full_again.len() > PRUNE_ABOVE {
            full_again.retain(|_, at| *at > now);
        }
        let at = full_again.get(&client).copied().unwrap_or(now).max(now);
        let wait = at.saturating_duration_since(now);
        if wait > tolerance {
            return Err(wait - tolerance);
        }
        full_again.insert(client, at + interval);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn limiter(limit: &str) -> WriteLimiter {
        WriteLimiter::new(limit.parse().unwrap(), ClientIp::Peer)
    }

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn a_burst_of_the_whole_allowance_passes_then_the_steady_rate() {
        let limiter = limiter("6/minute");
        let start = Instant::now();
        for _ in 0..6 {
            assert_eq!(limiter.check(A, start), Ok(()));
        }
        let wait = limiter.check(A, start).unwrap_err();
        assert_eq!(wait, Duration::from_secs(10));
        // Another client has its own allowance.
        assert_eq!(limiter.check(B, start), Ok(()));
        // One interval later, exactly one more write is free.
        let later = start + Duration::from_secs(10);
        assert_eq!(limiter.check(A, later), Ok(()));
        assert!(limiter.check(A, later).is_err());
        // After a whole period the full burst is back.
        let rested = later + Duration::from_secs(60);
        for _ in 0..6 {
            assert_eq!(limiter.check(A, rested), Ok(()));
        }
        assert!(limiter.check(A, rested).is_err());
    }

    #[test]
    fn refused_requests_do_not_use_up_the_allowance() {
        let limiter = limiter("1/second");
        let start = Instant::now();
        assert_eq!(limiter.check(A, start), Ok(()));
        for _ in 0..100 {
            assert!(limiter.check(A, start).is_err());
        }
        assert_eq!(limiter.check(A, start + Duration::from_secs(1)), Ok(()));
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

    #[test]
    fn the_client_is_the_last_forwarded_address() {
        let name = HeaderName::from_static("x-forwarded-for");
        let mut headers = HeaderMap::new();
        assert_eq!(from_header(&headers, &name), None);
        headers.append(&name, HeaderValue::from_static("1.2.3.4, 10.0.0.9"));
        headers.append(&name, HeaderValue::from_static("6.6.6.6, 192.0.2.7"));
        assert_eq!(from_header(&headers, &name), "192.0.2.7".parse().ok());
        headers.insert(&name, HeaderValue::from_static("not an address"));
        assert_eq!(from_header(&headers, &name), None);
    }
}
