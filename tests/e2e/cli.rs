//! The `switchyard` CLI: the real binary as a child process against a real router, asserting
//! what a person or a script would see (tables, `--json`, stderr, exit codes).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{Value, json};

use crate::support::{self, ADMIN_TOKEN, Receiver, TestRouter, fixture, plugins};

/// What one run of the binary left behind.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        self
    }

    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// The binary, isolated from the developer's environment: no SWITCHYARD_* variables, its own
/// HOME and XDG config folder, and a scratch working directory.
struct Cli {
    dir: tempfile::TempDir,
    url: String,
}

impl Cli {
    fn new(r: &TestRouter) -> Self {
        Self::at(&r.base)
    }

    fn at(url: &str) -> Self {
        Self { dir: tempfile::tempdir().unwrap(), url: url.to_owned() }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, contents: &str) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn command(&self) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
        c.current_dir(self.dir.path())
            .env_remove("SWITCHYARD_URL")
            .env_remove("SWITCHYARD_TOKEN")
            .env_remove("SWITCHYARD_CLI_CONFIG")
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.path("xdg"))
            .stdin(Stdio::null());
        c
    }

    /// Runs with `--url` and the admin token.
    async fn run(&self, args: &[&str]) -> Run {
        self.run_as(ADMIN_TOKEN, args).await
    }

    async fn run_as(&self, token: &str, args: &[&str]) -> Run {
        let mut c = self.command();
        c.args(args).args(["--url", &self.url, "--token", token]);
        output(c).await
    }

    /// Runs with exactly `args` and no connection flags.
    async fn bare(&self, args: &[&str]) -> Run {
        let mut c = self.command();
        c.args(args);
        output(c).await
    }
}

async fn output(mut c: tokio::process::Command) -> Run {
    let out = c.output().await.expect("running the switchyard binary");
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn wasm_path(name: &str) -> String {
    plugins::dir().join(format!("{}.wasm", name.replace('-', "_"))).to_str().unwrap().to_owned()
}

/// A route document sending everything from `calls` through `plugin` to `url`.
fn routes_json(url: &str, plugin: &str) -> String {
    json!({"routes": [{
        "name": "outcomes",
        "match": {"sources": ["calls"], "types": ["call.*"]},
        "pipeline": [{"plugin": plugin}],
        "destinations": [{"url": url, "secret": support::SECRET}],
    }]})
    .to_string()
}

/// The first column of every table row whose other cells include `needle`.
fn rows_with<'a>(table: &'a str, needle: &str) -> Vec<&'a str> {
    table.lines().skip(1).filter(|l| l.split_whitespace().any(|c| c == needle)).collect()
}

#[tokio::test]
async fn tenants_are_created_and_listed_as_a_table_and_as_json() {
    let r = TestRouter::start().await;
    let cli = Cli::new(&r);

    let created = cli.run(&["tenant", "create", "acme"]).await.ok();
    assert!(created.stdout.starts_with("Created tenant acme (ten_"), "{created:#?}");
    cli.run(&["tenant", "create", "globex", "--json"]).await.ok();

    let table = cli.run(&["tenant", "list"]).await.ok().stdout;
    let mut lines = table.lines();
    let header: Vec<_> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "ID", "CREATED"], "{table}");
    let names: Vec<_> = lines.map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(names.len(), 2, "{table}");
    assert!(names.contains(&"acme") && names.contains(&"globex"), "{table}");

    // --json is the server's answer, untouched.
    let listed = cli.run(&["--json", "tenant", "list"]).await.ok().json();
    assert_eq!(listed, r.get("/v1/tenants").await);
    // The table is read from the API's own types: every column holds its field, times shortened.
    let acme = listed["tenants"].as_array().unwrap().iter().find(|t| t["name"] == "acme").unwrap();
    let created = chrono::DateTime::parse_from_rfc3339(acme["created_at"].as_str().unwrap()).unwrap();
    let cells: Vec<_> = rows_with(&table, "acme")[0].split_whitespace().collect();
    let expected = created.format("%Y-%m-%d %H:%M:%SZ").to_string();
    assert_eq!(cells, [&["acme", acme["id"].as_str().unwrap()][..], &expected.split(' ').collect::<Vec<_>>()].concat());
    let shown = cli.run(&["tenant", "show", "acme", "--json"]).await.ok().json();
    assert_eq!(shown["name"], "acme");
    assert!(shown["id"].as_str().unwrap().starts_with("ten_"));
    r.stop().await;
}

#[tokio::test]
async fn router_errors_print_the_message_and_details_and_exit_1() {
    let r = TestRouter::start().await;
    let cli = Cli::new(&r);
    cli.run(&["tenant", "create", "acme"]).await.ok();

    let dup = cli.run(&["tenant", "create", "acme"]).await;
    assert_eq!(dup.code, 1, "{dup:#?}");
    assert!(dup.stdout.is_empty(), "{dup:#?}");
    assert!(dup.stderr.contains("already exists") && dup.stderr.contains("HTTP 409"), "{dup:#?}");

    let missing = cli.run(&["events", "list", "nobody"]).await;
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("no tenant named \"nobody\""), "{missing:#?}");

    // A 422 with details: each one is printed as `path: message`.
    let bad = cli
        .write("bad.json", r#"{"routes": [{"name": "x", "destinations": [{"url": "ftp://nope", "secret": "nope"}]}]}"#);
    let invalid = cli.run(&["route", "apply", "acme", bad.to_str().unwrap()]).await;
    assert_eq!(invalid.code, 1, "{invalid:#?}");
    assert!(invalid.stderr.contains("invalid route document"), "{invalid:#?}");
    assert!(invalid.stderr.contains("\n  routes[0].destinations[0].url: "), "{invalid:#?}");
    assert!(invalid.stderr.contains("\n  routes[0].destinations[0].secret: "), "{invalid:#?}");

    let denied = cli.run_as("wrong-token", &["tenant", "list"]).await;
    assert_eq!(denied.code, 1);
    assert!(denied.stderr.contains("invalid token") && denied.stderr.contains("--token"), "{denied:#?}");
    r.stop().await;
}

#[tokio::test]
async fn an_unreachable_router_exits_3_and_bad_usage_exits_2() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cli = Cli::at(&format!("http://127.0.0.1:{port}"));
    let down = cli.run(&["tenant", "list"]).await;
    assert_eq!(down.code, 3, "{down:#?}");
    assert!(down.stderr.contains("cannot reach the router"), "{down:#?}");

    for args in [
        &["tenant"][..],
        &["plugin", "test", "acme", "tagger@soon", "--fixture", "x"],
        &["plugin", "test", "acme", "tagger"],
        &["events", "list", "acme", "--status", "lost"],
        &["route", "apply", "acme", "routes.yaml"],
    ] {
        let run = cli.run(args).await;
        assert_eq!(run.code, 2, "{args:?}: {run:#?}");
    }
    let help = cli.bare(&["route", "--help"]).await.ok();
    assert!(help.stdout.contains("Examples:") && help.stdout.contains("route apply acme"), "{help:#?}");
}

#[tokio::test]
async fn url_and_token_come_from_the_config_file_or_the_local_admin_token() {
    let r = TestRouter::start().await;
    r.tenant("acme").await;

    // The default config file ($XDG_CONFIG_HOME/switchyard/cli.toml).
    let cli = Cli::new(&r);
    cli.write("xdg/switchyard/cli.toml", &format!("url = \"{}\"\ntoken = \"{ADMIN_TOKEN}\"\n", r.base));
    let listed = cli.bare(&["tenant", "list", "--json"]).await.ok().json();
    assert_eq!(listed["tenants"][0]["name"], "acme");

    // An explicit file, with the token from the environment winning over the file's.
    let other = cli.write("other.toml", &format!("url = \"{}\"\ntoken = \"stale\"\n", r.base));
    let mut c = cli.command();
    c.args(["tenant", "list", "--cli-config", other.to_str().unwrap()]).env("SWITCHYARD_TOKEN", ADMIN_TOKEN);
    output(c).await.ok();
    let missing = cli.bare(&["tenant", "list", "--cli-config", "nowhere.toml"]).await;
    assert_eq!(missing.code, 2, "{missing:#?}");

    // No token anywhere: ./switchyard-data/admin-token, as `switchyard serve` leaves it.
    let local = Cli::new(&r);
    local.write("switchyard-data/admin-token", &format!("{ADMIN_TOKEN}\n"));
    let mut c = local.command();
    c.args(["tenant", "list"]).env("SWITCHYARD_URL", &r.base);
    assert!(output(c).await.ok().stdout.contains("acme"));
    r.stop().await;
}

#[tokio::test]
async fn source_auth_is_declared_with_flags_and_required_for_unsigned_formats() {
    let r = TestRouter::start().await;
    let cli = Cli::new(&r);
    cli.run(&["tenant", "create", "acme"]).await.ok();

    let bare = cli.run(&["source", "put", "acme", "calls", "--format", "call-tracking"]).await;
    assert_eq!(bare.code, 1, "{bare:#?}");
    assert!(bare.stderr.contains("HTTP 422") && bare.stderr.contains(r#""type": "none""#), "{bare:#?}");
    let conflicting =
        cli.run(&["source", "put", "acme", "x", "--format", "crm", "--no-auth", "--bearer-token", "t"]).await;
    assert_eq!(conflicting.code, 2, "{conflicting:#?}");

    cli.run(&["source", "put", "acme", "open", "--format", "coaching", "--no-auth"]).await.ok();
    let (secret, body) = ("whsec_stripe_0123456789abcdef", br#"{"event":"deal.created","timestamp":1,"payload":{}}"#);
    let stripe = [
        "source",
        "put",
        "acme",
        "pay",
        "--format",
        "crm",
        "--hmac-secret",
        secret,
        "--hmac-header",
        "Stripe-Signature",
        "--hmac-prefix",
        "v1=",
        "--hmac-content",
        "{timestamp}.{body}",
        "--hmac-timestamp-part",
        "t",
    ];
    let shown = cli.run(&stripe).await.ok();
    assert!(shown.stdout.contains("auth: hmac"), "{shown:#?}");
    let now = chrono::Utc::now().timestamp();
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(secret.as_bytes()).unwrap();
    hmac::Mac::update(&mut mac, format!("{now}.").as_bytes());
    hmac::Mac::update(&mut mac, body);
    let sig = format!("t={now},v1={}", hex::encode(hmac::Mac::finalize(mac).into_bytes()));
    assert_eq!(r.ingest("acme", "pay", body, &[("stripe-signature".into(), sig)]).await.0, 202);
    assert_eq!(r.ingest("acme", "pay", body, &[]).await.0, 401);
    assert_eq!(r.ingest("acme", "open", &fixture("coaching/goal_pace_changed.json"), &[]).await.0, 202);

    let table = cli.run(&["source", "list", "acme"]).await.ok().stdout;
    assert!(table.starts_with("NAME") && table.contains("AUTH"), "{table}");
    assert!(rows_with(&table, "pay")[0].contains("hmac") && rows_with(&table, "open")[0].contains("none"), "{table}");
    let listed = cli.run(&["source", "list", "acme", "--json"]).await.ok();
    assert!(!listed.stdout.contains(secret), "the secret is never shown: {listed:#?}");
    r.stop().await;
}

#[tokio::test]
async fn plugins_are_pushed_and_listed() {
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    let cli = Cli::new(&r);
    let wasm = wasm_path("passthrough");

    let pushed = cli.run(&["plugin", "push", "acme", "passthrough", &wasm]).await.ok();
    assert!(pushed.stdout.starts_with("Uploaded passthrough@1 to tenant acme"), "{pushed:#?}");
    assert!(pushed.stdout.contains("sha256"), "{pushed:#?}");
    let second = cli.run(&["plugin", "push", "acme", "passthrough", &wasm, "--json"]).await.ok().json();
    assert_eq!(second["version"], 2);
    assert_eq!(second["name"], "passthrough");

    let table = cli.run(&["plugin", "list", "acme"]).await.ok().stdout;
    assert!(table.starts_with("NAME"), "{table}");
    assert_eq!(rows_with(&table, "passthrough").len(), 2, "{table}");
    let listed = cli.run(&["plugin", "list", "acme", "--json"]).await.ok().json();
    assert_eq!(listed["plugins"].as_array().unwrap().len(), 2);

    let not_wasm = cli.write("junk.wasm", "not a component");
    let refused = cli.run(&["plugin", "push", "acme", "junk", not_wasm.to_str().unwrap()]).await;
    assert_eq!(refused.code, 1, "{refused:#?}");
    assert!(refused.stderr.contains("HTTP 422"), "{refused:#?}");
    r.stop().await;
}

#[tokio::test]
async fn routes_are_applied_from_json_and_events_and_deliveries_are_listed() {
    let rx = Receiver::start().await;
    let r = TestRouter::start().await;
    let cli = Cli::new(&r);
    cli.run(&["tenant", "create", "acme"]).await.ok();
    let token = "tok_cli_0123456789abcdef";
    let source =
        cli.run(&["source", "put", "acme", "calls", "--format", "call-tracking", "--bearer-token", token]).await.ok();
    assert!(source.stdout.contains("/v1/ingest/acme/calls") && source.stdout.contains("auth: bearer"), "{source:#?}");
    cli.run(&["plugin", "push", "acme", "call-outcome-tagger", &wasm_path("call-outcome-tagger")]).await.ok();

    let file = cli.write("routes.json", &routes_json(&rx.url("hook"), "call-outcome-tagger"));
    let applied = cli.run(&["route", "apply", "acme", file.to_str().unwrap()]).await.ok();
    assert!(applied.stdout.contains("version 1 is live (1 routes)"), "{applied:#?}");
    let shown = cli.run(&["route", "show", "acme", "--json"]).await.ok().json();
    assert_eq!(shown["version"], 1);
    assert_eq!(shown["document"]["routes"][0]["name"], "outcomes");

    let body = fixture("call-tracking/call_outcome_tagged.json");
    assert_eq!(r.ingest("acme", "calls", &body, &[]).await.0, 401, "the source declared by the CLI needs its token");
    let bearer = [("authorization".to_owned(), format!("Bearer {token}"))];
    let (status, accepted) = r.ingest("acme", "calls", &body, &bearer).await;
    assert_eq!(status, 202, "{accepted}");
    let event = accepted["id"].as_str().unwrap().to_owned();
    let detail = r.processed("acme", &event).await;
    let delivery = detail["deliveries"][0]["id"].as_str().unwrap().to_owned();
    rx.wait_for("/hook", 1, support::WAIT).await;

    let events = cli.run(&["events", "list", "acme"]).await.ok().stdout;
    let row = rows_with(&events, &event);
    assert_eq!(row.len(), 1, "{events}");
    assert!(row[0].contains("processed") && row[0].contains("call.outcome_tagged"), "{events}");
    let pending = cli.run(&["events", "list", "acme", "--status", "pending", "--json"]).await.ok().json();
    assert_eq!(pending["events"], json!([]));
    let one = cli.run(&["events", "list", "acme", "--limit", "1", "--json"]).await.ok().json();
    assert_eq!(one["events"][0]["id"], event.as_str());
    let shown = cli.run(&["events", "show", "acme", &event]).await.ok().stdout;
    assert!(shown.contains("outcomes") && shown.contains("emitted") && shown.contains(&delivery), "{shown}");

    // Delivered once; wait until the router has recorded it, then list, show and replay.
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while r.get(&format!("/v1/tenants/acme/deliveries/{delivery}")).await["status"] != "delivered" {
        assert!(tokio::time::Instant::now() < deadline, "delivery not recorded as delivered");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let deliveries = cli.run(&["deliveries", "list", "acme", "--status", "delivered"]).await.ok().stdout;
    assert_eq!(rows_with(&deliveries, &delivery).len(), 1, "{deliveries}");
    let dead = cli.run(&["deliveries", "list", "acme", "--status", "dead"]).await.ok().stdout;
    assert_eq!(dead.trim(), "No deliveries.");
    let shown = cli.run(&["deliveries", "show", "acme", &delivery]).await.ok().stdout;
    assert!(shown.contains("attempts:") && shown.contains("\"classification\": \"won\""), "{shown}");
    let replayed = cli.run(&["deliveries", "replay", "acme", &delivery]).await.ok();
    assert!(replayed.stdout.contains("Re-queued"), "{replayed:#?}");
    let again = rx.wait_for("/hook", 2, support::WAIT).await;
    assert_eq!(again[0].header("webhook-id"), again[1].header("webhook-id"));
    r.stop().await;
}

#[tokio::test]
async fn routes_are_applied_from_toml() {
    let rx = Receiver::start().await;
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    r.source("acme", "calls", "call-tracking", None).await;
    let cli = Cli::new(&r);
    cli.run(&["plugin", "push", "acme", "passthrough", &wasm_path("passthrough")]).await.ok();
    let toml = format!(
        r#"[[routes]]
name = "from-toml"
match = {{ sources = ["calls"], types = ["call.*"] }}
pipeline = [{{ plugin = "passthrough" }}]
destinations = [{{ url = "{}", secret = "{}" }}]
"#,
        rx.url("hook"),
        support::SECRET
    );
    let file = cli.write("routes.toml", &toml);
    let applied = cli.run(&["route", "apply", "acme", file.to_str().unwrap(), "--json"]).await.ok().json();
    assert_eq!(applied["version"], 1);
    assert_eq!(applied["document"]["routes"][0]["name"], "from-toml");
    // The same document again changes nothing.
    let again = cli.run(&["route", "apply", "acme", file.to_str().unwrap()]).await.ok();
    assert!(again.stdout.contains("unchanged: version 1 is live"), "{again:#?}");
    r.stop().await;
}

#[tokio::test]
async fn route_versions_are_listed_diffed_and_rolled_back() {
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    r.source("acme", "calls", "call-tracking", None).await;
    let cli = Cli::new(&r);
    cli.run(&["plugin", "push", "acme", "passthrough", &wasm_path("passthrough")]).await.ok();
    let first = cli.write("v1.json", &routes_json("http://127.0.0.1:9/one", "passthrough"));
    let second = cli.write("v2.json", &routes_json("http://127.0.0.1:9/two", "passthrough"));
    cli.run(&["route", "apply", "acme", first.to_str().unwrap()]).await.ok();
    cli.run(&["route", "apply", "acme", second.to_str().unwrap()]).await.ok();

    let table = cli.run(&["route", "list", "acme"]).await.ok().stdout;
    assert!(table.starts_with("VERSION"), "{table}");
    let live: Vec<_> = table.lines().filter(|l| l.split_whitespace().nth(1) == Some("*")).collect();
    assert_eq!(live.len(), 1, "{table}");
    assert!(live[0].starts_with('2'), "{table}");

    let diff = cli.run(&["route", "diff", "acme", "1"]).await.ok().stdout;
    assert!(diff.contains("-") && diff.contains("/one") && diff.contains("/two"), "{diff}");
    let same = cli.run(&["route", "diff", "acme", "2", "2"]).await.ok().stdout;
    assert!(same.contains("same document"), "{same}");

    let rolled = cli.run(&["route", "rollback", "acme", "1"]).await.ok();
    assert!(rolled.stdout.contains("back to version 1: live now as version 3"), "{rolled:#?}");
    let live = cli.run(&["route", "show", "acme", "--json"]).await.ok().json();
    assert_eq!(live["version"], 3);
    assert_eq!(live["document"]["routes"][0]["destinations"][0]["url"], "http://127.0.0.1:9/one");
    let old = cli.run(&["route", "show", "acme", "2", "--json"]).await.ok().json();
    assert_eq!(old["document"]["routes"][0]["destinations"][0]["url"], "http://127.0.0.1:9/two");
    let versions = cli.run(&["route", "list", "acme", "--json"]).await.ok().json();
    assert_eq!(versions["live"], 3);
    assert_eq!(versions["versions"].as_array().unwrap().len(), 3);
    r.stop().await;
}

#[tokio::test]
async fn tenant_keys_are_shown_once_reach_their_tenant_only_and_can_be_revoked() {
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    r.tenant("globex").await;
    let cli = Cli::new(&r);

    let created = cli.run(&["tenant", "keys", "create", "acme", "--name", "ci"]).await.ok().stdout;
    assert!(created.contains("only time the key is shown"), "{created}");
    let key = created.split_whitespace().find(|w| w.starts_with("syk_")).expect("the key is printed").to_owned();
    let id = created.split_whitespace().find(|w| w.starts_with("key_")).unwrap().to_owned();

    let listed = cli.run(&["tenant", "keys", "list", "acme"]).await.ok().stdout;
    let row = rows_with(&listed, &id);
    assert_eq!(row.len(), 1, "{listed}");
    assert!(row[0].contains("ci") && !listed.contains(&key), "the secret is never listed: {listed}");

    cli.run_as(&key, &["events", "list", "acme"]).await.ok();
    let other = cli.run_as(&key, &["events", "list", "globex"]).await;
    assert_eq!(other.code, 1, "a tenant key reaches its own tenant only: {other:#?}");

    let revoked = cli.run(&["tenant", "keys", "revoke", "acme", &id]).await.ok();
    assert!(revoked.stdout.contains("Revoked"), "{revoked:#?}");
    // ID, NAME, PREFIX, then CREATED, LAST USED and REVOKED as `date time` each.
    let listed = cli.run(&["tenant", "keys", "list", "acme"]).await.ok().stdout;
    let cells: Vec<_> = rows_with(&listed, &id)[0].split_whitespace().collect();
    assert_eq!(cells.len(), 9, "{listed}");
    assert!(key.starts_with(cells[2]) && cells[1] == "ci", "{listed}");
    assert!(cells[4].ends_with('Z') && cells[6].ends_with('Z') && cells[8].ends_with('Z'), "{listed}");
    let after = cli.run_as(&key, &["events", "list", "acme"]).await;
    assert_eq!(after.code, 1, "{after:#?}");
    assert!(after.stderr.contains("HTTP 401"), "{after:#?}");
    r.stop().await;
}

#[tokio::test]
async fn plugin_versions_are_listed_and_dry_run() {
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    let cli = Cli::new(&r);
    let tagger = wasm_path("call-outcome-tagger");
    cli.run(&["plugin", "push", "acme", "tagger", &tagger]).await.ok();
    cli.run(&["plugin", "push", "acme", "tagger", &tagger]).await.ok();

    let versions = cli.run(&["plugin", "list", "acme", "tagger"]).await.ok().stdout;
    assert!(versions.starts_with("VERSION"), "{versions}");
    assert_eq!(versions.lines().count(), 3, "{versions}");

    let fixtures = cli.run(&["plugin", "fixtures"]).await.ok().stdout;
    assert!(fixtures.lines().any(|l| l == "call-tracking/call_outcome_tagged"), "{fixtures}");

    let run =
        cli.run(&["plugin", "test", "acme", "tagger", "--fixture", "call-tracking/call_outcome_tagged"]).await.ok();
    assert!(run.stdout.starts_with("tagger@2: pass"), "{run:#?}");
    assert!(run.stdout.contains("\"classification\": \"won\""), "{run:#?}");

    let dropped = cli
        .run(&[
            "plugin",
            "test",
            "acme",
            "tagger@1",
            "--fixture",
            "call-tracking/call_outcome_tagged",
            "--config",
            "drop_outcomes=booked",
            "--json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(dropped["verdict"], "drop");
    assert_eq!(dropped["plugin"], "tagger@1");

    // An event from a file; a payload the plugin cannot read fails the run (exit 1).
    let event = json!({"source": "calls", "type": "call.outcome_tagged", "data": {"outcome_type": 7}});
    let file = cli.write("event.json", &event.to_string());
    let failed = cli.run(&["plugin", "test", "acme", "tagger", "--event", file.to_str().unwrap()]).await;
    assert_eq!(failed.code, 1, "{failed:#?}");
    assert!(failed.stdout.contains("tagger@2: error"), "{failed:#?}");
    assert!(failed.stderr.contains("the plugin failed"), "{failed:#?}");
    r.stop().await;
}

#[tokio::test]
async fn plugin_new_scaffolds_a_crate_that_builds_and_uploads() {
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    let cli = Cli::new(&r);
    let built = plugins::dir(); // the SDK's dependencies, compiled for wasm32-wasip2

    let created = cli.bare(&["plugin", "new", "scaffold-smoke", "--dir", "smoke"]).await.ok();
    assert!(created.stdout.contains("Created plugin crate scaffold-smoke"), "{created:#?}");
    let dir = cli.path("smoke");
    for file in ["Cargo.toml", "src/lib.rs", "README.md", "Cargo.lock"] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(readme.contains("cargo build --release --target wasm32-wasip2"), "{readme}");

    let again = cli.bare(&["plugin", "new", "scaffold-smoke", "--dir", "smoke"]).await;
    assert_eq!(again.code, 1, "{again:#?}");
    assert!(again.stderr.contains("not overwriting"), "{again:#?}");
    let bad_sdk = cli.bare(&["plugin", "new", "other", "--sdk-path", "/nonexistent"]).await;
    assert_eq!(bad_sdk.code, 1, "{bad_sdk:#?}");

    build_for_wasm(&dir, built);
    let wasm = built.join("scaffold_smoke.wasm");
    let pushed = cli.run(&["plugin", "push", "acme", "scaffold-smoke", wasm.to_str().unwrap(), "--json"]).await.ok();
    assert_eq!(pushed.json()["version"], 1);

    // The template does what its comments say: marks payloads, drops the types it is told to.
    let fixture = ["plugin", "test", "acme", "scaffold-smoke", "--fixture", "call-tracking/call_ended"];
    let passed = cli.run(&fixture).await.ok();
    assert!(passed.stdout.starts_with("scaffold-smoke@1: pass"), "{passed:#?}");
    assert!(passed.stdout.contains("\"handled_by\": \"scaffold-smoke\""), "{passed:#?}");
    let dropped = cli.run(&[&fixture[..], &["--config", "drop_types=call.started,call.ended"]].concat()).await.ok();
    assert!(dropped.stdout.contains("drop") && dropped.stdout.contains("call.ended is in drop_types"), "{dropped:#?}");
    r.stop().await;
}

/// Builds a plugin crate with the plugins' target directory, so the SDK's compiled
/// dependencies are reused and this takes seconds, not minutes.
fn build_for_wasm(dir: &Path, plugins_out: &Path) {
    let target_dir = plugins_out.ancestors().nth(2).unwrap(); // plugins/target
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .expect("running cargo");
    assert!(status.success(), "the scaffolded crate does not build");
}

#[tokio::test]
async fn disabled_destinations_are_shown_enabled_and_their_dead_letters_replayed_by_filter() {
    let rx = Receiver::start().await;
    rx.respond_with(&[410]);
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    r.source("acme", "crm", "crm", None).await;
    r.routes("acme", json!({"routes": [support::route("all", "crm", &[], &[], &rx.url("hook"))]})).await;
    r.send("acme", "crm", &fixture("crm/lead_created.json")).await;
    let cli = Cli::new(&r);
    let deadline = tokio::time::Instant::now() + support::WAIT;
    let listed = loop {
        let listed = cli.run(&["destinations", "list", "acme"]).await.ok();
        if listed.stdout.contains("disabled") {
            break listed;
        }
        assert!(tokio::time::Instant::now() < deadline, "never disabled: {listed:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(listed.stdout.contains("410 Gone") && listed.stdout.contains(&rx.url("hook")), "{listed:#?}");

    let enabled = cli.run(&["destinations", "enable", "acme", &rx.url("hook")]).await.ok();
    assert!(enabled.stdout.contains("Enabled"), "{enabled:#?}");
    let replayed = cli.run(&["--json", "deliveries", "replay", "acme", "--route", "all"]).await.ok();
    assert_eq!(replayed.json()["replayed"], 1);
    rx.wait_for("/hook", 2, support::WAIT).await;
    let bad = cli.run(&["deliveries", "replay", "acme", "dlv_x", "--route", "all"]).await;
    assert_eq!(bad.code, 2, "an id and filters do not mix: {bad:#?}");
    r.stop().await;
}

#[tokio::test]
async fn list_all_follows_cursors_and_since_narrows() {
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    r.source("acme", "calls", "call-tracking", None).await;
    let call = |n: usize| json!({"event": "call.ended", "timestamp": "2026-03-25T18:35:00Z", "data": {"n": n}});
    let mut first = std::collections::HashSet::new();
    for n in 0..120 {
        first.insert(r.send("acme", "calls", call(n).to_string().as_bytes()).await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mid = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mut second = std::collections::HashSet::new();
    for n in 120..130 {
        second.insert(r.send("acme", "calls", call(n).to_string().as_bytes()).await);
    }
    let cli = Cli::new(&r);
    let ids = |v: &Value, key: &str| -> Vec<String> {
        v[key].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect()
    };

    // One page unless --all: 50 by default, with a cursor for the next.
    let page = cli.run(&["--json", "events", "list", "acme"]).await.ok().json();
    assert_eq!(ids(&page, "events").len(), 50);
    assert!(page["next_cursor"].is_string(), "{page}");
    // --all walks every page (here of 40): each event once.
    let all = cli.run(&["--json", "events", "list", "acme", "--all", "--limit", "40"]).await.ok().json();
    let got = ids(&all, "events");
    assert_eq!(got.len(), 130);
    assert_eq!(got.iter().cloned().collect::<std::collections::HashSet<_>>().len(), 130);
    assert!(all["next_cursor"].is_null());
    // --since: only the later ones; --until: only the earlier ones (as a table, one row each).
    let later = cli.run(&["--json", "events", "list", "acme", "--all", "--since", &mid]).await.ok().json();
    assert_eq!(ids(&later, "events").into_iter().collect::<std::collections::HashSet<_>>(), second);
    let table = cli.run(&["events", "list", "acme", "--all", "--until", &mid]).await.ok().stdout;
    assert_eq!(table.lines().skip(1).count(), 120, "{table}");
    assert!(first.iter().all(|id| table.contains(id.as_str())));
    // Deliveries take the same flags; a bad time is the router's 400, exit code 1.
    let none = cli.run(&["--json", "deliveries", "list", "acme", "--all", "--since", &mid]).await.ok().json();
    assert_eq!(none["deliveries"], json!([]));
    let bad = cli.run(&["events", "list", "acme", "--since", "yesterday"]).await;
    assert_eq!(bad.code, 1, "{bad:#?}");
    assert!(bad.stderr.contains("since"), "{bad:#?}");
    r.stop().await;
}
