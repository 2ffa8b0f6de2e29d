//! Integration tests: every test runs on SQLite, PostgreSQL and MariaDB/MySQL,
//! each in a database of its own that the test creates and drops.

#[macro_use]
mod support;

mod accounts;
mod api_keys;
mod app;
mod audit;
mod audit_ingest;
mod cli;
mod constraints;
mod counting;
mod deploy;
mod drift;
mod escalation;
mod handle;
mod hostile_input;
mod identity;
mod invariants;
mod key_ring;
mod key_usage;
mod keys;
mod lockout;
mod mfa;
mod online_sessions;
mod operator;
mod partitions;
mod query_plans;
mod rbac;
mod recovery;
mod revocation;
mod roundtrip;
mod runner;
mod seed;
mod session_security;
mod sessions;
mod snapshots;
mod topologies;
mod verification;
