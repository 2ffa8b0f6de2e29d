//! `sessions`: login sessions, stored by token hash, sealed by an integrity HMAC
//! (`security_hash`) and scored for risk.

use sea_orm::entity::prelude::*;

/// A login session.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    /// The session's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The signed-in user.
    pub user_id: Uuid,
    /// SHA-256 (hex) of the bearer token; the token itself is never stored.
    #[sea_orm(unique)]
    pub token_hash: String,
    /// The creating client's address, for display only (not sealed; may be purged).
    pub ip_address: Option<String>,
    /// The creating client's user agent.
    pub user_agent: Option<String>,
    /// When the session was created.
    pub created_at: DateTimeUtc,
    /// When it last validated; the idle timeout counts from here.
    pub last_activity_at: DateTimeUtc,
    /// The absolute timeout.
    pub expires_at: DateTimeUtc,
    /// Set when the session is revoked.
    pub is_revoked: bool,
    /// When it was revoked.
    pub revoked_at: Option<DateTimeUtc>,
    /// Why (e.g. `logout`, `password changed`, `account locked`).
    pub revoked_reason: Option<String>,
    /// HMAC-SHA256 over the session's identity fields; NULL on sessions that predate it.
    pub security_hash: Option<String>,
    /// The `session` key the seal was made with.
    pub encryption_key_id: Option<Uuid>,
    /// Keyed HMAC of the creating IP address (privacy-preserving binding).
    pub created_ip_hash: Option<String>,
    /// Version of the sealing scheme; 0 marks a session created before sealing existed.
    pub security_version: i32,
    /// When it last validated.
    pub last_validated_at: Option<DateTimeUtc>,
    /// 0 (no signal) to 100.
    pub risk_score: i32,
    /// The signed-in user.
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
    pub user: BelongsTo<super::users::Entity>,
    /// The HMAC key version the seal was made with.
    #[sea_orm(
        belongs_to,
        from = "encryption_key_id",
        to = "id",
        on_delete = "SetNull"
    )]
    pub encryption_key: BelongsTo<Option<super::encryption_keys::Entity>>,
}

impl ActiveModelBehavior for ActiveModel {}
