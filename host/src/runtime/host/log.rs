//! `log`: plugin messages go to the router's log (tagged with tenant and plugin) and are
//! kept, bounded, for the caller of the invocation.

use crate::runtime::bindings::log::{Host, Level};
use crate::runtime::state::{LogLine, PluginState};

/// Per call: a chatty plugin cannot flood the log or the host's memory.
const MAX_LINES: usize = 100;
const MAX_BYTES: usize = 16 * 1024;

impl Host for PluginState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        if self.logs.len() >= MAX_LINES || self.log_bytes >= MAX_BYTES {
            return Ok(());
        }
        let mut message = message;
        if message.len() > MAX_BYTES - self.log_bytes {
            let mut cut = MAX_BYTES - self.log_bytes;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        self.log_bytes += message.len();
        let plugin = &*self.label;
        let level = match level {
            Level::Trace => {
                tracing::trace!(target: "plugin", plugin, "{message}");
                "trace"
            }
            Level::Debug => {
                tracing::debug!(target: "plugin", plugin, "{message}");
                "debug"
            }
            Level::Info => {
                tracing::info!(target: "plugin", plugin, "{message}");
                "info"
            }
            Level::Warn => {
                tracing::warn!(target: "plugin", plugin, "{message}");
                "warn"
            }
            Level::Error => {
                tracing::error!(target: "plugin", plugin, "{message}");
                "error"
            }
        };
        self.logs.push(LogLine { level, message });
        Ok(())
    }
}
