//! The per-route configuration an operator gives each pipeline step.
//!
//! Read settings here instead of hard-coding them, so one plugin build serves many routes.

use crate::__private::bindings::switchyard::plugin::config as host;

/// The value of `key`, or `None` when it is not set.
pub fn get(key: &str) -> Option<String> {
    host::get(key)
}

/// The value of `key`, or `default` when it is not set. A key set to the empty string is set:
/// you get `""`, not the default.
pub fn get_or(key: &str, default: &str) -> String {
    get(key).unwrap_or_else(|| default.to_owned())
}

/// A comma-separated list setting: the value of `key` (or `default` when unset) split on
/// commas, each item trimmed, empty items removed. `"#a, #b,"` gives `["#a", "#b"]`.
pub fn get_list(key: &str, default: &str) -> Vec<String> {
    split_list(&get_or(key, default))
}

/// Every key and value, sorted by key.
pub fn entries() -> Vec<(String, String)> {
    host::entries()
}

fn split_list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn split_list_trims_and_skips_empties() {
        assert_eq!(super::split_list(" #a, #b ,,"), vec!["#a", "#b"]);
        assert!(super::split_list(" , ").is_empty());
    }
}
