//! `switchyard tenant ...` and `switchyard source ...`.

use clap::Subcommand;
use serde_json::json;

use super::client::{Body, Client, Result};
use super::output::{Output, cell, outln, print_fields, print_table};

pub const TENANT_EXAMPLES: &str = "\
Examples:
  switchyard tenant create acme
  switchyard tenant keys create acme --name ci      # prints the key once: store it
  switchyard tenant keys revoke acme key_01J...";

pub const SOURCE_EXAMPLES: &str = "\
Examples:
  switchyard source put acme calls --format call-tracking
  switchyard source put acme users --format standard-webhooks --secret whsec_...
  switchyard source list acme";

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Create a tenant (admin token only)
    Create {
        /// 1-64 letters, digits, '-', '_', '.'
        name: String,
    },
    /// List every tenant (admin token only)
    List,
    /// Show one tenant
    Show { tenant: String },
    /// Create, list and revoke a tenant's API keys
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create an API key for the tenant; the key is shown once, only its hash is stored
    #[command(after_help = "Example:\n  switchyard tenant keys create acme --name ci")]
    Create {
        tenant: String,
        /// A label to recognise the key by later (e.g. where it is used)
        #[arg(long)]
        name: Option<String>,
    },
    /// List the tenant's keys (never the secrets)
    List { tenant: String },
    /// Revoke a key: requests with it are refused from now on
    #[command(after_help = "Example:\n  switchyard tenant keys revoke acme key_01J...")]
    Revoke {
        tenant: String,
        /// The key's id (key_...), as `tenant keys list` shows it
        key_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum SourceCommand {
    /// Create or replace a source: vendors then post to /v1/ingest/TENANT/NAME
    Put {
        tenant: String,
        name: String,
        /// The envelope the vendor sends: coaching, call-tracking, standard-webhooks (or svix), crm,
        /// cloudevents
        #[arg(long)]
        format: String,
        /// The sender's signing secret (whsec_...), for signed formats
        #[arg(long)]
        secret: Option<String>,
    },
    /// List the tenant's sources
    List { tenant: String },
}

pub async fn tenant(client: &Client, out: Output, cmd: TenantCommand) -> Result<()> {
    match cmd {
        TenantCommand::Create { name } => {
            let t = client.post(&["v1", "tenants"], Body::Json(json!({ "name": name }))).await?;
            if !out.json(&t) {
                outln!("Created tenant {} ({})", cell(&t["name"]), cell(&t["id"]));
            }
        }
        TenantCommand::List => {
            let v = client.get(&["v1", "tenants"]).await?;
            if !out.json(&v) {
                print_table(
                    &v["tenants"],
                    &[("NAME", "name"), ("ID", "id"), ("CREATED", "created_at")],
                    "No tenants yet; create one with `switchyard tenant create NAME`.",
                );
            }
        }
        TenantCommand::Show { tenant } => {
            let t = client.get(&["v1", "tenants", &tenant]).await?;
            if !out.json(&t) {
                print_fields(&t, &[("name", "name"), ("id", "id"), ("created", "created_at")]);
            }
        }
        TenantCommand::Keys(cmd) => keys(client, out, cmd).await?,
    }
    Ok(())
}

async fn keys(client: &Client, out: Output, cmd: KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::Create { tenant, name } => {
            let body = match name {
                Some(name) => json!({ "name": name }),
                None => json!({}),
            };
            let k = client.post(&["v1", "tenants", &tenant, "keys"], Body::Json(body)).await?;
            if !out.json(&k) {
                let label = k["name"].as_str().map(|n| format!(" \"{n}\"")).unwrap_or_default();
                outln!("Created API key {}{label} for tenant {tenant}:", cell(&k["id"]));
                outln!();
                outln!("    {}", cell(&k["key"]));
                outln!();
                outln!("This is the only time the key is shown: the router keeps only a hash. Store it now.");
                outln!("Use it as the token: SWITCHYARD_TOKEN=<key> (it reaches tenant {tenant} only).");
            }
        }
        KeysCommand::List { tenant } => {
            let v = client.get(&["v1", "tenants", &tenant, "keys"]).await?;
            if !out.json(&v) {
                print_table(
                    &v["keys"],
                    &[
                        ("ID", "id"),
                        ("NAME", "name"),
                        ("PREFIX", "prefix"),
                        ("CREATED", "created_at"),
                        ("LAST USED", "last_used_at"),
                        ("REVOKED", "revoked_at"),
                    ],
                    &format!("Tenant {tenant} has no API keys."),
                );
            }
        }
        KeysCommand::Revoke { tenant, key_id } => {
            let v = client.delete(&["v1", "tenants", &tenant, "keys", &key_id]).await?;
            if !out.json(&v) {
                outln!("Revoked key {key_id} of tenant {tenant}.");
            }
        }
    }
    Ok(())
}

pub async fn source(client: &Client, out: Output, cmd: SourceCommand) -> Result<()> {
    match cmd {
        SourceCommand::Put { tenant, name, format, secret } => {
            let s = client
                .put(
                    &["v1", "tenants", &tenant, "sources", &name],
                    Body::Json(json!({ "format": format, "secret": secret })),
                )
                .await?;
            if !out.json(&s) {
                outln!("Source {name} of tenant {tenant} ({}): POST {}", cell(&s["format"]), cell(&s["ingest_path"]));
            }
        }
        SourceCommand::List { tenant } => {
            let v = client.get(&["v1", "tenants", &tenant, "sources"]).await?;
            if !out.json(&v) {
                print_table(
                    &v["sources"],
                    &[
                        ("NAME", "name"),
                        ("FORMAT", "format"),
                        ("SIGNED", "signed"),
                        ("INGEST PATH", "ingest_path"),
                        ("CREATED", "created_at"),
                    ],
                    &format!("Tenant {tenant} has no sources."),
                );
            }
        }
    }
    Ok(())
}
