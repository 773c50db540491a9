//! Which client addresses count as one client. A host on IPv6 is usually handed a whole
//! /64 and can pick any address in it, so counting each IPv6 address alone would let one
//! client rotate through 2^64 fresh counters; counting the /64 gives it one. IPv4 addresses
//! (also when they arrive IPv4-mapped on a dual-stack listener) count one by one.

use std::net::{IpAddr, Ipv6Addr};

/// The network `ip` stands for: an IPv4 address itself (IPv4-mapped IPv6 included), any
/// other IPv6 address its /64 (the lower 64 bits zeroed).
pub fn client_network(ip: IpAddr) -> IpAddr {
    match super::net::canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

/// The key a per-address throttle stored in the database counts under, from the address
/// as a request records it: `192.0.2.7` for IPv4, `2001:db8:1:2::/64` for IPv6. Text that
/// is not an address (the request context says `unknown` when there is no peer) is kept
/// as it is, so it still counts as one client.
pub fn throttle_key(ip: &str) -> String {
    match ip.parse::<IpAddr>().map(client_network) {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => format!("{v6}/64"),
        Err(_) => ip.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        assert_eq!(throttle_key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(
            throttle_key("2001:db8:1:2:ffff:eeee:dddd:cccc"),
            "2001:db8:1:2::/64"
        );
        assert_eq!(throttle_key("2001:db8:1:3::1"), "2001:db8:1:3::/64");
        assert_eq!(throttle_key("::1"), "::/64");
    }

    #[test]
    fn ipv4_addresses_count_one_by_one_also_when_mapped() {
        assert_eq!(throttle_key("192.0.2.7"), "192.0.2.7");
        assert_eq!(throttle_key("192.0.2.8"), "192.0.2.8");
        assert_eq!(throttle_key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(
            client_network("::ffff:192.0.2.7".parse().unwrap()),
            "192.0.2.7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn text_that_is_not_an_address_is_its_own_key() {
        assert_eq!(throttle_key("unknown"), "unknown");
        assert_eq!(throttle_key(""), "");
    }
}
