//! The outbound HTTP client: no redirects (a 3xx is a failure, not an invitation), no
//! proxies from the environment, and unless the operator allows it, no connections to
//! loopback, private or link-local addresses, checked on the resolved addresses at connect
//! time so DNS cannot be used to sneak past the check made when routes were applied.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::routes::is_internal;

pub fn build(timeout: Duration, allow_private: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("Switchyard/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(60));
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    builder.build().expect("static client configuration is valid")
}

/// Refuses a URL whose host is a literal internal address (literals bypass the resolver).
pub fn check_literal_host(url: &str, allow_private: bool) -> Result<(), String> {
    if allow_private {
        return Ok(());
    }
    let url = url::Url::parse(url).map_err(|e| e.to_string())?;
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    if is_internal(ip) { Err(format!("refused: {ip} is an internal address")) } else { Ok(()) }
}

/// A resolver that drops internal addresses from every answer.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = addrs.into_iter().filter(|a| !is_internal(a.ip())).collect();
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
        assert!(check_literal_host("http://127.0.0.1:8080/x", false).is_err());
        assert!(check_literal_host("http://[::1]/x", false).is_err());
        assert!(check_literal_host("http://127.0.0.1:8080/x", true).is_ok());
        assert!(check_literal_host("https://example.com/x", false).is_ok());
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused_at_connect_time() {
        let client = build(Duration::from_secs(2), false);
        let err = client.post("http://localhost:9/hook").send().await.unwrap_err();
        let chain = format!("{err:?}");
        assert!(chain.contains("internal addresses"), "{chain}");
    }
}
