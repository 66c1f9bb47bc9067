//! Routes kept in files (`serve --routes-dir DIR`): `DIR/<tenant>.json` or `DIR/<tenant>.toml`,
//! one route document per tenant. Files are applied at start, whenever the directory changes
//! (inotify and friends, through `notify`) and on SIGHUP. Applying the live document again is
//! a no-op, so unchanged files create no versions. An invalid file is logged and skipped:
//! the tenant's previous version stays live. Removing a file leaves the routes live (apply
//! an empty document to remove them), so a stray `rm` cannot take a tenant offline.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{ApplyError, RouteDocument, RouteTable, Rules, apply};
use crate::config::Config;
use crate::runtime::Runtime;
use crate::store::{RouteOrigin, Store};

/// Changes often come in bursts (an editor writes, renames, touches); wait for quiet.
const SETTLE: Duration = Duration::from_millis(200);

/// Everything applying needs.
pub struct RoutesDir {
    pub dir: PathBuf,
    pub config: Arc<Config>,
    pub store: Store,
    pub runtime: Arc<Runtime>,
    pub table: Arc<RouteTable>,
}

/// What one pass did with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
    Applied(i64),
    Unchanged(i64),
    Failed(String),
}

impl RoutesDir {
    /// Applies every file now, says so on `ready`, then watches until `shutdown`. Returns an
    /// error only if the directory cannot be watched at all. The router waits for `ready`
    /// before it serves, so the files' routes are live (and SIGHUP is handled) from the
    /// first request on.
    pub async fn run(self, shutdown: CancellationToken, ready: tokio::sync::oneshot::Sender<()>) -> anyhow::Result<()> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok_and(|e| !e.kind.is_access()) {
                let _ = tx.send(());
            }
        })?;
        watcher.watch(&self.dir, RecursiveMode::NonRecursive)?;
        #[cfg(unix)]
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let mut seen = HashMap::new();
        self.sync(&mut seen, false).await;
        let _ = ready.send(());
        loop {
            let force = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                Some(()) = rx.recv() => {
                    tokio::time::sleep(SETTLE).await;
                    while rx.try_recv().is_ok() {}
                    false
                }
                () = async {
                    #[cfg(unix)]
                    hangup.recv().await;
                    #[cfg(not(unix))]
                    std::future::pending::<()>().await;
                } => {
                    tracing::info!(dir = %self.dir.display(), "SIGHUP: re-reading route files");
                    true
                }
            };
            self.sync(&mut seen, force).await;
        }
    }

    /// Applies each file whose content changed since the last pass (every file when `force`).
    pub async fn sync(&self, seen: &mut HashMap<PathBuf, [u8; 32]>, force: bool) -> Vec<(PathBuf, FileOutcome)> {
        let mut outcomes = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), "reading the routes directory: {e}");
                return outcomes;
            }
        };
        let mut paths: Vec<PathBuf> =
            entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_route_file(p)).collect();
        paths.sort();
        // A file that was removed and comes back is new again, even with the same content.
        seen.retain(|p, _| paths.contains(p));
        for path in paths {
            let Ok(bytes) = std::fs::read(&path) else { continue };
            let digest: [u8; 32] = Sha256::digest(&bytes).into();
            if !force && seen.get(&path) == Some(&digest) {
                continue;
            }
            seen.insert(path.clone(), digest);
            let outcome = self.apply_file(&path, &bytes).await;
            match &outcome {
                FileOutcome::Applied(v) => {
                    tracing::info!(file = %path.display(), version = v, "routes applied from file")
                }
                FileOutcome::Unchanged(_) => tracing::debug!(file = %path.display(), "routes file unchanged"),
                FileOutcome::Failed(why) => {
                    tracing::error!(file = %path.display(), "routes file rejected; the previous version stays live: {why}")
                }
            }
            outcomes.push((path, outcome));
        }
        outcomes
    }

    async fn apply_file(&self, path: &Path, bytes: &[u8]) -> FileOutcome {
        let tenant_name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        let tenant = match self.store.tenant_by_name(tenant_name).await {
            Ok(Some(t)) => t,
            Ok(None) => return FileOutcome::Failed(format!("no tenant named {tenant_name:?}")),
            Err(e) => return FileOutcome::Failed(e.to_string()),
        };
        let doc = match parse(path, bytes) {
            Ok(d) => d,
            Err(e) => return FileOutcome::Failed(e),
        };
        let policy = self.config.policy(&tenant.name);
        let rules = Rules::new(&self.config, &policy);
        match apply(&doc, &tenant.id, rules, RouteOrigin::File, &self.store, &self.runtime, &self.table).await {
            Ok(a) if a.unchanged => FileOutcome::Unchanged(a.version),
            Ok(a) => FileOutcome::Applied(a.version),
            Err(ApplyError::Invalid(problems)) => {
                FileOutcome::Failed(problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
            }
            Err(e) => FileOutcome::Failed(e.to_string()),
        }
    }
}

fn is_route_file(p: &Path) -> bool {
    p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("json" | "toml"))
}

fn parse(path: &Path, bytes: &[u8]) -> Result<RouteDocument, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => toml::from_str(text).map_err(|e| format!("TOML: {e}")),
        _ => serde_json::from_str(text).map_err(|e| format!("JSON: {e}")),
    }
}
