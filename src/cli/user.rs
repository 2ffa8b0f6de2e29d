//! `gatehouse user create|list|lock|unlock`.

use std::process::ExitCode;

use sea_orm::TransactionTrait;
use secrecy::ExposeSecret;
use serde_json::json;

use super::context::{Access, Context, Failure, Group, audit_admin};
use super::{input, output};
use crate::accounts::{self, Account, Accounts, Argon2idHasher, NewAccount};
use crate::rbac::{self, Actor};

/// The `Args` command line: options and subcommand.
pub type Args = Group<Action>;

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Create an account; the password is read from stdin or a hidden prompt.
    /// Replaces seed 000's "Create First User" SQL:
    /// `gatehouse user create --email admin@example.com --username admin --role superadmin`.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        username: String,
        /// Role to grant besides the default `user` (repeatable), e.g. superadmin.
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// List accounts in order of creation.
    List {
        /// Most accounts to show (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: u64,
        /// Accounts to skip (0 to 9223372036854775807).
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Include soft-deleted accounts.
        #[arg(long)]
        include_deleted: bool,
    },
    /// Lock an account (administrator lock) and revoke its sessions.
    Lock {
        /// User id, email or username.
        user: String,
    },
    /// Lift an administrator's or an automatic lock and clear the failure count.
    Unlock {
        /// User id, email or username.
        user: String,
    },
}

impl Action {
    fn access(&self) -> Access {
        match self {
            Self::List { .. } => Access::Read,
            Self::Create { .. } | Self::Lock { .. } | Self::Unlock { .. } => Access::Write,
        }
    }
}

pub async fn run(args: Args) -> Result<ExitCode, Failure> {
    // Refuse bad arguments before asking for a password.
    if let Action::List { limit, .. } = &args.action
        && !(1..=accounts::LIST_LIMIT_MAX).contains(limit)
    {
        return Err(Failure::Usage(format!(
            "--limit must be between 1 and {}",
            accounts::LIST_LIMIT_MAX
        )));
    }
    if let Action::List { offset, .. } = &args.action
        && *offset > accounts::LIST_OFFSET_MAX
    {
        return Err(Failure::Usage(format!(
            "--offset must be between 0 and {}",
            accounts::LIST_OFFSET_MAX
        )));
    }
    let ctx = Context::open(&args.common, args.action.access()).await?;
    match args.action {
        Action::Create {
            email,
            username,
            roles,
        } => create(&ctx, &email, &username, &roles).await,
        Action::List {
            limit,
            offset,
            include_deleted,
        } => list(&ctx, limit, offset, include_deleted).await,
        Action::Lock { user } => {
            let user = ctx.user(&user).await?;
            let txn = ctx.db.begin().await.map_err(crate::Error::from)?;
            accounts::lock(&txn, Actor::System, user.id, ctx.now).await?;
            audit_admin(&txn, "user.lock", Some(user.id), json!({}), ctx.now).await?;
            txn.commit().await.map_err(crate::Error::from)?;
            report_state(
                &ctx,
                &user.email,
                "locked; its sessions were revoked",
                user.id,
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::Unlock { user } => {
            let user = ctx.user(&user).await?;
            let txn = ctx.db.begin().await.map_err(crate::Error::from)?;
            accounts::unlock(&txn, Actor::System, user.id, ctx.now).await?;
            audit_admin(&txn, "user.unlock", Some(user.id), json!({}), ctx.now).await?;
            txn.commit().await.map_err(crate::Error::from)?;
            report_state(&ctx, &user.email, "unlocked", user.id);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn report_state(ctx: &Context, email: &str, what: &str, id: uuid::Uuid) {
    output::emit(
        ctx.format,
        &json!({ "user_id": id, "email": email, "result": what }),
        &format!("{email}: {what}"),
    );
}

async fn create(
    ctx: &Context,
    email: &str,
    username: &str,
    roles: &[String],
) -> Result<ExitCode, Failure> {
    // Unknown roles and malformed names are refused before the password is asked for.
    accounts::validate::email(email)?;
    accounts::validate::username(username)?;
    let mut extra_roles = Vec::new();
    for name in roles {
        let role = rbac::find_role(&ctx.db, name).await.map_err(|_| {
            Failure::Denied(format!(
                "no role is named `{name}`; `gatehouse role list` shows them"
            ))
        })?;
        if Some(role.name.as_str()) != accounts::AccountsPolicy::default().default_role {
            extra_roles.push(role);
        }
    }
    let password = input::secret("password", true)?;
    let accounts = Accounts::new(Argon2idHasher::default()).await?;
    let txn = ctx.db.begin().await.map_err(crate::Error::from)?;
    let account = accounts
        .register(
            &txn,
            NewAccount {
                email,
                username,
                password: password.expose_secret(),
            },
            ctx.now,
        )
        .await?;
    for role in &extra_roles {
        rbac::grant_role_bootstrap(&txn, account.id, role.id, None, ctx.now).await?;
    }
    let granted = rbac::roles_of(&txn, account.id, ctx.now).await?;
    let role_names: Vec<&str> = granted.iter().map(|r| r.name.as_str()).collect();
    audit_admin(
        &txn,
        "user.create",
        Some(account.id),
        json!({ "roles": role_names }),
        ctx.now,
    )
    .await?;
    txn.commit().await.map_err(crate::Error::from)?;
    output::emit(
        ctx.format,
        &json!({
            "id": account.id,
            "email": account.email,
            "username": account.username,
            "roles": role_names,
            "created_at": account.created_at.to_rfc3339(),
        }),
        &format!(
            "created user {}\n{}",
            account.username,
            output::fields(&[
                ("id", account.id.to_string()),
                ("email", account.email.clone()),
                ("roles", role_names.join(", ")),
            ])
        ),
    );
    Ok(ExitCode::SUCCESS)
}

/// `active`, `locked`, `locked until …`, `inactive` or `deleted`.
fn state(account: &Account, now: chrono::DateTime<chrono::Utc>) -> String {
    if account.deleted_at.is_some() {
        "deleted".into()
    } else if account.is_locked {
        "locked".into()
    } else if let Some(until) = account.locked_until.filter(|u| *u > now) {
        format!("locked until {}", until.format("%Y-%m-%d %H:%M UTC"))
    } else if !account.is_active {
        "inactive".into()
    } else {
        "active".into()
    }
}

async fn list(
    ctx: &Context,
    limit: u64,
    offset: u64,
    include_deleted: bool,
) -> Result<ExitCode, Failure> {
    let accounts = accounts::list_users(&ctx.db, include_deleted, limit, offset).await?;
    let json: Vec<_> = accounts
        .iter()
        .map(|a| {
            json!({
                "id": a.id,
                "email": a.email,
                "username": a.username,
                "state": state(a, ctx.now),
                "is_verified": a.is_verified,
                "failed_login_count": a.failed_login_count,
                "last_login_at": a.last_login_at.map(|t| t.to_rfc3339()),
                "created_at": a.created_at.to_rfc3339(),
            })
        })
        .collect();
    let rows: Vec<Vec<String>> = accounts
        .iter()
        .map(|a| {
            vec![
                a.id.to_string(),
                a.email.clone(),
                a.username.clone(),
                state(a, ctx.now),
                a.last_login_at.map_or_else(
                    || "never".into(),
                    |t| t.format("%Y-%m-%d %H:%M").to_string(),
                ),
            ]
        })
        .collect();
    let human = format!(
        "{}{} account(s)",
        output::table(&["id", "email", "username", "state", "last login"], &rows),
        accounts.len()
    );
    output::emit(ctx.format, &json!({ "users": json }), &human);
    Ok(ExitCode::SUCCESS)
}
