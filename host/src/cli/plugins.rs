//! `switchyard plugin ...`: upload, list, dry-run (and `new`, in `scaffold.rs`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use super::client::{Body, CliError, Client, Result, decode};
use super::output::{Output, byte_size, cell, outln, pretty, print_list, print_pairs, short_hash, show, size, time};
use super::scaffold::NewArgs;
use switchyard::api::types::{FixtureList, PluginList, PluginVersionMeta, PluginVersions, Uploaded};

pub const EXAMPLES: &str = "\
Examples:
  switchyard plugin new lead-enricher && cd lead-enricher
  cargo build --release --target wasm32-wasip2
  switchyard plugin push acme lead-enricher target/wasm32-wasip2/release/lead_enricher.wasm
  switchyard plugin test acme lead-enricher --fixture call-tracking/call_ended --config mode=strict
  switchyard plugin list acme lead-enricher";

const TEST_EXAMPLES: &str = "\
Examples:
  switchyard plugin test acme tagger --fixture call-tracking/call_outcome_tagged
  switchyard plugin test acme tagger@2 --event event.json --config drop_outcomes=spam
  switchyard plugin fixtures                  # the fixture names the router knows

The event file holds the event as the plugin sees it:
  {\"source\": \"calls\", \"type\": \"call.ended\", \"data\": {...}, \"subject\": null, \"time\": null}
Exits with 1 when the plugin fails (verdict `error`).";

#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// Upload a WebAssembly component as the next version of a plugin
    #[command(after_help = "Example:\n  switchyard plugin push acme tagger target/wasm32-wasip2/release/tagger.wasm")]
    Push {
        tenant: String,
        /// The plugin's name; each push of the same name is a new immutable version
        name: String,
        /// The component (.wasm), as built with `cargo build --release --target wasm32-wasip2`
        file: PathBuf,
    },
    /// List a tenant's plugins, or every version of one plugin
    List { tenant: String, name: Option<String> },
    /// Run a plugin version on one event without delivering anything: verdict, outputs, logs
    #[command(after_help = TEST_EXAMPLES)]
    Test(TestArgs),
    /// List the seed fixtures `plugin test --fixture` accepts
    Fixtures,
    /// Create a new plugin crate that builds with the guest SDK (no router needed)
    #[command(after_help = super::scaffold::EXAMPLES)]
    New(NewArgs),
}

#[derive(Args, Debug)]
pub struct TestArgs {
    tenant: String,
    /// NAME, NAME@VERSION or NAME@latest (the default)
    #[arg(value_name = "NAME[@VERSION]", value_parser = parse_plugin_ref)]
    plugin: (String, String),
    /// A JSON file with the event to run ('-' reads standard input)
    #[arg(long, value_name = "FILE.json", required_unless_present = "fixture", conflicts_with = "fixture")]
    event: Option<PathBuf>,
    /// A seed fixture by name, e.g. call-tracking/call_ended (see `plugin fixtures`)
    #[arg(long, value_name = "NAME")]
    fixture: Option<String>,
    /// A pipeline config setting for the run; repeat for several
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    config: Vec<(String, String)>,
}

/// `tagger`, `tagger@3`, `tagger@latest`.
fn parse_plugin_ref(s: &str) -> std::result::Result<(String, String), String> {
    let (name, version) = s.split_once('@').unwrap_or((s, "latest"));
    if name.is_empty() {
        return Err("expected NAME, NAME@VERSION or NAME@latest".into());
    }
    if version != "latest" && !version.parse::<u32>().is_ok_and(|v| v > 0) {
        return Err(format!("version {version:?} must be a positive number or `latest`"));
    }
    Ok((name.to_owned(), version.to_owned()))
}

fn parse_key_value(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

pub async fn run(client: &Client, out: Output, cmd: PluginCommand) -> Result<()> {
    match cmd {
        PluginCommand::Push { tenant, name, file } => {
            let bytes =
                std::fs::read(&file).map_err(|e| CliError::Local(format!("reading {}: {e}", file.display())))?;
            let body = Body::Raw { bytes, content_type: "application/wasm" };
            let v = client.post(&["v1", "tenants", &tenant, "plugins", &name], body).await?;
            if !out.json(&v) {
                let up: Uploaded = decode(v)?;
                let meta = &up.meta;
                outln!("Uploaded {}@{} to tenant {tenant}", meta.name, meta.version);
                print_pairs(&[
                    ("  id", show(&meta.id)),
                    ("  sha256", show(&meta.sha256)),
                    ("  size", byte_size(meta.size as f64)),
                    ("  world", show(&meta.world)),
                    ("  imports", imports(&meta.imports)),
                    ("  compiled in", format!("{} ms", up.compile_ms)),
                ]);
            }
        }
        PluginCommand::List { tenant, name: None } => {
            let v = client.get(&["v1", "tenants", &tenant, "plugins"]).await?;
            if !out.json(&v) {
                let list: PluginList = decode(v)?;
                print_versions(&list.plugins, true, &format!("Tenant {tenant} has no plugins."));
            }
        }
        PluginCommand::List { tenant, name: Some(name) } => {
            let v = client.get(&["v1", "tenants", &tenant, "plugins", &name]).await?;
            if !out.json(&v) {
                let list: PluginVersions = decode(v)?;
                print_versions(&list.versions, false, &format!("Plugin {name} has no versions."));
            }
        }
        PluginCommand::Test(args) => test(client, out, args).await?,
        PluginCommand::Fixtures => {
            let v = client.get(&["v1", "fixtures"]).await?;
            if !out.json(&v) {
                let list: FixtureList = decode(v)?;
                for name in list.fixtures {
                    outln!("{name}");
                }
            }
        }
        PluginCommand::New(_) => unreachable!("handled without a router in cli::run"),
    }
    Ok(())
}

/// The plugin's own capabilities by name (`log, kv`), the WASI plumbing every Rust component
/// imports only counted: the capabilities are what a tenant's grants are about.
fn imports(all: &[String]) -> String {
    let ours: Vec<&str> = all
        .iter()
        .filter_map(|i| i.strip_prefix("switchyard:plugin/"))
        .map(|i| i.split('@').next().unwrap_or(i))
        .filter(|i| *i != "types")
        .collect();
    let others = all.iter().filter(|i| !i.starts_with("switchyard:plugin/")).count();
    let mut shown = if ours.is_empty() { "none".to_owned() } else { ours.join(", ") };
    if others > 0 {
        shown.push_str(&format!(" (+{others} WASI)"));
    }
    shown
}

fn print_versions(rows: &[PluginVersionMeta], with_name: bool, empty: &str) {
    let mut headers = vec!["VERSION", "SIZE", "SHA256", "WORLD", "CREATED"];
    if with_name {
        headers.insert(0, "NAME");
    }
    let lines = rows
        .iter()
        .map(|p| {
            let mut line = vec![
                show(&p.version),
                byte_size(p.size as f64),
                short_hash(&p.sha256),
                show(&p.world),
                time(p.created_at),
            ];
            if with_name {
                line.insert(0, show(&p.name));
            }
            line
        })
        .collect();
    print_list(&headers, lines, empty);
}

async fn test(client: &Client, out: Output, args: TestArgs) -> Result<()> {
    let (name, version) = &args.plugin;
    let mut body = Map::new();
    match (&args.event, &args.fixture) {
        (Some(path), _) => {
            let text = if path.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
            } else {
                std::fs::read_to_string(path)
            }
            .map_err(|e| CliError::Local(format!("reading {}: {e}", path.display())))?;
            let event: Value = serde_json::from_str(&text)
                .map_err(|e| CliError::Local(format!("{} is not JSON: {e}", path.display())))?;
            body.insert("event".into(), event);
        }
        (None, Some(fixture)) => {
            body.insert("fixture".into(), json!(fixture));
        }
        (None, None) => unreachable!("clap requires --event or --fixture"),
    }
    if !args.config.is_empty() {
        body.insert(
            "config".into(),
            Value::Object(args.config.into_iter().map(|(k, v)| (k, Value::String(v))).collect()),
        );
    }
    let segments = ["v1", "tenants", &args.tenant, "plugins", name, "versions", version, "test"];
    let v = client.post(&segments, Body::Json(Value::Object(body))).await?;
    if !out.json(&v) {
        print_test_result(&v);
    }
    if v["verdict"] == "error" {
        return Err(CliError::Local(format!("the plugin failed: {}", cell(&v["reason"]))));
    }
    Ok(())
}

fn print_test_result(v: &Value) {
    let mut stats = Vec::new();
    if let Some(us) = v["duration_us"].as_f64() {
        stats.push(if us >= 1000.0 { format!("{:.1} ms", us / 1000.0) } else { format!("{us} us") });
    }
    if !v["memory_bytes"].is_null() {
        stats.push(format!("{} memory", size(&v["memory_bytes"])));
    }
    let stats = if stats.is_empty() { String::new() } else { format!(" ({})", stats.join(", ")) };
    outln!("{}: {}{stats}", cell(&v["plugin"]), cell(&v["verdict"]));
    if !v["reason"].is_null() {
        outln!("reason: {}", cell(&v["reason"]));
    }
    let logs = v["logs"].as_array().map(Vec::as_slice).unwrap_or_default();
    if !logs.is_empty() {
        outln!("logs:");
        for log in logs {
            outln!("  {:<5} {}", cell(&log["level"]), cell(&log["message"]));
        }
    }
    let outputs = v["outputs"].as_array().map(Vec::as_slice).unwrap_or_default();
    if !outputs.is_empty() {
        outln!("outputs ({}):", outputs.len());
        for output in outputs {
            for line in pretty(output).lines() {
                outln!("  {line}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_show_capabilities_and_count_the_rest() {
        let v =
            ["switchyard:plugin/log@0.1.0", "switchyard:plugin/types@0.1.0", "wasi:io/poll@0.2.6"].map(String::from);
        assert_eq!(imports(&v), "log (+1 WASI)");
        assert_eq!(imports(&[]), "none");
    }

    #[test]
    fn plugin_refs() {
        assert_eq!(parse_plugin_ref("tagger").unwrap(), ("tagger".into(), "latest".into()));
        assert_eq!(parse_plugin_ref("tagger@3").unwrap(), ("tagger".into(), "3".into()));
        assert_eq!(parse_plugin_ref("tagger@latest").unwrap(), ("tagger".into(), "latest".into()));
        assert!(parse_plugin_ref("tagger@x").is_err());
        assert!(parse_plugin_ref("tagger@0").is_err());
        assert!(parse_plugin_ref("@3").is_err());
        assert_eq!(parse_key_value("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(parse_key_value("=b").is_err());
        assert!(parse_key_value("ab").is_err());
    }
}
