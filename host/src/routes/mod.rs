//! Routes: which events go through which plugin chain to which destinations.
//!
//! A tenant's routes are one document, applied whole. Applying validates it, pins plugin
//! versions, loads the plugins, stores it as a new version and only then swaps it in. The
//! live table is an [`ArcSwap`]: the pipeline takes one snapshot per event, so each event
//! runs entirely on the version it started with, and a swap never waits for events in flight.

mod document;
mod files;
mod secrets;

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use wildmatch::WildMatch;

pub use document::{
    BodyFormat, DestinationSpec, MAX_DESTINATION_TIMEOUT, MatchSpec, NAME_RULE, Problem, RouteDocument, RouteSpec,
    StepSpec, valid_name,
};
pub use files::{FileOutcome, RoutesDir};
pub use secrets::redacted;

use crate::config::{Config, TenantPolicy};
use crate::delivery::address::AddressPolicy;
use crate::event::{PluginId, TenantId};
use crate::runtime::{LoadedPlugin, PluginConfig, Runtime, RuntimeError};
use crate::store::{DestinationSettings, RouteOrigin, Store, StoreError};

/// One tenant's live routes at one version.
#[derive(Debug)]
pub struct TenantRoutes {
    pub version: i64,
    pub routes: Vec<CompiledRoute>,
}

#[derive(Debug)]
pub struct CompiledRoute {
    pub name: String,
    sources: Vec<WildMatch>,
    types: Vec<WildMatch>,
    pub steps: Vec<Step>,
    pub destinations: Vec<DestinationSpec>,
}

/// A plugin with the configuration its route gives it.
#[derive(Debug)]
pub struct Step {
    pub plugin: Arc<LoadedPlugin>,
    pub config: Arc<PluginConfig>,
}

impl CompiledRoute {
    pub fn matches(&self, source: &str, event_type: &str) -> bool {
        let any = |globs: &[WildMatch], s: &str| globs.is_empty() || globs.iter().any(|g| g.matches(s));
        any(&self.sources, source) && any(&self.types, event_type)
    }
}

impl TenantRoutes {
    pub fn matching<'a>(&'a self, source: &'a str, event_type: &'a str) -> impl Iterator<Item = &'a CompiledRoute> {
        self.routes.iter().filter(move |r| r.matches(source, event_type))
    }
}

/// Every tenant's live routes.
#[derive(Default)]
pub struct RouteTable {
    tenants: ArcSwap<HashMap<TenantId, Arc<TenantRoutes>>>,
    /// Held while a version is compared, stored and installed (API, files, rollback) and
    /// while a plugin version is deleted: versions go live in number order and never pin a
    /// plugin version that is being deleted. Readers never take it.
    changes: tokio::sync::Mutex<()>,
    /// Tenants whose stored routes did not load at start-up. Their events wait (stay
    /// pending) instead of being processed as if the tenant had no routes, until a version
    /// of theirs is installed.
    unloaded: std::sync::Mutex<std::collections::HashSet<TenantId>>,
}

impl RouteTable {
    /// The tenant's current routes; hold on to the `Arc` for the whole event.
    pub fn get(&self, tenant: &TenantId) -> Option<Arc<TenantRoutes>> {
        self.tenants.load().get(tenant).cloned()
    }

    /// Serialises changes to route versions and the plugin versions they pin.
    pub async fn lock_changes(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.changes.lock().await
    }

    /// The live route of `tenant` that runs plugin version `plugin`, if any.
    pub fn route_using(&self, tenant: &TenantId, plugin: &PluginId) -> Option<String> {
        let routes = self.get(tenant)?;
        routes.routes.iter().find(|r| r.steps.iter().any(|s| &s.plugin.id == plugin)).map(|r| r.name.clone())
    }

    /// Whether the tenant's stored routes failed to load at start-up and none has since.
    pub fn failed_to_load(&self, tenant: &TenantId) -> bool {
        self.unloaded.lock().expect("not poisoned").contains(tenant)
    }

    /// Tenants whose stored routes failed to load at start-up.
    pub fn unloaded_tenants(&self) -> Vec<TenantId> {
        self.unloaded.lock().expect("not poisoned").iter().cloned().collect()
    }

    fn mark_unloaded(&self, tenant: &TenantId) {
        self.unloaded.lock().expect("not poisoned").insert(tenant.clone());
    }

    /// Makes `routes` live unless a newer version already is (applies can finish out of order).
    pub fn install(&self, tenant: &TenantId, routes: TenantRoutes) {
        self.unloaded.lock().expect("not poisoned").remove(tenant);
        let routes = Arc::new(routes);
        self.tenants.rcu(|current| {
            let mut next = HashMap::clone(current);
            match next.get(tenant) {
                Some(live) if live.version >= routes.version => {}
                _ => {
                    next.insert(tenant.clone(), routes.clone());
                }
            }
            next
        });
    }
}

/// Why a document could not be made live.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("invalid route document")]
    Invalid(Vec<Problem>),
    #[error("{0}")]
    Quota(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// What compiling a document checks against: the tenant's policy and the router's rules.
#[derive(Debug, Clone)]
pub struct Rules<'a> {
    pub addresses: AddressPolicy,
    pub policy: &'a TenantPolicy,
    /// How long a replaced destination secret keeps signing.
    pub secret_rotation_grace: std::time::Duration,
}

impl<'a> Rules<'a> {
    /// The router's rules for a tenant with `policy`.
    pub fn new(config: &Config, policy: &'a TenantPolicy) -> Self {
        Rules {
            addresses: config.delivery.addresses(),
            policy,
            secret_rotation_grace: config.delivery.secret_rotation_grace,
        }
    }
}

/// Validates, resolves and compiles a document. Returns the resolved document (plugin
/// versions pinned, `name@v` spelled as `name` + `version`), ready to store, and the
/// compiled routes.
pub async fn compile(
    doc: &RouteDocument,
    tenant: &TenantId,
    rules: &Rules<'_>,
    store: &Store,
    runtime: &Arc<Runtime>,
) -> Result<(RouteDocument, Vec<CompiledRoute>), ApplyError> {
    doc.validate(&rules.addresses).map_err(ApplyError::Invalid)?;
    if doc.routes.len() > rules.policy.max_routes as usize {
        return Err(ApplyError::Quota(format!(
            "the document has {} routes; this tenant may have at most {}",
            doc.routes.len(),
            rules.policy.max_routes
        )));
    }
    let mut problems = fan_out_problems(doc, rules.policy);
    if !problems.is_empty() {
        return Err(ApplyError::Invalid(problems));
    }
    let mut resolved = doc.clone();
    let mut compiled = Vec::with_capacity(doc.routes.len());
    for (i, route) in resolved.routes.iter_mut().enumerate() {
        let mut steps = Vec::with_capacity(route.pipeline.len());
        for (j, step) in route.pipeline.iter_mut().enumerate() {
            let at = format!("routes[{i}].pipeline[{j}].plugin");
            let (name, wanted) =
                step.reference().map_err(|m| ApplyError::Invalid(vec![Problem { path: at.clone(), message: m }]))?;
            let Some(version) = store.plugin_version(tenant, name, wanted).await? else {
                let message = match wanted {
                    Some(v) => format!("plugin {name:?} has no version {v}"),
                    None => format!("no plugin named {name:?}"),
                };
                problems.push(Problem { path: at, message });
                continue;
            };
            // Grants may have been narrowed since the upload.
            let refused = crate::runtime::ungranted(&version.meta.imports, &rules.policy.grants);
            if !refused.is_empty() {
                let message = format!("{name}@{}: {}", version.meta.version, refused.join("; "));
                problems.push(Problem { path: at, message });
                continue;
            }
            step.plugin = name.to_owned();
            step.version = Some(version.meta.version);
            let config = step
                .config
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                .collect();
            steps.push(Step { plugin: runtime.load(&version).await?, config: Arc::new(config) });
        }
        compiled.push(CompiledRoute {
            name: route.name.clone(),
            sources: route.matcher.sources.iter().map(|g| WildMatch::new(g)).collect(),
            types: route.matcher.types.iter().map(|g| WildMatch::new(g)).collect(),
            steps,
            destinations: route.destinations.clone(),
        });
    }
    if !problems.is_empty() {
        return Err(ApplyError::Invalid(problems));
    }
    Ok((resolved, compiled))
}

/// Routes with more steps or destinations than the tenant may have: what one event can
/// multiply into is bounded before it runs (see also `max_outputs_per_event`).
fn fan_out_problems(doc: &RouteDocument, policy: &TenantPolicy) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, route) in doc.routes.iter().enumerate() {
        let checks = [
            ("pipeline", "steps", route.pipeline.len(), policy.max_steps_per_route, "max_steps_per_route"),
            (
                "destinations",
                "destinations",
                route.destinations.len(),
                policy.max_destinations_per_route,
                "max_destinations_per_route",
            ),
        ];
        for (field, what, n, max, limit) in checks {
            if n > max as usize {
                problems.push(Problem {
                    path: format!("routes[{i}].{field}"),
                    message: format!("has {n} {what}; the limit ({limit}) is {max}"),
                });
            }
        }
    }
    problems
}

/// The outcome of an apply.
#[derive(Debug)]
pub struct Applied {
    /// The live version: new, or the current one when `unchanged`.
    pub version: i64,
    /// The resolved document was identical to the live one, so no version was created.
    pub unchanged: bool,
    pub document: RouteDocument,
}

/// Validates, stores and makes live a new version of a tenant's routes. Applying the live
/// document again is a no-op (`unchanged`), so files and scripts can apply idempotently.
pub async fn apply(
    doc: &RouteDocument,
    tenant: &TenantId,
    rules: Rules<'_>,
    origin: RouteOrigin,
    store: &Store,
    runtime: &Arc<Runtime>,
    table: &RouteTable,
) -> Result<Applied, ApplyError> {
    let _guard = table.lock_changes().await;
    // Other nodes apply too: comparing with the latest stored version, numbering the next
    // and installing happen under the tenant's lock in the database as well.
    let _shared = store.lock_changes(tenant).await?;
    // A document read back through the API carries fingerprints in place of secrets.
    let doc = secrets::restore(doc, tenant, store).await?;
    let (resolved, routes) = compile(&doc, tenant, &rules, store, runtime).await?;
    // A damaged live version is no reason to refuse a new one: the new one replaces it.
    let live = match store.latest_route_set(tenant).await {
        Err(StoreError::Damaged(_)) => None,
        other => other?,
    };
    if let Some(live) = live
        && live.document == resolved
    {
        return Ok(Applied { version: live.version, unchanged: true, document: resolved });
    }
    let row = store.insert_route_set(tenant, &resolved, origin).await?;
    // Before the version goes live, so the worker finds every destination it can be sent to.
    store
        .upsert_destinations(tenant, &destination_settings(&resolved), rules.secret_rotation_grace.as_millis() as i64)
        .await?;
    table.install(tenant, TenantRoutes { version: row.version, routes });
    store.announce(crate::store::Change::Routes(tenant.clone())).await;
    Ok(Applied { version: row.version, unchanged: false, document: resolved })
}

/// Each distinct destination of a (validated) document with its settings.
fn destination_settings(doc: &RouteDocument) -> Vec<DestinationSettings> {
    let mut seen = std::collections::HashSet::new();
    doc.routes
        .iter()
        .flat_map(|r| &r.destinations)
        .filter(|d| seen.insert(d.url.clone()))
        .map(|d| DestinationSettings {
            url: d.url.clone(),
            secret: d.secret.clone(),
            retry_schedule_ms: d.schedule_ms().ok().flatten(),
            timeout_ms: d.timeout_ms().ok().flatten(),
            max_in_flight: d.max_in_flight,
        })
        .collect()
}

/// Loads every tenant's live routes at start-up. A stored document that no longer compiles
/// (e.g. a plugin artifact was lost and cannot be rebuilt) is logged and skipped, so one
/// tenant cannot stop the router from starting; its events wait as pending.
pub async fn load_all(store: &Store, runtime: &Arc<Runtime>, table: &RouteTable) -> Result<(), StoreError> {
    for row in store.latest_route_sets().await? {
        match row {
            Ok(row) => {
                load_stored(&row, store, runtime, table).await;
            }
            Err(damaged) => unreadable(&damaged, table),
        }
    }
    Ok(())
}

/// Loads the tenant's latest stored version if it is newer than the live one: another node
/// applied or rolled back. Compiled (or read from this node's artifact cache) before it goes
/// live, so events keep running the previous version until then. Call under
/// `RouteTable::lock_changes`.
pub async fn reload_tenant(
    tenant: &TenantId,
    store: &Store,
    runtime: &Arc<Runtime>,
    table: &RouteTable,
) -> Result<bool, StoreError> {
    let row = match store.latest_route_set(tenant).await {
        Ok(Some(row)) => row,
        Ok(None) => return Ok(false),
        Err(StoreError::Damaged(e)) => {
            tracing::error!(%tenant, "{e}");
            table.mark_unloaded(tenant);
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    Ok(is_newer(&row, table) && load_stored(&row, store, runtime, table).await)
}

/// `reload_tenant` for every tenant (the periodic reconcile); returns how many changed.
pub async fn reload_all(store: &Store, runtime: &Arc<Runtime>, table: &RouteTable) -> Result<usize, StoreError> {
    let mut changed = 0;
    for row in store.latest_route_sets().await? {
        match row {
            Ok(row) if is_newer(&row, table) && load_stored(&row, store, runtime, table).await => changed += 1,
            Ok(_) => {}
            Err(damaged) => unreadable(&damaged, table),
        }
    }
    Ok(changed)
}

/// A stored version that does not decode: logged, and the tenant's events wait.
fn unreadable(damaged: &crate::store::DamagedRouteSet, table: &RouteTable) {
    tracing::error!(tenant = %damaged.tenant_id, version = damaged.version, "{damaged}");
    table.mark_unloaded(&damaged.tenant_id);
}

fn is_newer(row: &crate::store::RouteSetRow, table: &RouteTable) -> bool {
    table.failed_to_load(&row.tenant_id) || table.get(&row.tenant_id).is_none_or(|live| live.version < row.version)
}

/// Compiles a stored version and makes it live; false (logged, the tenant marked unloaded)
/// if it does not load.
async fn load_stored(
    row: &crate::store::RouteSetRow,
    store: &Store,
    runtime: &Arc<Runtime>,
    table: &RouteTable,
) -> bool {
    let unlimited = TenantPolicy {
        max_routes: u32::MAX,
        max_steps_per_route: u32::MAX,
        max_destinations_per_route: u32::MAX,
        grants: crate::config::Capability::ALL.to_vec(),
        ..TenantPolicy::default()
    };
    let doc = &row.document;
    // Private destinations were checked when the version was applied; the delivery
    // client checks again at connect time, so a later policy change still holds. Quotas
    // and grants were checked at apply too: a live version keeps running as it was.
    let rules = Rules {
        addresses: AddressPolicy { allow_all: true, allowed: Vec::new() },
        policy: &unlimited,
        secret_rotation_grace: std::time::Duration::ZERO,
    };
    match compile(doc, &row.tenant_id, &rules, store, runtime).await {
        Ok((_, routes)) => {
            table.install(&row.tenant_id, TenantRoutes { version: row.version, routes });
            true
        }
        Err(e) => {
            tracing::error!(
                tenant = %row.tenant_id,
                version = row.version,
                "stored routes do not load; the tenant's events wait until a version is applied: {e:?}"
            );
            table.mark_unloaded(&row.tenant_id);
            false
        }
    }
}
