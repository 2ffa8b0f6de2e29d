//! RBAC on every backend: the level rule for grants, expiring grants, permission
//! checks in one query that honour the holder's state, and role management.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, SubsecRound, Utc};
use gatehouse::Error;
use gatehouse::accounts;
use gatehouse::rbac::{self, Actor};
use gatehouse_entity::{user_roles, users};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::support::{TestDb, insert_user};

backend_tests!(run_migrated:
    expired_grants_give_no_permission,
    nobody_grants_a_role_at_or_above_their_own_level,
    revoking_follows_the_same_rule,
    system_roles_cannot_be_deleted_and_custom_roles_are_managed,
    permission_checks_honour_the_holders_state,
    permission_checks_are_one_query,
    hostile_names_get_typed_errors_and_write_nothing,
);

fn start() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

async fn role_id(t: &TestDb, name: &str) -> Uuid {
    rbac::find_role(&t.db, name).await.unwrap().id
}

/// A user holding the role `role` by the bootstrap path.
async fn holder(t: &TestDb, name: &str, role: &str, now: DateTime<Utc>) -> Uuid {
    let user = insert_user(t, name).await;
    rbac::grant_role_bootstrap(&t.db, user.id, role_id(t, role).await, None, now)
        .await
        .unwrap();
    user.id
}

fn forbidden<T: std::fmt::Debug>(result: Result<T, Error>) -> bool {
    matches!(result, Err(Error::Forbidden(_)))
}

async fn expired_grants_give_no_permission(t: TestDb) {
    let now = start();
    let nora = insert_user(&t, "nora").await;
    let moderator = role_id(&t, "moderator").await;
    rbac::grant_role_bootstrap(
        &t.db,
        nora.id,
        moderator,
        Some(now + Duration::hours(1)),
        now,
    )
    .await
    .unwrap();
    assert!(
        rbac::has_permission(&t.db, nora.id, "audit.read", now)
            .await
            .unwrap()
    );
    assert!(
        !rbac::has_permission(&t.db, nora.id, "system.admin", now)
            .await
            .unwrap()
    );
    assert_eq!(
        rbac::permissions_of(&t.db, nora.id, now).await.unwrap(),
        ["audit.read", "users.read"]
    );
    let later = now + Duration::hours(1);
    assert!(
        !rbac::has_permission(&t.db, nora.id, "audit.read", later)
            .await
            .unwrap(),
        "the grant ends at its expiry"
    );
    assert!(
        rbac::permissions_of(&t.db, nora.id, later)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        rbac::roles_of(&t.db, nora.id, later)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        rbac::highest_level(&t.db, nora.id, later).await.unwrap(),
        None
    );

    // An expired grant is replaced by a new one; a live one is a conflict.
    rbac::grant_role_bootstrap(&t.db, nora.id, moderator, None, later)
        .await
        .unwrap();
    assert!(
        rbac::has_permission(&t.db, nora.id, "AUDIT.READ", later + Duration::days(365))
            .await
            .unwrap()
    );
    assert!(matches!(
        rbac::grant_role_bootstrap(&t.db, nora.id, moderator, None, later).await,
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(
        rbac::grant_role_bootstrap(&t.db, nora.id, moderator, Some(later), later).await,
        Err(Error::InvalidInput {
            field: "expires_at",
            ..
        })
    ));
    assert_eq!(t.count("user_roles").await, 1);
}

async fn nobody_grants_a_role_at_or_above_their_own_level(t: TestDb) {
    let now = start();
    let root = holder(&t, "root", "superadmin", now).await;
    let ada = insert_user(&t, "ada").await.id;
    let target = insert_user(&t, "target").await.id;
    let [superadmin, admin, moderator, user] = [
        role_id(&t, "superadmin").await,
        role_id(&t, "admin").await,
        role_id(&t, "moderator").await,
        role_id(&t, "user").await,
    ];

    // Superadmin (100) grants anything below 100, not superadmin itself.
    rbac::grant_role(&t.db, Actor::User(root), ada, admin, None, now)
        .await
        .unwrap();
    assert!(forbidden(
        rbac::grant_role(&t.db, Actor::User(root), target, superadmin, None, now).await
    ));
    // Admin (50) grants below 50 only.
    assert!(forbidden(
        rbac::grant_role(&t.db, Actor::User(ada), target, admin, None, now).await
    ));
    assert!(forbidden(
        rbac::grant_role(&t.db, Actor::User(ada), target, superadmin, None, now).await
    ));
    rbac::grant_role(&t.db, Actor::User(ada), target, moderator, None, now)
        .await
        .unwrap();
    // A moderator lacks roles.manage: not even the lowest role.
    assert!(forbidden(
        rbac::grant_role(&t.db, Actor::User(target), ada, user, None, now).await
    ));
    // Nobody without a role grants anything.
    let nobody = insert_user(&t, "nobody").await.id;
    assert!(forbidden(
        rbac::grant_role(&t.db, Actor::User(nobody), target, user, None, now).await
    ));

    // With roles.manage at level 20, the level rule alone decides.
    let lead = rbac::create_role(&t.db, Actor::System, "lead", None, 20, now)
        .await
        .unwrap();
    // roles.manage, and what a moderator carries (granting takes holding it).
    for permission in ["roles.manage", "users.read", "audit.read"] {
        rbac::add_permission(&t.db, Actor::System, lead.id, permission, now)
            .await
            .unwrap();
    }
    let leader = insert_user(&t, "leader").await.id;
    rbac::grant_role(&t.db, Actor::User(root), leader, lead.id, None, now)
        .await
        .unwrap();
    rbac::grant_role(&t.db, Actor::User(leader), nobody, moderator, None, now)
        .await
        .unwrap();
    assert!(forbidden(
        rbac::grant_role(&t.db, Actor::User(leader), nobody, lead.id, None, now).await
    ));

    // An expired grant confers no level.
    let temp = insert_user(&t, "temp").await.id;
    rbac::grant_role_bootstrap(&t.db, temp, admin, Some(now + Duration::minutes(5)), now)
        .await
        .unwrap();
    let later = now + Duration::minutes(10);
    assert!(forbidden(
        rbac::grant_role(&t.db, Actor::User(temp), nobody, user, None, later).await
    ));

    // Bootstrap grants superadmin; grants record who gave them.
    rbac::grant_role_bootstrap(&t.db, target, superadmin, None, now)
        .await
        .unwrap();
    let grants = user_roles::Entity::find().all(&t.db).await.unwrap();
    let granted_by = |user_id: Uuid, role_id: Uuid| {
        grants
            .iter()
            .find(|g| g.user_id == user_id && g.role_id == role_id)
            .expect("grant exists")
            .granted_by
    };
    assert_eq!(granted_by(ada, admin), Some(root));
    assert_eq!(granted_by(target, moderator), Some(ada));
    assert_eq!(granted_by(target, superadmin), None);
    assert_eq!(granted_by(root, superadmin), None);
    assert_eq!(grants.len(), 7, "refused grants wrote nothing");
}

async fn revoking_follows_the_same_rule(t: TestDb) {
    let now = start();
    let root = holder(&t, "root", "superadmin", now).await;
    let ada = holder(&t, "ada", "admin", now).await;
    let bea = holder(&t, "bea", "admin", now).await;
    let cal = holder(&t, "cal", "user", now).await;
    let moderator = role_id(&t, "moderator").await;
    let admin = role_id(&t, "admin").await;
    rbac::grant_role(&t.db, Actor::User(ada), cal, moderator, None, now)
        .await
        .unwrap();
    rbac::grant_role(&t.db, Actor::User(root), bea, moderator, None, now)
        .await
        .unwrap();

    assert!(forbidden(
        rbac::revoke_role(&t.db, Actor::User(ada), bea, admin, now).await
    ));
    // Bea ranks as high as Ada: not even the moderator role.
    assert!(forbidden(
        rbac::revoke_role(&t.db, Actor::User(ada), bea, moderator, now).await
    ));
    rbac::revoke_role(&t.db, Actor::User(ada), cal, moderator, now)
        .await
        .unwrap();
    assert!(matches!(
        rbac::revoke_role(&t.db, Actor::User(ada), cal, moderator, now).await,
        Err(Error::NotFound(_))
    ));
    rbac::revoke_role(&t.db, Actor::User(root), bea, moderator, now)
        .await
        .unwrap();
    rbac::revoke_role(&t.db, Actor::User(root), bea, admin, now)
        .await
        .unwrap();
    assert!(
        !rbac::has_permission(&t.db, bea, "users.read", now)
            .await
            .unwrap()
    );
    rbac::revoke_role(&t.db, Actor::System, ada, admin, now)
        .await
        .unwrap();
    assert_eq!(
        t.count("user_roles").await,
        2,
        "only root's and cal's first grants are left"
    );
}

async fn system_roles_cannot_be_deleted_and_custom_roles_are_managed(t: TestDb) {
    let now = start();
    for name in ["superadmin", "admin", "moderator", "user"] {
        let id = role_id(&t, name).await;
        assert!(
            forbidden(rbac::delete_role(&t.db, Actor::System, id, now).await),
            "{name} was deleted"
        );
        assert!(forbidden(
            rbac::add_permission(&t.db, Actor::System, id, "system.admin", now).await
        ));
        assert!(forbidden(
            rbac::remove_permission(&t.db, Actor::System, id, "users.read", now).await
        ));
    }
    assert_eq!(t.count("roles").await, 4);
    assert_eq!(t.count("role_permissions").await, 24);

    let auditor = rbac::create_role(
        &t.db,
        Actor::System,
        "Auditor",
        Some("Reads the audit trail"),
        20,
        now,
    )
    .await
    .unwrap();
    assert_eq!(auditor.name, "auditor");
    assert!(!auditor.is_system);
    for taken in ["auditor", "AUDITOR"] {
        assert!(matches!(
            rbac::create_role(&t.db, Actor::System, taken, None, 5, now).await,
            Err(Error::Conflict { .. })
        ));
    }
    for level in [-1, 101, i32::MAX] {
        assert!(matches!(
            rbac::create_role(&t.db, Actor::System, "ranked", None, level, now).await,
            Err(Error::InvalidInput { field: "level", .. })
        ));
    }
    rbac::create_role(&t.db, Actor::System, "top", None, 100, now)
        .await
        .unwrap();
    rbac::create_role(&t.db, Actor::System, "bottom", None, 0, now)
        .await
        .unwrap();

    rbac::add_permission(&t.db, Actor::System, auditor.id, "audit.read", now)
        .await
        .unwrap();
    assert!(matches!(
        rbac::add_permission(&t.db, Actor::System, auditor.id, "audit.read", now).await,
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(
        rbac::add_permission(&t.db, Actor::System, auditor.id, "audit.write", now).await,
        Err(Error::NotFound(_))
    ));
    let uma = holder(&t, "uma", "auditor", now).await;
    assert!(
        rbac::has_permission(&t.db, uma, "audit.read", now)
            .await
            .unwrap()
    );
    rbac::delete_role(&t.db, Actor::System, auditor.id, now)
        .await
        .unwrap();
    assert!(
        !rbac::has_permission(&t.db, uma, "audit.read", now)
            .await
            .unwrap()
    );
    assert_eq!(t.count("user_roles").await, 0, "grants go with the role");
    assert!(matches!(
        rbac::delete_role(&t.db, Actor::System, auditor.id, now).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        rbac::list_roles(&t.db)
            .await
            .unwrap()
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["superadmin", "top", "admin", "moderator", "bottom", "user"]
    );
}

async fn permission_checks_honour_the_holders_state(t: TestDb) {
    let now = start();
    let vic = holder(&t, "vic", "user", now).await;
    let can = || async {
        rbac::has_permission(&t.db, vic, "users.read", now)
            .await
            .unwrap()
    };
    assert!(can().await);
    assert!(
        !rbac::has_permission(&t.db, vic, "system.admin", now)
            .await
            .unwrap()
    );

    accounts::lock(&t.db, Actor::System, vic, now)
        .await
        .unwrap();
    assert!(!can().await, "an administrator's lock");
    accounts::unlock(&t.db, Actor::System, vic, now)
        .await
        .unwrap();
    assert!(can().await);

    let set = |col: users::Column, value: Expr| {
        users::Entity::update_many()
            .col_expr(col, value)
            .filter(users::Column::Id.eq(vic))
    };
    set(
        users::Column::LockedUntil,
        Expr::value(now + Duration::minutes(15)),
    )
    .exec(&t.db)
    .await
    .unwrap();
    assert!(
        can().await,
        "an automatic lock stops logins, not the rights of existing sessions"
    );
    assert!(
        rbac::has_permission(&t.db, vic, "users.read", now + Duration::minutes(15))
            .await
            .unwrap(),
        "the lock has ended"
    );
    accounts::unlock(&t.db, Actor::System, vic, now)
        .await
        .unwrap();

    set(users::Column::IsActive, Expr::value(false))
        .exec(&t.db)
        .await
        .unwrap();
    assert!(!can().await, "an inactive account");
    set(users::Column::IsActive, Expr::value(true))
        .exec(&t.db)
        .await
        .unwrap();
    assert!(can().await);

    accounts::soft_delete(&t.db, Actor::System, vic, now)
        .await
        .unwrap();
    assert!(!can().await, "a deleted account");
    assert!(
        rbac::permissions_of(&t.db, vic, now)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !rbac::has_permission(&t.db, Uuid::now_v7(), "users.read", now)
            .await
            .unwrap(),
        "an unknown user"
    );
}

async fn permission_checks_are_one_query(t: TestDb) {
    let now = start();
    let wes = holder(&t, "wes", "admin", now).await;
    let statements = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut db = t.db.clone();
    let seen = Arc::clone(&statements);
    db.set_metric_callback(move |info| seen.lock().unwrap().push(info.statement.sql.clone()));

    assert!(
        rbac::has_permission(&db, wes, "roles.manage", now)
            .await
            .unwrap()
    );
    let sql = statements.lock().unwrap().clone();
    assert_eq!(sql.len(), 1, "{sql:#?}");
    for table in [
        "users",
        "user_roles",
        "roles",
        "role_permissions",
        "permissions",
    ] {
        assert!(
            sql[0].contains(&format!("JOIN {}", quoted(&t, table))) || table == "users",
            "{table} missing from {}",
            sql[0]
        );
    }
    statements.lock().unwrap().clear();
    assert_eq!(rbac::permissions_of(&db, wes, now).await.unwrap().len(), 9);
    assert_eq!(statements.lock().unwrap().len(), 1);
}

fn quoted(t: &TestDb, table: &str) -> String {
    match t.backend {
        crate::support::Backend::MySql => format!("`{table}`"),
        _ => format!("\"{table}\""),
    }
}

async fn hostile_names_get_typed_errors_and_write_nothing(t: TestDb) {
    let now = start();
    let xena = holder(&t, "xena", "superadmin", now).await;
    let before = [
        t.count("roles").await,
        t.count("role_permissions").await,
        t.count("user_roles").await,
    ];
    let huge = "r".repeat(10 * 1024);
    for permission in [
        "users.read' OR '1'='1",
        "users.read\0",
        huge.as_str(),
        "ｕｓｅｒｓ.read",
    ] {
        assert!(matches!(
            rbac::has_permission(&t.db, xena, permission, now).await,
            Err(Error::InvalidInput {
                field: "permission",
                ..
            })
        ));
    }
    for name in [
        "x'); DROP TABLE roles; --",
        "nul\0",
        huge.as_str(),
        "ｒｏｏｔ",
    ] {
        assert!(matches!(
            rbac::create_role(&t.db, Actor::System, name, None, 10, now).await,
            Err(Error::InvalidInput { field: "role", .. })
        ));
        assert!(matches!(
            rbac::find_role(&t.db, name).await,
            Err(Error::InvalidInput { field: "role", .. })
        ));
    }
    for description in [huge.as_str(), "bell\u{7}"] {
        assert!(matches!(
            rbac::create_role(
                &t.db,
                Actor::System,
                "described",
                Some(description),
                10,
                now
            )
            .await,
            Err(Error::InvalidInput {
                field: "description",
                ..
            })
        ));
    }
    let unknown = Uuid::now_v7();
    assert!(matches!(
        rbac::grant_role(&t.db, Actor::User(xena), xena, unknown, None, now).await,
        Err(Error::NotFound(_))
    ));
    let admin = role_id(&t, "admin").await;
    assert!(matches!(
        rbac::grant_role(&t.db, Actor::User(xena), unknown, admin, None, now).await,
        Err(Error::Reference(_))
    ));
    let after = [
        t.count("roles").await,
        t.count("role_permissions").await,
        t.count("user_roles").await,
    ];
    assert_eq!(after, before);
}
