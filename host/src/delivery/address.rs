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

/// Loopback, private, link-local (incl. cloud metadata), unspecified, CGNAT and unique-local.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || o[0] == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback() || v6.is_unspecified() || (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfe80
        }
    }
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
