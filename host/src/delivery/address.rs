//! Which addresses deliveries may reach. Internal addresses (loopback, private, link-local,
//! cloud metadata, ...) are refused unless the operator allows them by CIDR, so a tenant
//! cannot make the router call into its own network. Checked when routes are applied and on
//! the resolved address at connect time.

use std::net::IpAddr;

use ipnet::IpNet;

/// The operator's allowances.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AddressPolicy {
    /// Every internal address allowed (`delivery.allow_private_destinations`).
    pub allow_all: bool,
    /// Internal ranges allowed (`delivery.allowed_cidrs`).
    pub allowed: Vec<IpNet>,
}

impl AddressPolicy {
    pub fn allowing(allowed: Vec<IpNet>) -> Self {
        Self { allow_all: false, allowed }
    }

    /// Whether a connection to `ip` may be made.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        !is_internal(ip) || self.allow_all || self.allowed.iter().any(|net| net.contains(&ip))
    }
}

/// IPv4-mapped IPv6 addresses as the IPv4 address they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Ranges that are not a public unicast host: loopback, private, link-local (incl. cloud
/// metadata), unspecified, CGNAT, IETF protocol assignments, benchmarking, documentation,
/// multicast, reserved; and in IPv6 unique-local, site-local, multicast, and every range that
/// embeds an IPv4 address a gateway would reach for us (IPv4-compatible, NAT64, 6to4).
const INTERNAL: &[&str] = &[
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
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/96",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "2002::/16",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
];

/// Whether `ip` is in one of the [`INTERNAL`] ranges (an IPv4-mapped IPv6 address counts as
/// the IPv4 address it is).
pub fn is_internal(ip: IpAddr) -> bool {
    static RANGES: std::sync::OnceLock<Vec<IpNet>> = std::sync::OnceLock::new();
    let ranges = RANGES.get_or_init(|| INTERNAL.iter().map(|r| r.parse().expect("valid CIDR")).collect());
    let ip = canonical(ip);
    ranges.iter().any(|net| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            // Ranges that embed an IPv4 address, and reserved ones.
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "::7f00:1",
            "fec0::1",
            "192.0.0.8",
            "198.18.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "ff02::1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1", "8.8.8.8"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn allowed_cidrs_open_exactly_their_ranges() {
        let policy = AddressPolicy::allowing(vec!["127.0.0.1/32".parse().unwrap(), "10.1.0.0/16".parse().unwrap()]);
        let permits = |ip: &str| policy.permits(ip.parse().unwrap());
        assert!(permits("127.0.0.1") && permits("::ffff:127.0.0.1") && permits("10.1.200.3"));
        assert!(!permits("127.0.0.2") && !permits("10.2.0.1") && !permits("169.254.169.254") && !permits("::1"));
        assert!(permits("93.184.216.34"), "public addresses need no allowance");
        assert!(AddressPolicy { allow_all: true, allowed: vec![] }.permits("169.254.169.254".parse().unwrap()));
        assert!(!AddressPolicy::default().permits("192.168.1.1".parse().unwrap()));
    }
}
