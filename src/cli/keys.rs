//! `gatehouse keys rotate hmac|data` and `gatehouse keys list`: the only way
//! a new key version becomes active.
//!
//! `rotate` records the configured key (`HMAC_KEY` or `DATA_ENCRYPTION_KEY`)
//! as the new active version and marks the previously active one rotated, in
//! one transaction with its `audit_logs` row (event type `admin`). It
//! refuses unless the previously active key is in the ring
//! (`HMAC_KEY_PREVIOUS` / `DATA_ENCRYPTION_KEY_PREVIOUS`), since without it
//! every session, backup code or secret under that key stops working;
//! `--retire-previous` accepts that. A `data` rotation then re-encrypts the
//! TOTP secrets under the new key.

use std::process::ExitCode;

use gatehouse_entity::encryption_keys;
use gatehouse_entity::sea_orm_active_enums::{KeyStatus, KeyType};
use sea_orm::TransactionTrait;
use serde_json::json;

use super::context::{ADMIN_EVENT, Access, Context, Failure, Group, config};
use super::output;
use crate::mfa::Mfa;
use crate::{Config, Error, keys};

/// The `Args` command line: options and subcommand.
pub type Args = Group<Action>;

/// Which key a command is about.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// `HMAC_KEY`: session seals, IP hashes, backup-code digests.
    Hmac,
    /// `DATA_ENCRYPTION_KEY`: TOTP secrets at rest.
    Data,
}

impl Which {
    fn key_type(self) -> KeyType {
        match self {
            Self::Hmac => KeyType::Session,
            Self::Data => KeyType::Data,
        }
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Make the configured key the new active version of its type.
    Rotate {
        /// `hmac` (HMAC_KEY) or `data` (DATA_ENCRYPTION_KEY).
        #[arg(value_enum)]
        which: Which,
        /// Why, recorded with the retired version and in the audit trail.
        #[arg(long, default_value = "rotated by operator")]
        reason: String,
        /// Rotate even though the active key is not in the *_PREVIOUS
        /// variable: everything under it stops working.
        #[arg(long)]
        retire_previous: bool,
    },
    /// Show the recorded keys: type, version, status, dates.
    List,
}

/// Longest rotation reason (the column's size).
const MAX_REASON: usize = 255;

pub async fn run(args: Args) -> Result<ExitCode, Failure> {
    match args.action {
        Action::Rotate {
            which,
            reason,
            retire_previous,
        } => {
            let config = config()?;
            let ctx = Context::open(&args.common, Access::Write).await?;
            rotate(&ctx, &config, which, &reason, retire_previous).await
        }
        Action::List => {
            // The records are readable without keys; with them, say which is configured.
            let config = Config::from_env().ok();
            let ctx = Context::open(&args.common, Access::Read).await?;
            list(&ctx, config.as_ref()).await
        }
    }
}

/// The configured key's fingerprint and the ring's, for `which`.
fn fingerprints(config: &Config, which: Which) -> (String, Vec<String>) {
    match which {
        Which::Hmac => (
            config.hmac_key.fingerprint(),
            config
                .hmac_previous
                .iter()
                .map(|k| k.fingerprint())
                .collect(),
        ),
        Which::Data => (
            config.data_key.fingerprint(),
            config
                .data_previous
                .iter()
                .map(|k| k.fingerprint())
                .collect(),
        ),
    }
}

fn check_reason(reason: &str) -> Result<(), Failure> {
    if reason.trim().is_empty()
        || reason.chars().count() > MAX_REASON
        || reason.chars().any(char::is_control)
    {
        return Err(Failure::Usage(format!(
            "--reason must be 1 to {MAX_REASON} characters without control characters"
        )));
    }
    Ok(())
}

async fn rotate(
    ctx: &Context,
    config: &Config,
    which: Which,
    reason: &str,
    retire_previous: bool,
) -> Result<ExitCode, Failure> {
    check_reason(reason)?;
    let key_type = which.key_type();
    let var = keys::variable(key_type);
    let ring_var = keys::previous_variable(key_type);
    let (fingerprint, ring) = fingerprints(config, which);
    let previous = keys::active(&ctx.db, key_type).await?;
    if let Some(active) = &previous
        && active.fingerprint != fingerprint
        && !ring.contains(&active.fingerprint)
        && !retire_previous
    {
        return Err(Error::Config {
            var: ring_var,
            reason: format!(
                "does not hold the active key (version {}); put it there (comma-separated, \
                 beside any older ones) so what it protects keeps working until it expires, \
                 or pass --retire-previous to let everything under it stop working. \
                 Nothing was changed",
                active.version
            ),
        }
        .into());
    }
    let algorithm = match which {
        Which::Hmac => keys::HMAC_ALGORITHM,
        Which::Data => keys::DATA_ALGORITHM,
    };
    let txn = ctx.db.begin().await.map_err(Error::from)?;
    let new = keys::rotate(
        &txn,
        key_type,
        &fingerprint,
        algorithm,
        previous.as_ref().map(|k| k.id),
        None,
        reason,
    )
    .await?;
    crate::audit::AuditEntry::new(ADMIN_EVENT, "keys.rotate")
        .resource("encryption_key", new.id.to_string())
        .metadata(json!({
            "via": "gatehouse cli",
            "details": {
                "key_type": keys::command_word(key_type),
                "version": new.version,
                "replaced_version": previous.as_ref().map(|k| k.version),
                "replaced_key_id": previous.as_ref().map(|k| k.id),
                "previous_in_ring": previous.as_ref().is_some_and(|k| ring.contains(&k.fingerprint)),
                "retire_previous": retire_previous,
                "reason": reason,
            },
        }))
        .record(&txn, ctx.now)
        .await?;
    txn.commit().await.map_err(Error::from)?;

    let reencrypted = if which == Which::Data {
        let report = Mfa::new(config).reencrypt_secrets(&ctx.db, ctx.now).await?;
        Some(report)
    } else {
        None
    };
    let replaced = previous
        .as_ref()
        .map_or_else(|| "none".to_owned(), |k| format!("version {}", k.version));
    let mut human = format!(
        "{var} is now the active {} key, version {} (replaced: {replaced}).\n",
        keys::command_word(key_type),
        new.version
    );
    if let Some(old) = &previous {
        if ring.contains(&old.fingerprint) {
            human.push_str(&format!(
                "Version {} stays usable through {ring_var} until what it protects has expired or \
                 been re-keyed; `gatehouse doctor` shows what still depends on it.\n",
                old.version
            ));
        } else {
            human.push_str(&format!(
                "Version {} is retired: everything under it stops working.\n",
                old.version
            ));
        }
    }
    if let Some(report) = &reencrypted {
        human.push_str(&format!(
            "Re-encrypted {} TOTP secret(s) under the new key; {} could not be opened with the \
             configured keys.\n",
            report.reencrypted,
            report.undecryptable.len()
        ));
    }
    output::emit(
        ctx.format,
        &json!({
            "key_type": keys::command_word(key_type),
            "key_id": new.id,
            "version": new.version,
            "replaced_version": previous.as_ref().map(|k| k.version),
            "reencrypted": reencrypted.as_ref().map(|r| r.reencrypted),
            "undecryptable": reencrypted.as_ref().map(|r| r.undecryptable.clone()),
        }),
        &human,
    );
    Ok(ExitCode::SUCCESS)
}

/// How `record` is configured: `current`, `previous` or neither.
fn configured_as(config: Option<&Config>, record: &encryption_keys::Model) -> Option<&'static str> {
    let config = config?;
    let which = match record.key_type {
        KeyType::Session => Which::Hmac,
        KeyType::Data => Which::Data,
        _ => return None,
    };
    let (current, ring) = fingerprints(config, which);
    if current == record.fingerprint {
        Some("current")
    } else if ring.contains(&record.fingerprint) {
        Some("previous")
    } else {
        None
    }
}

fn status_word(status: KeyStatus) -> &'static str {
    match status {
        KeyStatus::Active => "active",
        KeyStatus::Rotated => "rotated",
        KeyStatus::Compromised => "compromised",
    }
}

async fn list(ctx: &Context, config: Option<&Config>) -> Result<ExitCode, Failure> {
    let records = keys::list(&ctx.db).await?;
    let json_rows: Vec<_> = records
        .iter()
        .map(|k| {
            json!({
                "id": k.id,
                "key_type": keys::command_word(k.key_type),
                "version": k.version,
                "status": status_word(k.status),
                "algorithm": k.algorithm,
                "fingerprint": &k.fingerprint[..k.fingerprint.len().min(16)],
                "activated_at": k.activated_at.to_rfc3339(),
                "rotated_at": k.rotated_at.map(|t| t.to_rfc3339()),
                "rotation_reason": k.rotation_reason,
                "configured": configured_as(config, k),
            })
        })
        .collect();
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|k| {
            vec![
                keys::command_word(k.key_type).to_owned(),
                k.version.to_string(),
                status_word(k.status).to_owned(),
                k.activated_at.format("%Y-%m-%d %H:%M").to_string(),
                k.rotated_at
                    .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default(),
                configured_as(config, k).unwrap_or("").to_owned(),
                k.rotation_reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let human = if records.is_empty() {
        "no keys recorded yet; the first command that needs a key records the configured one"
            .to_owned()
    } else {
        output::table(
            &[
                "type",
                "version",
                "status",
                "activated",
                "rotated",
                "configured",
                "reason",
            ],
            &rows,
        )
    };
    output::emit(ctx.format, &json!({ "keys": json_rows }), &human);
    Ok(ExitCode::SUCCESS)
}
