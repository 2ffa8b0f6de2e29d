//! TOTP secrets at rest: AES-256-GCM under `DATA_ENCRYPTION_KEY`, a random
//! 96-bit nonce per encryption, the user id as associated data.
//!
//! Stored form: base64(nonce || ciphertext || tag). Binding the user id means
//! a ciphertext copied to another user's row does not decrypt.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use data_encoding::BASE64;
use uuid::Uuid;

use super::totp::{SECRET_LEN, TotpSecret};
use crate::Error;
use crate::config::DataKey;
use crate::crypto;

/// The algorithm recorded in `encryption_keys.algorithm` for the data key.
pub const ALGORITHM: &str = "AES-256-GCM";
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
