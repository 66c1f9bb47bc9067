//! The sandbox's share of each event: a fresh pooled instance plus `handle`, called directly
//! through `switchyard::runtime` in this process (no HTTP, no router), including the plugin's
//! own kv I/O.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard::config::{Capability, Config};
use switchyard::event::{Event, EventId};
use switchyard::runtime::{Runtime, WORLD};
use switchyard::store::{NewPluginVersion, Store};

use crate::plugins;

const CALLS: u32 = 2000;

/// Mean time of one call of `plugin` on the seed event.
pub async fn plugin_call(plugin: &str, sample: &[u8]) -> anyhow::Result<Duration> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path()).await?;
    let tenant = store.create_tenant("bench").await?;
    let runtime = Arc::new(Runtime::new(&Config::default().plugins, &dir.path().join("artifacts"), store.clone())?);
    let wasm = Arc::new(plugins::wasm(plugin));
    let validated = runtime.validate("bench", wasm.clone(), &Capability::ALL).await?;
    let new = NewPluginVersion { sha256: &validated.sha256, world: WORLD, imports: &validated.imports, wasm: &wasm };
    let meta = store.insert_plugin_version(&tenant.id, plugin, &new).await?;
    let version = store.plugin_version(&tenant.id, plugin, Some(meta.version)).await?.expect("just inserted");
    let loaded = runtime.load(&version).await?;
    let body: serde_json::Value = serde_json::from_slice(sample)?;
    let event = Event {
        id: EventId::generate(),
        tenant: "bench".into(),
        source: "calls".into(),
        event_type: "call.outcome_tagged".into(),
        time: chrono::Utc::now(),
        subject: None,
        data: body["data"].to_string(),
        attributes: vec![],
    };
    let config = Arc::new(Default::default());
    let started = Instant::now();
    for _ in 0..CALLS {
        runtime.invoke(&loaded, &tenant.id, Arc::clone(&config), &event).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(started.elapsed() / CALLS)
}
