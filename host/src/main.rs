//! The `switchyard` binary: by default (or with `serve`) load configuration and run the router
//! until Ctrl-C or SIGTERM; the other subcommands are a client for a running router (`cli/`).

mod cli;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchyard::config::LogFormat;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "Multi-tenant, WebAssembly-extensible webhook event router",
    after_help = cli::EXAMPLES
)]
struct Cli {
    #[command(flatten)]
    client: cli::GlobalArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the router (the default when no subcommand is given)
    Serve(ServeArgs),
    #[command(flatten)]
    Client(cli::Command),
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// TOML configuration file; `SWITCHYARD_*` environment variables override it.
    #[arg(long, short, env = "SWITCHYARD_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (overrides the configuration).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Data directory (overrides the configuration).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Database (overrides `database_url`): `postgres://user@host/db`, or `sqlite://<path>`.
    /// Default: the SQLite file `switchyard.db` in the data directory.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Keep tenants' routes in step with `DIR/<tenant>.json|.toml`: applied at start, on every
    /// change and on SIGHUP; an invalid file is logged and the previous version stays live.
    #[arg(long, value_name = "DIR")]
    routes_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => match serve(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("Error: {e:?}");
                ExitCode::FAILURE
            }
        },
        Command::Client(command) => cli::run(cli.client, command).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = switchyard::config::Config::load(args.config.as_deref())?;
    let log = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("SWITCHYARD_LOG").unwrap_or_else(|_| EnvFilter::new("info")));
    match config.log_format {
        LogFormat::Text => log.init(),
        // One JSON object a line, with the current span's fields (event id, tenant).
        LogFormat::Json => log.json().flatten_event(true).with_current_span(true).with_span_list(false).init(),
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(url) = args.database_url {
        config.database_url = Some(url);
    }
    if let Some(dir) = args.routes_dir {
        config.routes_dir = Some(dir);
    }
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    switchyard::run(config, listener, shutdown).await
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}
