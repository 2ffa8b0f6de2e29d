//! Audit entries: [`AuditEntry`] builds an `audit_logs` row with its request
//! context, checked against the column sizes; [`log_basic`] writes the
//! minimal `audit_log_basic` trail; [`find_entries`] queries by user and time.

use chrono::{DateTime, Utc};
use gatehouse_entity::sea_orm_active_enums::{AuditOutcome, RiskLevel};
use gatehouse_entity::{audit_log_basic, audit_logs};
use sea_orm::prelude::Json;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::{Lines, check_ip, check_json, check_opt_text, check_text};
use crate::Error;

/// Days an entry is kept unless it says otherwise.
pub const DEFAULT_RETENTION_DAYS: i32 = 90;
/// Longest retention the schema allows (100 years).
pub const MAX_RETENTION_DAYS: i32 = 36_500;
/// Rows [`find_entries`] returns when the query sets no limit.
pub const DEFAULT_QUERY_LIMIT: u64 = 100;
/// Most rows [`find_entries`] returns at once.
pub const MAX_QUERY_LIMIT: u64 = 1_000;

/// Event types gatehouse itself reads back (the daily metrics count them).
pub mod event_types {
    /// A login attempt; with outcome `success` it counts as a successful login.
    pub const LOGIN: &str = "login";
}

// Column sizes of `audit_logs` and `audit_log_basic`, in characters.
const EVENT_TYPE_CHARS: usize = 64;
const ACTION_CHARS: usize = 100;
const RESOURCE_TYPE_CHARS: usize = 64;
const RESOURCE_ID_CHARS: usize = 64;
const REQUEST_ID_CHARS: usize = 64;
const HTTP_METHOD_CHARS: usize = 10;
const REQUEST_PATH_CHARS: usize = 2048;
const USER_AGENT_CHARS: usize = 512;
const REGION_CHARS: usize = 100;
const CITY_CHARS: usize = 100;

/// One `audit_logs` row to write. Start with [`AuditEntry::new`], add what is
/// known, then [`AuditEntry::record`] it, or write many at once with
/// [`ingest`](super::ingest::ingest). Defaults: outcome success, not
/// suspicious, risk low, kept [`DEFAULT_RETENTION_DAYS`] days.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    pub(super) event_type: String,
    pub(super) action: String,
    pub(super) outcome: AuditOutcome,
    pub(super) user_id: Option<Uuid>,
    pub(super) session_id: Option<Uuid>,
    pub(super) resource_type: Option<String>,
    pub(super) resource_id: Option<String>,
    pub(super) request_id: Option<String>,
    pub(super) http_method: Option<String>,
    pub(super) request_path: Option<String>,
    pub(super) status_code: Option<i32>,
    pub(super) ip_address: Option<String>,
    pub(super) user_agent: Option<String>,
    pub(super) is_suspicious: bool,
    pub(super) risk_level: RiskLevel,
    pub(super) country_code: Option<String>,
    pub(super) region: Option<String>,
    pub(super) city: Option<String>,
    pub(super) duration_ms: Option<i32>,
    pub(super) response_size_bytes: Option<i64>,
    pub(super) retention_days: i32,
    pub(super) metadata: Option<Json>,
    /// When it happened; `None` dates it when it is written.
    pub(super) created_at: Option<DateTime<Utc>>,
}

impl AuditEntry {
    /// An entry of `event_type` (what kind of thing, e.g. `login`) and
    /// `action` (what was done, e.g. `password_login`).
    pub fn new(event_type: impl Into<String>, action: impl Into<String>) -> Self {
        Self {
            event_type: event_type.into(),
            action: action.into(),
            outcome: AuditOutcome::Success,
            user_id: None,
            session_id: None,
            resource_type: None,
            resource_id: None,
            request_id: None,
            http_method: None,
            request_path: None,
            status_code: None,
            ip_address: None,
            user_agent: None,
            is_suspicious: false,
            risk_level: RiskLevel::Low,
            country_code: None,
            region: None,
            city: None,
            duration_ms: None,
            response_size_bytes: None,
            retention_days: DEFAULT_RETENTION_DAYS,
            metadata: None,
            created_at: None,
        }
    }

    /// How it ended (default: success).
    #[must_use]
    pub fn outcome(mut self, outcome: AuditOutcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// The user who acted, or whom it concerns.
    #[must_use]
    pub fn user(mut self, user_id: Uuid) -> Self {
        self.user_id = Some(user_id);
        self
    }

    /// The session the request came through.
    #[must_use]
    pub fn session(mut self, session_id: Uuid) -> Self {
        self.session_id = Some(session_id);
        self
    }

    /// The affected row: its kind (e.g. `api_key`) and identifier.
    #[must_use]
    pub fn resource(mut self, kind: impl Into<String>, id: impl Into<String>) -> Self {
        self.resource_type = Some(kind.into());
        self.resource_id = Some(id.into());
        self
    }

    /// The correlation id of the request.
    #[must_use]
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// The HTTP request and the status it was answered with.
    #[must_use]
    pub fn http(mut self, method: impl Into<String>, path: impl Into<String>, status: i32) -> Self {
        self.http_method = Some(method.into());
        self.request_path = Some(path.into());
        self.status_code = Some(status);
        self
    }

    /// The client's IP address (checked to parse) and user agent.
    #[must_use]
    pub fn client(mut self, ip_address: Option<&str>, user_agent: Option<&str>) -> Self {
        self.ip_address = ip_address.map(str::to_owned);
        self.user_agent = user_agent.map(str::to_owned);
        self
    }

    /// Flags the entry as suspicious at `risk`.
    #[must_use]
    pub fn suspicious(mut self, risk: RiskLevel) -> Self {
        self.is_suspicious = true;
        self.risk_level = risk;
        self
    }

    /// The risk without the suspicious flag.
    #[must_use]
    pub fn risk(mut self, risk: RiskLevel) -> Self {
        self.risk_level = risk;
        self
    }

    /// Where the request came from: ISO 3166-1 alpha-2 country, region, city.
    #[must_use]
    pub fn geo(
        mut self,
        country_code: Option<&str>,
        region: Option<&str>,
        city: Option<&str>,
    ) -> Self {
        self.country_code = country_code.map(str::to_owned);
        self.region = region.map(str::to_owned);
        self.city = city.map(str::to_owned);
        self
    }

    /// How long the request took and how large the response was.
    #[must_use]
    pub fn timing(mut self, duration_ms: i32, response_size_bytes: Option<i64>) -> Self {
        self.duration_ms = Some(duration_ms);
        self.response_size_bytes = response_size_bytes;
        self
    }

    /// Keeps the entry `days` days (1 to [`MAX_RETENTION_DAYS`]).
    #[must_use]
    pub fn retention_days(mut self, days: i32) -> Self {
        self.retention_days = days;
        self
    }

    /// Free-form JSON about the event.
    #[must_use]
    pub fn metadata(mut self, metadata: Json) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Dates the entry `when` instead of when it is written (for importing
    /// history from another system).
    #[must_use]
    pub fn created_at(mut self, when: DateTime<Utc>) -> Self {
        self.created_at = Some(when);
        self
    }

    /// Checks every value against its column.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the first field that does not fit.
    pub fn validate(&self) -> Result<(), Error> {
        check_text("event_type", &self.event_type, EVENT_TYPE_CHARS, Lines::One)?;
        check_text("action", &self.action, ACTION_CHARS, Lines::One)?;
        check_opt_text(
            "resource_type",
            self.resource_type.as_deref(),
            RESOURCE_TYPE_CHARS,
        )?;
        check_opt_text(
            "resource_id",
            self.resource_id.as_deref(),
            RESOURCE_ID_CHARS,
        )?;
        check_opt_text("request_id", self.request_id.as_deref(), REQUEST_ID_CHARS)?;
        if let Some(method) = &self.http_method
            && (method.is_empty()
                || method.len() > HTTP_METHOD_CHARS
                || !method.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(Error::InvalidInput {
                field: "http_method",
                reason: format!("must be 1 to {HTTP_METHOD_CHARS} upper-case ASCII letters"),
            });
        }
        check_opt_text(
            "request_path",
            self.request_path.as_deref(),
            REQUEST_PATH_CHARS,
        )?;
        if let Some(status) = self.status_code
            && !(100..=599).contains(&status)
        {
            return Err(Error::InvalidInput {
                field: "status_code",
                reason: "must be an HTTP status, 100 to 599".into(),
            });
        }
        check_ip(self.ip_address.as_deref())?;
        check_opt_text("user_agent", self.user_agent.as_deref(), USER_AGENT_CHARS)?;
        if let Some(country) = &self.country_code
            && (country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(Error::InvalidInput {
                field: "country_code",
                reason: "must be two upper-case letters (ISO 3166-1 alpha-2)".into(),
            });
        }
        check_opt_text("region", self.region.as_deref(), REGION_CHARS)?;
        check_opt_text("city", self.city.as_deref(), CITY_CHARS)?;
        if self.duration_ms.is_some_and(|d| d < 0) {
            return Err(Error::InvalidInput {
                field: "duration_ms",
                reason: "must not be negative".into(),
            });
        }
        if self.response_size_bytes.is_some_and(|s| s < 0) {
            return Err(Error::InvalidInput {
                field: "response_size_bytes",
                reason: "must not be negative".into(),
            });
        }
        if !(1..=MAX_RETENTION_DAYS).contains(&self.retention_days) {
            return Err(Error::InvalidInput {
                field: "retention_days",
                reason: format!("must be 1 to {MAX_RETENTION_DAYS}"),
            });
        }
        if let Some(metadata) = &self.metadata {
            check_json("metadata", metadata)?;
        }
        Ok(())
    }

    /// Validates and writes the entry, dated `now` unless it has its own
    /// [`created_at`](Self::created_at).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (nothing written); [`Error::Reference`] for
    /// an unknown user or session; a database error.
    pub async fn record<C: ConnectionTrait>(
        self,
        db: &C,
        now: DateTime<Utc>,
    ) -> Result<audit_logs::Model, Error> {
        self.validate()?;
        Ok(self
            .into_active_model(Uuid::now_v7(), now)
            .insert(db)
            .await?)
    }

    /// The row for this entry, with primary key `id`, dated `now` unless it
    /// has its own time. Does not validate.
    pub(super) fn into_active_model(self, id: Uuid, now: DateTime<Utc>) -> audit_logs::ActiveModel {
        audit_logs::ActiveModel {
            id: Set(id),
            user_id: Set(self.user_id),
            session_id: Set(self.session_id),
            event_type: Set(self.event_type),
            action: Set(self.action),
            outcome: Set(self.outcome),
            resource_type: Set(self.resource_type),
            resource_id: Set(self.resource_id),
            request_id: Set(self.request_id),
            http_method: Set(self.http_method),
            request_path: Set(self.request_path),
            status_code: Set(self.status_code),
            ip_address: Set(self.ip_address),
            user_agent: Set(self.user_agent),
            is_suspicious: Set(self.is_suspicious),
            risk_level: Set(self.risk_level),
            country_code: Set(self.country_code),
            region: Set(self.region),
            city: Set(self.city),
            duration_ms: Set(self.duration_ms),
            response_size_bytes: Set(self.response_size_bytes),
            retention_days: Set(self.retention_days),
            metadata: Set(self.metadata),
            created_at: Set(self.created_at.unwrap_or(now)),
        }
    }
}

/// Which audit entries to read: every set field narrows the result. `since`
/// is inclusive, `until` exclusive; newest first.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// Only entries of this user.
    pub user_id: Option<Uuid>,
    /// Only entries of this event type (e.g. `login`).
    pub event_type: Option<String>,
    /// Only entries created at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Only entries created before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Only entries flagged suspicious.
    pub suspicious_only: bool,
    /// At most this many rows: [`DEFAULT_QUERY_LIMIT`] when 0, never more
    /// than [`MAX_QUERY_LIMIT`].
    pub limit: u64,
}

/// The audit entries matching `query`, newest first.
///
/// # Errors
/// [`Error::InvalidInput`] for an empty or over-long event type or a
/// `since` after `until`; a database error.
pub async fn find_entries<C: ConnectionTrait>(
    db: &C,
    query: &AuditQuery,
) -> Result<Vec<audit_logs::Model>, Error> {
    use audit_logs::{Column, Entity};
    if let (Some(since), Some(until)) = (query.since, query.until)
        && since > until
    {
        return Err(Error::InvalidInput {
            field: "since",
            reason: "after until".into(),
        });
    }
    let mut select = Entity::find();
    if let Some(user_id) = query.user_id {
        select = select.filter(Column::UserId.eq(user_id));
    }
    if let Some(event_type) = &query.event_type {
        check_text("event_type", event_type, EVENT_TYPE_CHARS, Lines::One)?;
        select = select.filter(Column::EventType.eq(event_type.as_str()));
    }
    if let Some(since) = query.since {
        select = select.filter(Column::CreatedAt.gte(since));
    }
    if let Some(until) = query.until {
        select = select.filter(Column::CreatedAt.lt(until));
    }
    if query.suspicious_only {
        select = select.filter(Column::IsSuspicious.eq(true));
    }
    let limit = match query.limit {
        0 => DEFAULT_QUERY_LIMIT,
        n => n.min(MAX_QUERY_LIMIT),
    };
    Ok(select
        .order_by_desc(Column::CreatedAt)
        .order_by_desc(Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// One `audit_log_basic` row: who did what to which resource, from where.
#[derive(Clone, Debug, Default)]
pub struct BasicEntry<'a> {
    /// The user who acted, if known.
    pub user_id: Option<Uuid>,
    /// What was done (at most 100 characters, one line).
    pub action: &'a str,
    /// The kind of resource acted on (e.g. `api_key`).
    pub resource_type: Option<&'a str>,
    /// The identifier of the resource acted on.
    pub resource_id: Option<&'a str>,
    /// The client's IP address.
    pub ip_address: Option<&'a str>,
    /// The client's user agent.
    pub user_agent: Option<&'a str>,
    /// Free-form JSON details.
    pub details: Option<Json>,
}

/// Writes a row of the minimal audit trail, dated `now`.
///
/// # Errors
/// [`Error::InvalidInput`] for a value that does not fit its column (nothing
/// written); [`Error::Reference`] for an unknown user; a database error.
pub async fn log_basic<C: ConnectionTrait>(
    db: &C,
    entry: &BasicEntry<'_>,
    now: DateTime<Utc>,
) -> Result<audit_log_basic::Model, Error> {
    check_text("action", entry.action, ACTION_CHARS, Lines::One)?;
    check_opt_text("resource_type", entry.resource_type, RESOURCE_TYPE_CHARS)?;
    check_opt_text("resource_id", entry.resource_id, RESOURCE_ID_CHARS)?;
    check_ip(entry.ip_address)?;
    check_opt_text("user_agent", entry.user_agent, USER_AGENT_CHARS)?;
    if let Some(details) = &entry.details {
        check_json("details", details)?;
    }
    Ok(audit_log_basic::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(entry.user_id),
        action: Set(entry.action.to_owned()),
        resource_type: Set(entry.resource_type.map(str::to_owned)),
        resource_id: Set(entry.resource_id.map(str::to_owned)),
        ip_address: Set(entry.ip_address.map(str::to_owned)),
        user_agent: Set(entry.user_agent.map(str::to_owned)),
        details: Set(entry.details.clone()),
        created_at: Set(now),
    }
    .insert(db)
    .await?)
}
