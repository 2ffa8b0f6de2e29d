//! The default roles and permissions (seed 000's RBAC) for application code:
//! [`seed`] adds whatever of them is missing and changes nothing that exists,
//! so running it twice leaves the same state.

use chrono::Utc;
use gatehouse_entity::{permissions, role_permissions, roles};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionSession,
    TransactionTrait,
};
use uuid::Uuid;

use crate::Error;
use crate::db::retry;

/// A default role: name, level, description. Every default role is a system role.
pub const DEFAULT_ROLES: [(&str, i32, &str); 4] = [
    ("superadmin", 100, "Full control, including system settings"),
    ("admin", 50, "Manages users, roles, API keys and audit"),
    ("moderator", 10, "Reads users and the audit trail"),
    ("user", 0, "Regular account"),
];

/// The default permissions: resource, action, description.
pub const DEFAULT_PERMISSIONS: [(&str, &str, &str); 10] = [
    ("users", "create", "Create user accounts"),
    ("users", "read", "Read user accounts"),
    ("users", "update", "Update user accounts"),
    ("users", "delete", "Delete user accounts"),
    ("roles", "read", "Read roles and permissions"),
    ("roles", "manage", "Grant, revoke and edit roles"),
    ("api_keys", "create", "Issue API keys"),
    ("api_keys", "revoke", "Revoke API keys"),
    ("audit", "read", "Read audit logs"),
    ("system", "admin", "Change system settings"),
];

/// Which permissions each default role grants: every permission, or all but
/// those listed, or only those listed.
pub fn default_grants(role: &str) -> Vec<String> {
    let all = DEFAULT_PERMISSIONS
        .iter()
        .map(|(r, a, _)| format!("{r}.{a}"));
    match role {
        "superadmin" => all.collect(),
        "admin" => all.filter(|p| p != "system.admin").collect(),
        "moderator" => vec!["users.read".into(), "audit.read".into()],
        "user" => vec![
            "users.read".into(),
            "api_keys.create".into(),
            "api_keys.revoke".into(),
        ],
        _ => Vec::new(),
    }
}

/// `ON CONFLICT DO NOTHING` whichever unique key the row collides with (the
/// case-insensitive name indexes are expressions, so no column list names
/// them); MySQL spells it `ON DUPLICATE KEY UPDATE <col> = <col>`.
fn skip_existing<C: sea_orm::sea_query::IntoIden>(col: C) -> OnConflict {
    OnConflict::new().do_nothing_on([col]).to_owned()
}

/// Adds the default roles, permissions and grants that are missing, in one
/// transaction (a savepoint when `db` is a transaction already).
///
/// # Errors
/// A database error; nothing is written then.
pub async fn seed<C>(db: &C) -> Result<(), Error>
where
    C: ConnectionTrait + TransactionTrait,
{
    retry(db, "seed.seed", || async {
        let txn = db.begin().await?;
        let now = Utc::now();
        roles::Entity::insert_many(DEFAULT_ROLES.iter().map(|(name, level, description)| {
            roles::ActiveModel {
                id: Set(Uuid::now_v7()),
                name: Set((*name).to_owned()),
                description: Set(Some((*description).to_owned())),
                level: Set(*level),
                is_system: Set(true),
                created_at: Set(now),
                updated_at: Set(now),
            }
        }))
        .on_conflict(skip_existing(roles::Column::Id))
        .exec_without_returning(&txn)
        .await?;
        permissions::Entity::insert_many(DEFAULT_PERMISSIONS.iter().map(
            |(resource, action, description)| permissions::ActiveModel {
                id: Set(Uuid::now_v7()),
                name: Set(format!("{resource}.{action}")),
                resource: Set((*resource).to_owned()),
                action: Set((*action).to_owned()),
                description: Set(Some((*description).to_owned())),
                created_at: Set(now),
            },
        ))
        .on_conflict(skip_existing(permissions::Column::Id))
        .exec_without_returning(&txn)
        .await?;

        let role_names: Vec<&str> = DEFAULT_ROLES.iter().map(|r| r.0).collect();
        let roles = roles::Entity::find()
            .filter(roles::Column::Name.is_in(role_names))
            .all(&txn)
            .await?;
        let permissions = permissions::Entity::find().all(&txn).await?;
        let mut grants = Vec::new();
        for role in &roles {
            for name in default_grants(&role.name) {
                if let Some(permission) = permissions.iter().find(|p| p.name == name) {
                    grants.push(role_permissions::ActiveModel {
                        role_id: Set(role.id),
                        permission_id: Set(permission.id),
                        created_at: Set(now),
                    });
                }
            }
        }
        if !grants.is_empty() {
            role_permissions::Entity::insert_many(grants)
                .on_conflict(skip_existing(role_permissions::Column::RoleId))
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(())
    })
    .await?;
    Ok(())
}
