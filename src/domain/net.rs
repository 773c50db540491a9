//! Address ranges for `trusted_proxies`, compared canonically.
//!
//! A dual-stack listener (`[::]`) sees an IPv4 peer as the IPv4-mapped IPv6 address
//! `::ffff:a.b.c.d`. Compared as written, that never equals a configured `a.b.c.d`, so a
//! proxy would never be recognised and every client would share the proxy's address (one
//! rate-limit bucket, one password throttle). Both sides are therefore reduced to their
//! canonical form first: mapped addresses become plain IPv4, in peers and in ranges alike.
//! CIDR parsing and matching is `ipnet`'s; this module only adds bare addresses and the
//! canonical form.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Deserializer};

/// One entry of `trusted_proxies`: a CIDR range (`10.0.0.0/8`, `fd00::/8`, `::1/128`) or a
/// bare address (`127.0.0.1`, a range of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange(IpNet);

/// The canonical form of an address: IPv4-mapped IPv6 (`::ffff:a.b.c.d`) as plain IPv4,
/// anything else unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// Address ranges an outbound request (a webhook) must not reach unless the operator
/// allows it: this host, private and shared networks, link-local (cloud metadata
/// services live there), and ranges that route nowhere public.
const NOT_PUBLIC: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/3",
    "::/128",
    "::1/128",
    "64:ff9b:1::/48",
    "100::/64",
    "2001:db8::/32",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

/// Whether `ip` is a public unicast address (an IPv4-mapped or NAT64-embedded IPv4
/// address is judged as that IPv4 address).
pub fn is_public(ip: IpAddr) -> bool {
    let ip = match canonical(ip) {
        IpAddr::V6(v6) if v6.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] => {
            let [.., a, b] = v6.segments();
            IpAddr::V4(std::net::Ipv4Addr::from(
                (u32::from(a) << 16) | u32::from(b),
            ))
        }
        other => other,
    };
    !NOT_PUBLIC.iter().any(|range| {
        range
            .parse::<IpNet>()
            .is_ok_and(|net: IpNet| net.contains(&ip))
    })
}

impl IpRange {
    /// Whether `ip` (in any form) is inside the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&canonical(ip))
    }

    /// Whether any range of `ranges` holds `ip`.
    pub fn any_contains(ranges: &[IpRange], ip: IpAddr) -> bool {
        ranges.iter().any(|range| range.contains(ip))
    }

    /// The range with an IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) rewritten as
    /// the IPv4 network it denotes (`10.0.0.0/8`), so it matches canonical addresses.
    fn canonicalise(net: IpNet) -> IpNet {
        if let IpNet::V6(v6) = net
            && let Some(v4) = v6.network().to_ipv4_mapped()
            && v6.prefix_len() >= 96
            && let Ok(mapped) = Ipv4Net::new(v4, v6.prefix_len() - 96)
        {
            return IpNet::V4(mapped);
        }
        net
    }
}

impl From<IpAddr> for IpRange {
    fn from(ip: IpAddr) -> Self {
        IpRange(Self::canonicalise(IpNet::from(ip)))
    }
}

/// Why a `trusted_proxies` entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is neither an IP address nor a CIDR range such as 10.0.0.0/8 or fd00::/8")]
pub struct InvalidIpRange(String);

impl FromStr for IpRange {
    type Err = InvalidIpRange;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(ip.into());
        }
        let net: IpNet = text
            .parse()
            .map_err(|_| InvalidIpRange(text.chars().take(64).collect()))?;
        // `10.1.2.3/8` means the range around it; keep the network, not the host bits.
        let net = match net {
            IpNet::V4(v4) => IpNet::V4(v4.trunc()),
            IpNet::V6(v6) => IpNet::V6(Ipv6Net::trunc(&v6)),
        };
        Ok(IpRange(Self::canonicalise(net)))
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for IpRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_public_unicast_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!super::is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "1.1.1.1",
            "93.184.216.34",
            "2606:4700:4700::1111",
            "64:ff9b::101:101",
        ] {
            assert!(super::is_public(public.parse().unwrap()), "{public}");
        }
    }

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn range(s: &str) -> IpRange {
        s.parse().unwrap()
    }

    #[test]
    fn bare_addresses_match_themselves_in_either_form() {
        let loopback = range("127.0.0.1");
        assert!(loopback.contains(ip("127.0.0.1")));
        assert!(loopback.contains(ip("::ffff:127.0.0.1")));
        assert!(!loopback.contains(ip("127.0.0.2")));
        // A mapped address in the configuration means the IPv4 address too.
        let mapped = range("::ffff:10.0.0.1");
        assert!(mapped.contains(ip("10.0.0.1")));
        assert!(mapped.contains(ip("::ffff:10.0.0.1")));
        assert_eq!(mapped.to_string(), "10.0.0.1/32");
    }

    #[test]
    fn cidr_ranges_match_their_members() {
        let private = range("10.0.0.0/8");
        assert!(private.contains(ip("10.255.0.1")));
        assert!(private.contains(ip("::ffff:10.1.2.3")));
        assert!(!private.contains(ip("11.0.0.1")));
        let v6 = range("::1/128");
        assert!(v6.contains(ip("::1")));
        assert!(!v6.contains(ip("::2")));
        let ula = range("fd00::/8");
        assert!(ula.contains(ip("fd12:3456::1")));
        assert!(!ula.contains(ip("fe80::1")));
        // Host bits are dropped: the range around the address.
        assert_eq!(range("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert!(range("::ffff:10.0.0.0/104").contains(ip("10.9.9.9")));
        assert!(range(" 192.0.2.0/24 ").contains(ip("192.0.2.77")));
    }

    #[test]
    fn anything_else_is_refused_with_its_text() {
        for bad in [
            "",
            "localhost",
            "10.0.0.0/33",
            "::1/129",
            "1.2.3.4:80",
            "10.0.0.0/",
        ] {
            let err = bad.parse::<IpRange>().unwrap_err();
            assert!(err.to_string().contains("CIDR"), "{bad}: {err}");
        }
    }
}
