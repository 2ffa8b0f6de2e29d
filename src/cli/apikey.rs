//! `gatehouse apikey issue|verify|list|revoke`. A key is printed once, at
//! issue; verify reads it from stdin or a hidden prompt.

use std::process::ExitCode;

use sea_orm::{EntityTrait, TransactionTrait};
use secrecy::ExposeSecret;
use serde_json::json;
use uuid::Uuid;

use super::context::{Access, Context, Failure, Group, after, audit_admin, parse_span};
use super::{input, output};
use crate::api_keys::{self, DEFAULT_RATE_LIMIT_PER_MINUTE, MAX_RATE_LIMIT_PER_MINUTE, NewApiKey};

/// The `Args` command line: options and subcommand.
pub type Args = Group<Action>;

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Issue a key for a user, limited to permissions the user holds; printed once.
    Issue {
        /// Owner: user id, email or username.
        user: String,
        /// A name the owner recognises the key by.
        #[arg(long)]
        name: String,
        /// Permission the key may use (repeatable), e.g. users.read.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Expire after this long, e.g. 90d (at most 100 years).
        #[arg(long, value_parser = parse_span)]
        expires_in: Option<chrono::Duration>,
        /// Requests per minute the key may make (1 to 100000).
        #[arg(long, default_value_t = DEFAULT_RATE_LIMIT_PER_MINUTE, conflicts_with = "no_rate_limit")]
        rate_limit: i32,
        /// No per-minute limit: the key's use is then recorded at most once a minute.
        #[arg(long)]
        no_rate_limit: bool,
    },
    /// Verify a key read from stdin (counts as a use): exit 0 valid, 1 refused.
    Verify {
        /// Also require this scope.
        #[arg(long)]
        scope: Option<String>,
        /// Client IP to record with the use.
        #[arg(long)]
        ip: Option<String>,
    },
    /// List a user's keys (records only; keys are never stored).
    List {
        /// Owner: user id, email or username.
        user: String,
    },
    /// Revoke a key by its id.
    Revoke {
        /// The key's id, as `issue` and `list` print it.
        key_id: Uuid,
    },
}

impl Action {
    /// `verify` writes too: it counts the use in the key's rate window.
    fn access(&self) -> Access {
        match self {
            Self::List { .. } => Access::Read,
            Self::Issue { .. } | Self::Verify { .. } | Self::Revoke { .. } => Access::Write,
        }
    }
}

pub async fn run(args: Args) -> Result<ExitCode, Failure> {
    // Refuse bad numbers before connecting.
    if let Action::Issue {
        rate_limit,
        no_rate_limit: false,
        ..
    } = &args.action
        && !(1..=MAX_RATE_LIMIT_PER_MINUTE).contains(rate_limit)
    {
        return Err(Failure::Usage(format!(
            "--rate-limit must be between 1 and {MAX_RATE_LIMIT_PER_MINUTE}"
        )));
    }
    let ctx = Context::open(&args.common, args.action.access()).await?;
    match args.action {
        Action::Issue {
            user,
            name,
            scopes,
            expires_in,
            rate_limit,
            no_rate_limit,
        } => {
            let expires_at = expires_in
                .map(|span| after(ctx.now, span, "--expires-in"))
                .transpose()?;
            let user = ctx.user(&user).await?;
            let scope_refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
            let txn = ctx.db.begin().await.map_err(crate::Error::from)?;
            let issued = api_keys::issue(
                &txn,
                NewApiKey {
                    user_id: user.id,
                    name: &name,
                    scopes: &scope_refs,
                    rate_limit_per_minute: (!no_rate_limit).then_some(rate_limit),
                    expires_at,
                },
                ctx.now,
            )
            .await?;
            audit_admin(
                &txn,
                "api_key.issue",
                Some(user.id),
                json!({ "key_id": issued.record.id, "scopes": scopes }),
                ctx.now,
            )
            .await?;
            txn.commit().await.map_err(crate::Error::from)?;
            let record = &issued.record;
            let expires = record.expires_at.map(|t| t.to_rfc3339());
            output::emit(
                ctx.format,
                &json!({
                    "key": issued.key.expose(),
                    "id": record.id,
                    "user_id": record.user_id,
                    "name": record.name,
                    "scopes": scopes,
                    "expires_at": expires,
                    "rate_limit_per_minute": record.rate_limit_per_minute,
                }),
                &format!(
                    "{}\n\nThe key above is shown only now; store it where the client reads it.\n{}",
                    issued.key.expose(),
                    output::fields(&[
                        ("id", record.id.to_string()),
                        ("owner", user.email.clone()),
                        ("scopes", scopes.join(", ")),
                        ("expires", expires.unwrap_or_else(|| "never".into())),
                        (
                            "rate limit",
                            record
                                .rate_limit_per_minute
                                .map_or_else(|| "none".into(), |n| format!("{n}/min")),
                        ),
                    ])
                ),
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::Verify { scope, ip } => {
            let key = input::secret("API key", false)?;
            let verified =
                api_keys::verify(&ctx.db, key.expose_secret(), ip.as_deref(), ctx.now).await?;
            if let Some(scope) = &scope {
                verified.require(scope)?;
            }
            output::emit(
                ctx.format,
                &json!({
                    "valid": true,
                    "key_id": verified.key_id,
                    "user_id": verified.user_id,
                    "name": verified.name,
                    "scopes": verified.scopes,
                    "expires_at": verified.expires_at.map(|t| t.to_rfc3339()),
                }),
                &format!(
                    "valid\n{}",
                    output::fields(&[
                        ("key id", verified.key_id.to_string()),
                        ("owner", verified.user_id.to_string()),
                        ("name", verified.name.clone()),
                        ("scopes", verified.scopes.join(", ")),
                    ])
                ),
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::List { user } => {
            let user = ctx.user(&user).await?;
            let keys = api_keys::list(&ctx.db, user.id).await?;
            let state = |k: &gatehouse_entity::api_keys::Model| {
                if k.is_revoked {
                    "revoked"
                } else if k.expires_at.is_some_and(|at| at <= ctx.now) {
                    "expired"
                } else {
                    "active"
                }
            };
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    vec![
                        k.id.to_string(),
                        k.key_prefix.clone(),
                        k.name.clone(),
                        state(k).into(),
                        k.usage_count.to_string(),
                        k.last_used_at.map_or_else(
                            || "never".into(),
                            |t| t.format("%Y-%m-%d %H:%M").to_string(),
                        ),
                    ]
                })
                .collect();
            let json_keys: Vec<_> = keys
                .iter()
                .map(|k| {
                    json!({
                        "id": k.id, "prefix": k.key_prefix, "name": k.name, "state": state(k),
                        "usage_count": k.usage_count,
                        "last_used_at": k.last_used_at.map(|t| t.to_rfc3339()),
                        "expires_at": k.expires_at.map(|t| t.to_rfc3339()),
                    })
                })
                .collect();
            output::emit(
                ctx.format,
                &json!({ "user_id": user.id, "keys": json_keys }),
                &output::table(
                    &["id", "prefix", "name", "state", "uses", "last used"],
                    &rows,
                ),
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::Revoke { key_id } => {
            let txn = ctx.db.begin().await.map_err(crate::Error::from)?;
            let revoked = api_keys::revoke(&txn, key_id, ctx.now).await?;
            let owner = gatehouse_entity::api_keys::Entity::find_by_id(key_id)
                .one(&txn)
                .await
                .map_err(crate::Error::from)?
                .map(|k| k.user_id);
            audit_admin(
                &txn,
                "api_key.revoke",
                owner,
                json!({ "key_id": key_id, "was_active": revoked }),
                ctx.now,
            )
            .await?;
            txn.commit().await.map_err(crate::Error::from)?;
            let text = if revoked {
                format!("revoked key {key_id}")
            } else {
                format!("key {key_id} was revoked already")
            };
            output::emit(
                ctx.format,
                &json!({ "key_id": key_id, "revoked": true, "was_active": revoked }),
                &text,
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
