//! Who a request comes from: the TCP peer, or, when the peer is one of the operator's
//! trusted proxies (`server.trusted_proxies`), the client that proxy forwarded for.
//!
//! `X-Forwarded-For` is believed only from trusted proxies, and only as far as the chain of
//! trusted hops goes: it is read from the right, and the first address that is not a trusted
//! proxy is the client. Anything a client writes into the header itself sits further left
//! and is never reached, so a client cannot pose as another address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap};
use ipnet::IpNet;

/// The proxies whose `X-Forwarded-For` is believed. Empty (the default): none.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Trusts the proxies in `ranges`.
    pub fn new(ranges: Vec<IpNet>) -> Self {
        Self(ranges)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request with these headers from `peer`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect::<Vec<_>>();
        for hop in hops.into_iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                // A hop a trusted proxy would not have written: stop at the last one believed.
                break;
            };
            client = ip.to_canonical();
            if !self.trusts(client) {
                break;
            }
        }
        client
    }

    /// The client of a request, from its connection and headers.
    pub fn client_of(&self, headers: &HeaderMap, extensions: &Extensions) -> Option<IpAddr> {
        extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| self.client(c.0.ip(), headers))
    }
}

/// One `X-Forwarded-For` entry: an address, possibly bracketed or with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Ok(addr) = hop.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("10.0.0.5"), &headers(&["203.0.113.9"])),
            ip("10.0.0.5")
        );
        let ingress = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        assert_eq!(
            ingress.client(ip("10.0.0.5"), &headers(&["203.0.113.9"])),
            ip("203.0.113.9")
        );
        // Not from the ingress: the header is the caller's own writing.
        assert_eq!(
            ingress.client(ip("198.51.100.1"), &headers(&["203.0.113.9"])),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn a_client_cannot_prepend_its_way_to_another_address() {
        let ingress = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        // The client sent `X-Forwarded-For: 192.0.2.1`; the ingress appended the real one.
        let h = headers(&["192.0.2.1, 203.0.113.9"]);
        assert_eq!(ingress.client(ip("10.1.2.3"), &h), ip("203.0.113.9"));
        // Two trusted hops, then the client.
        let h = headers(&["192.0.2.1", "203.0.113.9, 10.9.9.9"]);
        assert_eq!(ingress.client(ip("10.1.2.3"), &h), ip("203.0.113.9"));
        // Garbage where the proxy's entry should be: the proxy is the client.
        let h = headers(&["not-an-address"]);
        assert_eq!(ingress.client(ip("10.1.2.3"), &h), ip("10.1.2.3"));
        // No header at all.
        assert_eq!(
            ingress.client(ip("10.1.2.3"), &HeaderMap::new()),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn hops_may_carry_ports_and_brackets() {
        let ingress = TrustedProxies::new(vec!["::1/128".parse().unwrap()]);
        for hop in ["2001:db8::7", "[2001:db8::7]", "[2001:db8::7]:4711"] {
            assert_eq!(
                ingress.client(ip("::1"), &headers(&[hop])),
                ip("2001:db8::7")
            );
        }
        assert_eq!(
            ingress.client(ip("::1"), &headers(&["203.0.113.9:80"])),
            ip("203.0.113.9")
        );
    }
}
