//! How answers are shown: borderless tables for people (easy to read and to `grep`/`awk`),
//! or the server's JSON untouched for scripts (`--json`).

use std::io::Write as _;

use comfy_table::{ContentArrangement, Table, presets};
use serde_json::Value;

/// `println!` for command output. Unlike `println!` it does not panic when stdout is closed
/// early (`switchyard events list acme | head`): the reader has what it wanted, so it exits.
macro_rules! outln {
    () => {
        $crate::cli::output::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;

pub fn write_out(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(1);
    }
}

/// Where a command's answer goes.
#[derive(Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// In `--json` mode prints `value` and returns true: the caller then has nothing more to do.
    pub fn json(&self, value: &Value) -> bool {
        if self.json && !value.is_null() {
            outln!("{}", pretty(value));
        }
        self.json
    }
}

/// A table of typed rows, each already rendered to cells; prints `empty` instead when there
/// are none.
pub fn print_list(headers: &[&str], rows: Vec<Vec<String>>, empty: &str) {
    if rows.is_empty() {
        outln!("{empty}");
    } else {
        print_rows(headers, rows);
    }
}

/// A table from already rendered cells.
pub fn print_rows(headers: &[&str], rows: Vec<Vec<String>>) {
    outln!("{}", render_rows(headers, rows));
}

fn render_rows(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING).set_content_arrangement(ContentArrangement::Disabled).set_header(headers);
    for row in rows {
        table.add_row(row);
    }
    // Flush left, two blanks between columns: the first column starts the line, as in `ls -l`.
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    // comfy-table pads every line to the table's width; trailing blanks only get in the way.
    table.to_string().lines().map(str::trim_end).collect::<Vec<_>>().join("\n")
}

/// `label: value` lines, aligned, from a typed answer's rendered fields.
pub fn print_pairs(fields: &[(&str, String)]) {
    let width = fields.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    for (label, value) in fields {
        outln!("{label:<width$}  {value}");
    }
}

/// A typed field as a cell: rendered through its JSON form, so enums show their wire names,
/// `None` shows `-` and RFC 3339 strings are shortened, exactly as [`cell`] does.
pub fn show<T: serde::Serialize + ?Sized>(value: &T) -> String {
    cell(&serde_json::to_value(value).unwrap_or_default())
}

/// A stored unix-ms time as a cell (`2025-06-01 12:34:56Z`).
pub fn time(ms: i64) -> String {
    cell(&Value::String(switchyard::store::ms_to_rfc3339(ms)))
}

/// [`time`] for optional times: `-` when there is none.
pub fn opt_time(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".to_owned(), time)
}

/// One value as a table cell: strings bare, times shortened, null as `-`, the rest as JSON.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) => short_time(s).unwrap_or_else(|| s.clone()),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
        Value::Array(items) if items.is_empty() => "-".to_owned(),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            items.iter().map(cell).collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
    }
}

/// `2025-06-01T12:34:56.789Z` as `2025-06-01 12:34:56Z`: sub-seconds are noise in a table.
fn short_time(s: &str) -> Option<String> {
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    Some(if t.offset().local_minus_utc() == 0 {
        t.format("%Y-%m-%d %H:%M:%SZ").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M:%S%:z").to_string()
    })
}

/// Bytes as `12.3 KiB`.
pub fn size(bytes: &Value) -> String {
    bytes.as_f64().map_or_else(|| cell(bytes), byte_size)
}

/// [`size`] for a typed count.
pub fn byte_size(n: f64) -> String {
    match n {
        n if n >= 1024.0 * 1024.0 => format!("{:.1} MiB", n / (1024.0 * 1024.0)),
        n if n >= 1024.0 => format!("{:.1} KiB", n / 1024.0),
        n => format!("{n} B"),
    }
}

/// The first 12 hex digits of a digest: enough to tell versions apart at a glance.
pub fn short_hash(digest: &str) -> String {
    digest.chars().take(12).collect()
}

pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).expect("a Value always serialises")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn cells_are_short_and_readable() {
        assert_eq!(cell(&json!("2025-06-01T12:34:56.789Z")), "2025-06-01 12:34:56Z");
        assert_eq!(cell(&json!("acme")), "acme");
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!(3)), "3");
        assert_eq!(cell(&json!(["log", "kv"])), "log, kv");
        assert_eq!(size(&json!(2048)), "2.0 KiB");
        assert_eq!(short_hash("0123456789abcdef"), "0123456789ab");
    }

    #[test]
    fn tables_are_flush_left_without_trailing_blanks() {
        let rows = vec![vec!["wide value".to_owned(), "x".to_owned()]];
        assert_eq!(render_rows(&["A", "LONGER"], rows), "A           LONGER\nwide value  x");
    }
}
