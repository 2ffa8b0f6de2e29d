//! Role-based access control: roles ranked by level (0..=100), their permissions,
//! grants to users with optional expiry, and permission checks in one query.
//!
//! Every change (grant, revoke, role created, changed or deleted, permission
//! added or removed) names its [`Actor`], is held to the rules there, and
//! writes an `audit_logs` row (event type [`AUDIT_EVENT_TYPE`]) in the same
//! transaction as the change: a refused or failed change writes nothing.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use gatehouse_entity::{permissions, role_permissions, roles, user_roles, users};
use sea_orm::sea_query::{Cond, Expr, ExprTrait, Func, JoinType, Query, SelectStatement};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, Statement, TransactionSession, TransactionTrait,
    Value,
};
use serde_json::json;
use uuid::Uuid;

use crate::Error;
use crate::audit::AuditEntry;
use crate::db::retry;
use crate::lookup::ci_eq;

/// Lowest role level.
pub const MIN_LEVEL: i32 = 0;
/// Highest role level (superadmin's).
pub const MAX_LEVEL: i32 = 100;
/// The permission needed to grant and revoke roles and to change them.
pub const MANAGE_ROLES: &str = "roles.manage";
/// Longest role name, in characters (the column holds 64).
pub const ROLE_NAME_MAX_CHARS: usize = 64;
/// Longest permission name, `resource.action` (the column holds 128).
pub const PERMISSION_NAME_MAX_CHARS: usize = 128;
/// Longest role description, in characters.
pub const ROLE_DESCRIPTION_MAX_CHARS: usize = 1_000;

/// Event type of the `audit_logs` rows every role change writes.
pub const AUDIT_EVENT_TYPE: &str = "admin";

/// Who changes grants, roles or accounts.
///
/// A user is held to the rules that keep RBAC from being climbed:
///
/// - granting or revoking a role, and creating, changing or deleting one or
///   its permissions, takes `roles.manage`, a highest active level strictly
///   above the role's (old and new), and every permission the role carries
///   (or would carry): nobody hands out a rank or a right they do not have;
/// - nobody grants a role to themselves;
/// - revoking from, locking, unlocking or deleting a user whose highest
///   level is at or above the actor's is refused ([`ensure_outranks`]), and
///   so is deleting a role, or removing a permission from one, that such a
///   user holds.
///
/// A superadmin (100) therefore grants anything below 100; superadmin itself
/// is granted by the operator as [`Actor::System`] ([`grant_role_bootstrap`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A user, held to the rules above.
    User(Uuid),
    /// The operator (seed, bootstrap, CLI with database access): no checks,
    /// recorded with `granted_by` NULL and as `"system"` in the audit trail.
    /// The only way to grant superadmin.
    System,
}

/// What [`update_role`] changes; `None` leaves a field as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoleUpdate<'a> {
    /// The new level, 0..=100.
    pub level: Option<i32>,
    /// The new description; `Some(None)` removes it.
    pub description: Option<Option<&'a str>>,
}

/// Grants `role_id` to `user_id`, until `expires_at` if given, and records
/// it in `audit_logs` (`role.grant`) in the same transaction. An expired
/// grant of the same role is replaced; a live one is a conflict.
///
/// # Errors
/// [`Error::InvalidInput`] for an expiry not in the future, [`Error::NotFound`]
/// for an unknown role, [`Error::Forbidden`] when `actor` may not grant it
/// (see [`Actor`]; never to itself), [`Error::Conflict`] when the user holds
/// it already, [`Error::Reference`] for an unknown user.
pub async fn grant_role<C>(
    db: &C,
    actor: Actor,
    user_id: Uuid,
    role_id: Uuid,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), Error>
where
    C: ConnectionTrait + TransactionTrait,
{
    if expires_at.is_some_and(|at| at <= now) {
        return Err(Error::InvalidInput {
            field: "expires_at",
            reason: "must be in the future".into(),
        });
    }
    retry(db, "rbac.grant_role", || async {
        let txn = db.begin().await?;
        let role = role(&txn, role_id).await?;
        if actor == Actor::User(user_id) {
            return Err(Error::Forbidden(format!(
                "nobody grants a role to themselves: {} must come from someone else",
                role.name
            )));
        }
        let carries = role_permissions(&txn, role.id).await?;
        authorize(
            &txn,
            actor,
            &format!("grant {}", role.name),
            &[role.level],
            &carries,
            now,
        )
        .await?;
        let granted_by = match actor {
            Actor::User(id) => Some(id),
            Actor::System => None,
        };
        user_roles::Entity::delete_many()
            .filter(user_roles::Column::UserId.eq(user_id))
            .filter(user_roles::Column::RoleId.eq(role_id))
            .filter(user_roles::Column::ExpiresAt.lte(now))
            .exec(&txn)
            .await?;
        user_roles::ActiveModel {
            user_id: Set(user_id),
            role_id: Set(role_id),
            granted_by: Set(granted_by),
            granted_at: Set(now),
            expires_at: Set(expires_at),
        }
        .insert(&txn)
        .await?;
        audit(
            &txn,
            actor,
            "role.grant",
            ("user", user_id),
            json!({
                "role": role.name,
                "role_id": role.id,
                "level": role.level,
                "expires_at": expires_at.map(|t| t.to_rfc3339()),
            }),
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(())
    })
    .await?;
    Ok(())
}

/// The bootstrap path: grants `role_id` (superadmin included) as [`Actor::System`].
/// For the seed and the operator's CLI only, never for a user's request.
///
/// # Errors
/// As [`grant_role`], without [`Error::Forbidden`].
pub async fn grant_role_bootstrap<C>(
    db: &C,
    user_id: Uuid,
    role_id: Uuid,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), Error>
where
    C: ConnectionTrait + TransactionTrait,
{
    grant_role(db, Actor::System, user_id, role_id, expires_at, now).await
}

/// Takes `role_id` away from `user_id` and records it in `audit_logs`
/// (`role.revoke`) in the same transaction. The actor must be allowed to
/// grant the role, and outrank the user ([`ensure_outranks`]).
///
/// # Errors
/// [`Error::NotFound`] for an unknown role or a grant that does not exist,
/// [`Error::Forbidden`] when `actor` may not revoke it.
pub async fn revoke_role<C>(
    db: &C,
    actor: Actor,
    user_id: Uuid,
    role_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), Error>
where
    C: ConnectionTrait + TransactionTrait,
{
    retry(db, "rbac.revoke_role", || async {
        let txn = db.begin().await?;
        let role = role(&txn, role_id).await?;
        let carries = role_permissions(&txn, role.id).await?;
        authorize(
            &txn,
            actor,
            &format!("revoke {}", role.name),
            &[role.level],
            &carries,
            now,
        )
        .await?;
        ensure_outranks(&txn, actor, user_id, "revoke a role from", now).await?;
        let deleted = user_roles::Entity::delete_many()
            .filter(user_roles::Column::UserId.eq(user_id))
            .filter(user_roles::Column::RoleId.eq(role_id))
            .exec(&txn)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(Error::NotFound(format!(
                "grant of role {} to user {user_id}",
                role.name
            )));
        }
        audit(
            &txn,
            actor,
            "role.revoke",
            ("user", user_id),
            json!({ "role": role.name, "role_id": role.id, "level": role.level }),
            now,
        )
        .await?;
        // Rights a session was opened with are gone: the user signs in again.
        crate::sessions::revoke_sessions(&txn, user_id, None, REASON_ROLE_REVOKED, now).await?;
        txn.commit().await?;
        Ok(())
    })
    .await?;
    Ok(())
}

/// Revocation reason of the sessions a role revocation ends.
pub const REASON_ROLE_REVOKED: &str = "role revoked";

/// Refuses `actor` unless its highest active level is strictly above the
/// highest level `target_user_id` holds: the check before revoking a role
/// from, locking, unlocking or deleting an account. `verb` says what was
/// being done, for the message (`"lock"`, `"delete"`, ...).
///
/// The target's level counts every unexpired grant whatever the account's
/// state, so locking an administrator does not let a lower one delete it;
/// an account without roles ranks below level 0. The actor's level counts
/// only while its own account is active, unlocked and not deleted. An actor
/// never outranks itself. [`Actor::System`] is not checked. The permission
/// the action takes (`users.update`, ...) is the caller's to check.
///
/// # Errors
/// [`Error::Forbidden`] naming both levels, or a database error.
pub async fn ensure_outranks<C: ConnectionTrait>(
    db: &C,
    actor: Actor,
    target_user_id: Uuid,
    verb: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let Actor::User(actor_id) = actor else {
        return Ok(());
    };
    if actor_id == target_user_id {
        return Err(Error::Forbidden(format!(
            "nobody may {verb} their own account; another administrator or the operator can"
        )));
    }
    let Some(level) = highest_level(db, actor_id, now).await? else {
        return Err(Error::Forbidden(format!(
            "to {verb} user {target_user_id} takes a role above theirs; you hold no role"
        )));
    };
    if let Some(target) = rank(db, target_user_id, now).await?
        && target >= level
    {
        return Err(Error::Forbidden(format!(
            "to {verb} user {target_user_id} (level {target}) takes a level above theirs; \
             the highest you hold is {level}"
        )));
    }
    Ok(())
}

/// Whether `user_id` holds `permission` (`resource.action`) now, in one query
/// over users, user_roles, roles, role_permissions and permissions. A grant
/// counts while it has not expired and its holder is active, not locked by
/// an operator (`is_locked`) and not deleted. An automatic lock
/// (`locked_until`, after failed logins) does not take permissions away.
///
/// # Errors
/// [`Error::InvalidInput`] for a malformed permission name, or a database error.
#[tracing::instrument(name = "gatehouse.permission.check", skip(db), err(level = "debug"))]
pub async fn has_permission<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    permission: &str,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    let permission = permission_name(permission)?;
    let backend = db.get_database_backend();
    let stmt = Statement::from_sql_and_values(
        backend,
        has_permission_sql(backend),
        has_permission_values(user_id, now, permission),
    );
    Ok(db.query_one_raw(stmt).await?.is_some())
}

/// The permission check as sea-query builds it.
fn has_permission_query(user_id: Uuid, now: DateTime<Utc>, permission: String) -> SelectStatement {
    // `SELECT 1 ... LIMIT 1`: EXISTS semantics, decoded the same on every
    // backend; the 1 is a literal, not a bound parameter.
    with_permissions(live_grants(user_id, now))
        .expr(Expr::cust("1"))
        .and_where(Expr::col((permissions::Entity, permissions::Column::Name)).eq(permission))
        .limit(1)
        .to_owned()
}

/// The values [`has_permission_query`] binds, in its order.
fn has_permission_values(user_id: Uuid, now: DateTime<Utc>, permission: String) -> [Value; 6] {
    [
        user_id.into(),
        true.into(),
        false.into(),
        now.into(),
        permission.into(),
        1u64.into(),
    ]
}

/// The permission check's SQL for `backend`, rendered once: building the
/// statement with sea-query costs more than running it on a warm connection.
fn has_permission_sql(backend: DbBackend) -> &'static str {
    static RENDERED: [OnceLock<String>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = match backend {
        DbBackend::Postgres => 0,
        DbBackend::MySql => 1,
        _ => 2,
    };
    RENDERED[slot].get_or_init(|| {
        backend
            .build(&has_permission_query(
                Uuid::nil(),
                DateTime::UNIX_EPOCH,
                String::new(),
            ))
            .sql
    })
}

/// The names of every permission `user_id` holds now, sorted, in one query.
///
/// # Errors
/// A database error.
pub async fn permissions_of<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<String>, Error> {
    let query = with_permissions(live_grants(user_id, now))
        .distinct()
        .column((permissions::Entity, permissions::Column::Name))
        .order_by(
            (permissions::Entity, permissions::Column::Name),
            sea_orm::Order::Asc,
        )
        .to_owned();
    db.query_all(&query)
        .await?
        .iter()
        .map(|row| Ok(row.try_get::<String>("", "name")?))
        .collect()
}

/// The roles `user_id` holds now, highest level first.
///
/// # Errors
/// A database error.
pub async fn roles_of<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<roles::Model>, Error> {
    let granted = live_grants(user_id, now)
        .column((roles::Entity, roles::Column::Id))
        .to_owned();
    Ok(roles::Entity::find()
        .filter(roles::Column::Id.in_subquery(granted))
        .order_by_desc(roles::Column::Level)
        .order_by_asc(roles::Column::Name)
        .all(db)
        .await?)
}

/// The highest level among the roles `user_id` holds now, if any.
///
/// # Errors
/// A database error.
pub async fn highest_level<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<i32>, Error> {
    let query = live_grants(user_id, now)
        .expr_as(
            Func::max(Expr::col((roles::Entity, roles::Column::Level))),
            "level",
        )
        .to_owned();
    match db.query_one(&query).await? {
        Some(row) => Ok(row.try_get::<Option<i32>>("", "level")?),
        None => Ok(None),
    }
}

/// Every role, highest level first.
///
/// # Errors
/// A database error.
pub async fn list_roles<C: ConnectionTrait>(db: &C) -> Result<Vec<roles::Model>, Error> {
    Ok(roles::Entity::find()
        .order_by_desc(roles::Column::Level)
        .order_by_asc(roles::Column::Name)
        .all(db)
        .await?)
}

/// The role named `name` (case-insensitively).
///
/// # Errors
/// [`Error::InvalidInput`] for a malformed name, [`Error::NotFound`].
pub async fn find_role<C: ConnectionTrait>(db: &C, name: &str) -> Result<roles::Model, Error> {
    let name = role_name(name)?;
    roles::Entity::find()
        .filter(ci_eq(db.get_database_backend(), roles::Column::Name, &name))
        .one(db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("role {name}")))
}

/// Creates a custom (non-system) role at `level` (0..=100), without
/// permissions, and records it in `audit_logs` (`role.create`) in the same
/// transaction. A user needs `roles.manage` and a level above `level`.
///
/// # Errors
/// [`Error::InvalidInput`] for a malformed name or description or a level out
/// of range, [`Error::Forbidden`] when `actor` may not, [`Error::Conflict`]
/// when the name is taken.
pub async fn create_role<C>(
    db: &C,
    actor: Actor,
    name: &str,
    description: Option<&str>,
    level: i32,
    now: DateTime<Utc>,
) -> Result<roles::Model, Error>
where
    C: ConnectionTrait + TransactionTrait,
{
    let name = role_name(name)?;
    check_level(level)?;
    if let Some(text) = description {
        check_description(text)?;
    }
    let role = retry(db, "rbac.create_role", || async {
        let txn = db.begin().await?;
        authorize(&txn, actor, &format!("create {name}"), &[level], &[], now).await?;
        let role = roles::ActiveModel {
            id: Set(Uuid::now_v7()),
            name: Set(name.clone()),
            description: Set(description.map(str::to_owned)),
            level: Set(level),
            is_system: Set(false),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await?;
        audit(
            &txn,
            actor,
            "role.create",
            ("role", role.id),
            json!({ "role": role.name, "level": role.level, "description": role.description }),
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(role)
    })
    .await?;
    Ok(role)
}

/// Changes the level or description of the custom role `role_id` and
/// records the change in `audit_logs` (`role.update`, old and new values) in
/// the same transaction. A user needs `roles.manage`, a level above both
/// the old and the new level, and every permission the role carries.
///
/// # Errors
/// [`Error::InvalidInput`] for a level out of range, a malformed
/// description or nothing to change; [`Error::Forbidden`] for a system role
/// (the seed fixes its level) or when `actor` may not; [`Error::NotFound`].
pub async fn update_role<C>(
    db: &C,
    actor: Actor,
    role_id: Uuid,
    update: RoleUpdate<'_>,
    now: DateTime<Utc>,
) -> Result<roles::Model, Error>
where
    C: ConnectionTrait + TransactionTrait,
{
    if update == RoleUpdate::default() {
        return Err(Error::InvalidInput {
            field: "update",
            reason: "give a new level or description".into(),
        });
    }
    if let Some(level) = update.level {
        check_level(level)?;
    }
    if let Some(Some(text)) = update.description {
        check_description(text)?;
    }
    let new = retry(db, "rbac.update_role", || async {
        let txn = db.begin().await?;
        let old = custom_role(&txn, role_id, "changed").await?;
        let new_level = update.level.unwrap_or(old.level);
        let carries = role_permissions(&txn, old.id).await?;
        authorize(
            &txn,
            actor,
            &format!("change {}", old.name),
            &[old.level, new_level],
            &carries,
            now,
        )
        .await?;
        let mut change = roles::ActiveModel {
            id: Set(old.id),
            updated_at: Set(now),
            ..Default::default()
        };
        if let Some(level) = update.level {
            change.level = Set(level);
        }
        if let Some(description) = update.description {
            change.description = Set(description.map(str::to_owned));
        }
        let new = change.update(&txn).await?;
        audit(
            &txn,
            actor,
            "role.update",
            ("role", new.id),
            json!({
                "role": new.name,
                "level": { "old": old.level, "new": new.level },
                "description": { "old": old.description, "new": new.description },
            }),
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(new)
    })
    .await?;
    Ok(new)
}

/// Deletes a custom role with its grants and permission links, and records
/// it in `audit_logs` (`role.delete`) in the same transaction. A user needs
/// what granting the role takes, and to outrank everyone who holds it, the
/// actor included (deleting a role revokes it from them).
///
/// # Errors
/// [`Error::Forbidden`] for a system role or when `actor` may not,
/// [`Error::NotFound`].
pub async fn delete_role<C>(
    db: &C,
    actor: Actor,
    role_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), Error>
where
    C: ConnectionTrait + TransactionTrait,
{
    retry(db, "rbac.delete_role", || async {
        let txn = db.begin().await?;
        let role = custom_role(&txn, role_id, "deleted").await?;
        let carries = role_permissions(&txn, role.id).await?;
        let what = format!("delete {}", role.name);
        authorize(&txn, actor, &what, &[role.level], &carries, now).await?;
        ensure_outranks_holders(&txn, actor, &role, &what, now).await?;
        let holders = user_roles::Entity::find()
            .filter(user_roles::Column::RoleId.eq(role.id))
            .count(&txn)
            .await?;
        roles::Entity::delete_by_id(role.id).exec(&txn).await?;
        audit(
            &txn,
            actor,
            "role.delete",
            ("role", role.id),
            json!({
                "role": role.name,
                "level": role.level,
                "permissions": carries,
                "grants_removed": holders,
            }),
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(())
    })
    .await?;
    Ok(())
}

/// Lets the custom role `role_id` grant `permission`, and records it in
/// `audit_logs` (`role.permission.add`) in the same transaction. A user
/// needs what granting the role takes, `permission` included.
///
/// # Errors
/// [`Error::Forbidden`] for a system role (its permissions are the seed's)
/// or when `actor` may not, [`Error::NotFound`] for an unknown role or
/// permission, [`Error::Conflict`] when the role has it already.
pub async fn add_permission<C>(
    db: &C,
    actor: Actor,
    role_id: Uuid,
    permission: &str,
    now: DateTime<Utc>,
) -> Result<(), Error>
where
    C: ConnectionTrait + TransactionTrait,
{
    let permission = permission_name(permission)?;
    retry(db, "rbac.add_permission", || async {
        let txn = db.begin().await?;
        let (role, permission) = custom_role_and_permission(&txn, role_id, &permission).await?;
        let mut carries = role_permissions(&txn, role.id).await?;
        carries.push(permission.name.clone());
        authorize(
            &txn,
            actor,
            &format!("give {} to {}", permission.name, role.name),
            &[role.level],
            &carries,
            now,
        )
        .await?;
        role_permissions::ActiveModel {
            role_id: Set(role.id),
            permission_id: Set(permission.id),
            created_at: Set(now),
        }
        .insert(&txn)
        .await?;
        audit(
            &txn,
            actor,
            "role.permission.add",
            ("role", role.id),
            json!({ "role": role.name, "permission": permission.name }),
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(())
    })
    .await?;
    Ok(())
}

/// Stops the custom role `role_id` from granting `permission`, and records
/// it in `audit_logs` (`role.permission.remove`) in the same transaction. A
/// user needs what granting the role takes, and to outrank everyone who
/// holds it, the actor included (they lose the permission).
///
/// # Errors
/// [`Error::Forbidden`] for a system role or when `actor` may not,
/// [`Error::NotFound`] for an unknown role or permission or when the role
/// does not have it.
pub async fn remove_permission<C>(
    db: &C,
    actor: Actor,
    role_id: Uuid,
    permission: &str,
    now: DateTime<Utc>,
) -> Result<(), Error>
where
    C: ConnectionTrait + TransactionTrait,
{
    let permission = permission_name(permission)?;
    retry(db, "rbac.remove_permission", || async {
        let txn = db.begin().await?;
        let (role, permission) = custom_role_and_permission(&txn, role_id, &permission).await?;
        let carries = role_permissions(&txn, role.id).await?;
        let what = format!("take {} from {}", permission.name, role.name);
        authorize(&txn, actor, &what, &[role.level], &carries, now).await?;
        ensure_outranks_holders(&txn, actor, &role, &what, now).await?;
        let deleted = role_permissions::Entity::delete_many()
            .filter(role_permissions::Column::RoleId.eq(role.id))
            .filter(role_permissions::Column::PermissionId.eq(permission.id))
            .exec(&txn)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(Error::NotFound(format!(
                "permission {} of role {}",
                permission.name, role.name
            )));
        }
        audit(
            &txn,
            actor,
            "role.permission.remove",
            ("role", role.id),
            json!({ "role": role.name, "permission": permission.name }),
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(())
    })
    .await?;
    Ok(())
}

/// The names of the permissions `role_id` grants, sorted.
///
/// # Errors
/// A database error.
pub async fn role_permissions<C: ConnectionTrait>(
    db: &C,
    role_id: Uuid,
) -> Result<Vec<String>, Error> {
    let granted = Query::select()
        .column(role_permissions::Column::PermissionId)
        .from(role_permissions::Entity)
        .and_where(Expr::col(role_permissions::Column::RoleId).eq(role_id))
        .to_owned();
    Ok(permissions::Entity::find()
        .filter(permissions::Column::Id.in_subquery(granted))
        .order_by_asc(permissions::Column::Name)
        .all(db)
        .await?
        .into_iter()
        .map(|p| p.name)
        .collect())
}

/// Refuses `actor` unless it may `what` (e.g. `grant auditor`): it holds
/// `roles.manage` and every permission in `carries`, and its highest level
/// is above every one of `levels`. [`Actor::System`] may do anything.
async fn authorize<C: ConnectionTrait>(
    db: &C,
    actor: Actor,
    what: &str,
    levels: &[i32],
    carries: &[String],
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let Actor::User(actor_id) = actor else {
        return Ok(());
    };
    let held = permissions_of(db, actor_id, now).await?;
    let holds = |name: &str| held.iter().any(|h| h.eq_ignore_ascii_case(name));
    if !holds(MANAGE_ROLES) {
        return Err(Error::Forbidden(format!(
            "to {what} takes the {MANAGE_ROLES} permission, which you do not hold"
        )));
    }
    let level = highest_level(db, actor_id, now)
        .await?
        .unwrap_or(MIN_LEVEL - 1);
    if let Some(&top) = levels.iter().max()
        && level <= top
    {
        return Err(Error::Forbidden(format!(
            "to {what} (level {top}) takes a role above that level; the highest you hold is {level}"
        )));
    }
    let missing: Vec<&str> = carries
        .iter()
        .map(String::as_str)
        .filter(|name| !holds(name))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Forbidden(format!(
            "to {what} takes every permission it carries; you do not hold {}",
            missing.join(", ")
        )));
    }
    Ok(())
}

/// Refuses a user `actor` when anyone holding `role` (an unexpired grant)
/// has a highest level at or above the actor's.
async fn ensure_outranks_holders<C: ConnectionTrait>(
    db: &C,
    actor: Actor,
    role: &roles::Model,
    what: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let Actor::User(actor_id) = actor else {
        return Ok(());
    };
    let level = highest_level(db, actor_id, now)
        .await?
        .unwrap_or(MIN_LEVEL - 1);
    let unexpired = |table: &'static str| {
        Cond::any()
            .add(Expr::col((table, user_roles::Column::ExpiresAt)).is_null())
            .add(Expr::col((table, user_roles::Column::ExpiresAt)).gt(now))
    };
    let query = Query::select()
        .expr_as(
            Func::max(Expr::col((roles::Entity, roles::Column::Level))),
            "level",
        )
        .from_as(user_roles::Entity, "held")
        .join_as(
            JoinType::InnerJoin,
            user_roles::Entity,
            "other",
            Expr::col(("other", user_roles::Column::UserId))
                .equals(("held", user_roles::Column::UserId)),
        )
        .inner_join(
            roles::Entity,
            Expr::col((roles::Entity, roles::Column::Id))
                .equals(("other", user_roles::Column::RoleId)),
        )
        .and_where(Expr::col(("held", user_roles::Column::RoleId)).eq(role.id))
        .cond_where(unexpired("held"))
        .cond_where(unexpired("other"))
        .to_owned();
    let top = match db.query_one(&query).await? {
        Some(row) => row.try_get::<Option<i32>>("", "level")?,
        None => None,
    };
    if let Some(top) = top
        && top >= level
    {
        return Err(Error::Forbidden(format!(
            "to {what} takes a level above everyone who holds it; a holder is at level {top}, \
             the highest you hold is {level}"
        )));
    }
    Ok(())
}

/// The highest level among `user_id`'s unexpired grants, whatever the
/// account's state (locked, inactive or deleted accounts keep their rank).
async fn rank<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<i32>, Error> {
    let query = Query::select()
        .expr_as(
            Func::max(Expr::col((roles::Entity, roles::Column::Level))),
            "level",
        )
        .from(user_roles::Entity)
        .inner_join(
            roles::Entity,
            Expr::col((roles::Entity, roles::Column::Id))
                .equals((user_roles::Entity, user_roles::Column::RoleId)),
        )
        .and_where(Expr::col((user_roles::Entity, user_roles::Column::UserId)).eq(user_id))
        .cond_where(
            Cond::any()
                .add(Expr::col((user_roles::Entity, user_roles::Column::ExpiresAt)).is_null())
                .add(Expr::col((user_roles::Entity, user_roles::Column::ExpiresAt)).gt(now)),
        )
        .to_owned();
    match db.query_one(&query).await? {
        Some(row) => Ok(row.try_get::<Option<i32>>("", "level")?),
        None => Ok(None),
    }
}

/// Writes the `audit_logs` row of a role change: event type
/// [`AUDIT_EVENT_TYPE`], the acting user (none for the system), the
/// affected user or role as resource.
async fn audit<C: ConnectionTrait>(
    db: &C,
    actor: Actor,
    action: &str,
    (kind, id): (&str, Uuid),
    details: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let by = match actor {
        Actor::User(id) => json!(id),
        Actor::System => json!("system"),
    };
    let mut entry = AuditEntry::new(AUDIT_EVENT_TYPE, action)
        .resource(kind, id.to_string())
        .metadata(json!({ "actor": by, "details": details }));
    if let Actor::User(id) = actor {
        entry = entry.user(id);
    }
    entry.record(db, now).await?;
    Ok(())
}

fn check_level(level: i32) -> Result<(), Error> {
    if (MIN_LEVEL..=MAX_LEVEL).contains(&level) {
        Ok(())
    } else {
        Err(Error::InvalidInput {
            field: "level",
            reason: format!("must be between {MIN_LEVEL} and {MAX_LEVEL}"),
        })
    }
}

fn check_description(text: &str) -> Result<(), Error> {
    if text.len() > ROLE_DESCRIPTION_MAX_CHARS * 4
        || text.chars().count() > ROLE_DESCRIPTION_MAX_CHARS
    {
        return Err(Error::InvalidInput {
            field: "description",
            reason: format!("is longer than {ROLE_DESCRIPTION_MAX_CHARS} characters"),
        });
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::InvalidInput {
            field: "description",
            reason: "contains control characters".into(),
        });
    }
    Ok(())
}

async fn role<C: ConnectionTrait>(db: &C, role_id: Uuid) -> Result<roles::Model, Error> {
    roles::Entity::find_by_id(role_id)
        .one(db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("role {role_id}")))
}

/// The role `role_id`, refused when it is a system role (the seed's).
async fn custom_role<C: ConnectionTrait>(
    db: &C,
    role_id: Uuid,
    verb: &str,
) -> Result<roles::Model, Error> {
    let role = role(db, role_id).await?;
    if role.is_system {
        return Err(Error::Forbidden(format!(
            "{} is a system role and cannot be {verb}",
            role.name
        )));
    }
    Ok(role)
}

async fn custom_role_and_permission<C: ConnectionTrait>(
    db: &C,
    role_id: Uuid,
    permission: &str,
) -> Result<(roles::Model, permissions::Model), Error> {
    let role = role(db, role_id).await?;
    if role.is_system {
        return Err(Error::Forbidden(format!(
            "{} is a system role; its permissions are fixed by the seed",
            role.name
        )));
    }
    let permission = permissions::Entity::find()
        .filter(ci_eq(
            db.get_database_backend(),
            permissions::Column::Name,
            permission,
        ))
        .one(db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("permission {permission}")))?;
    Ok((role, permission))
}

/// `FROM users JOIN user_roles JOIN roles` restricted to the grants that
/// count now: not expired, held by an active, undeleted user without an
/// operator's lock (`is_locked`). An automatic lock (`locked_until`) only
/// stops new logins: it never takes rights from existing sessions or keys,
/// or anyone could switch another user's rights off by failing logins.
fn live_grants(user_id: Uuid, now: DateTime<Utc>) -> SelectStatement {
    Query::select()
        .from(users::Entity)
        .inner_join(
            user_roles::Entity,
            Expr::col((user_roles::Entity, user_roles::Column::UserId))
                .equals((users::Entity, users::Column::Id)),
        )
        .inner_join(
            roles::Entity,
            Expr::col((roles::Entity, roles::Column::Id))
                .equals((user_roles::Entity, user_roles::Column::RoleId)),
        )
        .and_where(Expr::col((users::Entity, users::Column::Id)).eq(user_id))
        .and_where(Expr::col((users::Entity, users::Column::IsActive)).eq(true))
        .and_where(Expr::col((users::Entity, users::Column::IsLocked)).eq(false))
        .and_where(Expr::col((users::Entity, users::Column::DeletedAt)).is_null())
        .cond_where(
            Cond::any()
                .add(Expr::col((user_roles::Entity, user_roles::Column::ExpiresAt)).is_null())
                .add(Expr::col((user_roles::Entity, user_roles::Column::ExpiresAt)).gt(now)),
        )
        .to_owned()
}

/// Extends [`live_grants`] with `JOIN role_permissions JOIN permissions`.
fn with_permissions(mut grants: SelectStatement) -> SelectStatement {
    grants
        .inner_join(
            role_permissions::Entity,
            Expr::col((role_permissions::Entity, role_permissions::Column::RoleId))
                .equals((roles::Entity, roles::Column::Id)),
        )
        .inner_join(
            permissions::Entity,
            Expr::col((permissions::Entity, permissions::Column::Id)).equals((
                role_permissions::Entity,
                role_permissions::Column::PermissionId,
            )),
        )
        .to_owned()
}

/// A role name, lower-cased: 2 to 64 ASCII letters, digits, `_`, `-` or `.`.
fn role_name(raw: &str) -> Result<String, Error> {
    let name = raw.to_ascii_lowercase();
    let ok = (2..=ROLE_NAME_MAX_CHARS).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b));
    if !ok {
        return Err(Error::InvalidInput {
            field: "role",
            reason: "must be 2 to 64 ASCII letters, digits, '_', '-' or '.'".into(),
        });
    }
    Ok(name)
}

/// A permission name, lower-cased: `resource.action`, each part ASCII
/// letters, digits and `_`.
///
/// # Errors
/// [`Error::InvalidInput`] naming what is wrong.
pub fn permission_name(raw: &str) -> Result<String, Error> {
    let name = raw.to_ascii_lowercase();
    let part_ok = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    let ok = name.len() <= PERMISSION_NAME_MAX_CHARS
        && name
            .split_once('.')
            .is_some_and(|(resource, action)| part_ok(resource) && part_ok(action));
    if !ok {
        return Err(Error::InvalidInput {
            field: "permission",
            reason: "must be resource.action in ASCII letters, digits and '_'".into(),
        });
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rendered_permission_check_binds_what_the_builder_binds() {
        let user = Uuid::now_v7();
        let now = Utc::now();
        for backend in [DbBackend::Postgres, DbBackend::MySql, DbBackend::Sqlite] {
            let built = backend.build(&has_permission_query(user, now, "users.read".into()));
            assert_eq!(built.sql, has_permission_sql(backend), "{backend:?}");
            let values = built.values.expect("the check binds values").0;
            assert_eq!(
                values,
                has_permission_values(user, now, "users.read".into()).to_vec(),
                "{backend:?}"
            );
        }
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(permission_name("Users.Read").unwrap(), "users.read");
        for bad in [
            "users",
            "users.",
            ".read",
            "users.read.all",
            "users.re ad",
            "u.r'--",
        ] {
            assert!(permission_name(bad).is_err(), "{bad}");
        }
        assert_eq!(role_name("Auditor").unwrap(), "auditor");
        for bad in ["a", "has space", "nul\0", &"r".repeat(65)] {
            assert!(role_name(bad).is_err(), "{bad:?}");
        }
    }
}
