//! Single-use backup codes: ten per user, 50 random bits each, shown once as
//! `XXXXX-XXXXX` (Crockford base32) and stored only as HMAC-SHA256 digests.
//!
//! Why HMAC and not Argon2: a code carries 50 bits of entropy from the
//! CSPRNG, so a slow hash adds nothing against guessing (a password hash
//! exists to stretch low-entropy human secrets), while a keyed HMAC makes a
//! stolen table useless without `HMAC_KEY`. A deterministic digest also lets
//! one indexed, conditional `UPDATE` find and consume a code atomically; a
//! salted hash would need every row of the user read and verified in turn.
//!
//! Each code records the HMAC key it was digested under
//! (`encryption_key_id`, the `session` key record). After `HMAC_KEY` is
//! rotated, a code is still accepted under the key of the ring
//! (`HMAC_KEY_PREVIOUS`) it was made with, as long as that key's record is
//! not compromised; the one `UPDATE` matches any of the digests, each only
//! on rows recorded under its own key.

use std::fmt;

use chrono::{DateTime, Utc};
use gatehouse_entity::encryption_keys;
use gatehouse_entity::mfa_backup_codes::{self, ActiveModel, Column, Entity};
use gatehouse_entity::sea_orm_active_enums::{KeyStatus, KeyType};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QuerySelect, QueryTrait, sea_query::Expr,
};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::Error;
use crate::config::HmacKey;
use crate::crypto;

/// Codes issued at once.
pub const BACKUP_CODE_COUNT: usize = 10;
/// Symbols per code (5 bits each: 50 bits).
pub const CODE_SYMBOLS: usize = 10;
/// Crockford's base32 alphabet: no I, L, O or U.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Longest text accepted as a backup code before it is even looked at.
const MAX_INPUT: usize = 64;
/// Domain separation for the stored digest; never changes (stored digests depend on it).
const HASH_LABEL: &[u8] = b"gatehouse mfa backup code v1";

/// Freshly issued backup codes, shown to the user once. `Debug` prints no code.
pub struct BackupCodes(Vec<SecretString>);

impl fmt::Debug for BackupCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BackupCodes({} codes, redacted)", self.0.len())
    }
}

impl BackupCodes {
    /// The codes as shown to the user, `XXXXX-XXXXX`.
    pub fn expose(&self) -> Vec<&str> {
        self.0.iter().map(|c| c.expose_secret()).collect()
    }

    /// How many codes there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A new random code, formatted `XXXXX-XXXXX`.
pub fn generate_code() -> String {
    let random = u64::from_be_bytes(crypto::random_bytes::<8>());
    let mut code = String::with_capacity(CODE_SYMBOLS + 1);
    for i in 0..CODE_SYMBOLS {
        if i == CODE_SYMBOLS / 2 {
            code.push('-');
        }
        // 32 symbols divide 2^64 evenly: every symbol is uniform.
        let index = (random >> (5 * i)) & 0x1f;
        code.push(char::from(ALPHABET[index as usize]));
    }
    code
}

/// The canonical form of a typed backup code: upper case, without the
/// separators `-` and space (anywhere), with Crockford's aliases read as
/// their digits (`O` as `0`, `I` and `L` as `1`). Exactly 10 symbols of
/// the alphabet must remain.
///
/// # Errors
/// [`Error::InvalidInput`] for anything else.
pub fn normalize(input: &str) -> Result<String, Error> {
    let invalid = |reason: &str| Error::InvalidInput {
        field: "backup_code",
        reason: reason.to_owned(),
    };
    if input.len() > MAX_INPUT {
        return Err(invalid("too long"));
    }
    let mut out = String::with_capacity(CODE_SYMBOLS);
    for c in input.chars() {
        let symbol = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
            _ => return Err(invalid("not a backup code")),
        };
        out.push(symbol);
    }
    if out.len() != CODE_SYMBOLS {
        return Err(invalid("must be 10 characters"));
    }
    Ok(out)
}

/// The stored digest of a normalized code: HMAC-SHA256 under `HMAC_KEY` of
/// the label, the user id and the code, as hex.
pub fn digest(key: &HmacKey, user_id: Uuid, normalized: &str) -> String {
    crypto::hmac_sha256_hex(
        key.expose(),
        &[HASH_LABEL, user_id.as_bytes(), normalized.as_bytes()],
    )
}

/// Replaces the user's unused codes with [`BACKUP_CODE_COUNT`] new ones,
/// digested under `key` and recorded under its record `key_id`; used codes
/// stay as history. Run inside the caller's transaction.
pub(crate) async fn replace_unused<C: ConnectionTrait>(
    db: &C,
    key: &HmacKey,
    key_id: Uuid,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<BackupCodes, Error> {
    Entity::delete_many()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::UsedAt.is_null())
        .exec(db)
        .await?;
    let mut codes = Vec::with_capacity(BACKUP_CODE_COUNT);
    let mut rows = Vec::with_capacity(BACKUP_CODE_COUNT);
    for _ in 0..BACKUP_CODE_COUNT {
        let code = generate_code();
        let normalized = normalize(&code).expect("generated codes are well formed");
        rows.push(ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(user_id),
            code_hash: Set(digest(key, user_id, &normalized)),
            encryption_key_id: Set(Some(key_id)),
            used_at: Set(None),
            created_at: Set(now),
        });
        codes.push(SecretString::from(code));
    }
    Entity::insert_many(rows).exec_without_returning(db).await?;
    Ok(BackupCodes(codes))
}

/// What consuming a code found.
pub(crate) enum Consumed {
    /// The code was unused and is now used.
    Now,
    /// The code exists but was used before.
    Before,
    /// No such code for this user.
    Unknown,
}

/// Rows whose digest is that of `normalized` under a key they were made
/// with: under `current`, rows of its record or of no record (made before
/// keys were recorded per code); under a ring key, rows of its record when
/// that record is not compromised.
fn matching(current: &HmacKey, previous: &[HmacKey], user_id: Uuid, normalized: &str) -> Condition {
    let recorded_as = |key: &HmacKey, statuses: Vec<KeyStatus>| {
        encryption_keys::Entity::find()
            .select_only()
            .column(encryption_keys::Column::Id)
            .filter(encryption_keys::Column::KeyType.eq(KeyType::Session))
            .filter(encryption_keys::Column::Fingerprint.eq(key.fingerprint()))
            .filter(encryption_keys::Column::Status.is_in(statuses))
            .into_query()
    };
    let mut any = Condition::any().add(
        Condition::all()
            .add(Column::CodeHash.eq(digest(current, user_id, normalized)))
            .add(Condition::any().add(Column::EncryptionKeyId.is_null()).add(
                Column::EncryptionKeyId.in_subquery(recorded_as(current, vec![KeyStatus::Active])),
            )),
    );
    for key in previous {
        any = any.add(
            Condition::all()
                .add(Column::CodeHash.eq(digest(key, user_id, normalized)))
                .add(Column::EncryptionKeyId.in_subquery(recorded_as(
                    key,
                    vec![KeyStatus::Active, KeyStatus::Rotated],
                ))),
        );
    }
    Condition::all().add(Column::UserId.eq(user_id)).add(any)
}

/// Marks the code used with one conditional `UPDATE`, so that of two
/// concurrent uses exactly one succeeds. The digest is tried under the
/// current key and every key of the ring.
pub(crate) async fn consume<C: ConnectionTrait>(
    db: &C,
    current: &HmacKey,
    previous: &[HmacKey],
    user_id: Uuid,
    normalized: &str,
    now: DateTime<Utc>,
) -> Result<Consumed, Error> {
    let updated = Entity::update_many()
        .col_expr(Column::UsedAt, Expr::value(now))
        .filter(matching(current, previous, user_id, normalized))
        .filter(Column::UsedAt.is_null())
        .exec(db)
        .await?;
    if updated.rows_affected >= 1 {
        return Ok(Consumed::Now);
    }
    let exists = Entity::find()
        .filter(matching(current, previous, user_id, normalized))
        .count(db)
        .await?;
    Ok(if exists > 0 {
        Consumed::Before
    } else {
        Consumed::Unknown
    })
}

/// How many unused codes the user has left.
///
/// # Errors
/// A database error.
pub async fn remaining<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<u64, Error> {
    Ok(Entity::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::UsedAt.is_null())
        .count(db)
        .await?)
}

/// All code rows of a user (digests only), for administration.
///
/// # Errors
/// A database error.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
) -> Result<Vec<mfa_backup_codes::Model>, Error> {
    Ok(Entity::find()
        .filter(Column::UserId.eq(user_id))
        .all(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_codes_have_the_format_and_normalize() {
        for _ in 0..100 {
            let code = generate_code();
            assert_eq!(code.len(), 11);
            assert_eq!(&code[5..6], "-");
            let normalized = normalize(&code).unwrap();
            assert_eq!(normalized, code.replace('-', ""));
        }
        assert_ne!(generate_code(), generate_code());
    }

    #[test]
    fn variations_and_aliases_normalize_others_are_refused() {
        assert_eq!(normalize("abcde-fghjk").unwrap(), "ABCDEFGHJK");
        assert_eq!(normalize(" ab cde fghjk ").unwrap(), "ABCDEFGHJK");
        assert_eq!(normalize("o1il0-00000").unwrap(), "0111000000");
        for bad in [
            "",
            "ABCDE-FGHJ",
            "ABCDE-FGHJKM",
            "ABCDE-FGHJU",
            "ABCDE_FGHJK",
            "ABCDE-FGHJ\u{0}",
            "ÀBCDE-FGHJK",
            "'; DROP TABLE x; --",
        ] {
            assert!(
                matches!(
                    normalize(bad),
                    Err(Error::InvalidInput {
                        field: "backup_code",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
        assert!(normalize(&"A".repeat(10_000)).is_err());
    }

    #[test]
    fn debug_prints_no_code() {
        let codes = BackupCodes(vec![SecretString::from(generate_code())]);
        let code = codes.expose()[0].to_owned();
        let debug = format!("{codes:?}");
        assert!(
            !debug.contains(&code) && !debug.contains(&code[..5]),
            "{debug}"
        );
    }

    fn symbol() -> impl Strategy<Value = char> {
        prop::sample::select(ALPHABET.iter().map(|b| char::from(*b)).collect::<Vec<_>>())
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics(input in any::<String>()) {
            let _ = normalize(&input);
        }

        #[test]
        fn case_and_separator_variations_normalize_to_the_code(
            symbols in prop::collection::vec(symbol(), CODE_SYMBOLS),
            lower in prop::collection::vec(any::<bool>(), CODE_SYMBOLS),
            separators in prop::collection::vec(prop::sample::select(vec!["", "", "-", " ", "--"]), CODE_SYMBOLS + 1),
        ) {
            let canonical: String = symbols.iter().collect();
            let mut typed = String::new();
            for (i, c) in symbols.iter().enumerate() {
                typed.push_str(separators[i]);
                typed.push(if lower[i] { c.to_ascii_lowercase() } else { *c });
            }
            typed.push_str(separators[CODE_SYMBOLS]);
            prop_assert_eq!(normalize(&typed).unwrap(), canonical);
        }

        #[test]
        fn any_foreign_character_is_refused(
            symbols in prop::collection::vec(symbol(), CODE_SYMBOLS),
            at in 0..=CODE_SYMBOLS,
            foreign in any::<char>().prop_filter("not a symbol, alias or separator", |c| {
                let u = c.to_ascii_uppercase();
                let symbol = u.is_ascii() && ALPHABET.contains(&(u as u8));
                !symbol && !matches!(u, 'O' | 'I' | 'L' | '-' | ' ')
            }),
        ) {
            let mut typed: String = symbols.iter().collect();
            typed.insert(typed.char_indices().nth(at).map_or(typed.len(), |(i, _)| i), foreign);
            prop_assert!(normalize(&typed).is_err());
        }

        #[test]
        fn wrong_lengths_are_refused(symbols in prop::collection::vec(symbol(), 0..30)) {
            let typed: String = symbols.iter().collect();
            prop_assert_eq!(normalize(&typed).is_ok(), symbols.len() == CODE_SYMBOLS);
        }
    }
}
