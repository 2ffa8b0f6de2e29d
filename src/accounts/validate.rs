//! Input rules for accounts: normalization (NFKC, then Unicode lower case) and
//! validation of emails and usernames, and the NIST SP 800-63B password policy.

use std::collections::HashSet;
use std::sync::LazyLock;

use unicode_normalization::UnicodeNormalization;

use crate::Error;

/// Longest email address, in bytes (RFC 5321 path limit less the brackets).
pub const EMAIL_MAX_BYTES: usize = 254;
/// Longest local part (before the `@`), in bytes (RFC 5321).
pub const EMAIL_LOCAL_MAX_BYTES: usize = 64;
/// Longest domain label, in bytes (RFC 1035).
pub const DOMAIN_LABEL_MAX_BYTES: usize = 63;
/// Shortest username, in characters.
pub const USERNAME_MIN_CHARS: usize = 3;
/// Longest username, in characters (the column holds 64).
pub const USERNAME_MAX_CHARS: usize = 64;
/// Shortest password, in characters, for an account without a second factor.
pub const PASSWORD_MIN_CHARS: usize = 15;
/// Shortest password, in characters, for an account with MFA enabled.
pub const PASSWORD_MIN_CHARS_WITH_MFA: usize = 8;
/// Longest password, in characters: long passphrases pass, hashing cost stays bounded.
pub const PASSWORD_MAX_CHARS: usize = 1024;
/// Raw input is refused unread above this many bytes per allowed character
/// (the most a character takes in UTF-8).
const MAX_BYTES_PER_CHAR: usize = 4;
/// Normalization stops after this many rounds (one or two suffice in practice).
const MAX_NORMALIZATION_ROUNDS: usize = 4;

/// The bundled list (see the file's header for its source). Every function
/// here bounds raw input's size before normalizing it, so hostile input costs little.
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common_passwords.txt")
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
});

/// What a login identifier names: an account by email or by username.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identifier {
    /// An email address (the input has an `@`), normalized.
    Email(String),
    /// A username, normalized.
    Username(String),
}

impl Identifier {
    /// The normalized identifier.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Email(s) | Self::Username(s) => s,
        }
    }
}

/// NFKC, then full Unicode lower case, repeated until stable, so that the
/// result is a fixed point: `fold(fold(s)) == fold(s)`.
pub fn fold(raw: &str) -> String {
    let mut current: String = raw.nfkc().collect();
    for _ in 0..MAX_NORMALIZATION_ROUNDS {
        let next: String = current.to_lowercase().nfkc().collect();
        if next == current {
            break;
        }
        current = next;
    }
    current
}

/// The normalized form of an email address, if it is one.
///
/// # Errors
/// [`Error::InvalidInput`] (field `email`) naming the rule the address breaks.
pub fn email(raw: &str) -> Result<String, Error> {
    let invalid = |reason: &str| invalid("email", reason);
    if raw.len() > EMAIL_MAX_BYTES * MAX_BYTES_PER_CHAR {
        return Err(invalid("is longer than 254 bytes"));
    }
    let email = fold(raw);
    if email.is_empty() {
        return Err(invalid("is empty"));
    }
    if email.len() > EMAIL_MAX_BYTES {
        return Err(invalid("is longer than 254 bytes"));
    }
    if email.chars().any(is_unprintable) || email.chars().any(char::is_whitespace) {
        return Err(invalid(
            "contains whitespace, control or invisible formatting characters",
        ));
    }
    let mut parts = email.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid("must contain exactly one @"));
    };
    if local.is_empty() {
        return Err(invalid("has nothing before the @"));
    }
    if local.len() > EMAIL_LOCAL_MAX_BYTES {
        return Err(invalid("has more than 64 bytes before the @"));
    }
    if local.chars().any(|c| "\"(),:;<>[\\]".contains(c)) {
        return Err(invalid("has a character that needs quoting before the @"));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(invalid("has a misplaced dot before the @"));
    }
    if !domain.contains('.') {
        return Err(invalid("needs a domain with a dot after the @"));
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(invalid("has an empty part in its domain"));
        }
        if label.len() > DOMAIN_LABEL_MAX_BYTES {
            return Err(invalid("has a domain part longer than 63 bytes"));
        }
        if !label.chars().all(|c| c.is_alphanumeric() || c == '-')
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(invalid(
                "has a domain part that is not letters, digits and inner hyphens",
            ));
        }
    }
    Ok(email)
}

/// The normalized form of a username: 3 to 64 letters, digits, `.`, `_` or `-`.
///
/// # Errors
/// [`Error::InvalidInput`] (field `username`) naming the rule it breaks.
pub fn username(raw: &str) -> Result<String, Error> {
    let invalid = |reason: &str| invalid("username", reason);
    if raw.len() > USERNAME_MAX_CHARS * MAX_BYTES_PER_CHAR {
        return Err(invalid("is longer than 64 characters"));
    }
    let username = fold(raw);
    let chars = username.chars().count();
    if chars < USERNAME_MIN_CHARS {
        return Err(invalid("is shorter than 3 characters"));
    }
    if chars > USERNAME_MAX_CHARS {
        return Err(invalid("is longer than 64 characters"));
    }
    if !username
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(invalid(
            "may contain only letters, digits, '.', '_' and '-'",
        ));
    }
    Ok(username)
}

/// A login identifier: an email when it contains `@`, a username otherwise.
///
/// # Errors
/// [`Error::InvalidInput`] (field `identifier`) when it is neither.
pub fn identifier(raw: &str) -> Result<Identifier, Error> {
    let rename = |err: Error| match err {
        Error::InvalidInput { reason, .. } => invalid("identifier", &reason),
        other => other,
    };
    if raw.len() > EMAIL_MAX_BYTES * MAX_BYTES_PER_CHAR {
        return Err(invalid("identifier", "is longer than 254 bytes"));
    }
    // Decided on the folded form: a fullwidth at sign is an @ too.
    if fold(raw).contains('@') {
        email(raw).map(Identifier::Email).map_err(rename)
    } else {
        username(raw).map(Identifier::Username).map_err(rename)
    }
}

/// The form a password is hashed in: NFKC (NIST SP 800-63B 5.1.1.2), case kept.
/// Refuses what can never be a password: overlong input or control characters.
///
/// # Errors
/// [`Error::InvalidInput`] (field `password`).
pub fn password_form(raw: &str) -> Result<String, Error> {
    let too_long = || invalid("password", "is longer than 1024 characters");
    if raw.len() > PASSWORD_MAX_CHARS * MAX_BYTES_PER_CHAR {
        return Err(too_long());
    }
    let password: String = raw.nfkc().collect();
    if password.chars().count() > PASSWORD_MAX_CHARS {
        return Err(too_long());
    }
    if password.chars().any(char::is_control) {
        return Err(invalid("password", "contains control characters"));
    }
    Ok(password)
}

/// A new password, in the form it is hashed in, if the policy accepts it: at
/// least `min_chars` characters, not common, not repetitive, not one of `context`
/// (the account's email and username).
///
/// # Errors
/// [`Error::InvalidInput`] for input that can never be a password,
/// [`Error::PolicyViolation`] for a password the policy refuses.
pub fn new_password(raw: &str, min_chars: usize, context: &[&str]) -> Result<String, Error> {
    let password = password_form(raw)?;
    if password.chars().count() < min_chars {
        return Err(Error::PolicyViolation(format!(
            "a password needs at least {min_chars} characters"
        )));
    }
    let folded = fold(&password);
    if is_common_password(&folded) {
        return Err(Error::PolicyViolation(
            "this password is on the list of commonly used passwords".into(),
        ));
    }
    if is_repetition(&folded) {
        return Err(Error::PolicyViolation(
            "this password repeats one short sequence".into(),
        ));
    }
    if context.iter().any(|c| !c.is_empty() && fold(c) == folded) {
        return Err(Error::PolicyViolation(
            "the password must not be the account's email or username".into(),
        ));
    }
    Ok(password)
}

/// Whether `password` is on the bundled list, compared case-insensitively after NFKC.
pub fn is_common_password(password: &str) -> bool {
    COMMON_PASSWORDS.contains(fold(password).as_str())
}

/// Whether `s` is one shorter sequence repeated (`aaaa…`, `abcabc…`, `passwordpassword`).
fn is_repetition(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    (1..=n / 2)
        .any(|unit| n.is_multiple_of(unit) && chars.chunks(unit).all(|c| c == &chars[..unit]))
}

/// Control characters and the invisible formatting characters (Unicode
/// category Cf) that let two different strings look the same.
/// Control characters and invisible formatting characters (bidirectional
/// overrides such as U+202E, zero-width characters): text shown to people
/// must not hide or reorder what it says.
pub fn is_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}')
}

fn invalid(field: &'static str, reason: &str) -> Error {
    Error::InvalidInput {
        field,
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn is_invalid(result: Result<String, Error>, expected: &str) -> bool {
        matches!(result, Err(Error::InvalidInput { field, .. }) if field == expected)
    }

    #[test]
    fn emails_are_normalized() {
        assert_eq!(email("Alice@Example.COM").unwrap(), "alice@example.com");
        // Fullwidth letters and the Kelvin sign fold to ASCII under NFKC.
        assert_eq!(
            email("ＡＬＩＣＥ@ｅｘａｍｐｌｅ.com").unwrap(),
            "alice@example.com"
        );
        assert_eq!(email("\u{212A}im@example.com").unwrap(), "kim@example.com");
        // Decomposed and precomposed accents are one address.
        assert_eq!(
            email("Jose\u{301}@example.com").unwrap(),
            email("jos\u{e9}@example.com").unwrap()
        );
        assert_eq!(email("o'brien@example.com").unwrap(), "o'brien@example.com");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@b",
            "a@@example.com",
            "a@b@example.com",
            "a b@example.com",
            "a@example..com",
            "a@-example.com",
            ".a@example.com",
            "a..b@example.com",
            "a\"b@example.com",
            "a\0@example.com",
            "a\u{200B}b@example.com",
            "a\u{202E}b@example.com",
            "a'; DROP TABLE users; --@example.com",
        ] {
            assert!(is_invalid(email(bad), "email"), "{bad:?} was accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(is_invalid(email(&long), "email"));
        assert!(is_invalid(email(&"a".repeat(10_240)), "email"));
    }

    #[test]
    fn usernames_are_normalized_and_checked() {
        assert_eq!(username("Alice_01").unwrap(), "alice_01");
        assert_eq!(username("ＢＯＢ").unwrap(), "bob");
        assert_eq!(username("Zoë.K-1").unwrap(), "zoë.k-1");
        for bad in [
            "ab",
            "a b c",
            "bob@home",
            "x\0yz",
            "eve\u{200D}",
            "<script>",
        ] {
            assert!(is_invalid(username(bad), "username"), "{bad:?}");
        }
        assert!(username(&"a".repeat(64)).is_ok());
        assert!(is_invalid(username(&"a".repeat(65)), "username"));
    }

    #[test]
    fn identifiers_pick_email_or_username() {
        assert_eq!(
            identifier("Bob@Example.com").unwrap(),
            Identifier::Email("bob@example.com".into())
        );
        assert_eq!(
            identifier("bob＠example.com").unwrap(),
            Identifier::Email("bob@example.com".into())
        );
        assert_eq!(
            identifier("BOB").unwrap(),
            Identifier::Username("bob".into())
        );
        assert!(matches!(
            identifier("no spaces allowed"),
            Err(Error::InvalidInput {
                field: "identifier",
                ..
            })
        ));
    }

    #[test]
    fn password_policy() {
        let ok = "a long and unremarkable passphrase";
        assert_eq!(new_password(ok, PASSWORD_MIN_CHARS, &[]).unwrap(), ok);
        assert!(matches!(
            new_password("fourteen chars", PASSWORD_MIN_CHARS, &[]),
            Err(Error::PolicyViolation(_))
        ));
        assert!(new_password("fourteen chars", PASSWORD_MIN_CHARS_WITH_MFA, &[]).is_ok());
        // Common passwords are refused whatever their case or width.
        for common in [
            "Sunshine1",
            "SUNSHINE1",
            "ｓｕｎｓｈｉｎｅ１",
            "Correct Horse Battery Staple",
        ] {
            assert!(
                matches!(
                    new_password(common, PASSWORD_MIN_CHARS_WITH_MFA, &[]),
                    Err(Error::PolicyViolation(_))
                ),
                "{common}"
            );
        }
        assert!(matches!(
            new_password("abcabcabcabcabcabc", PASSWORD_MIN_CHARS, &[]),
            Err(Error::PolicyViolation(_))
        ));
        assert!(matches!(
            new_password(
                "Alice.Wonderland@example.com",
                PASSWORD_MIN_CHARS,
                &["alice.wonderland@example.com"]
            ),
            Err(Error::PolicyViolation(_))
        ));
        // No composition rules: spaces and any script are fine.
        assert!(new_password("пароль для входа в систему", PASSWORD_MIN_CHARS, &[]).is_ok());
        assert!(new_password(&("x".repeat(14) + "y"), PASSWORD_MIN_CHARS, &[]).is_ok());
    }

    #[test]
    fn password_length_is_bounded() {
        let longest: String = "correct horse battery staple "
            .chars()
            .cycle()
            .take(PASSWORD_MAX_CHARS)
            .collect();
        assert!(new_password(&longest, PASSWORD_MIN_CHARS, &[]).is_ok());
        let too_long = format!("{longest}!");
        assert!(is_invalid(
            new_password(&too_long, PASSWORD_MIN_CHARS, &[]),
            "password"
        ));
        assert!(is_invalid(password_form(&"x".repeat(10_240)), "password"));
        assert!(is_invalid(
            password_form("nul\0inside a long password"),
            "password"
        ));
    }

    #[test]
    fn the_common_list_is_bundled() {
        assert!(COMMON_PASSWORDS.len() > 4_000, "{}", COMMON_PASSWORDS.len());
        assert!(COMMON_PASSWORDS.iter().all(|p| p.chars().count() >= 8));
        assert!(COMMON_PASSWORDS.iter().all(|p| fold(p) == *p));
        assert!(is_common_password("password1"));
        assert!(!is_common_password("a long and unremarkable passphrase"));
    }

    fn email_strategy() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9_%+'-]{1,12}(\\.[a-zA-Z0-9_%+-]{1,8}){0,2}@[a-zA-Z0-9]{1,12}(-[a-zA-Z0-9]{1,5})?(\\.[a-zA-Z]{2,8}){1,3}"
    }

    proptest! {
        #[test]
        fn folding_is_idempotent(s in any::<String>()) {
            let once = fold(&s);
            prop_assert_eq!(fold(&once), once.clone());
        }

        #[test]
        fn valid_emails_are_accepted_and_stay_put(raw in email_strategy()) {
            let normalized = email(&raw).unwrap();
            prop_assert_eq!(&normalized, &raw.to_lowercase());
            prop_assert_eq!(email(&normalized).unwrap(), normalized);
        }

        #[test]
        fn valid_usernames_are_accepted_and_stay_put(raw in "[a-zA-Z0-9._-]{3,64}") {
            let normalized = username(&raw).unwrap();
            prop_assert_eq!(&normalized, &raw.to_lowercase());
            prop_assert_eq!(username(&normalized).unwrap(), normalized);
        }

        #[test]
        fn any_normalized_input_normalizes_to_itself(s in any::<String>()) {
            if let Ok(e) = email(&s) {
                prop_assert_eq!(email(&e).unwrap(), e);
            }
            if let Ok(u) = username(&s) {
                prop_assert_eq!(username(&u).unwrap(), u);
            }
        }

        #[test]
        fn anything_with_a_nul_is_refused(
            raw in email_strategy(),
            name in "[a-z0-9._-]{3,60}",
            pass in "[a-zA-Z0-9 ]{20,60}",
            at in 0usize..20,
        ) {
            let with_nul = |s: &str| {
                let i = s.char_indices().map(|(i, _)| i).nth(at % s.chars().count()).unwrap_or(0);
                format!("{}\0{}", &s[..i], &s[i..])
            };
            prop_assert!(is_invalid(email(&with_nul(&raw)), "email"));
            prop_assert!(is_invalid(username(&with_nul(&name)), "username"));
            prop_assert!(is_invalid(new_password(&with_nul(&pass), PASSWORD_MIN_CHARS, &[]), "password"));
        }

        #[test]
        fn long_random_passphrases_are_accepted(pass in "[a-zA-Z0-9 .,;!?-]{15,200}") {
            prop_assume!(!is_repetition(&fold(&pass)));
            prop_assert_eq!(new_password(&pass, PASSWORD_MIN_CHARS, &[]).unwrap(), pass);
        }

        #[test]
        fn short_passwords_are_policy_violations(pass in "[a-zA-Z0-9 ]{0,14}") {
            let refused = matches!(new_password(&pass, PASSWORD_MIN_CHARS, &[]), Err(Error::PolicyViolation(_)));
            prop_assert!(refused);
        }
    }
}
