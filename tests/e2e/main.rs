//! End-to-end tests: the real router, real plugin components built from `plugins/`, a real
//! HTTP receiver on loopback, a real SQLite file. No part of the router is mocked.

mod support;

mod admin;
mod cli;
mod delivery;
mod ingest_errors;
mod plugins;
mod reload;
mod restart;
mod sandbox;
mod vendors;
