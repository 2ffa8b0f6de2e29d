//! TOTP (RFC 6238) as every authenticator app implements it: HMAC-SHA1,
//! 30-second steps, 6 digits, 160-bit secrets; code parsing and otpauth:// URIs.

use std::fmt;

use chrono::{DateTime, Utc};
use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha1::Sha1;

use crate::Error;
use crate::crypto;

/// Length of a TOTP secret in bytes (160 bits, RFC 4226's recommendation).
pub const SECRET_LEN: usize = 20;
/// Seconds per time step.
pub const PERIOD_SECS: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps accepted either side of the current one, for clock drift.
pub const SKEW_STEPS: i64 = 1;
/// Longest issuer accepted in an otpauth URI, in characters.
pub const MAX_ISSUER_CHARS: usize = 64;
/// Longest account name accepted in an otpauth URI, in characters.
pub const MAX_ACCOUNT_CHARS: usize = 255;
/// Longest text accepted as a code before it is even looked at.
const MAX_CODE_INPUT: usize = 32;

/// A TOTP secret. Zeroed on drop; `Debug` prints no key material.
pub struct TotpSecret(SecretBox<[u8; SECRET_LEN]>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(redacted)")
    }
}

impl TotpSecret {
    /// A fresh secret from the operating system's CSPRNG.
    pub fn generate() -> Self {
        Self::from_bytes(crypto::random_bytes::<SECRET_LEN>())
    }

    /// The secret with these bytes.
    pub fn from_bytes(bytes: [u8; SECRET_LEN]) -> Self {
        Self(SecretBox::new(Box::new(bytes)))
    }

    /// Reads the base32 form an authenticator shows (case and spaces ignored,
    /// padding optional).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless it decodes to exactly 20 bytes.
    pub fn from_base32(text: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidInput {
            field: "secret",
            reason: reason.to_owned(),
        };
        if text.len() > 2 * MAX_CODE_INPUT + 16 {
            return Err(invalid("too long"));
        }
        let cleaned: String = text
            .chars()
            .filter(|c| *c != ' ' && *c != '=')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let bytes = BASE32_NOPAD
            .decode(cleaned.as_bytes())
            .map_err(|_| invalid("not base32"))?;
        let bytes: [u8; SECRET_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| invalid("must decode to 20 bytes"))?;
        Ok(Self::from_bytes(bytes))
    }

    /// The raw secret, for encryption and code computation only.
    pub fn expose(&self) -> &[u8; SECRET_LEN] {
        self.0.expose_secret()
    }

    /// The secret as unpadded upper-case base32, as authenticators take it.
    /// This is the secret itself: show it once, never log it.
    pub fn expose_base32(&self) -> String {
        BASE32_NOPAD.encode(self.expose())
    }

    /// The 6-digit code for time step `step`.
    pub fn code_at_step(&self, step: i64) -> u32 {
        // Steps before 1970 do not occur; clamp rather than wrap.
        hotp(self.expose(), u64::try_from(step).unwrap_or(0), DIGITS)
    }

    /// The 6-digit code valid at `now`.
    pub fn code_at(&self, now: DateTime<Utc>) -> u32 {
        self.code_at_step(step_at(now))
    }
}

/// The RFC 6238 time step containing `now` (Unix time / 30, rounded down).
pub fn step_at(now: DateTime<Utc>) -> i64 {
    now.timestamp().div_euclid(PERIOD_SECS)
}

/// HOTP (RFC 4226): HMAC-SHA1 of the big-endian counter, dynamically
/// truncated to `digits` decimal digits (at most 9).
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> u32 {
    debug_assert!((1..=9).contains(&digits));
    let mut mac =
        <Hmac<Sha1> as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    binary % 10u32.pow(digits)
}

/// A code as typed: exactly six ASCII digits, spaces anywhere ignored
/// (authenticators show `123 456`).
///
/// # Errors
/// [`Error::InvalidInput`] for anything else.
pub fn parse_code(input: &str) -> Result<u32, Error> {
    let invalid = |reason: &str| Error::InvalidInput {
        field: "code",
        reason: reason.to_owned(),
    };
    if input.len() > MAX_CODE_INPUT {
        return Err(invalid("too long"));
    }
    let digits: Vec<u8> = input.bytes().filter(|b| *b != b' ').collect();
    if digits.len() != DIGITS as usize || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid("must be 6 digits"));
    }
    Ok(digits
        .iter()
        .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
}

/// How a code compares with the steps around `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepMatch {
    /// Valid for this step, which is later than any step used before.
    Fresh(i64),
    /// Valid only for steps already used (or older than one used).
    Replayed,
    /// Not valid anywhere in the window.
    NoMatch,
}

/// Checks `code` against the current step and [`SKEW_STEPS`] either side,
/// given the last step accepted before. Every candidate is compared in
/// constant time; when a code is valid for several steps the latest counts,
/// so that it cannot be used again for a later one.
pub fn match_step(
    secret: &TotpSecret,
    code: u32,
    now: DateTime<Utc>,
    last_used_step: Option<i64>,
) -> StepMatch {
    let current = step_at(now);
    let mut fresh = None;
    let mut seen = false;
    for step in (current - SKEW_STEPS)..=(current + SKEW_STEPS) {
        if step < 0 {
            continue;
        }
        let expected = secret.code_at_step(step);
        if crypto::constant_time_eq(&expected.to_be_bytes(), &code.to_be_bytes()) {
            seen = true;
            if last_used_step.is_none_or(|last| step > last) {
                fresh = Some(step);
            }
        }
    }
    match (fresh, seen) {
        (Some(step), _) => StepMatch::Fresh(step),
        (None, true) => StepMatch::Replayed,
        (None, false) => StepMatch::NoMatch,
    }
}

/// Checks an issuer or account name for the otpauth label: not empty, not
/// too long, no colon (it separates the two) and no control characters.
///
/// # Errors
/// [`Error::InvalidInput`] naming `field`.
pub fn check_label_part(field: &'static str, value: &str, max_chars: usize) -> Result<(), Error> {
    let invalid = |reason: &str| Error::InvalidInput {
        field,
        reason: reason.to_owned(),
    };
    if value.trim().is_empty() {
        return Err(invalid("must not be empty"));
    }
    if value.chars().count() > max_chars {
        return Err(invalid(&format!("longer than {max_chars} characters")));
    }
    if value.contains(':') {
        return Err(invalid("must not contain ':'"));
    }
    if value.chars().any(crate::accounts::validate::is_unprintable) {
        return Err(invalid(
            "must not contain control or invisible formatting characters",
        ));
    }
    Ok(())
}

/// The `otpauth://` URI authenticators scan (Google's Key URI format):
/// `otpauth://totp/<issuer>:<account>?secret=<base32>&issuer=<issuer>&algorithm=SHA1&digits=6&period=30`,
/// issuer and account percent-encoded as UTF-8. It contains the secret.
///
/// # Errors
/// [`Error::InvalidInput`] for an empty or over-long issuer or account, or
/// one containing `:` or control characters.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &TotpSecret) -> Result<String, Error> {
    check_label_part("issuer", issuer, MAX_ISSUER_CHARS)?;
    check_label_part("account", account, MAX_ACCOUNT_CHARS)?;
    let issuer = percent_encode(issuer);
    Ok(format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={PERIOD_SECS}",
        account = percent_encode(account),
        secret = secret.expose_base32(),
    ))
}

/// Percent-encodes every byte of the UTF-8 text except RFC 3986's unreserved
/// characters (`A-Z a-z 0-9 - . _ ~`), so the result is safe in a path
/// segment and a query value alike.
pub fn percent_encode(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    /// RFC 6238 Appendix B, SHA1 rows: (T, 8-digit TOTP).
    const RFC_6238_SHA1: [(i64, u32); 6] = [
        (59, 94_287_082),
        (1_111_111_109, 7_081_804),
        (1_111_111_111, 14_050_471),
        (1_234_567_890, 89_005_924),
        (2_000_000_000, 69_279_037),
        (20_000_000_000, 65_353_130),
    ];

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(*b"12345678901234567890")
    }

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).unwrap()
    }

    #[test]
    fn rfc_6238_vectors_with_8_digits() {
        let secret = rfc_secret();
        for (t, expected) in RFC_6238_SHA1 {
            let step = step_at(at(t));
            assert_eq!(hotp(secret.expose(), step as u64, 8), expected, "T = {t}");
        }
    }

    #[test]
    fn rfc_6238_vectors_with_6_digits_are_the_last_six() {
        let secret = rfc_secret();
        for (t, expected) in RFC_6238_SHA1 {
            assert_eq!(secret.code_at(at(t)), expected % 1_000_000, "T = {t}");
        }
        assert_eq!(secret.code_at(at(59)), 287_082);
        assert_eq!(secret.code_at(at(1_111_111_109)), 81_804);
    }

    #[test]
    fn one_step_either_side_is_accepted_two_are_not() {
        let secret = rfc_secret();
        let now = at(1_234_567_890);
        let step = step_at(now);
        for offset in [-1, 0, 1] {
            let code = secret.code_at_step(step + offset);
            assert_eq!(
                match_step(&secret, code, now, None),
                StepMatch::Fresh(step + offset)
            );
        }
        for offset in [-2, 2] {
            let code = secret.code_at_step(step + offset);
            assert_eq!(match_step(&secret, code, now, None), StepMatch::NoMatch);
        }
    }

    #[test]
    fn used_steps_are_replays() {
        let secret = rfc_secret();
        let now = at(1_234_567_890);
        let step = step_at(now);
        let code = secret.code_at_step(step);
        assert_eq!(
            match_step(&secret, code, now, Some(step)),
            StepMatch::Replayed
        );
        let older = secret.code_at_step(step - 1);
        assert_eq!(
            match_step(&secret, older, now, Some(step)),
            StepMatch::Replayed
        );
        let newer = secret.code_at_step(step + 1);
        assert_eq!(
            match_step(&secret, newer, now, Some(step)),
            StepMatch::Fresh(step + 1)
        );
    }

    #[test]
    fn codes_parse_with_leading_zeros_and_spaces() {
        assert_eq!(parse_code("081804").unwrap(), 81_804);
        assert_eq!(parse_code("081 804").unwrap(), 81_804);
        for bad in [
            "",
            "12345",
            "1234567",
            "12345a",
            "１２３４５６",
            "123\u{0}45",
            "-12345",
        ] {
            assert!(
                matches!(
                    parse_code(bad),
                    Err(Error::InvalidInput { field: "code", .. })
                ),
                "{bad:?}"
            );
        }
        assert!(parse_code(&"1".repeat(10_000)).is_err());
    }

    #[test]
    fn otpauth_uri_for_a_known_secret() {
        let uri = otpauth_uri("Example Co", "alice@example.com", &rfc_secret()).unwrap();
        assert_eq!(
            uri,
            "otpauth://totp/Example%20Co:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example%20Co&algorithm=SHA1&digits=6&period=30"
        );
        assert!(matches!(
            otpauth_uri("a:b", "x", &rfc_secret()),
            Err(Error::InvalidInput {
                field: "issuer",
                ..
            })
        ));
        assert!(matches!(
            otpauth_uri("Issuer", "", &rfc_secret()),
            Err(Error::InvalidInput {
                field: "account",
                ..
            })
        ));
    }

    #[test]
    fn percent_encoding_covers_utf8_and_reserved_characters() {
        assert_eq!(percent_encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(percent_encode("Zoë & Co/?"), "Zo%C3%AB%20%26%20Co%2F%3F");
    }

    #[test]
    fn base32_round_trips_and_debug_is_redacted() {
        let secret = TotpSecret::generate();
        let text = secret.expose_base32();
        assert_eq!(text.len(), 32);
        let back = TotpSecret::from_base32(&text.to_lowercase()).unwrap();
        assert_eq!(back.expose(), secret.expose());
        let debug = format!("{secret:?}");
        assert_eq!(debug, "TotpSecret(redacted)");
        assert!(TotpSecret::from_base32("GEZDGNBV").is_err());
    }

    proptest! {
        #[test]
        fn parsing_never_panics(input in ".{0,64}") {
            let _ = parse_code(&input);
            let _ = TotpSecret::from_base32(&input);
        }

        #[test]
        fn six_digits_parse_to_their_value(n in 0u32..1_000_000) {
            prop_assert_eq!(parse_code(&format!("{n:06}")).unwrap(), n);
        }
    }
}
