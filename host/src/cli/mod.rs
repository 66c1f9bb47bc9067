//! The client subcommands of the `switchyard` binary: they talk to a running router over its
//! HTTP API, so tenants and operators never need curl. Binary-only (declared from `main.rs`):
//! the library stays the router.
//!
//! Exit codes: 0 success, 1 the router refused or something failed here, 2 usage, 3 the
//! router could not be reached.

mod client;
mod connection;
mod deliveries;
mod events;
mod output;
mod pages;
mod plugins;
mod routes;
mod scaffold;
mod tenants;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use client::{CliError, Client};
use output::Output;

const CONNECTION: &str = "Connection and output (client commands)";

/// Flags every client command understands, wherever they appear on the command line.
#[derive(Args, Debug)]
pub struct GlobalArgs {
    /// Router base URL [default: http://127.0.0.1:8080]
    #[arg(long, global = true, env = "SWITCHYARD_URL", value_name = "URL", help_heading = CONNECTION)]
    url: Option<String>,
    /// Admin token, or a tenant API key (syk_...)
    #[arg(
        long,
        global = true,
        env = "SWITCHYARD_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        help_heading = CONNECTION
    )]
    token: Option<String>,
    /// TOML file with `url` and `token` [default: ~/.config/switchyard/cli.toml]
    #[arg(long = "cli-config", global = true, env = "SWITCHYARD_CLI_CONFIG", value_name = "PATH", help_heading = CONNECTION)]
    cli_config: Option<PathBuf>,
    /// Print the router's JSON answer as-is (pretty-printed), for scripts
    #[arg(long, global = true, help_heading = CONNECTION)]
    json: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create and list tenants, manage their API keys
    #[command(subcommand, after_help = tenants::TENANT_EXAMPLES)]
    Tenant(tenants::TenantCommand),
    /// Declare a tenant's inbound sources (where vendors post webhooks)
    #[command(subcommand, after_help = tenants::SOURCE_EXAMPLES)]
    Source(tenants::SourceCommand),
    /// Upload, list and dry-run plugins; scaffold a new plugin crate
    #[command(subcommand, after_help = plugins::EXAMPLES)]
    Plugin(plugins::PluginCommand),
    /// Apply, inspect, diff and roll back a tenant's route document
    #[command(subcommand, after_help = routes::EXAMPLES)]
    Route(routes::RouteCommand),
    /// Inspect ingested events
    #[command(subcommand, after_help = events::EXAMPLES)]
    Events(events::EventsCommand),
    /// Inspect and replay deliveries (the outbox)
    #[command(subcommand, after_help = deliveries::EXAMPLES)]
    Deliveries(deliveries::DeliveriesCommand),
    /// See destinations' health and enable disabled ones
    #[command(subcommand, after_help = deliveries::EXAMPLES)]
    Destinations(deliveries::DestinationsCommand),
}

/// Runs one client command and turns its outcome into the process exit code.
pub async fn run(global: GlobalArgs, command: Command) -> ExitCode {
    let out = Output { json: global.json };
    let result = match command {
        // Scaffolding is local: no router needed.
        Command::Plugin(plugins::PluginCommand::New(args)) => scaffold::run(args, out),
        command => match connection::connect(&global) {
            Ok(client) => dispatch(&client, out, command).await,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

async fn dispatch(client: &Client, out: Output, command: Command) -> Result<(), CliError> {
    match command {
        Command::Tenant(cmd) => tenants::tenant(client, out, cmd).await,
        Command::Source(cmd) => tenants::source(client, out, cmd).await,
        Command::Plugin(cmd) => plugins::run(client, out, cmd).await,
        Command::Route(cmd) => routes::run(client, out, cmd).await,
        Command::Events(cmd) => events::run(client, out, cmd).await,
        Command::Deliveries(cmd) => deliveries::run(client, out, cmd).await,
        Command::Destinations(cmd) => deliveries::destinations(client, out, cmd).await,
    }
}

/// The examples shown under `switchyard --help`.
pub const EXAMPLES: &str = "\
Examples:
  switchyard                                   # run the router (same as `switchyard serve`)
  switchyard tenant create acme
  switchyard plugin push acme tagger target/wasm32-wasip2/release/tagger.wasm
  switchyard route apply acme routes.toml
  switchyard deliveries list acme --status dead

Client commands find the router with --url / SWITCHYARD_URL and authenticate with --token /
SWITCHYARD_TOKEN; flags and environment win over the CLI config file ($XDG_CONFIG_HOME or
~/.config, switchyard/cli.toml). With no token anywhere, ./switchyard-data/admin-token is used
when it exists. Exit codes: 0 ok, 1 refused by the router or failed, 2 usage, 3 router
unreachable.";
