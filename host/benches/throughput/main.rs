//! Throughput and latency of Switchyard as users run it: `cargo bench --bench throughput`.
//!
//! The router runs as its own process (`switchyard serve --config`, this build's release
//! binary) on a fresh SQLite data directory per scenario. This process is both the load (HTTP
//! senders on loopback, keep-alive, posting the call-tracking seed event with a unique
//! `data.id`) and the destination (a receiver that verifies every Standard Webhooks signature
//! and records when each event arrived). Scenarios:
//!
//! 1. `forwarder`: the ceiling. This executable re-run as a bare forwarder (202 at once, then
//!    sign and POST; no storage, no plugin) with the same senders and receiver.
//! 2. `passthrough`: full speed through the passthrough plugin: ingest rate, end-to-end rate,
//!    end to end / ingest, send-to-receipt p50/p99, end to end / forwarder's.
//! 3. `tagger`: the same through call-outcome-tagger (its kv read and write per event).
//! 4. `steady`: open-loop sends at a fixed rate (passthrough); send-to-receipt p50/p99/max.
//! 5. `prefill`: passthrough at full speed on a router restarted on a database already
//!    holding a long history of processed events, against scenario 2's rate.
//! 6. `calls`: one plugin call (fresh sandboxed instance + `handle`) in this process.
//!
//! Every figure is printed beside its target, then a summary table. Options (after `--`):
//! `--only forwarder,passthrough,tagger,steady,prefill,calls`, `--events N` (20000),
//! `--concurrency N` (32), `--prefill N` (200000), `--steady-rate R` (300),
//! `--steady-secs S` (10), `--router-bin PATH`: also measure another router binary (a
//! baseline) in the same run, side by side with this build. `--database-url postgres://...`
//! runs every router on PostgreSQL (a fresh database on that server per run, dropped after),
//! and `--nodes N` (1) starts N routers on it, the senders spread over them. For example:
//!
//! ```sh
//! cargo bench --bench throughput -- --events 3000 --prefill 20000 --router-bin /tmp/old/switchyard
//! cargo bench --bench throughput -- --only passthrough --database-url postgres://postgres@127.0.0.1/postgres --nodes 3
//! ```
//!
//! Senders, receiver and router share the machine, as on a single host; on two cores the
//! bench's own share is a real part of the figures, the same for every binary measured.

#[path = "../../../tests/e2e/support/plugins.rs"]
mod plugins;

mod calls;
mod forwarder;
mod load;
mod options;
mod prefill;
mod receiver;
mod report;
mod router;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::forwarder::Forwarder;
use crate::load::Ingest;
use crate::options::{Mode, Options, Scenario};
use crate::receiver::Receiver;
use crate::report::{Figure, Run, Value};
use crate::router::{Deployment, Router};

/// The Standard Webhooks reference secret, for every destination.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const TOKEN: &str = "bench-admin-token-0123456789";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match options::parse(std::env::args().skip(1))? {
        Mode::Forwarder { listen, target } => forwarder::serve(&listen, &target).await,
        Mode::Bench(options) => bench(options).await,
    }
}

async fn bench(o: Options) -> anyhow::Result<()> {
    println!(
        "switchyard throughput: {} events per full-speed run, {} senders, steady {}/s for {} s, prefill {}",
        o.events, o.concurrency, o.steady_rate, o.steady_secs, o.prefill
    );
    match &o.database_url {
        Some(url) => println!("storage: PostgreSQL at {url} (a fresh database per run), {} node(s)", o.nodes),
        None => println!("storage: each router's own SQLite file, 1 node"),
    }
    if o.wants_router() || o.wants(Scenario::Calls) {
        // Built (or found built) before anything is timed.
        plugins::dir();
    }
    let bodies = Arc::new(load::events(o.events)?);
    let mut shared = Vec::new();
    let mut ceiling = None;
    if o.wants(Scenario::Forwarder) {
        let run = forwarder_run(&o, bodies.clone()).await?;
        ceiling = Some(run.end_to_end_rate());
        shared = print_scenario("forwarder", &run, None);
    }
    let mut columns = Vec::new();
    if let Some(bin) = &o.router_bin {
        let figures = router_runs(&o, "baseline", bin, &bodies, ceiling).await?;
        columns.push(("baseline", [shared.clone(), figures].concat()));
    }
    let this_build = Path::new(env!("CARGO_BIN_EXE_switchyard"));
    let mut figures = [shared, router_runs(&o, "this build", this_build, &bodies, ceiling).await?].concat();
    if o.wants(Scenario::Calls) {
        figures.extend(plugin_calls(&bodies[0]).await?);
    }
    columns.push(("this build", figures));
    println!("\nsummary ({} events per full-speed run; targets judged on this build)", o.events);
    let columns: Vec<(&str, &[Figure])> = columns.iter().map(|(label, f)| (*label, f.as_slice())).collect();
    report::table(&columns);
    Ok(())
}

/// Scenario 1: the same load through the bare forwarder.
async fn forwarder_run(o: &Options, bodies: Arc<Vec<Bytes>>) -> anyhow::Result<Run> {
    println!("\n== bare forwarder (the ceiling)");
    let rx = Receiver::start(bodies.len()).await?;
    let forwarder = Forwarder::start(&rx.url).await?;
    let sent = Ingest::new(&forwarder.base)?.full_speed(bodies, o.concurrency).await?;
    rx.wait_all("forwarder").await?;
    forwarder.stop().await?;
    Run::new(&sent, &rx, 0)
}

/// Scenarios 2 to 5 on one router binary.
async fn router_runs(
    o: &Options,
    label: &str,
    bin: &Path,
    bodies: &Arc<Vec<Bytes>>,
    ceiling: Option<f64>,
) -> anyhow::Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let mut passthrough = None;
    for (scenario, name, plugin, target) in [
        (Scenario::Passthrough, "passthrough", "passthrough", 3000.0),
        (Scenario::Tagger, "tagger", "call-outcome-tagger", 2000.0),
    ] {
        if o.wants(scenario) {
            println!("\n== {name}, full speed ({label}: {})", bin.display());
            let run = full_speed(o, bin, plugin, bodies.clone()).await?;
            figures.extend(print_scenario(name, &run, Some(Targets { end_to_end: target, ceiling })));
            if scenario == Scenario::Passthrough {
                passthrough = Some(run.end_to_end_rate());
            }
        }
    }
    if o.wants(Scenario::Steady) {
        println!("\n== steady {}/s, passthrough ({label})", o.steady_rate);
        figures.extend(steady(o, bin).await?);
    }
    if o.wants(Scenario::Prefill) {
        println!("\n== passthrough on {} stored events ({label})", o.prefill);
        figures.extend(prefilled(o, bin, bodies.clone(), passthrough).await?);
    }
    Ok(figures)
}

/// A fresh router with one `plugin` route, driven at full speed.
async fn full_speed(o: &Options, bin: &Path, plugin: &str, bodies: Arc<Vec<Bytes>>) -> anyhow::Result<Run> {
    let rx = Receiver::start(bodies.len()).await?;
    let nodes = Deployment::start(bin, o.nodes, o.database_url.as_deref()).await?;
    nodes.setup(plugin, &rx.url).await?;
    let sent = nodes.check(Ingest::spread(&nodes.bases())?.full_speed(bodies, o.concurrency).await)?;
    nodes.check(rx.wait_all(plugin).await)?;
    // Stopped before counting, so a duplicate sent during shutdown still counts.
    nodes.stop().await?;
    Run::new(&sent, &rx, 0)
}

/// Scenario 4: open-loop sends at `--steady-rate`; the first second warms up uncounted.
async fn steady(o: &Options, bin: &Path) -> anyhow::Result<Vec<Figure>> {
    let warm_up = o.steady_rate.round() as usize;
    let bodies = Arc::new(load::events(warm_up + (o.steady_rate * o.steady_secs).round() as usize)?);
    let rx = Receiver::start(bodies.len()).await?;
    let nodes = Deployment::start(bin, o.nodes, o.database_url.as_deref()).await?;
    nodes.setup("passthrough", &rx.url).await?;
    let sent = nodes.check(Ingest::spread(&nodes.bases())?.paced(bodies, o.steady_rate).await)?;
    nodes.check(rx.wait_all("steady").await)?;
    nodes.stop().await?;
    let run = Run::new(&sent, &rx, warm_up)?;
    let name = format!("steady {}/s", o.steady_rate);
    let figures = vec![
        Figure::new(format!("{name}: send to receipt p50"), Value::Ms(run.percentile_ms(0.50))).at_most(3.0),
        Figure::new(format!("{name}: send to receipt p99"), Value::Ms(run.percentile_ms(0.99))).at_most(15.0),
        Figure::new(format!("{name}: send to receipt max"), Value::Ms(run.max_ms())),
        Figure::new(format!("{name}: refusals (429/503)"), Value::Count(run.refusals as f64)),
        run.faults(&name),
    ];
    figures.iter().for_each(|f| println!("{}", f.line()));
    println!("{}", run.fault_detail());
    Ok(figures)
}

/// Scenario 5: history written into a stopped router's database, then passthrough at full
/// speed on the restarted router, compared with scenario 2 (`passthrough`, events/s).
async fn prefilled(
    o: &Options,
    bin: &Path,
    bodies: Arc<Vec<Bytes>>,
    passthrough: Option<f64>,
) -> anyhow::Result<Vec<Figure>> {
    let dir = tempfile::tempdir()?;
    let rx = Receiver::start(bodies.len()).await?;
    let router = Router::start(bin, dir.path()).await?;
    router.setup("passthrough", &rx.url).await?;
    router.stop().await?;
    let data = router::data_dir(dir.path());
    let took = prefill::prefill(&data, o.prefill, &rx.url, SECRET).await?;
    let size = std::fs::metadata(data.join("switchyard.db"))?.len();
    println!(
        "  ({} events with route results, deliveries and attempts written in {:.1} s; database {} MiB)",
        o.prefill,
        took.as_secs_f64(),
        size >> 20
    );
    let restart = Instant::now();
    let router = Router::start(bin, dir.path()).await?;
    let restart = restart.elapsed();
    let sent = router.check(Ingest::new(&router.base)?.full_speed(bodies, o.concurrency).await)?;
    router.check(rx.wait_all("prefill").await)?;
    router.stop().await?;
    let run = Run::new(&sent, &rx, 0)?;
    let name = format!("{} stored", o.prefill);
    let mut figures = vec![
        Figure::new(format!("{name}: restart to healthy"), Value::Ms(restart.as_secs_f64() * 1e3)),
        Figure::new(format!("{name}: end to end"), Value::Rate(run.end_to_end_rate())),
        Figure::new(format!("{name}: ingest"), Value::Rate(run.ingest_rate())),
        Figure::new(format!("{name}: send to receipt p99"), Value::Ms(run.percentile_ms(0.99))).below(1000.0),
        Figure::new(format!("{name}: refusals (429/503)"), Value::Count(run.refusals as f64)),
    ];
    match passthrough {
        Some(rate) => figures.push(
            Figure::new(format!("{name}: end to end / empty database's"), Value::Ratio(run.end_to_end_rate() / rate))
                .at_least(0.9),
        ),
        None => println!("  (run `passthrough` too for the ratio to an empty database)"),
    }
    figures.push(run.faults(&name));
    figures.iter().for_each(|f| println!("{}", f.line()));
    println!("{}", run.fault_detail());
    Ok(figures)
}

/// The figures of a full-speed run, printed and returned for the summary.
fn print_scenario(name: &str, run: &Run, targets: Option<Targets>) -> Vec<Figure> {
    let figures = scenario_figures(name, run, targets);
    figures.iter().for_each(|f| println!("{}", f.line()));
    println!("{}", run.fault_detail());
    figures
}

/// What a router run at full speed is held to. The forwarder, the ceiling, has none.
#[derive(Clone, Copy)]
struct Targets {
    end_to_end: f64,
    /// The forwarder's end-to-end rate, when it ran.
    ceiling: Option<f64>,
}

fn scenario_figures(name: &str, run: &Run, targets: Option<Targets>) -> Vec<Figure> {
    let keeping_up = run.ingest.as_secs_f64() / run.end_to_end.as_secs_f64();
    let mut end_to_end = Figure::new(format!("{name}: end to end"), Value::Rate(run.end_to_end_rate()));
    let mut keeping = Figure::new(format!("{name}: keeping up (end to end / ingest)"), Value::Ratio(keeping_up));
    let mut p99 = Figure::new(format!("{name}: send to receipt p99"), Value::Ms(run.percentile_ms(0.99)));
    let mut against_ceiling = None;
    if let Some(t) = targets {
        end_to_end = end_to_end.at_least(t.end_to_end);
        keeping = keeping.at_least(0.9);
        p99 = p99.below(1000.0);
        against_ceiling = t.ceiling.map(|ceiling| {
            let ratio = Value::Ratio(run.end_to_end_rate() / ceiling);
            Figure::new(format!("{name}: end to end / forwarder's"), ratio).at_least(0.5)
        });
    }
    let mut figures = vec![
        end_to_end,
        Figure::new(format!("{name}: ingest"), Value::Rate(run.ingest_rate())),
        keeping,
        Figure::new(format!("{name}: send to receipt p50"), Value::Ms(run.percentile_ms(0.50))),
        p99,
    ];
    figures.extend(against_ceiling);
    figures.push(Figure::new(format!("{name}: refusals (429/503)"), Value::Count(run.refusals as f64)));
    figures.push(run.faults(name));
    figures
}

/// Scenario 6: the sandbox cost per event, for both plugins.
async fn plugin_calls(sample: &[u8]) -> anyhow::Result<Vec<Figure>> {
    println!("\n== plugin call (fresh sandboxed instance + handle, incl. the plugin's own kv I/O), in process");
    let mut figures = Vec::new();
    for plugin in ["passthrough", "call-outcome-tagger"] {
        let per_call = calls::plugin_call(plugin, sample).await?;
        let figure = Figure::new(format!("plugin call, {plugin}"), Value::Us(per_call.as_secs_f64() * 1e6));
        println!("{}", figure.line());
        figures.push(figure);
    }
    Ok(figures)
}
