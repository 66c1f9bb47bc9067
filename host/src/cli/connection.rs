//! Which router to talk to and which token to show it: flags and environment first, then the
//! CLI config file, then defaults, so a one-off override never needs the file edited.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Toml};
use serde::Deserialize;

use super::GlobalArgs;
use super::client::{CliError, Client, Result};

pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// Where `switchyard serve` keeps the token it generates, relative to where it was started.
const LOCAL_ADMIN_TOKEN: &str = "switchyard-data/admin-token";

/// The CLI config file (`cli.toml`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    url: Option<String>,
    token: Option<String>,
}

pub fn connect(global: &GlobalArgs) -> Result<Client> {
    let file = load(global.cli_config.as_deref())?;
    let url = given(&global.url).or(given(&file.url)).unwrap_or_else(|| DEFAULT_URL.to_owned());
    let token = given(&global.token).or(given(&file.token)).or_else(|| local_admin_token().filter(|_| is_local(&url)));
    Client::new(&url, token)
}

/// Whether `url` names a router on this machine (a loopback host). The token that
/// `switchyard serve` generated in the current directory is only ever sent there: a `--url`
/// pointing elsewhere gets no token unless one is given for it.
fn is_local(url: &str) -> bool {
    let Ok(url) = url::Url::parse(url) else { return false };
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Empty values (`SWITCHYARD_TOKEN=`) count as not given.
fn given(value: &Option<String>) -> Option<String> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
}

/// An explicitly named file must exist; the default one is optional.
fn load(explicit: Option<&Path>) -> Result<FileConfig> {
    let path = match explicit {
        Some(path) if !path.is_file() => {
            return Err(CliError::Usage(format!("CLI config file {} does not exist", path.display())));
        }
        Some(path) => path.to_owned(),
        None => match default_path() {
            Some(path) if path.is_file() => path,
            _ => return Ok(FileConfig::default()),
        },
    };
    Figment::from(Toml::file_exact(&path))
        .extract()
        .map_err(|e| CliError::Local(format!("CLI config file {}: {e}", path.display())))
}

/// `$XDG_CONFIG_HOME/switchyard/cli.toml`, else `~/.config/switchyard/cli.toml`.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("switchyard").join("cli.toml"))
}

/// Convenience for a router started in this directory with a generated token.
fn local_admin_token() -> Option<String> {
    let token = std::fs::read_to_string(LOCAL_ADMIN_TOKEN).ok()?;
    Some(token.trim().to_owned()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::is_local;

    #[test]
    fn the_generated_admin_token_goes_to_loopback_routers_only() {
        for url in ["http://127.0.0.1:8080", "http://localhost:8080/", "http://[::1]:8080", "http://127.9.9.9"] {
            assert!(is_local(url), "{url}");
        }
        for url in ["https://router.example.com", "http://10.0.0.5:8080", "http://localhost.evil.com", "not a url"] {
            assert!(!is_local(url), "{url}");
        }
    }
}
