//! The outbound HTTP client: no redirects (a 3xx is a failure, not an invitation), no
//! proxies from the environment, and unless the operator allows it, no connections to
//! loopback, private or link-local addresses, checked on the resolved addresses at connect
//! time so DNS cannot be used to sneak past the check made when routes were applied.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::address::AddressPolicy;

pub fn build(timeout: Duration, addresses: AddressPolicy) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("Switchyard/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(60));
    if !addresses.allow_all {
        builder = builder.dns_resolver(Arc::new(Guarded(addresses)));
    }
    builder.build().expect("static client configuration is valid")
}

/// Refuses a URL whose host is a literal internal address the policy does not allow
/// (literals bypass the resolver).
pub fn check_literal_host(url: &str, addresses: &AddressPolicy) -> Result<(), String> {
    let url = url::Url::parse(url).map_err(|e| e.to_string())?;
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    if addresses.permits(ip) { Ok(()) } else { Err(format!("refused: {ip} is an internal address")) }
}

/// A resolver that drops the addresses the policy refuses from every answer.
struct Guarded(AddressPolicy);

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = addrs.into_iter().filter(|a| policy.permits(a.ip())).collect();
            if public.is_empty() {
                return Err(format!("refused: {host} resolves only to internal addresses").into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_internal_hosts_are_refused_unless_allowed() {
        let none = AddressPolicy::default();
        let loopback = AddressPolicy::allowing(vec!["127.0.0.1/32".parse().unwrap()]);
        assert!(check_literal_host("http://127.0.0.1:8080/x", &none).is_err());
        assert!(check_literal_host("http://[::1]/x", &loopback).is_err());
        assert!(check_literal_host("http://127.0.0.1:8080/x", &loopback).is_ok());
        assert!(check_literal_host("https://example.com/x", &none).is_ok());
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused_at_connect_time() {
        let client = build(Duration::from_secs(2), AddressPolicy::allowing(vec!["10.0.0.0/8".parse().unwrap()]));
        let err = client.post("http://localhost:9/hook").send().await.unwrap_err();
        let chain = format!("{err:?}");
        assert!(chain.contains("internal addresses"), "{chain}");
        // What the tenant reads in its attempt log names no address the name resolved to.
        let shown = super::super::describe(&err.without_url());
        assert!(shown.contains("resolves only to internal addresses"), "{shown}");
        assert!(!shown.contains("127.0.0.1") && !shown.contains("::1"), "{shown}");
    }
}
