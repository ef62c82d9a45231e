//! Who a request comes from: the address the write limit and the caps on
//! live streams count against.
//!
//! A client is an IPv4 address or an IPv6 /64: one IPv6 subscriber is
//! usually given a whole /64, so keying on full addresses would give each
//! client 2^64 allowances.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderName};

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
    pub fn of(&self, request: &Request) -> Client {
        let peer = || {
            request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
        };
        let address = match self {
            ClientIp::Peer => peer(),
            ClientIp::Header(name) => from_header(request.headers(), name).unwrap_or_else(peer),
        };
        Client::from(address)
    }
}

/// Whom a write counts against: an IPv4 address, or the /64 network an
/// IPv6 address is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    V4(Ipv4Addr),
    /// The first 64 bits of the address.
    V6Network(u64),
}

impl From<IpAddr> for Client {
    fn from(address: IpAddr) -> Self {
        match address {
            IpAddr::V4(v4) => Client::V4(v4),
            // An IPv4 client seen through a dual-stack socket is that client.
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client::V4(v4),
                None => Client::V6Network((v6.to_bits() >> 64) as u64),
            },
        }
    }
}

fn from_header(headers: &HeaderMap, name: &HeaderName) -> Option<IpAddr> {
    let last_line = headers.get_all(name).iter().next_back()?;
    let last = last_line.to_str().ok()?.rsplit(',').next()?;
    last.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn an_ipv6_client_is_its_slash_64_and_a_mapped_ipv4_client_itself() {
        let address = |text: &str| Client::from(text.parse::<IpAddr>().unwrap());
        assert_eq!(address("2001:db8:1:2::1"), address("2001:db8:1:2:ffff::9"));
        assert_ne!(address("2001:db8:1:2::1"), address("2001:db8:1:3::1"));
        assert_eq!(
            address("2001:db8:1:2::1"),
            Client::V6Network(0x2001_0db8_0001_0002)
        );
        assert_eq!(
            Client::from(IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped())),
            Client::V4(Ipv4Addr::new(192, 0, 2, 7))
        );
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
