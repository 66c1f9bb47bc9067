//! The route document a tenant applies as a whole, and its validation. Validation collects
//! every problem with its path, so one round trip shows the tenant all that is wrong.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use url::{Host, Url};

use crate::delivery::address::AddressPolicy;
use crate::signing::Secret;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteDocument {
    pub routes: Vec<RouteSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// Unique within the document; shown in event and delivery records.
    pub name: String,
    #[serde(default, rename = "match")]
    pub matcher: MatchSpec,
    /// Plugins run in order; each sees the previous one's outputs. Empty forwards events as-is.
    #[serde(default)]
    pub pipeline: Vec<StepSpec>,
    pub destinations: Vec<DestinationSpec>,
}

/// Globs over the source name and event type (`*` any run of characters, `?` one). An empty
/// list matches everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    #[serde(default)]
    pub sources: Vec<String>,
    #[serde(default)]
    pub types: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// `name`, `name@3` or `name@latest`.
    pub plugin: String,
    /// A pinned version (the same as `name@3`); when omitted, or `@latest`, the latest version
    /// at apply time is pinned, so a stored route version always means the same code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Values may be any JSON scalar; plugins receive them as strings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationSpec {
    pub url: String,
    /// Standard Webhooks signing secret, `whsec_<base64>`. Changing it starts a rotation:
    /// the old secret keeps signing too for `delivery.secret_rotation_grace`.
    pub secret: String,
    #[serde(default)]
    pub format: BodyFormat,
    /// Delays before each try (`["0s", "1m", "1h"]`), replacing the router's schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_schedule: Option<Vec<String>>,
    /// Per-attempt timeout (`"5s"`), replacing `delivery.timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Attempts in flight at once, at most `delivery.max_in_flight_per_destination`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
}

impl DestinationSpec {
    fn same_settings(&self, other: &DestinationSpec) -> bool {
        (&self.secret, &self.retry_schedule, &self.timeout, self.max_in_flight)
            == (&other.secret, &other.retry_schedule, &other.timeout, other.max_in_flight)
    }
}

/// Longest delay a destination's schedule may ask for between tries.
const MAX_RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);
/// Longest per-attempt timeout a destination may ask for.
pub const MAX_DESTINATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

impl DestinationSpec {
    /// The schedule in milliseconds, if the destination has its own.
    pub fn schedule_ms(&self) -> Result<Option<Vec<u64>>, String> {
        let Some(list) = &self.retry_schedule else { return Ok(None) };
        if list.is_empty() || list.len() > 50 {
            return Err("needs 1 to 50 delays".into());
        }
        list.iter()
            .map(|d| match humantime::parse_duration(d) {
                Ok(d) if d <= MAX_RETRY_DELAY => Ok(d.as_millis() as u64),
                Ok(_) => Err(format!("{d:?} is longer than 7 days")),
                Err(e) => Err(format!("{d:?} is not a duration: {e}")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// The per-attempt timeout in milliseconds, if the destination has its own.
    pub fn timeout_ms(&self) -> Result<Option<u64>, String> {
        let Some(t) = &self.timeout else { return Ok(None) };
        match humantime::parse_duration(t) {
            Ok(d) if !d.is_zero() && d <= MAX_DESTINATION_TIMEOUT => Ok(Some(d.as_millis() as u64)),
            Ok(_) => Err("must be more than 0 and at most 5 minutes".into()),
            Err(e) => Err(format!("{t:?} is not a duration: {e}")),
        }
    }
}

/// What a delivery's body is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    /// The event's data, as the last plugin left it.
    #[default]
    Data,
    /// A CloudEvents 1.0 structured JSON document.
    Cloudevents,
}

impl BodyFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Data => "application/json",
            BodyFormat::Cloudevents => "application/cloudevents+json",
        }
    }
}

/// A problem at a path in the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl StepSpec {
    /// The plugin name and the version asked for (None: latest), from `plugin` and `version`.
    pub fn reference(&self) -> Result<(&str, Option<i64>), String> {
        let (name, at) = match self.plugin.split_once('@') {
            Some((name, v)) => (name, Some(v)),
            None => (self.plugin.as_str(), None),
        };
        if !valid_name(name) {
            return Err(format!("plugin name: {NAME_RULE}"));
        }
        let from_at = match at {
            None | Some("latest") => None,
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n >= 1 => Some(n),
                _ => return Err(format!("{v:?} is not a version: use name@<number from 1> or name@latest")),
            },
        };
        match (from_at, self.version) {
            (_, Some(v)) if v < 1 => Err("versions start at 1".into()),
            (Some(a), Some(b)) if a != b => Err(format!("names version {a} with '@' but version {b} in \"version\"")),
            (a, b) => Ok((name, a.or(b))),
        }
    }
}

/// Names tenants give things (tenants, sources, plugins, routes): URL-safe and short.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

pub const NAME_RULE: &str = "1-64 characters: letters, digits, '-', '_', '.', starting with a letter or digit";

impl RouteDocument {
    /// Checks everything that needs no I/O; destination addresses against `addresses`.
    pub fn validate(&self, addresses: &AddressPolicy) -> Result<(), Vec<Problem>> {
        let mut problems = Vec::new();
        let mut names = HashSet::new();
        let mut seen: std::collections::HashMap<&str, &DestinationSpec> = std::collections::HashMap::new();
        let mut problem = |path: String, message: String| problems.push(Problem { path, message });
        for (i, route) in self.routes.iter().enumerate() {
            let at = format!("routes[{i}]");
            if !valid_name(&route.name) {
                problem(format!("{at}.name"), NAME_RULE.into());
            } else if !names.insert(route.name.as_str()) {
                problem(format!("{at}.name"), format!("duplicate route name {:?}", route.name));
            }
            for (field, globs) in [("sources", &route.matcher.sources), ("types", &route.matcher.types)] {
                for (j, g) in globs.iter().enumerate() {
                    if g.trim().is_empty() {
                        problem(format!("{at}.match.{field}[{j}]"), "empty pattern".into());
                    }
                }
            }
            for (j, step) in route.pipeline.iter().enumerate() {
                if let Err(m) = step.reference() {
                    problem(format!("{at}.pipeline[{j}].plugin"), m);
                }
                for (k, v) in &step.config {
                    if v.is_object() || v.is_array() {
                        problem(format!("{at}.pipeline[{j}].config.{k}"), "must be a string, number or boolean".into());
                    }
                }
            }
            if route.destinations.is_empty() {
                problem(format!("{at}.destinations"), "at least one destination is required".into());
            }
            for (j, d) in route.destinations.iter().enumerate() {
                if let Err(m) = check_url(&d.url, addresses) {
                    problem(format!("{at}.destinations[{j}].url"), m);
                }
                if let Err(m) = d.schedule_ms() {
                    problem(format!("{at}.destinations[{j}].retry_schedule"), m);
                }
                if let Err(m) = d.timeout_ms() {
                    problem(format!("{at}.destinations[{j}].timeout"), m);
                }
                if d.max_in_flight == Some(0) {
                    problem(format!("{at}.destinations[{j}].max_in_flight"), "must be at least 1".into());
                }
                // One URL is one destination: its secret and settings must agree everywhere.
                match seen.get(d.url.as_str()) {
                    Some(first) if !first.same_settings(d) => problem(
                        format!("{at}.destinations[{j}]"),
                        format!("{} appears elsewhere with another secret or settings", d.url),
                    ),
                    Some(_) => {}
                    None => {
                        seen.insert(d.url.as_str(), d);
                    }
                }
                if Secret::parse(&d.secret).is_err() || !d.secret.starts_with("whsec_") {
                    problem(
                        format!("{at}.destinations[{j}].secret"),
                        "must be whsec_<base64 of at least 16 bytes>".into(),
                    );
                }
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }
}

/// A destination URL must be absolute http(s) and not obviously internal unless the
/// operator allows the address. (The delivery client checks resolved addresses again at
/// connect time.)
fn check_url(raw: &str, addresses: &AddressPolicy) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials; use the signing secret".into());
    }
    let refused = match url.host() {
        None => return Err("has no host".into()),
        // localhost is loopback whatever DNS says.
        Some(Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost") => {
            !addresses.permits(IpAddr::from([127, 0, 0, 1]))
        }
        Some(Host::Domain(_)) => false,
        Some(Host::Ipv4(ip)) => !addresses.permits(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => !addresses.permits(IpAddr::V6(ip)),
    };
    if refused {
        return Err(
            "points at a loopback, private or link-local address the operator has not allowed (delivery.allowed_cidrs)"
                .into(),
        );
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(json: serde_json::Value) -> RouteDocument {
        serde_json::from_value(json).unwrap()
    }

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn a_good_document_passes() {
        let d = doc(serde_json::json!({"routes": [{
            "name": "calls", "match": {"sources": ["calls"], "types": ["call.*"]},
            "pipeline": [{"plugin": "call-outcome-tagger", "config": {"drop_outcomes": "spam", "n": 3}}],
            "destinations": [{"url": "https://example.com/hook", "secret": SECRET, "format": "cloudevents"}]
        }]}));
        d.validate(&AddressPolicy::default()).unwrap();
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let d = doc(serde_json::json!({"routes": [
            {"name": "a", "destinations": [{"url": "ftp://x", "secret": "nope"}],
             "pipeline": [{"plugin": "bad name", "version": 0, "config": {"k": {"x": 1}}}]},
            {"name": "a", "destinations": []},
            {"name": "b", "match": {"types": [""]}, "destinations": [{"url": "http://127.0.0.1:9/h", "secret": SECRET}]}
        ]}));
        let problems = d.validate(&AddressPolicy::default()).unwrap_err();
        let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "routes[0].pipeline[0].plugin",
                "routes[0].pipeline[0].config.k",
                "routes[0].destinations[0].url",
                "routes[0].destinations[0].secret",
                "routes[1].name",
                "routes[1].destinations",
                "routes[2].match.types[0]",
                "routes[2].destinations[0].url",
            ]
        );
        // Loopback is fine once the operator allows it.
        let only_b = RouteDocument { routes: vec![d.routes[2].clone()] };
        let loopback = AddressPolicy::allowing(vec!["127.0.0.1/32".parse().unwrap()]);
        assert_eq!(only_b.validate(&loopback).unwrap_err().len(), 1);
    }

    #[test]
    fn plugin_references() {
        let step =
            |plugin: &str, version: Option<i64>| StepSpec { plugin: plugin.into(), version, config: BTreeMap::new() };
        assert_eq!(step("tagger", None).reference(), Ok(("tagger", None)));
        assert_eq!(step("tagger@latest", None).reference(), Ok(("tagger", None)));
        assert_eq!(step("tagger@3", None).reference(), Ok(("tagger", Some(3))));
        assert_eq!(step("tagger", Some(2)).reference(), Ok(("tagger", Some(2))));
        assert_eq!(step("tagger@2", Some(2)).reference(), Ok(("tagger", Some(2))));
        for (plugin, version) in
            [("tagger@0", None), ("tagger@x", None), ("tagger@2", Some(3)), ("a b", None), ("t", Some(0))]
        {
            assert!(step(plugin, version).reference().is_err(), "{plugin} {version:?}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let r: Result<RouteDocument, _> =
            serde_json::from_value(serde_json::json!({"routes": [{"name": "a", "destinations": [], "filter": 1}]}));
        assert!(r.unwrap_err().to_string().contains("filter"));
    }
}
