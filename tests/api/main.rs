//! Black-box tests: the real server over real HTTP, on SQLite and on PostgreSQL.
//!
//! One test binary with a module per feature keeps link time down.

mod helpers;

mod access;
mod access_audit;
mod access_isolation;
mod access_oidc;
mod access_tokens;
mod author;
mod browser_kit;
mod catalogue;
mod citizen;
mod citizen_browser;
mod cli;
mod concurrency;
mod console;
mod console_browser;
mod data_protection;
mod examples;
mod fair_admission;
mod faults;
mod garden_waste_browser;
mod gateway;
mod govuk_standins;
mod hardening;
mod health;
mod hostile;
mod identity;
mod kv_atomics;
mod owners;
mod parity;
mod publish_properties;
mod replicas;
mod shutdown;
mod slow_clients;
mod telemetry;
mod tenant_lifecycle;
mod tenants;
mod transactions;
mod warm_replicas;
