//! One node among several on a shared PostgreSQL database (`store::nodes` has the design):
//! the heartbeat that keeps this node's leases, the take-over of dead nodes' work, and
//! keeping what this node holds in memory (live routes, cached sources and destinations,
//! loaded plugins, backlog counts) in step with changes other nodes make.
//!
//! Three loops in one task: every `cluster.heartbeat_interval` a heartbeat and a look for
//! dead nodes; each change notice as it arrives; every `cluster.reconcile_interval` a full
//! reconcile, which also makes up for a missed notice. Not started on SQLite (one node).

use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::ClusterConfig;
use crate::routes::{self, RouteTable};
use crate::runtime::Runtime;
use crate::store::handoff::EventQueue;
use crate::store::{Change, ChangeListener, Store, TakenOver};

pub struct Cluster {
    pub store: Store,
    pub runtime: Arc<Runtime>,
    pub routes: Arc<RouteTable>,
    pub events: Arc<EventQueue>,
    /// Wakes the delivery worker's poll (taken-over deliveries are due now).
    pub delivery_wake: Arc<Notify>,
    pub config: ClusterConfig,
}

impl Cluster {
    /// Runs until `stop`; then gives this node's leases back and leaves (`Store::leave`).
    pub async fn run(self, stop: CancellationToken) {
        let mut heartbeat = tokio::time::interval(self.config.heartbeat_interval);
        let mut reconcile = tokio::time::interval(self.config.reconcile_interval);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        reconcile.tick().await; // the first tick is now: start-up has just loaded everything
        let mut listener: Option<ChangeListener> = None;
        loop {
            if listener.is_none() {
                listener = match self.store.listen().await {
                    Ok(l) => {
                        // Whatever was announced while not listening is missed: after a lost
                        // connection, and also the first time, for changes made between
                        // start-up's loading and this LISTEN.
                        self.reconcile().await;
                        l
                    }
                    Err(e) => {
                        tracing::warn!(
                            "listening for other nodes' changes: {e}; relying on the reconcile until it works"
                        );
                        None
                    }
                };
            }
            tokio::select! {
                () = stop.cancelled() => break,
                _ = heartbeat.tick() => self.heartbeat().await,
                _ = reconcile.tick() => self.reconcile().await,
                notice = next_notice(&mut listener) => match notice {
                    Ok(Some(change)) => self.apply(change).await,
                    Ok(None) => {
                        tracing::warn!("the change-notice connection was lost and is back; reconciling");
                        self.reconcile().await;
                    }
                    Err(e) => {
                        tracing::warn!("receiving change notices: {e}");
                        listener = None;
                        tokio::time::sleep(self.config.heartbeat_interval).await;
                    }
                },
            }
        }
        match self.store.leave().await {
            Ok(()) => tracing::info!(
                node = self.store.node(),
                "left the cluster; unfinished work is released to the other nodes"
            ),
            Err(e) => {
                tracing::warn!("leaving the cluster: {e}; other nodes take this node's work after cluster.node_timeout")
            }
        }
    }

    async fn heartbeat(&self) {
        match self.store.heartbeat().await {
            Ok(true) => {}
            Ok(false) => tracing::error!(
                node = self.store.node(),
                "this node missed its heartbeats for longer than cluster.node_timeout and was taken for dead: \
                 other nodes took its leases, so work it still holds may be done twice (receivers dedupe on webhook-id)"
            ),
            Err(e) => tracing::warn!("heartbeat: {e}"),
        }
        match self.store.take_over(self.config.node_timeout, false).await {
            Ok(taken) => self.taken_over(taken),
            Err(e) => tracing::warn!("looking for dead nodes: {e}"),
        }
    }

    fn taken_over(&self, taken: TakenOver) {
        if taken.events + taken.deliveries > 0 || !taken.dead_nodes.is_empty() {
            tracing::warn!(
                dead = ?taken.dead_nodes,
                events = taken.events,
                deliveries = taken.deliveries,
                "took over the work of nodes that stopped heartbeating"
            );
        }
        // Released events are found by the pipeline's next poll (`pipeline.poll_interval`);
        // deliveries wait for theirs unless woken.
        if taken.deliveries > 0 {
            self.delivery_wake.notify_one();
        }
    }

    /// Brings one change another node announced into this node's memory.
    async fn apply(&self, change: Change) {
        tracing::debug!(?change, "change notice");
        match change {
            Change::Routes(tenant) => {
                let _guard = self.routes.lock_changes().await;
                match routes::reload_tenant(&tenant, &self.store, &self.runtime, &self.routes).await {
                    Ok(true) => tracing::info!(%tenant, "routes changed on another node; now live here"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(%tenant, "reloading routes: {e}; retried at the next reconcile"),
                }
            }
            Change::PluginDeleted(id) => self.runtime.forget(&id),
            Change::Sources => self.store.forget_sources(),
            Change::Destinations(tenant) => self.store.forget_destinations_of(&tenant),
        }
    }

    /// Everything a notice could have said, read again: leases of dead nodes and expired
    /// leases, live routes, cached sources and destinations, and each tenant's backlog.
    async fn reconcile(&self) {
        match self.store.take_over(self.config.node_timeout, true).await {
            Ok(taken) => self.taken_over(taken),
            Err(e) => tracing::warn!("looking for dead nodes: {e}"),
        }
        self.store.forget_sources();
        self.store.forget_destinations();
        {
            let _guard = self.routes.lock_changes().await;
            match routes::reload_all(&self.store, &self.runtime, &self.routes).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(tenants = n, "the reconcile found newer routes"),
                Err(e) => tracing::warn!("reconciling routes: {e}"),
            }
        }
        // Other nodes complete events this node counted in: the count is read again.
        match self.store.pending_per_tenant().await {
            Ok(counts) => self.events.set_backlog(counts),
            Err(e) => tracing::warn!("reading backlogs: {e}"),
        }
    }
}

/// The next notice, or never when not listening (so `select!` waits on the timers alone).
async fn next_notice(listener: &mut Option<ChangeListener>) -> crate::store::Result<Option<Change>> {
    match listener {
        Some(l) => l.next().await,
        None => std::future::pending().await,
    }
}
