//! `switchyard tenant ...` and `switchyard source ...`.

use clap::Subcommand;
use serde_json::{Value, json};

use super::client::{Body, Client, Result, decode};
use super::output::{Output, cell, opt_time, outln, print_list, print_pairs, show, time};
use switchyard::api::types::{CreatedKey, KeyList, SourceList, SourceView, Tenant, TenantList};

pub const TENANT_EXAMPLES: &str = "\
Examples:
  switchyard tenant create acme
  switchyard tenant keys create acme --name ci      # prints the key once: store it
  switchyard tenant keys revoke acme key_01J...";

pub const SOURCE_EXAMPLES: &str = "\
Examples:
  switchyard source put acme calls --format call-tracking --bearer-token \"$(openssl rand -hex 24)\"
  switchyard source put acme crm --format crm --basic-user crm --basic-password \"$PASSWORD\"
  switchyard source put acme gh --format cloudevents --hmac-secret \"$SECRET\" \\
      --hmac-header X-Hub-Signature-256 --hmac-prefix sha256=                       # GitHub
  switchyard source put acme shop --format crm --hmac-secret \"$SECRET\" \\
      --hmac-header X-Shopify-Hmac-Sha256 --hmac-encoding base64                    # Shopify
  switchyard source put acme pay --format crm --hmac-secret \"$SECRET\" --hmac-header Stripe-Signature \\
      --hmac-prefix v1= --hmac-content '{timestamp}.{body}' --hmac-timestamp-part t  # Stripe
  switchyard source put acme open --format coaching --no-auth                       # anyone may post
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
        #[command(flatten)]
        auth: Box<AuthArgs>,
    },
    /// List the tenant's sources
    List { tenant: String },
}

/// How senders to a source authenticate (every format but standard-webhooks must say).
#[derive(clap::Args, Debug, Default)]
pub struct AuthArgs {
    /// Accept anyone: no authentication (recorded, and shown when the source is read)
    #[arg(long, conflicts_with_all = ["bearer_token", "basic_user", "hmac_secret"])]
    no_auth: bool,
    /// Senders send `Authorization: Bearer TOKEN` (at least 16 characters)
    #[arg(long, value_name = "TOKEN", conflicts_with_all = ["basic_user", "hmac_secret"])]
    bearer_token: Option<String>,
    /// With --bearer-token: the token is this header's whole value instead (e.g. X-Gitlab-Token)
    #[arg(long, value_name = "HEADER", requires = "bearer_token")]
    bearer_header: Option<String>,
    /// Senders use basic auth with this user name (and --basic-password)
    #[arg(long, value_name = "USER", requires = "basic_password", conflicts_with = "hmac_secret")]
    basic_user: Option<String>,
    /// The basic auth password (at least 16 characters)
    #[arg(long, value_name = "PASSWORD", requires = "basic_user")]
    basic_password: Option<String>,
    /// Senders sign with an HMAC under this shared secret (and --hmac-header)
    #[arg(long, value_name = "SECRET", requires = "hmac_header")]
    hmac_secret: Option<String>,
    /// The header carrying the signature, e.g. X-Hub-Signature-256
    #[arg(long, value_name = "HEADER", requires = "hmac_secret")]
    hmac_header: Option<String>,
    /// sha1, sha256 (default) or sha512
    #[arg(long, value_name = "ALGORITHM", requires = "hmac_secret")]
    hmac_algorithm: Option<String>,
    /// hex (default) or base64
    #[arg(long, value_name = "ENCODING", requires = "hmac_secret")]
    hmac_encoding: Option<String>,
    /// Text before each signature in the header, e.g. sha256= (GitHub) or v1= (Stripe)
    #[arg(long, value_name = "PREFIX", requires = "hmac_secret")]
    hmac_prefix: Option<String>,
    /// What is signed: {body} (default), or e.g. '{timestamp}.{body}' (Stripe)
    #[arg(long, value_name = "TEMPLATE", requires = "hmac_secret")]
    hmac_content: Option<String>,
    /// The header holding {timestamp}
    #[arg(long, value_name = "HEADER", requires = "hmac_secret", conflicts_with = "hmac_timestamp_part")]
    hmac_timestamp_header: Option<String>,
    /// The part of the signature header holding {timestamp}, e.g. t (Stripe's t=...)
    #[arg(long, value_name = "PART", requires = "hmac_secret")]
    hmac_timestamp_part: Option<String>,
}

impl AuthArgs {
    /// The `auth` object of the source declaration, or nothing when no flag was given (the
    /// router then says what to add).
    fn to_json(&self) -> Option<Value> {
        if self.no_auth {
            return Some(json!({ "type": "none" }));
        }
        if let Some(token) = &self.bearer_token {
            let mut auth = json!({ "type": "bearer", "token": token });
            if let Some(header) = &self.bearer_header {
                auth["header"] = json!(header);
            }
            return Some(auth);
        }
        if let (Some(username), Some(password)) = (&self.basic_user, &self.basic_password) {
            return Some(json!({ "type": "basic", "username": username, "password": password }));
        }
        let secret = self.hmac_secret.as_ref()?;
        let mut auth = json!({ "type": "hmac", "secret": secret, "header": self.hmac_header });
        let optional = [
            ("algorithm", &self.hmac_algorithm),
            ("encoding", &self.hmac_encoding),
            ("prefix", &self.hmac_prefix),
            ("signed_content", &self.hmac_content),
            ("timestamp_header", &self.hmac_timestamp_header),
            ("timestamp_part", &self.hmac_timestamp_part),
        ];
        for (field, value) in optional {
            if let Some(value) = value {
                auth[field] = json!(value);
            }
        }
        Some(auth)
    }
}

pub async fn tenant(client: &Client, out: Output, cmd: TenantCommand) -> Result<()> {
    match cmd {
        TenantCommand::Create { name } => {
            let t = client.post(&["v1", "tenants"], Body::Json(json!({ "name": name }))).await?;
            if !out.json(&t) {
                let t: Tenant = decode(t)?;
                outln!("Created tenant {} ({})", t.name, t.id);
            }
        }
        TenantCommand::List => {
            let v = client.get(&["v1", "tenants"]).await?;
            if !out.json(&v) {
                let list: TenantList = decode(v)?;
                let rows = list.tenants.iter().map(|t| vec![show(&t.name), show(&t.id), time(t.created_at)]).collect();
                print_list(
                    &["NAME", "ID", "CREATED"],
                    rows,
                    "No tenants yet; create one with `switchyard tenant create NAME`.",
                );
            }
        }
        TenantCommand::Show { tenant } => {
            let t = client.get(&["v1", "tenants", &tenant]).await?;
            if !out.json(&t) {
                let t: Tenant = decode(t)?;
                print_pairs(&[("name", show(&t.name)), ("id", show(&t.id)), ("created", time(t.created_at))]);
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
                let k: CreatedKey = decode(k)?;
                outln!("Created API key {} \"{}\" for tenant {tenant}:", k.meta.id, k.meta.name);
                outln!();
                outln!("    {}", k.key);
                outln!();
                outln!("This is the only time the key is shown: the router keeps only a hash. Store it now.");
                outln!("Use it as the token: SWITCHYARD_TOKEN=<key> (it reaches tenant {tenant} only).");
            }
        }
        KeysCommand::List { tenant } => {
            let v = client.get(&["v1", "tenants", &tenant, "keys"]).await?;
            if !out.json(&v) {
                let list: KeyList = decode(v)?;
                let rows = list
                    .keys
                    .iter()
                    .map(|k| {
                        vec![
                            show(&k.id),
                            show(&k.name),
                            show(&k.prefix),
                            time(k.created_at),
                            opt_time(k.last_used_at),
                            opt_time(k.revoked_at),
                        ]
                    })
                    .collect();
                let headers = ["ID", "NAME", "PREFIX", "CREATED", "LAST USED", "REVOKED"];
                print_list(&headers, rows, &format!("Tenant {tenant} has no API keys."));
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
        SourceCommand::Put { tenant, name, format, secret, auth } => {
            let mut spec = json!({ "format": format, "secret": secret });
            if let Some(auth) = auth.to_json() {
                spec["auth"] = auth;
            }
            let s = client.put(&["v1", "tenants", &tenant, "sources", &name], Body::Json(spec)).await?;
            if !out.json(&s) {
                let s: SourceView = decode(s)?;
                outln!(
                    "Source {name} of tenant {tenant} ({}, auth: {}): POST {}",
                    s.format,
                    cell(&s.auth["type"]),
                    s.ingest_path
                );
            }
        }
        SourceCommand::List { tenant } => {
            let v = client.get(&["v1", "tenants", &tenant, "sources"]).await?;
            if !out.json(&v) {
                let list: SourceList = decode(v)?;
                let rows = list
                    .sources
                    .iter()
                    .map(|s| {
                        vec![
                            show(&s.name),
                            show(&s.format),
                            cell(&s.auth["type"]),
                            show(&s.ingest_path),
                            show(&s.created_at),
                        ]
                    })
                    .collect();
                let headers = ["NAME", "FORMAT", "AUTH", "INGEST PATH", "CREATED"];
                print_list(&headers, rows, &format!("Tenant {tenant} has no sources."));
            }
        }
    }
    Ok(())
}
