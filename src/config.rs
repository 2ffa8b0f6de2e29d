//! Keys read from the environment (or `.env`) and validated at start:
//! `HMAC_KEY` (session seals, IP hashes, backup-code digests, key
//! fingerprints) and `DATA_ENCRYPTION_KEY` (AES-256-GCM for TOTP secrets).
//! Key material never appears in `Debug` output, logs or error messages.
//!
//! `DATABASE_POOL_MODE` (`session`, the default, or `transaction`) says how
//! `DATABASE_URL` is pooled; see [`crate::db::Pool`].
//!
//! The key ring: `HMAC_KEY_PREVIOUS` and `DATA_ENCRYPTION_KEY_PREVIOUS`
//! (optional, comma-separated, each hex or base64) hold keys rotated out with
//! `gatehouse keys rotate`, so that what was sealed, digested or encrypted
//! under them keeps verifying until it expires or is re-keyed. New data is
//! always written under the current key.

use std::fmt;
use std::sync::Arc;

use data_encoding::{BASE64, BASE64_NOPAD, BASE64URL, BASE64URL_NOPAD, HEXLOWER_PERMISSIVE};
use secrecy::{ExposeSecret, SecretBox, SecretString};

use crate::Error;
use crate::crypto;
use crate::db::{POOL_MODE_VAR, PoolMode, READ_URL_VAR};

/// The environment variable holding the HMAC key.
pub const HMAC_KEY_VAR: &str = "HMAC_KEY";
/// The environment variable holding the data encryption key.
pub const DATA_KEY_VAR: &str = "DATA_ENCRYPTION_KEY";
/// The environment variable holding previous HMAC keys (comma-separated).
pub const HMAC_PREVIOUS_VAR: &str = "HMAC_KEY_PREVIOUS";
/// The environment variable holding previous data encryption keys (comma-separated).
pub const DATA_PREVIOUS_VAR: &str = "DATA_ENCRYPTION_KEY_PREVIOUS";

const HOW_TO_GENERATE: &str = "generate one with `openssl rand -base64 32`";

/// Secret key for HMAC-SHA256, at least 32 bytes. Cloning shares the one
/// copy in memory (zeroed when the last clone drops).
#[derive(Clone)]
pub struct HmacKey(Arc<SecretBox<Vec<u8>>>);

/// Secret 256-bit key for AES-256-GCM. Cloning shares the one copy in memory.
#[derive(Clone)]
pub struct DataKey(Arc<SecretBox<[u8; 32]>>);

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacKey(redacted)")
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(redacted)")
    }
}

impl HmacKey {
    /// The raw key, for the crypto helpers only.
    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// A stable, non-secret identifier of this key (hex, 64 chars), as
    /// recorded in `encryption_keys.fingerprint`.
    pub fn fingerprint(&self) -> String {
        crypto::fingerprint(self.expose())
    }
}

impl DataKey {
    /// The raw key, for the crypto helpers only.
    pub fn expose(&self) -> &[u8; 32] {
        self.0.expose_secret()
    }

    /// A stable, non-secret identifier of this key (hex, 64 chars).
    pub fn fingerprint(&self) -> String {
        crypto::fingerprint(self.expose())
    }
}

/// The validated keys gatehouse needs: the current ones and the ring of
/// previous ones (possibly empty). Cheap to clone: the keys are shared.
#[derive(Clone, Debug)]
pub struct Config {
    /// `HMAC_KEY`: seals sessions, hashes IPs, digests backup codes.
    pub hmac_key: HmacKey,
    /// `DATA_ENCRYPTION_KEY`: encrypts TOTP secrets at rest.
    pub data_key: DataKey,
    /// `HMAC_KEY_PREVIOUS`: HMAC keys rotated out that still verify.
    pub hmac_previous: Vec<HmacKey>,
    /// `DATA_ENCRYPTION_KEY_PREVIOUS`: data keys rotated out that still decrypt.
    pub data_previous: Vec<DataKey>,
    /// `DATABASE_POOL_MODE`: how `DATABASE_URL` is pooled (default
    /// [`PoolMode::Session`]); [`crate::Gatehouse`] runs under it.
    pub pool_mode: PoolMode,
    /// `DATABASE_READ_URL`: a PostgreSQL hot standby that
    /// [`crate::Gatehouse`] reads from (see [`crate::db::standby`]); `None`
    /// to read from the primary. Kept secret: it may hold a password.
    pub read_url: Option<SecretString>,
}

impl Config {
    /// Reads and validates both keys, their rings and the pool mode from the
    /// environment, loading `.env` first.
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable that is missing or malformed.
    pub fn from_env() -> Result<Self, Error> {
        let _ = dotenvy::dotenv();
        let read = |var: &'static str| {
            std::env::var(var).map_err(|_| Error::Config {
                var,
                reason: format!("not set; {HOW_TO_GENERATE} and export it (or put it in .env)"),
            })
        };
        let optional = |var: &'static str| std::env::var(var).unwrap_or_default();
        let pool_mode = PoolMode::from_env().map_err(|reason| Error::Config {
            var: POOL_MODE_VAR,
            reason,
        })?;
        let config = Self::from_values(&read(HMAC_KEY_VAR)?, &read(DATA_KEY_VAR)?)?
            .with_previous(&optional(HMAC_PREVIOUS_VAR), &optional(DATA_PREVIOUS_VAR))?;
        let read_url = std::env::var(READ_URL_VAR)
            .ok()
            .map(|url| url.trim().to_owned())
            .filter(|url| !url.is_empty());
        if let Some(url) = &read_url {
            crate::db::check_scheme(url).map_err(|_| Error::Config {
                var: READ_URL_VAR,
                reason: "not a database URL; give the standby as postgres://… or unset it".into(),
            })?;
        }
        Ok(Self {
            pool_mode,
            read_url: read_url.map(SecretString::from),
            ..config
        })
    }

    /// Adds the key ring: previous keys as comma-separated text (hex or
    /// base64 each; empty for none). A previous key equal to the current one
    /// is left out.
    ///
    /// # Errors
    /// [`Error::Config`] naming `HMAC_KEY_PREVIOUS` or
    /// `DATA_ENCRYPTION_KEY_PREVIOUS` and which entry is malformed.
    pub fn with_previous(
        mut self,
        hmac_previous: &str,
        data_previous: &str,
    ) -> Result<Self, Error> {
        let current = self.hmac_key.fingerprint();
        for (i, text) in entries(hmac_previous) {
            let key = hmac_key(HMAC_PREVIOUS_VAR, text).map_err(|e| entry_error(e, i))?;
            if key.fingerprint() != current
                && !self
                    .hmac_previous
                    .iter()
                    .any(|k| k.fingerprint() == key.fingerprint())
            {
                self.hmac_previous.push(key);
            }
        }
        let current = self.data_key.fingerprint();
        for (i, text) in entries(data_previous) {
            let key = data_key(DATA_PREVIOUS_VAR, text).map_err(|e| entry_error(e, i))?;
            if key.fingerprint() != current
                && !self
                    .data_previous
                    .iter()
                    .any(|k| k.fingerprint() == key.fingerprint())
            {
                self.data_previous.push(key);
            }
        }
        Ok(self)
    }

    /// Validates keys given as text (hex or base64); the pool mode is the
    /// default, [`PoolMode::Session`].
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable whose value is malformed.
    pub fn from_values(hmac: &str, data: &str) -> Result<Self, Error> {
        Ok(Self {
            hmac_key: hmac_key(HMAC_KEY_VAR, hmac)?,
            data_key: data_key(DATA_KEY_VAR, data)?,
            hmac_previous: Vec::new(),
            data_previous: Vec::new(),
            pool_mode: PoolMode::Session,
            read_url: None,
        })
    }
}

/// The non-empty comma-separated entries of `text`, numbered from 1.
fn entries(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .enumerate()
        .map(|(i, entry)| (i + 1, entry))
}

/// Says which entry of a ring variable is malformed.
fn entry_error(err: Error, entry: usize) -> Error {
    match err {
        Error::Config { var, reason } => Error::Config {
            var,
            reason: format!("entry {entry} {reason}"),
        },
        other => other,
    }
}

fn hmac_key(var: &'static str, text: &str) -> Result<HmacKey, Error> {
    let hmac = decode_key(var, text)?;
    if hmac.len() < 32 {
        return Err(Error::Config {
            var,
            reason: format!(
                "decodes to {} bytes, at least 32 are needed; {HOW_TO_GENERATE}",
                hmac.len()
            ),
        });
    }
    Ok(HmacKey(Arc::new(SecretBox::new(Box::new(hmac)))))
}

fn data_key(var: &'static str, text: &str) -> Result<DataKey, Error> {
    let data = decode_key(var, text)?;
    let data: [u8; 32] = data.as_slice().try_into().map_err(|_| Error::Config {
        var,
        reason: format!(
            "decodes to {} bytes, exactly 32 are needed for AES-256; {HOW_TO_GENERATE}",
            data.len()
        ),
    })?;
    Ok(DataKey(Arc::new(SecretBox::new(Box::new(data)))))
}

/// Decodes a key written as hex or as base64 (standard or URL-safe, padded or not).
fn decode_key(var: &'static str, value: &str) -> Result<Vec<u8>, Error> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::Config {
            var,
            reason: format!("is empty; {HOW_TO_GENERATE}"),
        });
    }
    let is_hex = value.len().is_multiple_of(2) && value.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex && let Ok(bytes) = HEXLOWER_PERMISSIVE.decode(value.as_bytes()) {
        return Ok(bytes);
    }
    for encoding in [&BASE64, &BASE64_NOPAD, &BASE64URL, &BASE64URL_NOPAD] {
        if let Ok(bytes) = encoding.decode(value.as_bytes()) {
            return Ok(bytes);
        }
    }
    Err(Error::Config {
        var,
        reason: format!("is neither hex nor base64; {HOW_TO_GENERATE}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HMAC_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const DATA_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn hex_and_base64_keys_are_accepted() {
        let config = Config::from_values(HMAC_HEX, DATA_B64).unwrap();
        assert_eq!(config.hmac_key.expose().len(), 32);
        assert_eq!(config.data_key.expose()[31], 31);
    }

    #[test]
    fn errors_name_the_variable() {
        let short = Config::from_values("abcd", DATA_B64).unwrap_err();
        assert!(
            matches!(
                short,
                Error::Config {
                    var: HMAC_KEY_VAR,
                    ..
                }
            ),
            "{short}"
        );
        let wrong_size = Config::from_values(HMAC_HEX, &HMAC_HEX[..62]).unwrap_err();
        assert!(
            matches!(
                wrong_size,
                Error::Config {
                    var: DATA_KEY_VAR,
                    ..
                }
            ),
            "{wrong_size}"
        );
        let garbage = Config::from_values(HMAC_HEX, "not a key!").unwrap_err();
        assert!(
            garbage.to_string().contains("DATA_ENCRYPTION_KEY"),
            "{garbage}"
        );
    }

    #[test]
    fn previous_keys_form_a_ring() {
        let other = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f";
        let config = Config::from_values(HMAC_HEX, DATA_B64)
            .unwrap()
            .with_previous(&format!(" {other} , {HMAC_HEX},,"), "")
            .unwrap();
        assert_eq!(config.hmac_previous.len(), 1, "the current key is left out");
        assert_eq!(config.data_previous.len(), 0);
        let err = Config::from_values(HMAC_HEX, DATA_B64)
            .unwrap()
            .with_previous("", &format!("{other},abcd"))
            .unwrap_err();
        assert!(
            matches!(err, Error::Config { var: DATA_PREVIOUS_VAR, ref reason } if reason.starts_with("entry 2 ")),
            "{err}"
        );
        assert!(!err.to_string().contains("abcd"), "{err}");
    }

    #[test]
    fn debug_shows_no_key_material() {
        let config = Config::from_values(HMAC_HEX, DATA_B64).unwrap();
        let debug = format!("{config:?}");
        assert!(debug.contains("redacted"));
        assert!(
            !debug.contains("0102") && !debug.contains("[0, 1, 2"),
            "{debug}"
        );
    }
}
