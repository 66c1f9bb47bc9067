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

/// A table of `rows` (objects) with one column per `(header, field)`; fields are JSON keys
/// rendered with [`cell`]. Prints `empty` instead when there are no rows.
pub fn print_table(rows: &Value, columns: &[(&str, &str)], empty: &str) {
    let rows = rows.as_array().map(Vec::as_slice).unwrap_or_default();
    if rows.is_empty() {
        outln!("{empty}");
        return;
    }
    let lines: Vec<Vec<String>> =
        rows.iter().map(|row| columns.iter().map(|(_, field)| cell(&row[*field])).collect()).collect();
    print_rows(&columns.iter().map(|(h, _)| *h).collect::<Vec<_>>(), lines);
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

/// `key: value` lines for one object's fields, aligned.
pub fn print_fields(value: &Value, fields: &[(&str, &str)]) {
    let width = fields.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    for (label, field) in fields {
        outln!("{label:<width$}  {}", cell(&value[*field]));
    }
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
    let Some(n) = bytes.as_f64() else { return cell(bytes) };
    match n {
        n if n >= 1024.0 * 1024.0 => format!("{:.1} MiB", n / (1024.0 * 1024.0)),
        n if n >= 1024.0 => format!("{:.1} KiB", n / 1024.0),
        n => format!("{n} B"),
    }
}

/// The first 12 hex digits of a digest: enough to tell versions apart at a glance.
pub fn short_hash(value: &Value) -> String {
    value.as_str().map(|s| s.chars().take(12).collect()).unwrap_or_else(|| cell(value))
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
        assert_eq!(short_hash(&json!("0123456789abcdef")), "0123456789ab");
    }

    #[test]
    fn tables_are_flush_left_without_trailing_blanks() {
        let rows = vec![vec!["wide value".to_owned(), "x".to_owned()]];
        assert_eq!(render_rows(&["A", "LONGER"], rows), "A           LONGER\nwide value  x");
    }
}
