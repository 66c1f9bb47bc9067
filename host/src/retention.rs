//! The pruner: a background task that removes finished work past its retention, so the
//! database stops growing with the router's age.
//!
//! Each pass walks every tenant: its finished events older than its retention (with their raw
//! bodies, route results, deliveries and attempts), then its route versions beyond the newest
//! `route_versions`. It removes at most `retention.batch_rows` rows' worth of events per
//! transaction and pauses `retention.pause` between batches, so the hot path's writer never
//! waits for more than one small delete, however large the backlog of old rows.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::store::{Result, Store, now_ms};

/// What one pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub events: u64,
    pub route_versions: u64,
}

pub struct Pruner {
    pub store: Store,
    pub config: Arc<Config>,
}

impl Pruner {
    /// Runs a pass at once, then one every `retention.interval`, until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            match self.pass(&stop).await {
                Ok(p) if p != Pruned::default() => {
                    tracing::info!(events = p.events, route_versions = p.route_versions, "pruned data past retention")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("pruning stopped early: {e}; trying again next pass"),
            }
            tokio::select! {
                () = tokio::time::sleep(self.config.retention.interval) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// One pass over every tenant. Returns early (with what it removed so far) on `stop`.
    pub async fn pass(&self, stop: &CancellationToken) -> Result<Pruned> {
        let r = &self.config.retention;
        let mut pruned = Pruned::default();
        for tenant in self.store.list_tenants().await? {
            let keep = self.config.retention(&tenant.name);
            let cutoff = now_ms().saturating_sub(keep.events.as_millis().try_into().unwrap_or(i64::MAX));
            let mut cursor = None;
            loop {
                let (removed, next) =
                    self.store.prune_events(&tenant.id, cutoff, cursor.as_ref(), r.batch_rows).await?;
                pruned.events += removed;
                let Some(next) = next else { break };
                cursor = Some(next);
                if !pause(r.pause, stop).await {
                    return Ok(pruned);
                }
            }
            loop {
                let removed = self.store.prune_route_versions(&tenant.id, keep.route_versions, r.batch_rows).await?;
                pruned.route_versions += removed;
                if removed < u64::from(r.batch_rows) {
                    break;
                }
                if !pause(r.pause, stop).await {
                    return Ok(pruned);
                }
            }
        }
        Ok(pruned)
    }
}

/// Waits `d`; false when `stop` came first.
async fn pause(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => true,
        () = stop.cancelled() => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TenantOverride;
    use crate::event::{Event, EventId, TenantId};
    use crate::store::{Completion, NewEvent, RouteOrigin};

    async fn processed_event(store: &Store, tenant: &TenantId, name: &str, at: i64) -> EventId {
        let event = Event::sample(name);
        let id = event.id.clone();
        let new = NewEvent { tenant_id: tenant.clone(), upstream_id: id.to_string(), event, raw: "{}".into() };
        store.insert_events_at(&[new], at).await.unwrap();
        let done = Completion {
            event: id.clone(),
            tenant: tenant.clone(),
            route_version: None,
            results: vec![],
            deliveries: vec![],
        };
        store.complete_events_at(&[done], at).await.unwrap();
        id
    }

    #[tokio::test]
    async fn a_pass_prunes_each_tenant_by_its_own_retention() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let mut config = Config::default();
        config.retention.batch_rows = 2;
        config.retention.pause = Duration::from_millis(1);
        let short = config.tenants.entry("short".into()).or_insert_with(TenantOverride::default);
        short.retention.events = Some(Duration::from_secs(86_400));
        config.tenants.entry("few".into()).or_default().retention.route_versions = Some(2);
        config.validate().unwrap();

        let two_days_ago = now_ms() - 2 * 86_400_000;
        let mut events = Vec::new();
        for name in ["short", "few"] {
            let t = store.create_tenant(name).await.unwrap().id;
            for _ in 0..5 {
                events.push((name, t.clone(), processed_event(&store, &t, name, two_days_ago).await));
                store
                    .insert_route_set(&t, &crate::routes::RouteDocument { routes: Vec::new() }, RouteOrigin::Api)
                    .await
                    .unwrap();
            }
        }
        let pruner = Pruner { store: store.clone(), config: Arc::new(config) };
        let pruned = pruner.pass(&CancellationToken::new()).await.unwrap();
        assert_eq!(pruned, Pruned { events: 5, route_versions: 3 });
        for (name, t, id) in &events {
            assert_eq!(store.event_row(t, id).await.unwrap().is_some(), *name == "few", "{name}: 1 day, or 30 days");
        }
        let few = store.tenant_by_name("few").await.unwrap().unwrap().id;
        let kept: Vec<i64> = store.route_versions(&few).await.unwrap().iter().map(|v| v.version).collect();
        assert_eq!(kept, [5, 4]);
        assert_eq!(pruner.pass(&CancellationToken::new()).await.unwrap(), Pruned::default(), "nothing left");
    }
}
