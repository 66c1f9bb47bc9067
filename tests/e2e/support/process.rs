//! The real `switchyard` binary as a child process, for tests that kill or signal it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::ADMIN_TOKEN;

/// The real `switchyard` binary as a child process.
pub struct Process {
    pub child: Child,
    pub base: String,
}

impl Process {
    /// Starts `switchyard serve` on `dir/data` (make `dir` a `DataDir`, so a PostgreSQL
    /// database recorded in it goes with it), with `args` added to its command line.
    pub async fn start(dir: &Path, args: &[&str]) -> Self {
        Self::start_with_env(dir, args, &[]).await
    }

    /// Like `start`, with environment variables set (e.g. `SWITCHYARD_FAILPOINT`).
    pub async fn start_with_env(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Self {
        Self::try_start_with_env(dir, args, env)
            .await
            .unwrap_or_else(|code| panic!("switchyard exited while starting: {code:?}"))
    }

    /// Like `start_with_env`, but `Err(exit code)` when the process exits before it is
    /// healthy (a failpoint can end it while it resumes the work a previous run left).
    pub async fn try_start_with_env(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Result<Self, Option<i32>> {
        Self::launch(dir, args, env, Stdio::null()).await
    }

    /// Like `start_with_env`, with the router's log (its stdout) written to `log`.
    pub async fn start_logging(dir: &Path, env: &[(&str, String)], log: &Path) -> Self {
        let file = std::fs::File::create(log).unwrap();
        Self::launch(dir, &[], env, Stdio::from(file))
            .await
            .unwrap_or_else(|code| panic!("switchyard exited while starting: {code:?}"))
    }

    async fn launch(dir: &Path, args: &[&str], env: &[(&str, String)], stdout: Stdio) -> Result<Self, Option<i32>> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = dir.join("switchyard.toml");
        // Many quick retries: deliveries stay pending (not dead) while the receiver refuses.
        let schedule = std::iter::once("\"0s\"".to_owned())
            .chain((0..50).map(|_| "\"200ms\"".to_owned()))
            .collect::<Vec<_>>()
            .join(", ");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\nadmin_token = \"{ADMIN_TOKEN}\"\n\
                 [delivery]\nallowed_cidrs = [\"127.0.0.1/32\"]\njitter = 0.0\npoll_interval = \"50ms\"\nretry_schedule = [{schedule}]\nbreaker_cooldown = \"200ms\"\n\
                 [pipeline]\npoll_interval = \"50ms\"\n[tenant_defaults]\ningest_rate = 1000000.0\ningest_burst = 1000000\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        // On PostgreSQL, the database recorded in `dir` (see `database`), by the command line,
        // unless the caller names one (several nodes on one database).
        let database = match args.contains(&"--database-url") {
            true => None,
            false => super::database::url_for(dir).await.map(|url| ["--database-url".to_owned(), url]),
        };
        let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["serve", "--config"])
            .arg(&config)
            .args(database.iter().flatten())
            .args(args)
            // The router reads SWITCHYARD_* variables as settings and refuses unknown ones:
            // the suite's own switches are not for it.
            .env_remove("SWITCHYARD_E2E_BACKEND")
            .env_remove("SWITCHYARD_TEST_POSTGRES")
            .env("SWITCHYARD_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(stdout)
            .spawn()
            .expect("starting switchyard");
        let mut p = Self { child, base: format!("http://127.0.0.1:{port}") };
        let http = reqwest::Client::new();
        for _ in 0..400 {
            if http.get(format!("{}/healthz", p.base)).send().await.is_ok() {
                return Ok(p);
            }
            if let Some(status) = p.child.try_wait().expect("polling the child") {
                return Err(status.code());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("switchyard did not start");
    }

    /// The exit code, if the process has ended by itself (a failpoint exits with 86).
    pub fn exited(&mut self) -> Option<Option<i32>> {
        self.child.try_wait().expect("polling the child").map(|s| s.code())
    }

    pub fn kill(mut self) {
        // SIGKILL: no shutdown code runs. It may have died already (a failpoint aborted it).
        let _ = self.child.kill();
        self.child.wait().unwrap();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
