//! End-to-end tests: the real router, real plugin components built from `plugins/`, a real
//! HTTP receiver on loopback, a real SQLite file (or, with `SWITCHYARD_E2E_BACKEND=postgres`,
//! a real PostgreSQL database; see `support/database.rs`). No part of the router is mocked.

mod support;

mod admin;
mod backlog;
mod cli;
mod connections;
mod delivery;
mod destinations;
mod health;
mod hot_reload;
mod ingest_errors;
mod lifecycle;
mod lists;
mod logs;
mod metrics;
mod openapi;
mod plugins;
mod postgres;
mod reload;
mod restart;
mod routes_dir;
mod sandbox;
mod sandbox_gate;
mod sandbox_upload;
mod secrets;
mod source_auth;
mod stats;
mod storage;
mod tenancy;
mod traces;
mod transient;
mod vendors;
