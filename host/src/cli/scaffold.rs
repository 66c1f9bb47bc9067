//! `switchyard plugin new`: a plugin crate that builds as-is, so a tenant starts from working
//! code instead of from the SDK's docs.

use std::path::{Path, PathBuf};

use clap::Args;
use figment::Figment;
use figment::providers::{Format, Toml};
use serde_json::json;

use super::client::{CliError, Result};
use super::output::{Output, outln};

pub const EXAMPLES: &str = "\
Examples:
  switchyard plugin new lead-enricher                 # creates ./lead-enricher
  switchyard plugin new tagger --dir plugins/tagger --sdk-path ~/src/switchyard/guest-sdk

The SDK (crate switchyard-guest) is not published: the crate depends on it by path. By default
that is the guest-sdk folder of the source tree this binary was built from.";

/// Where the SDK sits in the source tree this binary was built from.
const BUILT_IN_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk");

#[derive(Args, Debug)]
pub struct NewArgs {
    /// The plugin's (and crate's) name, e.g. lead-enricher
    name: String,
    /// Where to create the crate; must not exist or be empty [default: ./NAME]
    #[arg(long, value_name = "PATH")]
    dir: Option<PathBuf>,
    /// The guest SDK folder (crate switchyard-guest) to depend on [default: the guest-sdk of the
    /// source tree this binary was built from]
    #[arg(long, value_name = "PATH")]
    sdk_path: Option<PathBuf>,
}

pub fn run(args: NewArgs, out: Output) -> Result<()> {
    let name = args.name;
    if !valid_crate_name(&name) {
        return Err(CliError::Usage(format!(
            "plugin name {name:?}: 1-64 letters, digits, '-' or '_', starting with a letter"
        )));
    }
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&name));
    if dir.exists() {
        let empty = std::fs::read_dir(&dir).map(|mut d| d.next().is_none()).unwrap_or(false);
        if !empty {
            return Err(CliError::Local(format!(
                "{} already exists and is not an empty directory; not overwriting it",
                dir.display()
            )));
        }
    }
    let sdk = find_sdk(args.sdk_path.as_deref())?;
    let lib = name.replace('-', "_");
    let sdk_str = sdk.to_str().ok_or_else(|| CliError::Local(format!("SDK path {} is not UTF-8", sdk.display())))?;

    let files = [
        ("Cargo.toml", cargo_toml(&name, sdk_str)),
        ("src/lib.rs", LIB_RS.replace("{name}", &name)),
        ("README.md", README.replace("{name}", &name).replace("{lib}", &lib)),
        (".gitignore", "/target\n".to_owned()),
    ];
    let write = |rel: &str, contents: &str| -> Result<()> {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| CliError::Local(format!("creating {}: {e}", parent.display())))?;
        }
        std::fs::write(&path, contents).map_err(|e| CliError::Local(format!("writing {}: {e}", path.display())))
    };
    for (rel, contents) in &files {
        write(rel, contents)?;
    }
    // Start from the dependency versions the SDK is built and tested with (wit-bindgen above
    // all), not whatever is newest today; cargo adds this crate to the lock on the first build.
    let seeded = match sdk_lockfile(&sdk) {
        Some(lock) => {
            std::fs::copy(&lock, dir.join("Cargo.lock"))
                .map_err(|e| CliError::Local(format!("copying {}: {e}", lock.display())))?;
            true
        }
        None => false,
    };

    let wasm = format!("target/wasm32-wasip2/release/{lib}.wasm");
    let summary = json!({ "name": name, "dir": dir, "sdk_path": sdk, "wasm": wasm, "lockfile_seeded": seeded });
    if !out.json(&summary) {
        outln!("Created plugin crate {name} in {} (SDK: {})", dir.display(), sdk.display());
        outln!();
        outln!("Next:");
        outln!("  cd {}", dir.display());
        outln!("  cargo build --release --target wasm32-wasip2   # rustup target add wasm32-wasip2, once");
        outln!("  switchyard plugin push TENANT {name} {wasm}");
        outln!("  switchyard plugin test TENANT {name} --fixture call-tracking/call_ended");
    }
    Ok(())
}

/// Cargo's package rules and the router's plugin-name rule at once, so the crate name can be
/// the plugin name.
fn valid_crate_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

fn find_sdk(given: Option<&Path>) -> Result<PathBuf> {
    let path = given.unwrap_or(Path::new(BUILT_IN_SDK));
    let hint = if given.is_some() { "" } else { "; pass --sdk-path to the guest-sdk folder of a Switchyard checkout" };
    let sdk = path.canonicalize().map_err(|e| CliError::Local(format!("guest SDK {}: {e}{hint}", path.display())))?;
    let manifest = std::fs::read_to_string(sdk.join("Cargo.toml")).unwrap_or_default();
    if !manifest.contains("name = \"switchyard-guest\"") {
        return Err(CliError::Local(format!(
            "{} is not the guest SDK (no Cargo.toml of crate switchyard-guest){hint}",
            sdk.display()
        )));
    }
    Ok(sdk)
}

/// The lockfile of the workspace the SDK belongs to (`package.workspace`), if any.
fn sdk_lockfile(sdk: &Path) -> Option<PathBuf> {
    let workspace: Option<String> =
        Figment::from(Toml::file_exact(sdk.join("Cargo.toml"))).extract_inner("package.workspace").ok();
    let lock = workspace.map_or_else(|| sdk.to_owned(), |w| sdk.join(w)).join("Cargo.lock");
    lock.is_file().then_some(lock)
}

fn cargo_toml(name: &str, sdk: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# A WebAssembly component: build with `cargo build --release --target wasm32-wasip2`.
crate-type = ["cdylib"]

[dependencies]
switchyard-guest = {{ path = {sdk} }}
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"

# A workspace of its own, so the crate builds wherever it is put, also inside another workspace.
[workspace]

[profile.release]
# Small, fast components: the router compiles an upload once and instantiates it per event.
opt-level = "s"
lto = true
codegen-units = 1
strip = true
"#,
        sdk = toml_string(sdk),
    )
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const LIB_RS: &str = r#"//! `{name}`: a Switchyard plugin.
//!
//! The router calls `handle` once per event, each time in a fresh sandbox. Return
//! `ev.pass()` to send the event on (changed or not), `ev.drop(reason)` to filter it out, or
//! `Verdict::emit(events)` to fan out. Settings come from the route's pipeline config
//! (`config`), state that outlives one event from the tenant's key-value store (`kv`).

use serde_json::Value;
use switchyard_guest::{Event, Result, Verdict, config, log};

fn handle(mut ev: Event) -> Result<Verdict> {
    // Filter: drop the event types listed in the `drop_types` setting ("a.b,c.d").
    if config::get_list("drop_types", "").iter().any(|t| t == ev.event_type()) {
        let reason = format!("{} is in drop_types", ev.event_type());
        return Ok(ev.drop(reason));
    }

    // Transform: mark JSON-object payloads as seen by this plugin.
    let mut data = ev.data_json()?;
    if let Value::Object(fields) = &mut data {
        fields.insert("handled_by".into(), Value::from("{name}"));
    }
    ev.set_data(&data)?;

    log::info(format!("handled {} {}", ev.event_type(), ev.id()));
    Ok(ev.pass())
}

switchyard_guest::plugin!(handle);
"#;

const README: &str = r#"# {name}

A [Switchyard](https://github.com/switchyard-router/switchyard) plugin: a WebAssembly
component built with the guest SDK (`switchyard-guest`).

Build it with `cargo build --release --target wasm32-wasip2`
(once: `rustup target add wasm32-wasip2`); the component is
`target/wasm32-wasip2/release/{lib}.wasm`.

```sh
switchyard plugin push TENANT {name} target/wasm32-wasip2/release/{lib}.wasm
switchyard plugin test TENANT {name} --fixture call-tracking/call_ended --config drop_types=call.started
```

Then reference it from a route's pipeline: `{"plugin": "{name}", "config": {"drop_types": "..."}}`.
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_suit_cargo_and_the_router() {
        assert!(valid_crate_name("lead-enricher"));
        assert!(valid_crate_name("a_b2"));
        assert!(!valid_crate_name("2fast"));
        assert!(!valid_crate_name("has.dot"));
        assert!(!valid_crate_name("../escape"));
        assert!(!valid_crate_name(""));
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string(r#"C:\sdk "x""#), r#""C:\\sdk \"x\"""#);
    }
}
