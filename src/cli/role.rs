//! `gatehouse role grant|revoke|list` and `gatehouse perm check`. The
//! operator acts as the system: any role may be granted, superadmin included.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use sea_orm::TransactionTrait;
use serde_json::json;

use super::context::{Context, Failure, Group, after, audit_admin, check_until, parse_span};
use super::output;
use crate::rbac::{self, Actor};

/// The `Args` command line: options and subcommand.
pub type Args = Group<Action>;

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Grant a role to a user, optionally until a time.
    Grant {
        /// User id, email or username.
        user: String,
        /// Role name, e.g. admin.
        role: String,
        /// Grant for this long, e.g. 12h, 30d (at most 100 years).
        #[arg(long, value_parser = parse_span, conflicts_with = "until")]
        expires_in: Option<chrono::Duration>,
        /// Grant until this time (RFC 3339, e.g. 2027-01-31T00:00:00Z), at most 100 years ahead.
        #[arg(long)]
        until: Option<DateTime<Utc>>,
    },
    /// Take a role away from a user.
    Revoke {
        /// User id, email or username.
        user: String,
        /// Role name.
        role: String,
    },
    /// List roles with their levels and permissions, or a user's roles.
    List {
        /// Show only this user's current roles.
        #[arg(long)]
        user: Option<String>,
    },
}

/// The `PermArgs` command line: options and subcommand.
pub type PermArgs = Group<PermAction>;

#[derive(clap::Subcommand, Debug)]
pub enum PermAction {
    /// Whether a user holds a permission now: exit 0 allowed, 1 denied.
    Check {
        /// User id, email or username.
        user: String,
        /// Permission as resource.action, e.g. users.read.
        permission: String,
    },
}

pub async fn run(args: Args) -> Result<ExitCode, Failure> {
    let ctx = Context::open(&args.common).await?;
    match args.action {
        Action::Grant {
            user,
            role,
            expires_in,
            until,
        } => {
            let expires_at = match (until, expires_in) {
                (Some(until), _) => {
                    check_until(ctx.now, until, "--until")?;
                    Some(until)
                }
                (None, Some(span)) => Some(after(ctx.now, span, "--expires-in")?),
                (None, None) => None,
            };
            let user = ctx.user(&user).await?;
            let role = find_role(&ctx, &role).await?;
            let txn = ctx.db.begin().await.map_err(crate::Error::from)?;
            rbac::grant_role(&txn, Actor::System, user.id, role.id, expires_at, ctx.now).await?;
            audit_admin(
                &txn,
                "role.grant",
                Some(user.id),
                json!({ "role": role.name, "expires_at": expires_at.map(|t| t.to_rfc3339()) }),
                ctx.now,
            )
            .await?;
            txn.commit().await.map_err(crate::Error::from)?;
            let until_text =
                expires_at.map_or_else(String::new, |t| format!(" until {}", t.to_rfc3339()));
            output::emit(
                ctx.format,
                &json!({ "user_id": user.id, "role": role.name, "granted": true,
                         "expires_at": expires_at.map(|t| t.to_rfc3339()) }),
                &format!("granted {} to {}{until_text}", role.name, user.email),
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::Revoke { user, role } => {
            let user = ctx.user(&user).await?;
            let role = find_role(&ctx, &role).await?;
            let txn = ctx.db.begin().await.map_err(crate::Error::from)?;
            rbac::revoke_role(&txn, Actor::System, user.id, role.id, ctx.now).await?;
            audit_admin(
                &txn,
                "role.revoke",
                Some(user.id),
                json!({ "role": role.name }),
                ctx.now,
            )
            .await?;
            txn.commit().await.map_err(crate::Error::from)?;
            output::emit(
                ctx.format,
                &json!({ "user_id": user.id, "role": role.name, "revoked": true }),
                &format!("revoked {} from {}", role.name, user.email),
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::List { user: Some(user) } => {
            let user = ctx.user(&user).await?;
            let roles = rbac::roles_of(&ctx.db, user.id, ctx.now).await?;
            let permissions = rbac::permissions_of(&ctx.db, user.id, ctx.now).await?;
            let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
            output::emit(
                ctx.format,
                &json!({ "user_id": user.id, "roles": names, "permissions": permissions }),
                &output::fields(&[
                    ("user", user.email.clone()),
                    ("roles", names.join(", ")),
                    ("permissions", permissions.join(", ")),
                ]),
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::List { user: None } => {
            let roles = rbac::list_roles(&ctx.db).await?;
            let mut rows = Vec::new();
            let mut json_roles = Vec::new();
            for role in &roles {
                let permissions = rbac::role_permissions(&ctx.db, role.id).await?;
                rows.push(vec![
                    role.name.clone(),
                    role.level.to_string(),
                    if role.is_system { "system" } else { "" }.to_owned(),
                    permissions.join(", "),
                ]);
                json_roles.push(json!({
                    "id": role.id, "name": role.name, "level": role.level,
                    "is_system": role.is_system, "permissions": permissions,
                }));
            }
            output::emit(
                ctx.format,
                &json!({ "roles": json_roles }),
                &output::table(&["role", "level", "kind", "permissions"], &rows),
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn find_role(ctx: &Context, name: &str) -> Result<entity::roles::Model, Failure> {
    rbac::find_role(&ctx.db, name)
        .await
        .map_err(|err| match err {
            crate::Error::NotFound(_) => Failure::Denied(format!(
                "no role is named `{name}`; `gatehouse role list` shows them"
            )),
            other => other.into(),
        })
}

pub async fn run_perm(args: PermArgs) -> Result<ExitCode, Failure> {
    let PermAction::Check { user, permission } = args.action;
    // A malformed permission name is a usage error, found before connecting.
    rbac::permission_name(&permission).map_err(|err| Failure::Usage(err.to_string()))?;
    let ctx = Context::open(&args.common).await?;
    let user = ctx.user(&user).await?;
    let allowed = rbac::has_permission(&ctx.db, user.id, &permission, ctx.now).await?;
    let verdict = if allowed { "allowed" } else { "denied" };
    output::emit(
        ctx.format,
        &json!({ "user_id": user.id, "permission": permission, "allowed": allowed }),
        &format!("{verdict}: {} {permission}", user.email),
    );
    Ok(if allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
