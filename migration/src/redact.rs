//! Database URLs with their secrets taken out, for every message and log
//! line that names a database: the password of `user:pass@`, and the value
//! of every query parameter that can carry a secret (`password`,
//! `sslpassword`, any spelling or case, tokens, keys). Paths such as
//! `sslkey`, `sslcert` or `sslrootcert` name files, not secrets, and stay.

use url::Url;

/// What a removed secret is shown as.
pub const MASK: &str = "***";

/// Whether the query parameter `name` may hold a secret.
fn is_secret_param(name: &str) -> bool {
    let name: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    const FILE_PATHS: &[&str] = &["sslkey", "sslcert", "sslrootcert", "sslcrl", "passfile"];
    if FILE_PATHS.contains(&name.as_str()) {
        return false;
    }
    [
        "pass",
        "pwd",
        "secret",
        "token",
        "key",
        "auth",
        "credential",
    ]
    .iter()
    .any(|needle| name.contains(needle))
}

/// `url` with its password and secret query values replaced by [`MASK`].
/// A URL that does not parse is shown as its scheme only.
pub fn url(url: &str) -> String {
    let Ok(mut parsed) = Url::parse(url) else {
        let scheme = url
            .split_once(':')
            .map_or("", |(scheme, _)| scheme)
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || "+-.".contains(*c))
            .collect::<String>();
        return format!("{scheme}://{MASK} (not a well-formed URL; details left out)");
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some(MASK));
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_param(&k) {
                    MASK.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    if parsed.fragment().is_some() {
        parsed.set_fragment(Some(MASK));
    }
    parsed.to_string().replace("%2A%2A%2A", MASK)
}

/// The secrets `url` holds, raw and percent-decoded: what must never appear
/// in a message.
fn secrets(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut push = |s: &str| {
        if !s.is_empty() && s != MASK && !found.iter().any(|f: &String| f == s) {
            found.push(s.to_owned());
        }
    };
    match Url::parse(url) {
        Ok(parsed) => {
            if let Some(password) = parsed.password() {
                push(password);
                push(&percent_decode(password));
            }
            for (k, v) in parsed.query_pairs() {
                if is_secret_param(&k) {
                    push(&v);
                }
            }
            if let Some(raw) = parsed.query() {
                for pair in raw.split('&') {
                    if let Some((k, v)) = pair.split_once('=')
                        && is_secret_param(k)
                    {
                        push(v);
                    }
                }
            }
            if let Some(fragment) = parsed.fragment() {
                push(fragment);
            }
        }
        Err(_) => {
            // Unparseable: everything after the scheme may be secret.
            if let Some((_, rest)) = url.split_once("://") {
                push(rest);
                if let Some((credentials, _)) = rest.rsplit_once('@') {
                    push(credentials);
                    if let Some((_, password)) = credentials.split_once(':') {
                        push(password);
                    }
                }
            }
        }
    }
    // Longest first, so that a secret containing another is replaced whole.
    found.sort_by_key(|s| std::cmp::Reverse(s.len()));
    found
}

/// `text` with its `%XX` escapes decoded (a `+` stays a `+`).
fn percent_decode(text: &str) -> String {
    let query = format!("x={}", text.replace('+', "%2B"));
    url::form_urlencoded::parse(query.as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// `text` (a driver's error message, say) with `url` and every secret it
/// holds replaced: the URL by [`url()`], each secret by [`MASK`].
pub fn text(text: &str, database_url: &str) -> String {
    let mut out = text.replace(database_url, &url(database_url));
    for secret in secrets(database_url) {
        out = out.replace(&secret, MASK);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_password_is_masked_and_the_user_kept() {
        assert_eq!(
            url("postgres://app:s3cret@db.example.com:5432/gate"),
            "postgres://app:***@db.example.com:5432/gate"
        );
        assert_eq!(
            url("mysql://root@127.0.0.1:3306/gate"),
            "mysql://root@127.0.0.1:3306/gate"
        );
        let encoded = url("postgres://app:p%40ss%3Aword@h/db");
        assert!(!encoded.contains("p%40ss"), "{encoded}");
    }

    #[test]
    fn secret_query_parameters_are_masked_in_any_case() {
        for query in [
            "password=s3cret",
            "PASSWORD=s3cret",
            "Password=s3cret",
            "sslpassword=s3cret",
            "SSLPassword=s3cret",
            "ssl-password=s3cret",
            "auth_token=s3cret",
            "pwd=s3cret",
        ] {
            let shown = url(&format!("postgres://u@h/db?sslmode=require&{query}"));
            assert!(!shown.contains("s3cret"), "{query}: {shown}");
            assert!(shown.contains("sslmode=require"), "{query}: {shown}");
            assert!(shown.contains("=***"), "{query}: {shown}");
        }
    }

    #[test]
    fn file_paths_and_plain_options_stay() {
        let shown = url(
            "postgres://u@h/db?sslmode=verify-full&sslkey=/etc/k.pem&sslcert=/etc/c.pem&sslrootcert=/etc/ca.pem",
        );
        assert!(shown.contains("sslkey=%2Fetc%2Fk.pem") || shown.contains("sslkey=/etc/k.pem"));
        assert!(shown.contains("sslcert="), "{shown}");
        assert_eq!(
            url("sqlite://./app.db?mode=rwc"),
            "sqlite://./app.db?mode=rwc"
        );
        assert_eq!(url("sqlite::memory:"), "sqlite::memory:");
    }

    #[test]
    fn an_unparseable_url_shows_only_its_scheme() {
        let shown = url("postgres://u:s3cret@[bad/db");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.starts_with("postgres://***"), "{shown}");
    }

    #[test]
    fn text_loses_every_secret_of_the_url() {
        let database_url = "mysql://u:hunter2@h/db?password=s3cret&sslpassword=t0ken";
        let message = format!(
            "cannot connect to {database_url}: access denied for password 'hunter2' (s3cret, t0ken)"
        );
        let shown = text(&message, database_url);
        for secret in ["hunter2", "s3cret", "t0ken"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("mysql://u:***@h/db"), "{shown}");
    }
}
