//! `failed_login_attempts`: each failed password, OTP or backup-code attempt,
//! by account and by IP, for lockout and anomaly detection.

use super::sea_orm_active_enums::AttemptKind;
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "failed_login_attempts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// NULL when the identifier matched no account.
    pub user_id: Option<Uuid>,
    /// The normalized email or username that was tried.
    pub identifier: String,
    pub attempt_kind: AttemptKind,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub failure_reason: Option<String>,
    pub country_code: Option<String>,
    pub created_at: DateTimeUtc,
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "SetNull")]
    pub user: BelongsTo<Option<super::users::Entity>>,
}

impl ActiveModelBehavior for ActiveModel {}
