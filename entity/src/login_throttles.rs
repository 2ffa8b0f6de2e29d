//! `login_throttles`: attempts per account and source, taken before any
//! password is verified; how a failing source is slowed and shut out.

use sea_orm::entity::prelude::*;

/// The throttle of one (subject, source) pair.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_throttles")]
pub struct Model {
    /// The account's id, or an id derived from an identifier that matches none.
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject: Uuid,
    /// Normalized client address: IPv4, an IPv6 /56 prefix, or empty when unknown.
    #[sea_orm(primary_key, auto_increment = false)]
    pub source: String,
    /// Attempts counted since the count last restarted; each counts until it succeeds.
    pub failures: i32,
    /// When the last attempt took its slot.
    pub last_attempt_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
