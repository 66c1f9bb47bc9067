//! Configuration loading and validation: defaults, files, the environment, overrides.
//!
//! figment's test Jail fixes the closure's error type, which is large; fine in tests.
#![allow(clippy::result_large_err)]

use super::*;

#[test]
fn defaults_are_valid() {
    Config::default().validate().unwrap();
}

#[test]
fn file_overrides_defaults_and_rejects_unknown_keys() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("s.toml", "[delivery]\ntimeout = \"2s\"\nretry_schedule = [\"0s\", \"10ms\"]\n")?;
        let c = Config::load(Some(Path::new("s.toml"))).map_err(|e| e.to_string())?;
        assert_eq!(c.delivery.timeout, Duration::from_secs(2));
        assert_eq!(c.delivery.retry_schedule, vec![Duration::ZERO, Duration::from_millis(10)]);

        jail.create_file("bad.toml", "[delivery]\ntimeoutt = \"2s\"\n")?;
        let err = Config::load(Some(Path::new("bad.toml"))).unwrap_err().to_string();
        assert!(err.contains("timeoutt"), "{err}");
        Ok(())
    });
}

#[test]
fn environment_overrides_and_binary_variables_are_ignored() {
    // Jail serialises environment changes between tests that use it.
    figment::Jail::expect_with(|jail| {
        jail.set_env("SWITCHYARD_DELIVERY__JITTER", "0.1");
        jail.set_env("SWITCHYARD_DELIVERY__ALLOWED_CIDRS", "[\"127.0.0.1/32\"]");
        jail.set_env("SWITCHYARD_DELIVERY__DISABLE_AFTER", "3days");
        jail.set_env("SWITCHYARD_LOG", "debug");
        jail.set_env("SWITCHYARD_CONFIG", "/nonexistent.toml");
        let c = Config::load(None).map_err(|e| e.to_string())?;
        assert_eq!(c.delivery.jitter, 0.1);
        assert_eq!(c.delivery.allowed_cidrs, vec!["127.0.0.1/32".parse::<ipnet::IpNet>().unwrap()]);
        assert_eq!(c.delivery.disable_after, Duration::from_secs(3 * 86400));
        Ok(())
    });
}

#[test]
fn tenant_overrides_replace_only_the_fields_they_name() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "t.toml",
            "[tenant_defaults]\nmax_plugins = 7\n[tenants.acme]\nmax_routes = 2\ngrants = [\"log\"]\n",
        )?;
        jail.set_env("SWITCHYARD_TENANTS__GLOBEX__INGEST_RATE", "5");
        let c = Config::load(Some(Path::new("t.toml"))).map_err(|e| e.to_string())?;
        let acme = c.policy("acme");
        assert_eq!((acme.max_plugins, acme.max_routes, acme.grants.as_slice()), (7, 2, &[Capability::Log][..]));
        assert_eq!(c.policy("globex").ingest_rate, 5.0);
        assert_eq!(c.policy("other"), c.tenant_defaults);
        Ok(())
    });
}

#[test]
fn tenant_plugin_limits_override_only_the_fields_they_name() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "p.toml",
            "[plugins]\ntimeout = \"2s\"\nmax_kv_ops = 50\n\
             [tenants.acme]\nmax_routes = 2\n\
             [tenants.acme.plugins]\ntimeout = \"250ms\"\nmax_memory_bytes = 8388608\nmax_fanout = 5\n",
        )?;
        jail.set_env("SWITCHYARD_TENANTS__GLOBEX__PLUGINS__MAX_KV_OPS", "7");
        let c = Config::load(Some(Path::new("p.toml"))).map_err(|e| e.to_string())?;
        let acme = c.plugin_limits("acme");
        assert_eq!(acme.timeout, Duration::from_millis(250));
        assert_eq!((acme.max_memory_bytes, acme.max_fanout), (8 * 1024 * 1024, 5));
        assert_eq!((acme.max_kv_ops, acme.max_output_bytes), (50, c.plugins.max_output_bytes), "inherited");
        assert_eq!(c.policy("acme").max_routes, 2, "the policy part still applies");
        let globex = c.plugin_limits("globex");
        assert_eq!((globex.max_kv_ops, globex.timeout), (7, Duration::from_secs(2)));
        assert_eq!(c.plugin_limits("other").max_kv_ops, 50);

        jail.create_file("big.toml", "[tenants.acme.plugins]\nmax_memory_bytes = 1073741824\n")?;
        let err = Config::load(Some(Path::new("big.toml"))).unwrap_err().to_string();
        assert!(err.contains("tenants.acme.plugins.max_memory_bytes must not exceed"), "{err}");
        Ok(())
    });
}

#[test]
fn invalid_tenant_plugin_limits_are_refused() {
    let mut c = Config::default();
    let acme = c.tenants.entry("acme".into()).or_default();
    acme.plugins.max_kv_ops = Some(0);
    assert!(c.validate().unwrap_err().to_string().contains("tenants.acme.plugins.max_fanout"));
    let acme = c.tenants.get_mut("acme").unwrap();
    acme.plugins = PluginLimitsOverride { timeout: Some(Duration::from_millis(1)), ..Default::default() };
    assert!(c.validate().unwrap_err().to_string().contains("timeout"));
    c.tenants.get_mut("acme").unwrap().plugins.timeout = Some(Duration::from_millis(100));
    c.validate().unwrap();
}

#[test]
fn kv_quotas_and_retention_are_per_tenant() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "r.toml",
            "[retention]\nevents = \"7d\"\n\
             [tenant_defaults]\nmax_kv_keys = 500\n\
             [tenants.acme]\nmax_kv_bytes = 4096\n\
             [tenants.acme.retention]\nevents = \"2h\"\nroute_versions = 5\n",
        )?;
        let c = Config::load(Some(Path::new("r.toml"))).map_err(|e| e.to_string())?;
        let acme = c.policy("acme");
        assert_eq!((acme.max_kv_keys, acme.max_kv_bytes), (500, 4096));
        assert_eq!(c.policy("other").max_kv_bytes, 64 * 1024 * 1024, "the default");
        assert_eq!(c.retention("acme"), TenantRetention { events: Duration::from_secs(7200), route_versions: 5 });
        assert_eq!(
            c.retention("other"),
            TenantRetention { events: Duration::from_secs(7 * 86400), route_versions: 100 }
        );

        jail.create_file("zero.toml", "[tenants.acme.retention]\nroute_versions = 0\n")?;
        let err = Config::load(Some(Path::new("zero.toml"))).unwrap_err().to_string();
        assert!(err.contains("tenants.acme.retention"), "{err}");
        Ok(())
    });
}

#[test]
fn invalid_values_are_refused() {
    let mut c = Config::default();
    c.delivery.retry_schedule.clear();
    assert!(c.validate().is_err());
}

#[test]
fn per_component_and_compile_bounds_are_checked() {
    let mut c = Config::default();
    c.plugins.max_component_memory_bytes = c.plugins.max_memory_bytes - 1;
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("max_component_memory_bytes must be at least plugins.max_memory_bytes"), "{err}");
    let mut c = Config::default();
    c.plugins.compile_concurrency = 0;
    assert!(c.validate().unwrap_err().to_string().contains("compile_concurrency"));
    let mut c = Config::default();
    c.plugins.max_core_instances_per_component = u32::MAX;
    assert!(c.validate().unwrap_err().to_string().contains("the pool's size"));
}

#[test]
fn tracing_is_switched_on_from_the_environment_and_checked() {
    figment::Jail::expect_with(|jail| {
        assert_eq!(Config::load(None).map_err(|e| e.to_string())?.tracing.traces_url(), None, "off by default");
        jail.set_env("SWITCHYARD_TRACING__OTLP_ENDPOINT", "http://localhost:4318");
        jail.set_env("SWITCHYARD_TRACING__EXPORT_INTERVAL", "1s");
        let c = Config::load(None).map_err(|e| e.to_string())?;
        assert_eq!(c.tracing.traces_url().as_deref(), Some("http://localhost:4318/v1/traces"));
        assert_eq!(c.tracing.export_interval, Duration::from_secs(1));
        jail.set_env("SWITCHYARD_TRACING__SAMPLING_RATIO", "2");
        let err = Config::load(None).unwrap_err().to_string();
        assert!(err.contains("tracing.sampling_ratio"), "{err}");
        Ok(())
    });
}

#[test]
fn the_database_defaults_to_sqlite_in_the_data_dir_and_other_schemes_are_refused() {
    use crate::store::DatabaseUrl;
    let mut c = Config { data_dir: PathBuf::from("/var/lib/sy"), ..Config::default() };
    assert_eq!(c.database_url().unwrap(), DatabaseUrl::Sqlite("sqlite:///var/lib/sy/switchyard.db".into()));
    c.database_url = Some("postgres://sy:hunter2@db.internal/switchyard".into());
    assert!(matches!(c.database_url().unwrap(), DatabaseUrl::Postgres(_)));
    c.database_url = Some("sqlite:///tmp/other.db".into());
    assert!(matches!(c.database_url().unwrap(), DatabaseUrl::Sqlite(_)));
    c.database_url = Some("mysql://sy:hunter2@db.internal/switchyard".into());
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("database_url") && err.contains("postgres://"), "{err}");
    assert!(!err.contains("hunter2"), "the password is not shown: {err}");
}
