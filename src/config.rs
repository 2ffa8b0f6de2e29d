//! Keys read from the environment (or `.env`) and validated at start:
//! `HMAC_KEY` (session seals, IP hashes, key fingerprints) and
//! `DATA_ENCRYPTION_KEY` (AES-256-GCM for TOTP secrets). Key material never
//! appears in `Debug` output or logs.

use std::fmt;

use data_encoding::{BASE64, BASE64_NOPAD, BASE64URL, BASE64URL_NOPAD, HEXLOWER_PERMISSIVE};
use secrecy::{ExposeSecret, SecretBox};

use crate::Error;
use crate::crypto;

/// The environment variable holding the HMAC key.
pub const HMAC_KEY_VAR: &str = "HMAC_KEY";
/// The environment variable holding the data encryption key.
pub const DATA_KEY_VAR: &str = "DATA_ENCRYPTION_KEY";

const HOW_TO_GENERATE: &str = "generate one with `openssl rand -base64 32`";

/// Secret key for HMAC-SHA256, at least 32 bytes.
pub struct HmacKey(SecretBox<Vec<u8>>);

/// Secret 256-bit key for AES-256-GCM.
pub struct DataKey(SecretBox<[u8; 32]>);

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

/// The validated keys gatehouse needs.
#[derive(Debug)]
pub struct Config {
    pub hmac_key: HmacKey,
    pub data_key: DataKey,
}

impl Config {
    /// Reads and validates both keys from the environment, loading `.env` first.
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
        Self::from_values(&read(HMAC_KEY_VAR)?, &read(DATA_KEY_VAR)?)
    }

    /// Validates keys given as text (hex or base64).
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable whose value is malformed.
    pub fn from_values(hmac_key: &str, data_key: &str) -> Result<Self, Error> {
        let hmac = decode_key(HMAC_KEY_VAR, hmac_key)?;
        if hmac.len() < 32 {
            return Err(Error::Config {
                var: HMAC_KEY_VAR,
                reason: format!(
                    "decodes to {} bytes, at least 32 are needed; {HOW_TO_GENERATE}",
                    hmac.len()
                ),
            });
        }
        let data = decode_key(DATA_KEY_VAR, data_key)?;
        let data: [u8; 32] = data.as_slice().try_into().map_err(|_| Error::Config {
            var: DATA_KEY_VAR,
            reason: format!(
                "decodes to {} bytes, exactly 32 are needed for AES-256; {HOW_TO_GENERATE}",
                data.len()
            ),
        })?;
        Ok(Self {
            hmac_key: HmacKey(SecretBox::new(Box::new(hmac))),
            data_key: DataKey(SecretBox::new(Box::new(data))),
        })
    }
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
    let is_hex = value.len() % 2 == 0 && value.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex {
        if let Ok(bytes) = HEXLOWER_PERMISSIVE.decode(value.as_bytes()) {
            return Ok(bytes);
        }
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
