//! `audit_logs`: the full audit trail: request and response context, security
//! flags, geography, timings and a per-row retention period.

use super::sea_orm_active_enums::{AuditOutcome, RiskLevel};
use sea_orm::entity::prelude::*;

/// One audit entry with its request context.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_logs")]
pub struct Model {
    /// The entry's id (random: on PostgreSQL the key is `(id, created_at)`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The user who acted or whom it concerns; NULL when unknown or deleted.
    pub user_id: Option<Uuid>,
    /// The session the request came through.
    pub session_id: Option<Uuid>,
    /// What kind of event (e.g. `login`, `admin`).
    pub event_type: String,
    /// What was done (e.g. `password_login`).
    pub action: String,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// The kind of resource acted on (e.g. `api_key`, `role`).
    pub resource_type: Option<String>,
    /// Identifier of the affected row in any table, so not a foreign key.
    pub resource_id: Option<String>,
    /// Correlation id of the request, issued outside the database.
    pub request_id: Option<String>,
    /// The request's HTTP method.
    pub http_method: Option<String>,
    /// The request's path.
    pub request_path: Option<String>,
    /// The HTTP status the request was answered with.
    pub status_code: Option<i32>,
    /// The client's address.
    pub ip_address: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// Flagged for review.
    pub is_suspicious: bool,
    /// The risk assessed for the event.
    pub risk_level: RiskLevel,
    /// ISO 3166-1 alpha-2 country of the client.
    pub country_code: Option<String>,
    /// Region of the client.
    pub region: Option<String>,
    /// City of the client.
    pub city: Option<String>,
    /// How long the request took, in milliseconds.
    pub duration_ms: Option<i32>,
    /// Size of the response, in bytes.
    pub response_size_bytes: Option<i64>,
    /// Days this row is kept; the retention prune removes it afterwards.
    pub retention_days: i32,
    /// Free-form JSON about the event.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub metadata: Option<Json>,
    /// When it happened (the partition key on PostgreSQL).
    pub created_at: DateTimeUtc,
    /// The user who acted or whom it concerns.
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "SetNull")]
    pub user: BelongsTo<Option<super::users::Entity>>,
    /// The session the request came through.
    #[sea_orm(belongs_to, from = "session_id", to = "id", on_delete = "SetNull")]
    pub session: BelongsTo<Option<super::sessions::Entity>>,
}

impl ActiveModelBehavior for ActiveModel {}
