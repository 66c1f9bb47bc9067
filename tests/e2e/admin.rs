//! The admin token: generated on first start when none is configured, kept private in the
//! data directory, and the same on the next start.

use std::os::unix::fs::PermissionsExt as _;

use crate::support::TestRouter;

#[tokio::test]
async fn a_generated_admin_token_is_saved_privately_and_reused() {
    let r = TestRouter::start_with(|c| c.admin_token = None).await;
    let path = r.data_dir.path().join("admin-token");
    let token = std::fs::read_to_string(&path).expect("token file written on first start");
    assert!(token.starts_with("sya_") && token.len() > 40, "{token}");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

    let list = |token: String| {
        let (http, base) = (r.http.clone(), r.base.clone());
        async move { http.get(format!("{base}/v1/tenants")).bearer_auth(token).send().await.unwrap().status() }
    };
    assert_eq!(list(token.clone()).await, 200);
    assert_eq!(list("test-admin-token-0123456789".into()).await, 401, "the test default is not in force");

    // Same data directory, second start: the same token, not a new one.
    let dir = r.stop().await;
    let again = TestRouter::start_on(dir, |c| c.admin_token = None).await;
    assert_eq!(std::fs::read_to_string(again.data_dir.path().join("admin-token")).unwrap(), token);
    let status =
        again.http.get(format!("{}/v1/tenants", again.base)).bearer_auth(&token).send().await.unwrap().status();
    assert_eq!(status, 200);
    again.stop().await;
}

#[tokio::test]
async fn the_data_directory_and_database_are_private_to_the_router_user() {
    let r = TestRouter::start_with(|c| c.data_dir = c.data_dir.join("nested/data")).await;
    r.tenant("acme").await; // something written, so the WAL exists
    let dir = r.data_dir.path().join("nested/data");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "data directory");
    assert_eq!(mode(&r.data_dir.path().join("nested")), 0o700, "and the parents it created");
    assert_eq!(mode(&dir.join("secrets-key")), 0o600, "secrets-key");
    // The database files are in it on SQLite; PostgreSQL keeps its own.
    if !crate::support::database::on_postgres() {
        for file in ["switchyard.db", "switchyard.db-wal", "switchyard.db-shm"] {
            assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
        }
    }
}
