//! The peer applications pick for sessions: tower-sessions with its sqlx
//! store (tower-sessions-sqlx-store 0.15 on sqlx 0.8, tower-sessions-core
//! 0.14), loading a session whose data holds what a gatehouse `sessions` row
//! holds. One indexed read and a MessagePack decode per load, no checks.
//! PostgreSQL and MySQL/MariaDB only: sqlx 0.8's SQLite library cannot be
//! linked beside sqlx 0.9's in one binary.

use std::collections::HashMap;

use anyhow::{Context, Result};
use serde_json::json;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::SessionStore;
use tower_sessions_sqlx_store::sqlx::pool::PoolOptions;
use tower_sessions_sqlx_store::{MySqlStore, PostgresStore};

use crate::setup::Backend;

pub enum Store {
    Postgres(PostgresStore),
    MySql(MySqlStore),
}

pub struct TowerPeer {
    store: Store,
    pub ids: Vec<Id>,
}

/// A store in the bench database `url` (schema `tower_sessions` on
/// PostgreSQL, the database itself on MySQL/MariaDB) holding `sessions`
/// sessions; `None` on SQLite.
pub async fn setup(backend: Backend, url: &str, sessions: usize) -> Result<Option<TowerPeer>> {
    fn options<DB: tower_sessions_sqlx_store::sqlx::Database>() -> PoolOptions<DB> {
        PoolOptions::new()
            .max_connections(gatehouse::db::MAX_CONNECTIONS)
            .min_connections(1)
            .test_before_acquire(false)
    }
    let store = match backend {
        Backend::Sqlite => return Ok(None),
        Backend::Postgres => {
            let store = PostgresStore::new(options().connect(url).await?);
            store.migrate().await?;
            Store::Postgres(store)
        }
        Backend::MySql => {
            let name = url
                .rsplit('/')
                .next()
                .and_then(|tail| tail.split('?').next())
                .context("the bench database's name")?;
            let store = MySqlStore::new(options().connect(url).await?)
                .with_schema_name(name)
                .map_err(anyhow::Error::msg)?;
            store.migrate().await?;
            Store::MySql(store)
        }
    };
    let mut peer = TowerPeer {
        store,
        ids: Vec::with_capacity(sessions),
    };
    let expiry = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    for n in 0..sessions {
        let mut record = Record {
            id: Id::default(),
            data: session_data(n),
            expiry_date: expiry,
        };
        match &peer.store {
            Store::Postgres(s) => s.create(&mut record).await?,
            Store::MySql(s) => s.create(&mut record).await?,
        }
        peer.ids.push(record.id);
    }
    Ok(Some(peer))
}

/// What a gatehouse session row holds, as tower-sessions data.
fn session_data(n: usize) -> HashMap<String, serde_json::Value> {
    let fields = json!({
        "id": uuid::Uuid::now_v7(),
        "user_id": uuid::Uuid::now_v7(),
        "token_hash": format!("{:064x}", n),
        "ip_address": "203.0.113.10",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
        "created_at": "2026-12-07T00:00:00.000000Z",
        "last_activity_at": "2026-12-07T00:00:00.000000Z",
        "expires_at": "2026-12-08T00:00:00.000000Z",
        "is_revoked": false,
        "revoked_at": null,
        "revoked_reason": null,
        "security_hash": format!("{:064x}", n + 1),
        "encryption_key_id": uuid::Uuid::now_v7(),
        "created_ip_hash": format!("{:064x}", n + 2),
        "security_version": 1,
        "last_validated_at": null,
        "risk_score": 0,
    });
    serde_json::from_value(fields).expect("an object")
}

impl TowerPeer {
    /// Loads session `id`: what a tower-sessions request does first.
    pub async fn load(&self, id: &Id) -> Result<()> {
        let record = match &self.store {
            Store::Postgres(s) => s.load(id).await?,
            Store::MySql(s) => s.load(id).await?,
        };
        record.context("the session loads")?;
        Ok(())
    }
}
