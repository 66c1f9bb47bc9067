//! `config`: the step's configuration map from the route document. Read-only.

use crate::runtime::bindings::config::Host;
use crate::runtime::state::PluginState;

impl Host for PluginState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.config.get(&key).cloned())
    }

    async fn entries(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.config.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}
