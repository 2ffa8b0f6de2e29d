//! TOTP secrets at rest: AES-256-GCM under `DATA_ENCRYPTION_KEY`, a random
//! 96-bit nonce per encryption, the user id as associated data.
//!
//! Stored form: base64(nonce || ciphertext || tag). Binding the user id means
//! a ciphertext copied to another user's row does not decrypt.
//!
//! Which key opens a row: the configured key, or, for a row whose
//! `encryption_key_id` names a rotated data key, the key of the ring
//! (`DATA_ENCRYPTION_KEY_PREVIOUS`) with that record's fingerprint
//! ([`open_row`]).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use data_encoding::BASE64;
use gatehouse_entity::sea_orm_active_enums::{KeyStatus, KeyType};
use gatehouse_entity::{encryption_keys, mfa_configurations};
use sea_orm::{ConnectionTrait, EntityTrait};
use uuid::Uuid;

use super::totp::{SECRET_LEN, TotpSecret};
use crate::Error;
use crate::config::DataKey;
use crate::crypto;

/// The algorithm recorded in `encryption_keys.algorithm` for the data key.
pub const ALGORITHM: &str = crate::keys::DATA_ALGORITHM;
/// AES-GCM nonce length in bytes (96 bits).
const NONCE_LEN: usize = 12;
/// AES-GCM tag length in bytes.
const TAG_LEN: usize = 16;

fn cipher(key: &DataKey) -> Aes256Gcm {
    Aes256Gcm::new_from_slice(key.expose()).expect("the data key is 32 bytes")
}

/// Encrypts `secret` for `user_id`; returns the text stored in
/// `mfa_configurations.secret_encrypted`.
pub fn seal(key: &DataKey, user_id: Uuid, secret: &TotpSecret) -> String {
    let nonce_bytes = crypto::random_bytes::<NONCE_LEN>();
    let nonce = Nonce::from(nonce_bytes);
    let ciphertext = cipher(key)
        .encrypt(
            &nonce,
            Payload {
                msg: secret.expose(),
                aad: user_id.as_bytes(),
            },
        )
        .expect("AES-GCM encrypts 20 bytes");
    let mut stored = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    stored.extend_from_slice(&nonce_bytes);
    stored.extend_from_slice(&ciphertext);
    BASE64.encode(&stored)
}

/// Decrypts a stored secret of `user_id`.
///
/// # Errors
/// [`Error::Integrity`] when the text is malformed, was encrypted under
/// another key or for another user, or was altered.
pub fn open(key: &DataKey, user_id: Uuid, stored: &str) -> Result<TotpSecret, Error> {
    let integrity = |what: &str| Error::Integrity(format!("TOTP secret of user {user_id}: {what}"));
    let bytes = BASE64
        .decode(stored.as_bytes())
        .map_err(|_| integrity("not base64"))?;
    if bytes.len() != NONCE_LEN + SECRET_LEN + TAG_LEN {
        return Err(integrity("wrong length"));
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at the nonce length");
    let plaintext = cipher(key)
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: ciphertext,
                aad: user_id.as_bytes(),
            },
        )
        .map_err(|_| {
            integrity("does not decrypt (another DATA_ENCRYPTION_KEY, another user, or altered)")
        })?;
    let secret: [u8; SECRET_LEN] = plaintext
        .as_slice()
        .try_into()
        .map_err(|_| integrity("wrong length"))?;
    Ok(TotpSecret::from_bytes(secret))
}

/// The ring key a row encrypted under a rotated data key needs: the key of
/// `previous` whose fingerprint is that of the row's `encryption_key_id`
/// record. `None` without such a record or key, or when that record is
/// active (the configured key's) or compromised.
///
/// # Errors
/// A database error.
pub async fn ring_key<'r, C: ConnectionTrait>(
    db: &C,
    previous: &'r [DataKey],
    row: &mfa_configurations::Model,
) -> Result<Option<&'r DataKey>, Error> {
    let Some(key_id) = row.encryption_key_id else {
        return Ok(None);
    };
    if previous.is_empty() {
        return Ok(None);
    }
    let Some(record) = encryption_keys::Entity::find_by_id(key_id).one(db).await? else {
        return Ok(None);
    };
    if record.key_type != KeyType::Data || record.status != KeyStatus::Rotated {
        return Ok(None);
    }
    Ok(previous
        .iter()
        .find(|key| key.fingerprint() == record.fingerprint))
}

/// Decrypts the secret of `row`: under `current`, or else under the ring
/// key its `encryption_key_id` names (see [`ring_key`]). The configured key
/// is tried first, so the usual case costs no query.
///
/// # Errors
/// [`Error::Integrity`] when neither opens it; a database error.
pub async fn open_row<C: ConnectionTrait>(
    db: &C,
    current: &DataKey,
    previous: &[DataKey],
    row: &mfa_configurations::Model,
) -> Result<TotpSecret, Error> {
    match open(current, row.user_id, &row.secret_encrypted) {
        Ok(secret) => Ok(secret),
        Err(err) => match ring_key(db, previous, row).await? {
            Some(key) => open(key, row.user_id, &row.secret_encrypted),
            None => Err(err),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    const HMAC_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn data_key(byte: u8) -> DataKey {
        let hex = format!("{byte:02x}").repeat(32);
        Config::from_values(HMAC_HEX, &hex).unwrap().data_key
    }

    #[test]
    fn round_trips_with_a_fresh_nonce_each_time() {
        let key = data_key(1);
        let user = Uuid::now_v7();
        let secret = TotpSecret::generate();
        let a = seal(&key, user, &secret);
        let b = seal(&key, user, &secret);
        assert_ne!(a, b, "each encryption draws a new nonce");
        assert_eq!(open(&key, user, &a).unwrap().expose(), secret.expose());
        assert!(!a.contains(&secret.expose_base32()));
    }

    #[test]
    fn another_key_another_user_or_tampering_fail_integrity() {
        let key = data_key(1);
        let user = Uuid::now_v7();
        let stored = seal(&key, user, &TotpSecret::generate());
        assert!(matches!(
            open(&data_key(2), user, &stored),
            Err(Error::Integrity(_))
        ));
        assert!(matches!(
            open(&key, Uuid::now_v7(), &stored),
            Err(Error::Integrity(_))
        ));
        let mut bytes = BASE64.decode(stored.as_bytes()).unwrap();
        bytes[20] ^= 1;
        assert!(matches!(
            open(&key, user, &BASE64.encode(&bytes)),
            Err(Error::Integrity(_))
        ));
        assert!(matches!(
            open(&key, user, "not base64!"),
            Err(Error::Integrity(_))
        ));
        assert!(matches!(open(&key, user, ""), Err(Error::Integrity(_))));
    }
}
