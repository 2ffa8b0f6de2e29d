//! RBAC that cannot be climbed, on every backend: the four default roles
//! against each other (grant, revoke, lock, unlock, delete), the escalations
//! an administrator would try, and the audit row every role change writes in
//! its own transaction.

use chrono::{DateTime, SubsecRound, Utc};
use gatehouse::Error;
use gatehouse::accounts;
use gatehouse::rbac::{self, Actor, RoleUpdate};
use gatehouse_entity::{audit_logs, roles, user_roles, users};
use sea_orm::{
    ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, TransactionTrait,
};
use uuid::Uuid;

use crate::support::{TestDb, insert_user};

backend_tests!(run_migrated:
    default_roles_grant_and_revoke_by_the_rule,
    default_roles_lock_unlock_and_delete_by_the_rule,
    an_admin_cannot_climb_through_a_role_it_creates,
    an_admin_cannot_touch_a_superadmin,
    nobody_grants_to_themselves,
    role_changes_follow_the_rules,
    role_changes_are_audited_in_their_transaction,
);

/// An audit row as (action, acting user, resource type, resource id).
type AuditSummary<'a> = (&'a str, Option<Uuid>, Option<&'a str>, Option<String>);

/// The seed's default roles, highest first.
const DEFAULT_ROLES: [&str; 4] = ["superadmin", "admin", "moderator", "user"];

fn start() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

async fn role(t: &TestDb, name: &str) -> roles::Model {
    rbac::find_role(&t.db, name).await.unwrap()
}

/// A fresh user holding only `role`, granted by the operator.
async fn holder(t: &TestDb, name: &str, role_name: &str, now: DateTime<Utc>) -> Uuid {
    let user = insert_user(t, name).await;
    rbac::grant_role_bootstrap(&t.db, user.id, role(t, role_name).await.id, None, now)
        .await
        .unwrap();
    user.id
}

/// Whether `result` is a refusal; panics on any other error.
fn refused<T: std::fmt::Debug>(result: Result<T, Error>, context: &str) -> bool {
    match result {
        Ok(_) => false,
        Err(Error::Forbidden(_)) => true,
        Err(other) => panic!("{context}: expected Ok or Forbidden, got {other:?}"),
    }
}

fn forbidden_naming<T: std::fmt::Debug>(result: Result<T, Error>, needle: &str) {
    match result {
        Err(Error::Forbidden(message)) => {
            assert!(
                message.contains(needle),
                "{message:?} does not name {needle}"
            );
        }
        other => panic!("expected Forbidden naming {needle}, got {other:?}"),
    }
}

async fn admin_rows(t: &TestDb) -> i64 {
    t.count("audit_logs WHERE event_type = 'admin'").await
}

/// Grant: `roles.manage`, every permission the role carries and a level
/// strictly above it. Revoke: the same, and the target below the actor.
/// Every actor against every default role, the expectation computed from
/// the seed's levels and permissions.
async fn default_roles_grant_and_revoke_by_the_rule(t: TestDb) {
    let now = start();
    let mut actors = Vec::new();
    for name in DEFAULT_ROLES {
        actors.push((name, holder(&t, &format!("actor_{name}"), name, now).await));
    }
    let mut checked = 0;
    for &(actor_role, actor) in &actors {
        let actor_level = role(&t, actor_role).await.level;
        let held = rbac::permissions_of(&t.db, actor, now).await.unwrap();
        for target_role in DEFAULT_ROLES {
            let target = role(&t, target_role).await;
            let carries = rbac::role_permissions(&t.db, target.id).await.unwrap();
            let allowed = held.iter().any(|p| p == "roles.manage")
                && actor_level > target.level
                && carries.iter().all(|p| held.contains(p));
            let case = format!("{actor_role} grants {target_role}");

            let grantee = insert_user(&t, &format!("g_{actor_role}_{target_role}")).await;
            let rows = admin_rows(&t).await;
            let result =
                rbac::grant_role(&t.db, Actor::User(actor), grantee.id, target.id, None, now).await;
            assert_eq!(!refused(result, &case), allowed, "{case}");
            let grants = user_roles::Entity::find()
                .filter(user_roles::Column::UserId.eq(grantee.id))
                .count(&t.db)
                .await
                .unwrap();
            assert_eq!(grants, u64::from(allowed), "{case}: grants written");
            assert_eq!(
                admin_rows(&t).await,
                rows + i64::from(allowed),
                "{case}: audit rows"
            );

            let case = format!("{actor_role} revokes {target_role}");
            let holder_id = holder(
                &t,
                &format!("r_{actor_role}_{target_role}"),
                target_role,
                now,
            )
            .await;
            let rows = admin_rows(&t).await;
            let result =
                rbac::revoke_role(&t.db, Actor::User(actor), holder_id, target.id, now).await;
            assert_eq!(!refused(result, &case), allowed, "{case}");
            assert_eq!(
                rbac::highest_level(&t.db, holder_id, now).await.unwrap(),
                (!allowed).then_some(target.level),
                "{case}: the grant"
            );
            assert_eq!(
                admin_rows(&t).await,
                rows + i64::from(allowed),
                "{case}: audit rows"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 16);
    // Spelled out, the rule gives: superadmin grants and revokes all but
    // superadmin, admin only moderator and user, the others nothing.
    let superadmin = actors[0].1;
    let admin = actors[1].1;
    let moderator = actors[2].1;
    let someone = insert_user(&t, "someone").await.id;
    for (actor, role_name, ok) in [
        (superadmin, "admin", true),
        (superadmin, "superadmin", false),
        (admin, "moderator", true),
        (admin, "admin", false),
        (moderator, "user", false),
    ] {
        let result = rbac::grant_role(
            &t.db,
            Actor::User(actor),
            someone,
            role(&t, role_name).await.id,
            None,
            now,
        )
        .await;
        assert_eq!(!refused(result, role_name), ok, "{role_name}");
    }
}

/// Lock, unlock and delete: refused unless the actor's highest level is
/// strictly above the target's. Every actor against a target at every
/// default level, and against itself.
async fn default_roles_lock_unlock_and_delete_by_the_rule(t: TestDb) {
    let now = start();
    let mut actors = Vec::new();
    for name in DEFAULT_ROLES {
        actors.push((name, holder(&t, &format!("actor_{name}"), name, now).await));
    }
    for &(actor_role, actor) in &actors {
        let actor_level = role(&t, actor_role).await.level;
        for target_role in DEFAULT_ROLES {
            let target_level = role(&t, target_role).await.level;
            let allowed = actor_level > target_level;
            let target = holder(
                &t,
                &format!("l_{actor_role}_{target_role}"),
                target_role,
                now,
            )
            .await;

            let case = format!("{actor_role} locks a {target_role}");
            let result = accounts::lock(&t.db, Actor::User(actor), target, now).await;
            assert_eq!(!refused(result, &case), allowed, "{case}");
            assert_eq!(is_locked(&t, target).await, allowed, "{case}");
            if !allowed {
                // The operator locks it, so that unlocking is tried on a locked account.
                accounts::lock(&t.db, Actor::System, target, now)
                    .await
                    .unwrap();
            }
            let case = format!("{actor_role} unlocks a {target_role}");
            let result = accounts::unlock(&t.db, Actor::User(actor), target, now).await;
            assert_eq!(!refused(result, &case), allowed, "{case}");
            assert_eq!(is_locked(&t, target).await, !allowed, "{case}");

            let case = format!("{actor_role} deletes a {target_role}");
            let target = holder(
                &t,
                &format!("d_{actor_role}_{target_role}"),
                target_role,
                now,
            )
            .await;
            let result = accounts::soft_delete(&t.db, Actor::User(actor), target, now).await;
            assert_eq!(!refused(result, &case), allowed, "{case}");
            assert_eq!(is_deleted(&t, target).await, allowed, "{case}");
        }
        // Nobody locks or deletes themselves.
        forbidden_naming(
            accounts::lock(&t.db, Actor::User(actor), actor, now).await,
            "own account",
        );
        forbidden_naming(
            accounts::soft_delete(&t.db, Actor::User(actor), actor, now).await,
            "own account",
        );
        assert!(!is_locked(&t, actor).await && !is_deleted(&t, actor).await);
    }
    // An account without any role ranks below everyone holding one; an
    // actor without a role outranks nobody.
    let plain = insert_user(&t, "plain").await.id;
    let other = insert_user(&t, "other").await.id;
    forbidden_naming(
        accounts::lock(&t.db, Actor::User(plain), other, now).await,
        "no role",
    );
    accounts::lock(&t.db, Actor::User(actors[3].1), other, now)
        .await
        .unwrap();
}

async fn is_locked(t: &TestDb, id: Uuid) -> bool {
    user(t, id).await.is_locked
}

async fn is_deleted(t: &TestDb, id: Uuid) -> bool {
    user(t, id).await.deleted_at.is_some()
}

async fn user(t: &TestDb, id: Uuid) -> users::Model {
    users::Entity::find_by_id(id)
        .one(&t.db)
        .await
        .unwrap()
        .unwrap()
}

/// The escalation: an admin (50) creates a level-40 role carrying
/// `system.admin` and grants it to itself. Every step that would hand out a
/// right the admin lacks is refused, whoever put the permission on the role.
async fn an_admin_cannot_climb_through_a_role_it_creates(t: TestDb) {
    let now = start();
    let ada = holder(&t, "ada", "admin", now).await;
    let bob = holder(&t, "bob", "user", now).await;
    let shadow = rbac::create_role(&t.db, Actor::User(ada), "shadow", None, 40, now)
        .await
        .unwrap();
    forbidden_naming(
        rbac::add_permission(&t.db, Actor::User(ada), shadow.id, "system.admin", now).await,
        "system.admin",
    );
    assert!(
        rbac::role_permissions(&t.db, shadow.id)
            .await
            .unwrap()
            .is_empty()
    );
    // Even when the permission reaches the role another way, the admin
    // cannot hand the role out: not to itself, not to an accomplice.
    rbac::add_permission(&t.db, Actor::System, shadow.id, "system.admin", now)
        .await
        .unwrap();
    forbidden_naming(
        rbac::grant_role(&t.db, Actor::User(ada), ada, shadow.id, None, now).await,
        "themselves",
    );
    forbidden_naming(
        rbac::grant_role(&t.db, Actor::User(ada), bob, shadow.id, None, now).await,
        "system.admin",
    );
    // Nor change it, delete it or strip it.
    forbidden_naming(
        rbac::update_role(
            &t.db,
            Actor::User(ada),
            shadow.id,
            RoleUpdate {
                level: Some(10),
                ..RoleUpdate::default()
            },
            now,
        )
        .await,
        "system.admin",
    );
    forbidden_naming(
        rbac::delete_role(&t.db, Actor::User(ada), shadow.id, now).await,
        "system.admin",
    );
    for who in [ada, bob] {
        assert!(
            !rbac::has_permission(&t.db, who, "system.admin", now)
                .await
                .unwrap()
        );
    }
    assert_eq!(
        t.count("user_roles").await,
        2,
        "refused grants wrote nothing"
    );

    // A role within the admin's own rights it may create, fill and grant
    // (below its level, to someone else).
    let helper = rbac::create_role(&t.db, Actor::User(ada), "helper", None, 40, now)
        .await
        .unwrap();
    rbac::add_permission(&t.db, Actor::User(ada), helper.id, "audit.read", now)
        .await
        .unwrap();
    rbac::grant_role(&t.db, Actor::User(ada), bob, helper.id, None, now)
        .await
        .unwrap();
    assert!(
        rbac::has_permission(&t.db, bob, "audit.read", now)
            .await
            .unwrap()
    );
    // A role at or above its own level it may not create.
    for level in [50, 51, 100] {
        forbidden_naming(
            rbac::create_role(&t.db, Actor::User(ada), "rival", None, level, now).await,
            "level",
        );
    }
}

/// The other escalation: an admin revokes a role from a superadmin.
/// Nothing an admin does reaches an account at or above its level, locked or not.
async fn an_admin_cannot_touch_a_superadmin(t: TestDb) {
    let now = start();
    let root = holder(&t, "root", "superadmin", now).await;
    let ada = holder(&t, "ada", "admin", now).await;
    let bea = holder(&t, "bea", "admin", now).await;
    let user_role = role(&t, "user").await;
    let superadmin = role(&t, "superadmin").await;
    rbac::grant_role_bootstrap(&t.db, root, user_role.id, None, now)
        .await
        .unwrap();

    forbidden_naming(
        rbac::revoke_role(&t.db, Actor::User(ada), root, user_role.id, now).await,
        "level 100",
    );
    forbidden_naming(
        rbac::revoke_role(&t.db, Actor::User(ada), root, superadmin.id, now).await,
        "level",
    );
    forbidden_naming(
        accounts::lock(&t.db, Actor::User(ada), root, now).await,
        "level 100",
    );
    forbidden_naming(
        accounts::soft_delete(&t.db, Actor::User(ada), root, now).await,
        "level 100",
    );
    // An equal is out of reach too.
    forbidden_naming(
        accounts::lock(&t.db, Actor::User(ada), bea, now).await,
        "level 50",
    );
    // The operator's lock does not lower the superadmin's rank.
    accounts::lock(&t.db, Actor::System, root, now)
        .await
        .unwrap();
    forbidden_naming(
        accounts::unlock(&t.db, Actor::User(ada), root, now).await,
        "level 100",
    );
    forbidden_naming(
        accounts::soft_delete(&t.db, Actor::User(ada), root, now).await,
        "level 100",
    );
    assert!(is_locked(&t, root).await && !is_deleted(&t, root).await);
    accounts::unlock(&t.db, Actor::System, root, now)
        .await
        .unwrap();

    // Deleting a role, or taking a permission from it, revokes from its
    // holders: refused while a superadmin holds it.
    let helper = rbac::create_role(&t.db, Actor::User(ada), "helper", None, 10, now)
        .await
        .unwrap();
    rbac::add_permission(&t.db, Actor::User(ada), helper.id, "audit.read", now)
        .await
        .unwrap();
    rbac::grant_role_bootstrap(&t.db, root, helper.id, None, now)
        .await
        .unwrap();
    forbidden_naming(
        rbac::remove_permission(&t.db, Actor::User(ada), helper.id, "audit.read", now).await,
        "level 100",
    );
    forbidden_naming(
        rbac::delete_role(&t.db, Actor::User(ada), helper.id, now).await,
        "level 100",
    );
    assert_eq!(
        rbac::role_permissions(&t.db, helper.id).await.unwrap(),
        ["audit.read"]
    );
    assert_eq!(
        rbac::roles_of(&t.db, root, now).await.unwrap().len(),
        3,
        "superadmin, helper, user"
    );
    // The superadmin may, once nobody at its own level holds the role
    // (it does not outrank itself either).
    forbidden_naming(
        rbac::delete_role(&t.db, Actor::User(root), helper.id, now).await,
        "level 100",
    );
    rbac::revoke_role(&t.db, Actor::System, root, helper.id, now)
        .await
        .unwrap();
    rbac::delete_role(&t.db, Actor::User(root), helper.id, now)
        .await
        .unwrap();
}

async fn nobody_grants_to_themselves(t: TestDb) {
    let now = start();
    let root = holder(&t, "root", "superadmin", now).await;
    let ada = holder(&t, "ada", "admin", now).await;
    for (actor, role_name) in [(root, "admin"), (root, "user"), (ada, "moderator")] {
        forbidden_naming(
            rbac::grant_role(
                &t.db,
                Actor::User(actor),
                actor,
                role(&t, role_name).await.id,
                None,
                now,
            )
            .await,
            "themselves",
        );
    }
    // Nor takes their own role away (they do not outrank themselves).
    forbidden_naming(
        rbac::revoke_role(
            &t.db,
            Actor::User(ada),
            ada,
            role(&t, "admin").await.id,
            now,
        )
        .await,
        "level",
    );
    assert_eq!(t.count("user_roles").await, 2);
    assert_eq!(admin_rows(&t).await, 2, "the two bootstrap grants only");
}

/// Creating, changing and deleting roles and their permissions: level above
/// the old and the new level, every permission the role carries.
async fn role_changes_follow_the_rules(t: TestDb) {
    let now = start();
    let ada = holder(&t, "ada", "admin", now).await;
    let mo = holder(&t, "mo", "moderator", now).await;
    forbidden_naming(
        rbac::create_role(&t.db, Actor::User(mo), "mods", None, 5, now).await,
        "roles.manage",
    );
    let ops = rbac::create_role(&t.db, Actor::User(ada), "ops", Some("on call"), 20, now)
        .await
        .unwrap();
    let raise = |level| RoleUpdate {
        level: Some(level),
        ..RoleUpdate::default()
    };
    forbidden_naming(
        rbac::update_role(&t.db, Actor::User(ada), ops.id, raise(50), now).await,
        "level 50",
    );
    let raised = rbac::update_role(&t.db, Actor::User(ada), ops.id, raise(49), now)
        .await
        .unwrap();
    assert_eq!(raised.level, 49);
    let described = rbac::update_role(
        &t.db,
        Actor::User(ada),
        ops.id,
        RoleUpdate {
            description: Some(None),
            ..RoleUpdate::default()
        },
        now,
    )
    .await
    .unwrap();
    assert_eq!((described.level, described.description), (49, None));
    assert!(matches!(
        rbac::update_role(&t.db, Actor::User(ada), ops.id, raise(101), now).await,
        Err(Error::InvalidInput { field: "level", .. })
    ));
    assert!(matches!(
        rbac::update_role(&t.db, Actor::User(ada), ops.id, RoleUpdate::default(), now).await,
        Err(Error::InvalidInput { .. })
    ));
    // System roles keep the seed's level and permissions, even for the operator.
    let admin = role(&t, "admin").await;
    forbidden_naming(
        rbac::update_role(&t.db, Actor::System, admin.id, raise(60), now).await,
        "system role",
    );
    assert_eq!(role(&t, "admin").await.level, 50);
    // A moderator-level actor with roles.manage still cannot touch a role above it.
    forbidden_naming(
        rbac::add_permission(&t.db, Actor::User(mo), ops.id, "users.read", now).await,
        "roles.manage",
    );
    rbac::add_permission(&t.db, Actor::User(ada), ops.id, "users.read", now)
        .await
        .unwrap();
    rbac::remove_permission(&t.db, Actor::User(ada), ops.id, "users.read", now)
        .await
        .unwrap();
    assert!(matches!(
        rbac::remove_permission(&t.db, Actor::User(ada), ops.id, "users.read", now).await,
        Err(Error::NotFound(_))
    ));
    rbac::delete_role(&t.db, Actor::User(ada), ops.id, now)
        .await
        .unwrap();
    assert!(matches!(
        rbac::delete_role(&t.db, Actor::User(ada), ops.id, now).await,
        Err(Error::NotFound(_))
    ));
}

/// Every change writes one `admin` row naming the actor and what changed,
/// in the change's transaction: a caller's rollback takes both away, and a
/// refused or failed change writes none.
async fn role_changes_are_audited_in_their_transaction(t: TestDb) {
    let now = start();
    let root = holder(&t, "root", "superadmin", now).await;
    let bob = insert_user(&t, "bob").await.id;
    let moderator = role(&t, "moderator").await;
    let before = admin_rows(&t).await;

    let ops = rbac::create_role(&t.db, Actor::User(root), "ops", None, 20, now)
        .await
        .unwrap();
    rbac::update_role(
        &t.db,
        Actor::User(root),
        ops.id,
        RoleUpdate {
            level: Some(30),
            ..RoleUpdate::default()
        },
        now,
    )
    .await
    .unwrap();
    rbac::add_permission(&t.db, Actor::User(root), ops.id, "audit.read", now)
        .await
        .unwrap();
    rbac::remove_permission(&t.db, Actor::User(root), ops.id, "audit.read", now)
        .await
        .unwrap();
    rbac::grant_role(&t.db, Actor::User(root), bob, moderator.id, None, now)
        .await
        .unwrap();
    rbac::revoke_role(&t.db, Actor::User(root), bob, moderator.id, now)
        .await
        .unwrap();
    rbac::grant_role(&t.db, Actor::System, bob, moderator.id, None, now)
        .await
        .unwrap();
    rbac::delete_role(&t.db, Actor::User(root), ops.id, now)
        .await
        .unwrap();

    let rows = audit_logs::Entity::find()
        .filter(audit_logs::Column::EventType.eq("admin"))
        .order_by_asc(audit_logs::Column::Id)
        .all(&t.db)
        .await
        .unwrap();
    let rows = &rows[usize::try_from(before).unwrap()..];
    let seen: Vec<AuditSummary<'_>> = rows
        .iter()
        .map(|r| {
            (
                r.action.as_str(),
                r.user_id,
                r.resource_type.as_deref(),
                r.resource_id.clone(),
            )
        })
        .collect();
    let ops_id = Some(ops.id.to_string());
    let bob_id = Some(bob.to_string());
    assert_eq!(
        seen,
        [
            ("role.create", Some(root), Some("role"), ops_id.clone()),
            ("role.update", Some(root), Some("role"), ops_id.clone()),
            (
                "role.permission.add",
                Some(root),
                Some("role"),
                ops_id.clone()
            ),
            (
                "role.permission.remove",
                Some(root),
                Some("role"),
                ops_id.clone()
            ),
            ("role.grant", Some(root), Some("user"), bob_id.clone()),
            ("role.revoke", Some(root), Some("user"), bob_id.clone()),
            ("role.grant", None, Some("user"), bob_id.clone()),
            ("role.delete", Some(root), Some("role"), ops_id),
        ]
    );
    let metadata = |i: usize| rows[i].metadata.clone().unwrap();
    assert_eq!(metadata(1)["details"]["level"]["old"], 20);
    assert_eq!(metadata(1)["details"]["level"]["new"], 30);
    assert_eq!(metadata(2)["details"]["permission"], "audit.read");
    assert_eq!(metadata(4)["details"]["role"], "moderator");
    assert_eq!(metadata(4)["actor"], root.to_string());
    assert_eq!(metadata(6)["actor"], "system");

    // A change inside a caller's transaction goes with it on rollback.
    let total = admin_rows(&t).await;
    let txn = t.db.begin().await.unwrap();
    rbac::revoke_role(&txn, Actor::User(root), bob, moderator.id, now)
        .await
        .unwrap();
    rbac::create_role(&txn, Actor::User(root), "brief", None, 5, now)
        .await
        .unwrap();
    txn.rollback().await.unwrap();
    assert_eq!(admin_rows(&t).await, total);
    assert_eq!(
        rbac::highest_level(&t.db, bob, now).await.unwrap(),
        Some(10)
    );
    assert!(rbac::find_role(&t.db, "brief").await.is_err());

    // Refusals and failures write no row.
    let eve = insert_user(&t, "eve").await.id;
    assert!(matches!(
        rbac::grant_role(&t.db, Actor::User(eve), bob, moderator.id, None, now).await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        rbac::grant_role(&t.db, Actor::System, bob, moderator.id, None, now).await,
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(
        rbac::create_role(&t.db, Actor::System, "MODERATOR", None, 5, now).await,
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(
        rbac::grant_role(
            &t.db,
            Actor::System,
            Uuid::now_v7(),
            moderator.id,
            None,
            now
        )
        .await,
        Err(Error::Reference(_))
    ));
    assert_eq!(admin_rows(&t).await, total);
    // The refused grant left the grant table as it was.
    let grants = user_roles::Entity::find()
        .filter(user_roles::Column::UserId.eq(bob))
        .filter(user_roles::Column::GrantedBy.is_null())
        .all(&t.db)
        .await
        .unwrap();
    assert_eq!(grants.len(), 1);
}
