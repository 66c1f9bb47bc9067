//! Command-line options. `cargo bench` passes `--bench` to every harness-less bench; it is
//! accepted and ignored. Anything else unknown is an error, so a typo cannot silently run the
//! defaults.

use std::path::PathBuf;

use anyhow::{Context, bail};

/// What this process was started to do.
pub enum Mode {
    Bench(Options),
    /// The bare forwarder child (scenario 1): `--forwarder LISTEN TARGET`.
    Forwarder {
        listen: String,
        target: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Forwarder,
    Passthrough,
    Tagger,
    Steady,
    Prefill,
    Calls,
}

impl Scenario {
    const ALL: [(Scenario, &'static str); 6] = [
        (Scenario::Forwarder, "forwarder"),
        (Scenario::Passthrough, "passthrough"),
        (Scenario::Tagger, "tagger"),
        (Scenario::Steady, "steady"),
        (Scenario::Prefill, "prefill"),
        (Scenario::Calls, "calls"),
    ];
}

pub struct Options {
    pub only: Vec<Scenario>,
    pub events: usize,
    pub concurrency: usize,
    pub prefill: usize,
    pub steady_rate: f64,
    pub steady_secs: f64,
    /// Another router binary to measure beside this build (the baseline).
    pub router_bin: Option<PathBuf>,
    /// A PostgreSQL server (`postgres://user@host/db`): every router run gets a fresh
    /// database there, dropped after it. Unset: each router's own SQLite file.
    pub database_url: Option<String>,
    /// Router processes sharing the work (and the database), senders spread over them.
    pub nodes: usize,
}

impl Options {
    pub fn wants(&self, s: Scenario) -> bool {
        self.only.contains(&s)
    }

    /// True when any scenario starts a router process (and so needs the plugins).
    pub fn wants_router(&self) -> bool {
        [Scenario::Passthrough, Scenario::Tagger, Scenario::Steady, Scenario::Prefill].iter().any(|s| self.wants(*s))
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            only: Scenario::ALL.iter().map(|(s, _)| *s).collect(),
            events: 20_000,
            concurrency: 32,
            prefill: 200_000,
            steady_rate: 300.0,
            steady_secs: 10.0,
            router_bin: None,
            database_url: None,
            nodes: 1,
        }
    }
}

pub fn parse(args: impl IntoIterator<Item = String>) -> anyhow::Result<Mode> {
    let mut o = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--bench" => {}
            "--forwarder" => return Ok(Mode::Forwarder { listen: value()?, target: value()? }),
            "--only" => o.only = value()?.split(',').map(scenario).collect::<anyhow::Result<_>>()?,
            "--events" => o.events = number(&arg, &value()?)?,
            "--concurrency" => o.concurrency = number(&arg, &value()?)?,
            "--prefill" => o.prefill = number(&arg, &value()?)?,
            "--steady-rate" => o.steady_rate = number(&arg, &value()?)?,
            "--steady-secs" => o.steady_secs = number(&arg, &value()?)?,
            "--router-bin" => o.router_bin = Some(value()?.into()),
            "--database-url" => o.database_url = Some(value()?),
            "--nodes" => o.nodes = number(&arg, &value()?)?,
            _ => bail!(
                "unknown argument {arg:?}; options: --only {} --events N --concurrency N --prefill N \
                 --steady-rate R --steady-secs S --router-bin PATH --database-url postgres://... --nodes N",
                Scenario::ALL.map(|(_, name)| name).join(",")
            ),
        }
    }
    if o.events == 0 || o.concurrency == 0 || o.steady_rate <= 0.0 || o.steady_secs <= 0.0 {
        bail!("--events, --concurrency, --steady-rate and --steady-secs must be positive");
    }
    if o.nodes == 0 || (o.nodes > 1 && o.database_url.is_none()) {
        bail!(
            "--nodes must be at least 1, and more than one node needs --database-url (they share a PostgreSQL database)"
        );
    }
    if let Some(url) = &o.database_url
        && !url.starts_with("postgres://")
        && !url.starts_with("postgresql://")
    {
        bail!("--database-url must be a postgres:// URL (the default, without it, is SQLite)");
    }
    if o.database_url.is_some() && o.wants(Scenario::Prefill) && o.only.len() > 1 {
        // `prefill` writes an SQLite file directly; it is left out rather than run on SQLite.
        o.only.retain(|s| *s != Scenario::Prefill);
    } else if o.database_url.is_some() && o.wants(Scenario::Prefill) {
        bail!("the prefill scenario writes an SQLite file directly; run it without --database-url");
    }
    Ok(Mode::Bench(o))
}

fn scenario(name: &str) -> anyhow::Result<Scenario> {
    Scenario::ALL
        .iter()
        .find(|(_, n)| *n == name.trim())
        .map(|(s, _)| *s)
        .with_context(|| format!("unknown scenario {name:?}; known: {}", Scenario::ALL.map(|(_, name)| name).join(",")))
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> anyhow::Result<T> {
    value.parse().ok().with_context(|| format!("{name}: {value:?} is not a valid number"))
}
