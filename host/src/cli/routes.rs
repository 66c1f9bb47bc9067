//! `switchyard route ...`: a tenant's route document, applied whole and versioned.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::{Value, json};

use super::client::{Body, CliError, Client, Result, decode};
use super::output::{Output, outln, pretty, print_rows, show, time};
use switchyard::api::types::{RouteDiff, RouteVersion, RouteVersionList, RoutesApplied};

pub const EXAMPLES: &str = "\
Examples:
  switchyard route apply acme routes.toml         # or routes.json; prints the new version
  switchyard route list acme                      # versions, * marks the live one
  switchyard route diff acme 3                    # version 3 against the live version
  switchyard route rollback acme 3                # makes 3's document live again, as a new version";

#[derive(Subcommand, Debug)]
pub enum RouteCommand {
    /// Apply a route document (.json or .toml) as the tenant's new live version
    #[command(after_help = "Example:\n  switchyard route apply acme routes.toml")]
    Apply {
        tenant: String,
        /// The whole document; its format comes from the extension (.json or .toml)
        file: PathBuf,
    },
    /// List the tenant's route versions
    List { tenant: String },
    /// Show the live document, or one version of it
    Show { tenant: String, version: Option<u32> },
    /// Show what changed between two versions (a unified diff)
    Diff {
        tenant: String,
        from: u32,
        /// [default: the live version]
        to: Option<u32>,
    },
    /// Make an earlier version's document live again (recorded as a new version)
    Rollback { tenant: String, version: u32 },
}

pub async fn run(client: &Client, out: Output, cmd: RouteCommand) -> Result<()> {
    match cmd {
        RouteCommand::Apply { tenant, file } => {
            let content_type = content_type(&file)?;
            let bytes =
                std::fs::read(&file).map_err(|e| CliError::Local(format!("reading {}: {e}", file.display())))?;
            let v = client.put(&["v1", "tenants", &tenant, "routes"], Body::Raw { bytes, content_type }).await?;
            if !out.json(&v) {
                let applied: RoutesApplied = decode(v)?;
                let (version, routes) = (applied.version, applied.document.routes.len());
                if applied.unchanged {
                    outln!("Routes of {tenant} unchanged: version {version} is live");
                } else {
                    outln!("Applied routes of {tenant}: version {version} is live ({routes} routes)");
                }
            }
        }
        RouteCommand::List { tenant } => {
            let v = client.get(&["v1", "tenants", &tenant, "routes", "versions"]).await?;
            if !out.json(&v) {
                let list: RouteVersionList = decode(v)?;
                if list.versions.is_empty() {
                    outln!("Tenant {tenant} has no routes yet; apply some with `switchyard route apply`.");
                    return Ok(());
                }
                let rows = list
                    .versions
                    .iter()
                    .map(|r| {
                        vec![
                            show(&r.version),
                            if Some(r.version) == list.live { "*".into() } else { String::new() },
                            show(&r.routes),
                            show(&r.origin),
                            time(r.created_at),
                        ]
                    })
                    .collect();
                print_rows(&["VERSION", "LIVE", "ROUTES", "ORIGIN", "CREATED"], rows);
            }
        }
        RouteCommand::Show { tenant, version } => {
            let v = match version {
                Some(n) => client.get(&["v1", "tenants", &tenant, "routes", "versions", &n.to_string()]).await?,
                None => client.get(&["v1", "tenants", &tenant, "routes"]).await?,
            };
            if !out.json(&v) {
                let shown: RouteVersion = decode(v)?;
                outln!("# version {}, applied {}", shown.version, shown.created_at);
                outln!("{}", pretty(&serde_json::to_value(&shown.document).unwrap_or_default()));
            }
        }
        RouteCommand::Diff { tenant, from, to } => {
            let mut query = vec![("from", from.to_string())];
            query.extend(to.map(|to| ("to", to.to_string())));
            let v = client.get_query(&["v1", "tenants", &tenant, "routes", "diff"], &query).await?;
            if !out.json(&v) {
                let d: RouteDiff = decode(v)?;
                if d.identical || d.diff.is_empty() {
                    outln!("Versions {} and {} have the same document.", d.from, d.to);
                } else {
                    outln!("{}", d.diff.trim_end_matches('\n'));
                }
            }
        }
        RouteCommand::Rollback { tenant, version } => {
            let body = Body::Json(json!({ "version": version }));
            let v: Value = client.post(&["v1", "tenants", &tenant, "routes", "rollback"], body).await?;
            if !out.json(&v) {
                let applied: RoutesApplied = decode(v)?;
                let (target, live) = (show(&applied.rolled_back_to), applied.version);
                if applied.unchanged {
                    outln!("Version {target}'s document is already live (version {live}); nothing changed");
                } else {
                    outln!("Rolled {tenant} back to version {target}: live now as version {live}");
                }
            }
        }
    }
    Ok(())
}

/// The router parses what the extension says; guessing from content would hide mistakes.
fn content_type(file: &Path) -> Result<&'static str> {
    match file.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("json") => Ok("application/json"),
        Some("toml") => Ok("application/toml"),
        _ => Err(CliError::Usage(format!(
            "{}: cannot tell the document's format; name it *.json or *.toml",
            file.display()
        ))),
    }
}
