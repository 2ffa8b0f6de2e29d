//! Generated data: users, role grants, API keys, sealed sessions and recent
//! failed logins, bulk-inserted with multi-row `INSERT`s through sqlx, with a
//! progress bar per table. Every row is one the services accept: sessions
//! carry the seal `Sessions::validate` checks, keys the hash `verify` looks up.

use std::net::IpAddr;
use std::time::Instant;

use anyhow::Result;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use gatehouse::sessions::{SessionPolicy, SessionToken};
use indicatif::{ProgressBar, ProgressStyle};
use sea_orm::sqlx::{self, AssertSqlSafe};
use uuid::Uuid;

use crate::handwritten::{SealInput, ip_hash, seal};
use crate::measure::Rng;
use crate::setup::{Backend, SqlxPool, number_placeholders, on_pool};

/// Most bound parameters per statement (SQLite allows 32766, the servers 65535).
const MAX_BINDS: usize = 30_000;
/// Most rows per statement.
const MAX_ROWS: usize = 1_000;
/// Sessions, keys and users kept in memory to draw workload inputs from.
const SAMPLES: usize = 5_000;
/// Every user's password; its hash is computed once and shared.
pub const PASSWORD: &str = "correct horse battery staple 42";
/// Scopes of every generated key (both held through the `user` role).
const KEY_SCOPES: [&str; 2] = ["api_keys.create", "users.read"];
const USER_AGENTS: [&str; 4] = [
    "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/138.0",
    "curl/8.5.0",
];

/// How much data to generate.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub name: &'static str,
    pub users: usize,
    pub sessions: usize,
    /// One API key per user for the first this many users.
    pub api_keys: usize,
    /// Every this many users has one recent failed login.
    pub failure_every: usize,
}

impl Scale {
    pub const SMALL: Self = Self {
        name: "small",
        users: 10_000,
        sessions: 100_000,
        api_keys: 10_000,
        failure_every: 10,
    };
    pub const FULL: Self = Self {
        name: "full",
        users: 100_000,
        sessions: 1_000_000,
        api_keys: 100_000,
        failure_every: 10,
    };
}

/// A session the workloads present, with the client it was created for.
pub struct SessionSample {
    pub token: String,
    pub ip: &'static str,
    pub user_agent: &'static str,
}

impl SessionSample {
    /// The client the session was created from, as a validation presents it.
    pub fn client(&self) -> gatehouse::ClientInfo<'static> {
        gatehouse::ClientInfo {
            ip: Some(self.ip),
            user_agent: Some(self.user_agent),
        }
    }
}

/// What the workloads draw their inputs from.
pub struct Fixture {
    pub sessions: Vec<SessionSample>,
    pub api_keys: Vec<String>,
    pub users: Vec<Uuid>,
    /// Usernames whose password is [`PASSWORD`], for the login load.
    pub login_usernames: Vec<String>,
    /// Rows per table, for the report.
    pub rows: Vec<(&'static str, usize)>,
    pub seconds: f64,
}

/// A value to bind.
enum Val {
    Uuid(Uuid),
    OptUuid(Option<Uuid>),
    Text(String),
    OptText(Option<String>),
    Time(DateTime<Utc>),
    OptTime(Option<DateTime<Utc>>),
    Bool(bool),
    Int(i32),
    BigInt(i64),
    Json(serde_json::Value),
}

/// Inserts rows into one table in multi-row statements, advancing `bar`.
struct Inserter<'a> {
    pool: &'a SqlxPool,
    backend: Backend,
    table: &'static str,
    columns: &'static [&'static str],
    rows: Vec<Vec<Val>>,
    per_statement: usize,
    bar: ProgressBar,
    total: usize,
}

impl<'a> Inserter<'a> {
    fn new(
        pool: &'a SqlxPool,
        backend: Backend,
        table: &'static str,
        columns: &'static [&'static str],
        total: usize,
    ) -> Self {
        let bar = ProgressBar::new(total as u64)
            .with_style(
                ProgressStyle::with_template(
                    "  {prefix:>22} [{bar:32}] {pos:>8}/{len:<8} {per_sec:>12} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            )
            .with_prefix(table);
        Self {
            pool,
            backend,
            table,
            columns,
            rows: Vec::new(),
            per_statement: (MAX_BINDS / columns.len()).min(MAX_ROWS),
            bar,
            total: 0,
        }
    }

    async fn push(&mut self, row: Vec<Val>) -> Result<()> {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
        if self.rows.len() == self.per_statement {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let tuple = format!("({})", vec!["?"; self.columns.len()].join(", "));
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES {}",
            self.table,
            self.columns.join(", "),
            vec![tuple; self.rows.len()].join(", ")
        );
        if self.backend == Backend::Postgres {
            sql = number_placeholders(&sql);
        }
        let rows = std::mem::take(&mut self.rows);
        let n = rows.len();
        on_pool!(self.pool, |p| {
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for value in rows.into_iter().flatten() {
                query = match value {
                    Val::Uuid(v) => query.bind(v),
                    Val::OptUuid(v) => query.bind(v),
                    Val::Text(v) => query.bind(v),
                    Val::OptText(v) => query.bind(v),
                    Val::Time(v) => query.bind(v),
                    Val::OptTime(v) => query.bind(v),
                    Val::Bool(v) => query.bind(v),
                    Val::Int(v) => query.bind(v),
                    Val::BigInt(v) => query.bind(v),
                    Val::Json(v) => query.bind(v),
                };
            }
            query.execute(p).await?;
        });
        self.total += n;
        self.bar.inc(n as u64);
        Ok(())
    }

    async fn finish(mut self) -> Result<(&'static str, usize)> {
        self.flush().await?;
        self.bar.finish();
        Ok((self.table, self.total))
    }
}

/// Generates and inserts the data; `role_user` and `role_moderator` are the
/// seeded roles' ids, `session_key` the sessions service's key and key id,
/// `password_hash` the PHC string of [`PASSWORD`].
#[allow(clippy::too_many_arguments)]
pub async fn fill(
    pool: &SqlxPool,
    backend: Backend,
    scale: Scale,
    role_user: Uuid,
    role_moderator: Uuid,
    session_key: (&[u8], Uuid),
    password_hash: &str,
    rng: &mut Rng,
) -> Result<Fixture> {
    let started = Instant::now();
    // Microseconds, as the services store them.
    let now = Utc::now().trunc_subsecs(6);
    let policy = SessionPolicy::default();
    let mut rows = Vec::new();
    let sample = |rng: &mut Rng, total: usize| rng.below(total as u64) < SAMPLES as u64;

    let mut users = Vec::with_capacity(scale.users);
    let mut user_samples = Vec::new();
    let mut login_usernames = Vec::new();
    let mut insert = Inserter::new(
        pool,
        backend,
        "users",
        &[
            "id",
            "email",
            "username",
            "email_folded",
            "username_folded",
            "password_hash",
            "is_active",
            "is_verified",
            "is_locked",
            "failed_login_count",
            "password_changed_at",
            "created_at",
            "updated_at",
        ],
        scale.users,
    );
    for i in 0..scale.users {
        let id = Uuid::now_v7();
        let created = now - Duration::seconds((scale.users - i) as i64);
        let username = format!("user{i:07}");
        if i < 8 {
            login_usernames.push(username.clone());
        }
        if sample(rng, scale.users) {
            user_samples.push(id);
        }
        users.push(id);
        insert
            .push(vec![
                Val::Uuid(id),
                Val::Text(format!("{username}@example.com")),
                Val::Text(username.clone()),
                // Generated names are already in folded form (lower-case ASCII).
                Val::Text(format!("{username}@example.com")),
                Val::Text(username),
                Val::Text(password_hash.to_owned()),
                Val::Bool(true),
                Val::Bool(true),
                Val::Bool(false),
                Val::Int(0),
                Val::OptTime(Some(created)),
                Val::Time(created),
                Val::Time(created),
            ])
            .await?;
    }
    rows.push(insert.finish().await?);

    let grants = scale.users + scale.users.div_ceil(100);
    let mut insert = Inserter::new(
        pool,
        backend,
        "user_roles",
        &[
            "user_id",
            "role_id",
            "granted_by",
            "granted_at",
            "expires_at",
        ],
        grants,
    );
    for (i, &user) in users.iter().enumerate() {
        insert
            .push(vec![
                Val::Uuid(user),
                Val::Uuid(role_user),
                Val::OptUuid(None),
                Val::Time(now),
                Val::OptTime(None),
            ])
            .await?;
        if i % 100 == 0 {
            insert
                .push(vec![
                    Val::Uuid(user),
                    Val::Uuid(role_moderator),
                    Val::OptUuid(None),
                    Val::Time(now),
                    Val::OptTime(Some(now + Duration::days(30))),
                ])
                .await?;
        }
    }
    rows.push(insert.finish().await?);

    let mut key_samples = Vec::new();
    let mut insert = Inserter::new(
        pool,
        backend,
        "api_keys",
        &[
            "id",
            "user_id",
            "name",
            "key_prefix",
            "key_hash",
            "scopes",
            "rate_limit_per_minute",
            "usage_count",
            "is_revoked",
            "created_at",
            "updated_at",
            "rate_window_minute",
            "rate_window_count",
        ],
        scale.api_keys,
    );
    let scopes = serde_json::json!(KEY_SCOPES);
    for &user in users.iter().take(scale.api_keys) {
        let key = gatehouse::ApiKey::generate();
        insert
            .push(vec![
                Val::Uuid(Uuid::now_v7()),
                Val::Uuid(user),
                Val::Text("deploy bot".into()),
                Val::Text(key.display_prefix().to_owned()),
                Val::Text(key.hash()),
                Val::Json(scopes.clone()),
                Val::Int(gatehouse::api_keys::MAX_RATE_LIMIT_PER_MINUTE),
                Val::BigInt(0),
                Val::Bool(false),
                Val::Time(now),
                Val::Time(now),
                Val::BigInt(0),
                Val::Int(0),
            ])
            .await?;
        if sample(rng, scale.api_keys) {
            key_samples.push(key.expose().to_owned());
        }
    }
    rows.push(insert.finish().await?);

    let (key, key_id) = session_key;
    let ips: Vec<(&'static str, String)> = (1..=16)
        .map(|n| {
            let ip: &'static str = Box::leak(format!("198.51.100.{n}").into_boxed_str());
            (ip, ip_hash(key, ip.parse::<IpAddr>().expect("valid IPv4")))
        })
        .collect();
    let mut session_samples = Vec::new();
    let mut insert = Inserter::new(
        pool,
        backend,
        "sessions",
        &[
            "id",
            "user_id",
            "token_hash",
            "ip_address",
            "user_agent",
            "created_at",
            "last_activity_at",
            "expires_at",
            "is_revoked",
            "security_hash",
            "encryption_key_id",
            "created_ip_hash",
            "security_version",
            "risk_score",
        ],
        scale.sessions,
    );
    for _ in 0..scale.sessions {
        let id = Uuid::now_v7();
        let user = users[rng.below(users.len() as u64) as usize];
        let token = SessionToken::generate();
        let token_hash = token.hash();
        let (ip, created_ip_hash) = &ips[rng.below(ips.len() as u64) as usize];
        let user_agent = USER_AGENTS[rng.below(USER_AGENTS.len() as u64) as usize];
        let created = now - Duration::microseconds(rng.below(300_000_000) as i64);
        let expires = created + policy.absolute_timeout;
        let security_hash = seal(
            key,
            &SealInput {
                id,
                user_id: user,
                token_hash: &token_hash,
                user_agent: Some(user_agent),
                created_at: created,
                expires_at: expires,
                created_ip_hash: Some(created_ip_hash),
                security_version: 1,
                encryption_key_id: Some(key_id),
            },
        );
        if sample(rng, scale.sessions) {
            session_samples.push(SessionSample {
                token: token.expose().to_owned(),
                ip,
                user_agent,
            });
        }
        insert
            .push(vec![
                Val::Uuid(id),
                Val::Uuid(user),
                Val::Text(token_hash),
                Val::OptText(Some((*ip).to_owned())),
                Val::OptText(Some(user_agent.to_owned())),
                Val::Time(created),
                Val::Time(now),
                Val::Time(expires),
                Val::Bool(false),
                Val::OptText(Some(security_hash)),
                Val::OptUuid(Some(key_id)),
                Val::OptText(Some(created_ip_hash.clone())),
                Val::Int(1),
                Val::Int(0),
            ])
            .await?;
    }
    rows.push(insert.finish().await?);

    let failures = scale.users.div_ceil(scale.failure_every);
    let mut insert = Inserter::new(
        pool,
        backend,
        "failed_login_attempts",
        &[
            "id",
            "user_id",
            "identifier",
            "attempt_kind",
            "ip_address",
            "failure_reason",
            "created_at",
        ],
        failures,
    );
    for (i, &user) in users.iter().enumerate().step_by(scale.failure_every) {
        insert
            .push(vec![
                Val::Uuid(Uuid::now_v7()),
                Val::OptUuid(Some(user)),
                Val::Text(format!("user{i:07}")),
                Val::Text("password".into()),
                Val::OptText(Some("203.0.113.9".into())),
                Val::OptText(Some("wrong password".into())),
                Val::Time(now - Duration::seconds(120)),
            ])
            .await?;
    }
    rows.push(insert.finish().await?);

    Ok(Fixture {
        sessions: session_samples,
        api_keys: key_samples,
        users: user_samples,
        login_usernames,
        rows,
        seconds: started.elapsed().as_secs_f64(),
    })
}
