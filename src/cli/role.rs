//! `gatehouse role grant|revoke|list|create|update|delete`, `gatehouse role
//! permission add|remove` and `gatehouse perm check`. The operator acts as
//! the system: any role may be granted, superadmin included. Every change is
//! audited by the library, in the change's own transaction.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::context::{Access, Context, Failure, Group, after, check_until, parse_span};
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
    /// Create a custom role, without permissions (add them with `role permission add`).
    Create {
        /// Role name: 2 to 64 ASCII letters, digits, '_', '-' or '.'.
        name: String,
        /// Rank, 0 (user) to 100 (superadmin).
        #[arg(long, value_parser = clap::value_parser!(i32).range(0..=100))]
        level: i32,
        /// What the role is for.
        #[arg(long)]
        description: Option<String>,
    },
    /// Change a custom role's level or description.
    Update {
        /// Role name.
        name: String,
        /// New rank, 0 to 100.
        #[arg(long, value_parser = clap::value_parser!(i32).range(0..=100))]
        level: Option<i32>,
        /// New description.
        #[arg(long, conflicts_with = "clear_description")]
        description: Option<String>,
        /// Remove the description.
        #[arg(long)]
        clear_description: bool,
    },
    /// Delete a custom role, with its grants.
    Delete {
        /// Role name.
        name: String,
    },
    /// Add or remove a custom role's permissions.
    Permission {
        #[command(subcommand)]
        action: PermissionAction,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum PermissionAction {
    /// Let the role grant a permission.
    Add {
        /// Role name.
        role: String,
        /// Permission as resource.action, e.g. audit.read.
        permission: String,
    },
    /// Stop the role from granting a permission.
    Remove {
        /// Role name.
        role: String,
        /// Permission as resource.action.
        permission: String,
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

impl Action {
    fn access(&self) -> Access {
        match self {
            Self::List { .. } => Access::Read,
            Self::Grant { .. }
            | Self::Revoke { .. }
            | Self::Create { .. }
            | Self::Update { .. }
            | Self::Delete { .. }
            | Self::Permission { .. } => Access::Write,
        }
    }
}

pub async fn run(args: Args) -> Result<ExitCode, Failure> {
    // Malformed arguments are usage errors, found before connecting.
    match &args.action {
        Action::Permission {
            action:
                PermissionAction::Add { permission, .. } | PermissionAction::Remove { permission, .. },
        } => {
            rbac::permission_name(permission).map_err(|err| Failure::Usage(err.to_string()))?;
        }
        Action::Update {
            level: None,
            description: None,
            clear_description: false,
            ..
        } => {
            return Err(Failure::Usage(
                "nothing to change: give --level, --description or --clear-description".into(),
            ));
        }
        _ => {}
    }
    let ctx = Context::open(&args.common, args.action.access()).await?;
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
            rbac::grant_role(
                &ctx.db,
                Actor::System,
                user.id,
                role.id,
                expires_at,
                ctx.now,
            )
            .await?;
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
            rbac::revoke_role(&ctx.db, Actor::System, user.id, role.id, ctx.now).await?;
            output::emit(
                ctx.format,
                &json!({ "user_id": user.id, "role": role.name, "revoked": true }),
                &format!("revoked {} from {}", role.name, user.email),
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::Create {
            name,
            level,
            description,
        } => {
            let role = rbac::create_role(
                &ctx.db,
                Actor::System,
                &name,
                description.as_deref(),
                level,
                ctx.now,
            )
            .await?;
            output::emit(
                ctx.format,
                &json!({ "id": role.id, "name": role.name, "level": role.level,
                         "description": role.description, "created": true }),
                &format!("created role {} at level {}", role.name, role.level),
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::Update {
            name,
            level,
            description,
            clear_description,
        } => {
            let role = find_role(&ctx, &name).await?;
            let description = if clear_description {
                Some(None)
            } else {
                description.as_deref().map(Some)
            };
            let updated = rbac::update_role(
                &ctx.db,
                Actor::System,
                role.id,
                rbac::RoleUpdate { level, description },
                ctx.now,
            )
            .await?;
            output::emit(
                ctx.format,
                &json!({ "id": updated.id, "name": updated.name, "level": updated.level,
                         "description": updated.description, "updated": true }),
                &format!("updated role {}: level {}", updated.name, updated.level),
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::Delete { name } => {
            let role = find_role(&ctx, &name).await?;
            rbac::delete_role(&ctx.db, Actor::System, role.id, ctx.now).await?;
            output::emit(
                ctx.format,
                &json!({ "id": role.id, "name": role.name, "deleted": true }),
                &format!("deleted role {} and its grants", role.name),
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::Permission { action } => {
            let (role, permission, adding) = match &action {
                PermissionAction::Add { role, permission } => (role, permission, true),
                PermissionAction::Remove { role, permission } => (role, permission, false),
            };
            let role = find_role(&ctx, role).await?;
            if adding {
                rbac::add_permission(&ctx.db, Actor::System, role.id, permission, ctx.now).await?;
            } else {
                rbac::remove_permission(&ctx.db, Actor::System, role.id, permission, ctx.now)
                    .await?;
            }
            let permission = permission.to_ascii_lowercase();
            let (verb, word) = if adding {
                ("added", "to")
            } else {
                ("removed", "from")
            };
            output::emit(
                ctx.format,
                &json!({ "role": role.name, "permission": permission, "result": verb }),
                &format!("{verb} {permission} {word} {}", role.name),
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

async fn find_role(ctx: &Context, name: &str) -> Result<gatehouse_entity::roles::Model, Failure> {
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
    let ctx = Context::open(&args.common, Access::Read).await?;
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
