//! Real plugin components, built from `plugins/` for wasm32-wasip2 once per test run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Builds the plugins workspace (a no-op when `.ci/run` already did) and returns the folder
/// of `.wasm` components. Building here keeps `cargo test` self-sufficient.
pub fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = repo_root();
        ensure_wasm_target();
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
            .arg(root.join("plugins/Cargo.toml"))
            // The outer cargo's settings must not leak into the guest build.
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .status()
            .expect("running cargo to build plugins/");
        assert!(status.success(), "building plugins/ failed");
        root.join("plugins/target/wasm32-wasip2/release")
    })
}

fn ensure_wasm_target() {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match installed {
        Ok(out) if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == "wasm32-wasip2") => {}
        Ok(_) => {
            let ok =
                Command::new("rustup").args(["target", "add", "wasm32-wasip2"]).status().is_ok_and(|s| s.success());
            assert!(ok, "could not install the wasm32-wasip2 target: run `rustup target add wasm32-wasip2`");
        }
        // No rustup: trust that the toolchain has the target; cargo will say if not.
        Err(_) => {}
    }
}

/// The bytes of one plugin component, by crate name (`call-outcome-tagger`).
pub fn wasm(name: &str) -> Vec<u8> {
    let path = dir().join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}
