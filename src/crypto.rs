//! Small cryptographic building blocks shared by the services: randomness,
//! SHA-256 digests, HMAC-SHA256 and constant-time comparison.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `N` bytes from the operating system's CSPRNG.
///
/// # Panics
/// If the operating system has no randomness to give, which gatehouse
/// cannot work without.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the OS random number generator is available");
    buf
}

/// Lower-case hex SHA-256 of `data`: how tokens and keys are stored.
pub fn sha256_hex(data: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(data))
}

/// HMAC-SHA256 of the concatenation of `parts`, each prefixed by its length
/// so that no two different part lists produce the same input.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// [`hmac_sha256`] as lower-case hex.
pub fn hmac_sha256_hex(key: &[u8], parts: &[&[u8]]) -> String {
    data_encoding::HEXLOWER.encode(&hmac_sha256(key, parts))
}

/// Whether `a` and `b` are equal, in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Non-secret identifier of a key: HMAC of a fixed label under the key.
pub fn fingerprint(key: &[u8]) -> String {
    hmac_sha256_hex(key, &[b"gatehouse key fingerprint v1"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_standard_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hmac_parts_are_unambiguous() {
        let key = [7u8; 32];
        assert_ne!(
            hmac_sha256(&key, &[b"ab", b"c"]),
            hmac_sha256(&key, &[b"a", b"bc"])
        );
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"same", b"same"));
        assert!(!constant_time_eq(b"same", b"sane"));
        assert!(!constant_time_eq(b"same", b"same!"));
    }
}
