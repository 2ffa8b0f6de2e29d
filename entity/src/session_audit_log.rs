//! `session_audit_log`: what happened to sessions (created, revoked, expired,
//! tampered with, cleaned up), kept after the session row is gone.

use super::sea_orm_active_enums::SessionEvent;
use sea_orm::entity::prelude::*;

/// One event in a session's life.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "session_audit_log")]
pub struct Model {
    /// The entry's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Set to NULL when the session row is deleted; the entry stays.
    pub session_id: Option<Uuid>,
    /// The session's user; NULL once the user is deleted.
    pub user_id: Option<Uuid>,
    /// What happened.
    pub event: SessionEvent,
    /// Why (e.g. `logout`, `idle_timeout`).
    pub reason: Option<String>,
    /// The session's risk score at the time, when computed.
    pub risk_score: Option<i32>,
    /// Keyed HMAC of the client address.
    pub ip_hash: Option<String>,
    /// Free-form JSON details.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub details: Option<Json>,
    /// When it happened.
    pub created_at: DateTimeUtc,
    /// The session.
    #[sea_orm(belongs_to, from = "session_id", to = "id", on_delete = "SetNull")]
    pub session: BelongsTo<Option<super::sessions::Entity>>,
    /// The session's user.
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "SetNull")]
    pub user: BelongsTo<Option<super::users::Entity>>,
}

impl ActiveModelBehavior for ActiveModel {}
