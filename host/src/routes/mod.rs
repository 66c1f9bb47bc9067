//! Routes: which events go through which plugin chain to which destinations.
//!
//! A tenant's routes are one document, applied whole. Applying validates it, pins plugin
//! versions, loads the plugins, stores it as a new version and only then swaps it in. The
//! live table is an [`ArcSwap`]: the pipeline takes one snapshot per event, so each event
//! runs entirely on the version it started with, and a swap never waits for events in flight.

mod document;

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use wildmatch::WildMatch;

pub use document::{
    BodyFormat, DestinationSpec, MatchSpec, NAME_RULE, Problem, RouteDocument, RouteSpec, StepSpec, is_internal,
    valid_name,
};

use crate::event::TenantId;
use crate::runtime::{LoadedPlugin, PluginConfig, Runtime, RuntimeError};
use crate::store::{Store, StoreError};

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
}

impl RouteTable {
    /// The tenant's current routes; hold on to the `Arc` for the whole event.
    pub fn get(&self, tenant: &TenantId) -> Option<Arc<TenantRoutes>> {
        self.tenants.load().get(tenant).cloned()
    }

    /// Makes `routes` live unless a newer version already is (applies can finish out of order).
    pub fn install(&self, tenant: &TenantId, routes: TenantRoutes) {
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
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// Validates, resolves and compiles a document. Returns the resolved document (versions
/// pinned), ready to store, and the compiled routes.
pub async fn compile(
    doc: &RouteDocument,
    tenant: &TenantId,
    allow_private: bool,
    store: &Store,
    runtime: &Arc<Runtime>,
) -> Result<(RouteDocument, Vec<CompiledRoute>), ApplyError> {
    doc.validate(allow_private).map_err(ApplyError::Invalid)?;
    let mut resolved = doc.clone();
    let mut compiled = Vec::with_capacity(doc.routes.len());
    let mut problems = Vec::new();
    for (i, route) in resolved.routes.iter_mut().enumerate() {
        let mut steps = Vec::with_capacity(route.pipeline.len());
        for (j, step) in route.pipeline.iter_mut().enumerate() {
            let Some(version) = store.plugin_version(tenant, &step.plugin, step.version).await? else {
                let what = match step.version {
                    Some(v) => format!("plugin {:?} has no version {v}", step.plugin),
                    None => format!("no plugin named {:?}", step.plugin),
                };
                problems.push(Problem { path: format!("routes[{i}].pipeline[{j}].plugin"), message: what });
                continue;
            };
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

/// Validates, stores and makes live a new version of a tenant's routes.
pub async fn apply(
    doc: &RouteDocument,
    tenant: &TenantId,
    allow_private: bool,
    store: &Store,
    runtime: &Arc<Runtime>,
    table: &RouteTable,
) -> Result<(i64, RouteDocument), ApplyError> {
    let (resolved, routes) = compile(doc, tenant, allow_private, store, runtime).await?;
    let json = serde_json::to_string(&resolved).expect("documents serialise");
    let row = store.insert_route_set(tenant, &json).await?;
    table.install(tenant, TenantRoutes { version: row.version, routes });
    Ok((row.version, resolved))
}

/// Loads every tenant's live routes at start-up. A stored document that no longer compiles
/// (e.g. a plugin artifact was lost and cannot be rebuilt) is logged and skipped, so one
/// tenant cannot stop the router from starting; its events wait as pending.
pub async fn load_all(store: &Store, runtime: &Arc<Runtime>, table: &RouteTable) -> Result<(), StoreError> {
    for row in store.latest_route_sets().await? {
        let doc: RouteDocument = match serde_json::from_str(&row.document) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(tenant = %row.tenant_id, version = row.version, "stored routes unreadable: {e}");
                continue;
            }
        };
        // Private destinations were checked when the version was applied; the delivery
        // client checks again at connect time, so a later policy change still holds.
        match compile(&doc, &row.tenant_id, true, store, runtime).await {
            Ok((_, routes)) => table.install(&row.tenant_id, TenantRoutes { version: row.version, routes }),
            Err(e) => {
                tracing::error!(tenant = %row.tenant_id, version = row.version, "stored routes do not load: {e:?}")
            }
        }
    }
    Ok(())
}
