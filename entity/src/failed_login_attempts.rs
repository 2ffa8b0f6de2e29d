//! `failed_login_attempts`: each failed password, OTP or backup-code attempt,
//! by account and by IP, for lockout and anomaly detection.

use super::sea_orm_active_enums::AttemptKind;
use sea_orm::entity::prelude::*;

/// One failed sign-in attempt.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "failed_login_attempts")]
pub struct Model {
    /// The attempt's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// NULL when the identifier matched no account.
    pub user_id: Option<Uuid>,
    /// The normalized email or username that was tried.
    pub identifier: String,
    /// The factor that failed.
    pub attempt_kind: AttemptKind,
    /// The client's address.
    pub ip_address: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// Why it failed (e.g. `wrong password`).
    pub failure_reason: Option<String>,
    /// ISO 3166-1 alpha-2 country of the client, if known.
    pub country_code: Option<String>,
    /// When it happened.
    pub created_at: DateTimeUtc,
    /// The account the identifier matched.
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "SetNull")]
    pub user: BelongsTo<Option<super::users::Entity>>,
}

impl ActiveModelBehavior for ActiveModel {}
