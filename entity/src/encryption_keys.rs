//! `encryption_keys`: metadata and rotation history of the keys gatehouse uses.
//! Key material is never stored here; `fingerprint` identifies it.

use super::sea_orm_active_enums::{KeyStatus, KeyType};
use sea_orm::entity::prelude::*;

/// One version of a key: what it is for, its status and rotation history.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "encryption_keys")]
pub struct Model {
    /// The key version's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// What the key is used for.
    pub key_type: KeyType,
    /// Version number, counting up from 1 per key type.
    pub version: i32,
    /// Active, rotated out, or compromised.
    pub status: KeyStatus,
    /// The algorithm the key is used with.
    pub algorithm: String,
    /// Keyed digest identifying the material (not the material).
    pub fingerprint: String,
    /// When this version became active.
    pub activated_at: DateTimeUtc,
    /// When it was rotated out.
    pub rotated_at: Option<DateTimeUtc>,
    /// When it should be rotated out, if planned.
    pub expires_at: Option<DateTimeUtc>,
    /// The user who rotated it; NULL for the operator or a deleted user.
    pub rotated_by: Option<Uuid>,
    /// Why it was rotated.
    pub rotation_reason: Option<String>,
    /// When the version was recorded.
    pub created_at: DateTimeUtc,
    /// The user who rotated it.
    #[sea_orm(belongs_to, from = "rotated_by", to = "id", on_delete = "SetNull")]
    pub rotator: BelongsTo<Option<super::users::Entity>>,
}

impl ActiveModelBehavior for ActiveModel {}
