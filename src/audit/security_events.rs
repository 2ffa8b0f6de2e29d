//! Security events and their resolution workflow:
//! `open -> investigating -> resolved | false_positive` (an open event may
//! also be closed directly). Closed events stay closed. Each transition is one
//! conditional `UPDATE`, so two reviewers cannot both move the same event.

use chrono::{DateTime, Utc};
use gatehouse_entity::sea_orm_active_enums::{EventStatus, Severity};
use gatehouse_entity::security_events::{self, ActiveModel, Column, Entity};
use sea_orm::prelude::Json;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

use super::{Lines, check_ip, check_json, check_text};
use crate::Error;

/// Column size of `event_type`.
const EVENT_TYPE_CHARS: usize = 64;
/// Longest description accepted.
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;
/// Longest resolution notes accepted.
pub const MAX_NOTES_CHARS: usize = 10_000;
/// Most events [`list_unresolved`] returns at once.
pub const MAX_LIST_LIMIT: u64 = 1_000;

/// A security event to open.
#[derive(Clone, Debug)]
pub struct NewSecurityEvent<'a> {
    /// What kind of event (e.g. `credential_stuffing`), at most 64 characters.
    pub event_type: &'a str,
    /// How serious it is.
    pub severity: Severity,
    /// The user it concerns, if any.
    pub user_id: Option<Uuid>,
    /// The address it came from, if known.
    pub ip_address: Option<&'a str>,
    /// What happened, for the person who triages it (at most [`MAX_DESCRIPTION_CHARS`]).
    pub description: &'a str,
    /// Free-form JSON details.
    pub details: Option<Json>,
}

/// How an event is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// A real incident, dealt with.
    Resolved,
    /// Not an incident after all.
    FalsePositive,
}

impl From<Resolution> for EventStatus {
    fn from(resolution: Resolution) -> Self {
        match resolution {
            Resolution::Resolved => Self::Resolved,
            Resolution::FalsePositive => Self::FalsePositive,
        }
    }
}

/// Severities from `min` up, for filtering.
pub fn at_least(min: Severity) -> Vec<Severity> {
    let rank = |s: Severity| match s {
        Severity::Low => 0,
        Severity::Medium => 1,
        Severity::High => 2,
        Severity::Critical => 3,
    };
    [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ]
    .into_iter()
    .filter(|s| rank(*s) >= rank(min))
    .collect()
}

/// Opens an event, dated `now`, status `open`, no alert sent yet.
///
/// # Errors
/// [`Error::InvalidInput`] for a value that does not fit (nothing written);
/// [`Error::Reference`] for an unknown user; a database error.
pub async fn open<C: ConnectionTrait>(
    db: &C,
    event: NewSecurityEvent<'_>,
    now: DateTime<Utc>,
) -> Result<security_events::Model, Error> {
    check_text("event_type", event.event_type, EVENT_TYPE_CHARS, Lines::One)?;
    check_ip(event.ip_address)?;
    check_text(
        "description",
        event.description,
        MAX_DESCRIPTION_CHARS,
        Lines::Many,
    )?;
    if let Some(details) = &event.details {
        check_json("details", details)?;
    }
    Ok(ActiveModel {
        id: Set(Uuid::now_v7()),
        event_type: Set(event.event_type.to_owned()),
        severity: Set(event.severity),
        status: Set(EventStatus::Open),
        user_id: Set(event.user_id),
        ip_address: Set(event.ip_address.map(str::to_owned)),
        description: Set(event.description.to_owned()),
        details: Set(event.details),
        alert_sent: Set(false),
        resolved_at: Set(None),
        resolved_by: Set(None),
        resolution_notes: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?)
}

/// Moves an open event to `investigating`.
///
/// # Errors
/// [`Error::NotFound`]; [`Error::InvalidInput`] (field `status`) unless the
/// event is open; a database error.
pub async fn investigate<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<security_events::Model, Error> {
    let updated = Entity::update_many()
        .col_expr(Column::Status, Expr::value(EventStatus::Investigating))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(EventStatus::Open))
        .exec(db)
        .await?;
    after_transition(db, id, updated.rows_affected, EventStatus::Investigating).await
}

/// Closes an open or investigating event as `resolution`, recording who
/// closed it, when, and why.
///
/// # Errors
/// [`Error::InvalidInput`] for empty or over-long notes, or (field `status`)
/// when the event is closed already; [`Error::NotFound`];
/// [`Error::Reference`] for an unknown resolver; a database error.
pub async fn resolve<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    resolution: Resolution,
    resolved_by: Uuid,
    notes: &str,
    now: DateTime<Utc>,
) -> Result<security_events::Model, Error> {
    check_text("resolution_notes", notes, MAX_NOTES_CHARS, Lines::Many)?;
    let status = EventStatus::from(resolution);
    let updated = Entity::update_many()
        .col_expr(Column::Status, Expr::value(status))
        .col_expr(Column::ResolvedAt, Expr::value(now))
        .col_expr(Column::ResolvedBy, Expr::value(resolved_by))
        .col_expr(Column::ResolutionNotes, Expr::value(notes))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.is_in([EventStatus::Open, EventStatus::Investigating]))
        .exec(db)
        .await?;
    after_transition(db, id, updated.rows_affected, status).await
}

/// Notes that an alert went out for the event. Returns `true` when this call
/// set the flag, `false` when it was set already, so that of several alerting
/// workers only one sends.
///
/// # Errors
/// [`Error::NotFound`]; a database error.
pub async fn mark_alerted<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    let updated = Entity::update_many()
        .col_expr(Column::AlertSent, Expr::value(true))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .filter(Column::AlertSent.eq(false))
        .exec(db)
        .await?;
    if updated.rows_affected == 1 {
        return Ok(true);
    }
    get(db, id).await.map(|_| false)
}

/// One event.
///
/// # Errors
/// [`Error::NotFound`]; a database error.
pub async fn get<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<security_events::Model, Error> {
    Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("security event {id}")))
}

/// Open and investigating events of at least `min_severity`, newest first,
/// at most `limit` (up to [`MAX_LIST_LIMIT`]).
///
/// # Errors
/// A database error.
pub async fn list_unresolved<C: ConnectionTrait>(
    db: &C,
    min_severity: Severity,
    limit: u64,
) -> Result<Vec<security_events::Model>, Error> {
    Ok(Entity::find()
        .filter(Column::Status.is_in([EventStatus::Open, EventStatus::Investigating]))
        .filter(Column::Severity.is_in(at_least(min_severity)))
        .order_by_desc(Column::CreatedAt)
        .order_by_desc(Column::Id)
        .limit(limit.min(MAX_LIST_LIMIT))
        .all(db)
        .await?)
}

/// The event after a conditional transition to `to`: reloaded when it
/// happened, otherwise the reason it did not.
async fn after_transition<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    rows_affected: u64,
    to: EventStatus,
) -> Result<security_events::Model, Error> {
    let event = get(db, id).await?;
    if rows_affected == 1 {
        return Ok(event);
    }
    Err(Error::InvalidInput {
        field: "status",
        reason: format!(
            "a security event that is {:?} cannot become {to:?}",
            event.status
        ),
    })
}
