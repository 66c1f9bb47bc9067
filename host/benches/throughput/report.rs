//! Figures, their targets, and the closing summary table.

use std::time::{Duration, Instant};

use crate::load::Sent;
use crate::receiver::Receiver;

/// One scenario's measurements.
pub struct Run {
    pub events: usize,
    /// First POST to the last 202.
    pub ingest: Duration,
    /// First POST to the last signed delivery received.
    pub end_to_end: Duration,
    /// Send to receipt of every counted event, sorted.
    pub latencies: Vec<Duration>,
    pub refusals: u64,
    pub duplicates: usize,
    pub bad_signatures: usize,
    pub unexpected: usize,
}

impl Run {
    /// Combines what the senders and the receiver saw; events before `skip` (a warm-up) are
    /// sent and delivered but not counted in the latencies.
    pub fn new(sent: &Sent, rx: &Receiver, skip: usize) -> anyhow::Result<Self> {
        let receipts = rx.receipts();
        let start = sent.at.iter().min().copied().unwrap_or_else(Instant::now);
        let mut latencies = Vec::with_capacity(receipts.len());
        let mut last = start;
        for (i, (got, at)) in receipts.iter().zip(&sent.at).enumerate() {
            let got = got.ok_or_else(|| anyhow::anyhow!("event {i} was never delivered"))?;
            last = last.max(got);
            if i >= skip {
                latencies.push(got.saturating_duration_since(*at));
            }
        }
        latencies.sort();
        Ok(Self {
            events: receipts.len(),
            ingest: sent.last_ack.saturating_duration_since(start),
            end_to_end: last.saturating_duration_since(start),
            latencies,
            refusals: sent.refusals,
            duplicates: rx.duplicates(),
            bad_signatures: rx.bad_signatures(),
            unexpected: rx.unexpected(),
        })
    }

    pub fn ingest_rate(&self) -> f64 {
        self.events as f64 / self.ingest.as_secs_f64()
    }

    pub fn end_to_end_rate(&self) -> f64 {
        self.events as f64 / self.end_to_end.as_secs_f64()
    }

    /// Nearest-rank percentile of the latencies, in milliseconds.
    pub fn percentile_ms(&self, q: f64) -> f64 {
        let n = self.latencies.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n.max(1)) - 1;
        self.latencies.get(rank).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    }

    pub fn max_ms(&self) -> f64 {
        self.latencies.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    }

    /// Deliveries that must not happen: the same event twice, a signature that does not
    /// verify, a body this bench never sent. One figure, so the summary stays short.
    pub fn faults(&self, name: &str) -> Figure {
        let total = self.duplicates + self.bad_signatures + self.unexpected;
        Figure::new(format!("{name}: duplicates + bad signatures + unexpected"), Value::Count(total as f64))
            .at_most(0.0)
    }

    pub fn fault_detail(&self) -> String {
        format!(
            "  duplicates {}, bad signatures {}, unexpected deliveries {}",
            self.duplicates, self.bad_signatures, self.unexpected
        )
    }
}

#[derive(Clone, Copy)]
pub enum Value {
    Rate(f64),
    Ratio(f64),
    Ms(f64),
    Us(f64),
    Count(f64),
}

impl Value {
    fn number(self) -> f64 {
        match self {
            Value::Rate(v) | Value::Ratio(v) | Value::Ms(v) | Value::Us(v) | Value::Count(v) => v,
        }
    }

    fn show(self) -> String {
        match self {
            Value::Rate(v) => format!("{v:.0}/s"),
            Value::Ratio(v) => format!("{v:.2}"),
            Value::Ms(v) if v < 10.0 => format!("{v:.2} ms"),
            Value::Ms(v) => format!("{v:.0} ms"),
            Value::Us(v) => format!("{v:.1} us"),
            Value::Count(v) => format!("{v:.0}"),
        }
    }
}

#[derive(Clone, Copy)]
enum Target {
    AtLeast(f64),
    AtMost(f64),
    Below(f64),
}

#[derive(Clone)]
pub struct Figure {
    pub name: String,
    value: Value,
    target: Option<Target>,
}

impl Figure {
    pub fn new(name: impl Into<String>, value: Value) -> Self {
        Self { name: name.into(), value, target: None }
    }

    pub fn at_least(mut self, bound: f64) -> Self {
        self.target = Some(Target::AtLeast(bound));
        self
    }

    pub fn at_most(mut self, bound: f64) -> Self {
        self.target = Some(Target::AtMost(bound));
        self
    }

    pub fn below(mut self, bound: f64) -> Self {
        self.target = Some(Target::Below(bound));
        self
    }

    fn target_text(&self) -> String {
        let (op, bound) = match self.target {
            None => return "-".into(),
            Some(Target::AtLeast(b)) => (">=", b),
            Some(Target::AtMost(b)) => ("<=", b),
            Some(Target::Below(b)) => ("<", b),
        };
        // Bounds are round numbers: shown as written, in the figure's unit.
        let unit = match self.value {
            Value::Rate(_) => "/s",
            Value::Ms(_) => " ms",
            Value::Us(_) => " us",
            Value::Ratio(_) | Value::Count(_) => "",
        };
        format!("{op} {bound}{unit}")
    }

    fn met(&self) -> &'static str {
        let v = self.value.number();
        match self.target {
            None => "",
            Some(Target::AtLeast(b)) if v >= b => "yes",
            Some(Target::AtMost(b)) if v <= b => "yes",
            Some(Target::Below(b)) if v < b => "yes",
            Some(_) => "NO",
        }
    }

    /// `name: value (target ..., met)`, as printed while the scenarios run.
    pub fn line(&self) -> String {
        match self.target {
            None => format!("  {}: {}", self.name, self.value.show()),
            Some(_) => {
                format!("  {}: {}   (target {}: {})", self.name, self.value.show(), self.target_text(), self.met())
            }
        }
    }
}

/// Prints `figure | value(s) | target | met?`, one value column per binary. Targets are
/// judged on the last column (this build).
pub fn table(columns: &[(&str, &[Figure])]) {
    let Some((_, last)) = columns.last() else { return };
    let mut rows = vec![
        std::iter::once("figure".to_owned())
            .chain(columns.iter().map(|(label, _)| label.to_string()))
            .chain(["target".into(), "met?".into()])
            .collect::<Vec<_>>(),
    ];
    for figure in *last {
        let value = |figures: &[Figure]| {
            figures.iter().find(|f| f.name == figure.name).map_or_else(|| "-".into(), |f| f.value.show())
        };
        rows.push(
            std::iter::once(figure.name.clone())
                .chain(columns.iter().map(|(_, figures)| value(figures)))
                .chain([figure.target_text(), figure.met().into()])
                .collect(),
        );
    }
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        println!("| {} |", cells.join(" | "));
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            println!("|-{}-|", rule.join("-|-"));
        }
    }
}
