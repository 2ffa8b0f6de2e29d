//! Running a statement again when whether it took effect is unknown: after a
//! statement-wise run stopped without recording its end (the migrator was
//! killed, its connection or the server went down), every statement from the
//! last recorded position on may or may not have run. Each one runs again in
//! a form whose result is the same either way:
//!
//! - `CREATE TABLE` / `CREATE [UNIQUE] INDEX [CONCURRENTLY]` gain `IF NOT EXISTS`,
//!   `DROP TABLE` / `DROP INDEX` and `ALTER TABLE … ADD COLUMN` / `DROP COLUMN`
//!   gain `IF [NOT] EXISTS` (MariaDB and PostgreSQL both have these forms);
//! - `ALTER TABLE … ADD CONSTRAINT name` is skipped when the catalog has the
//!   constraint (neither backend has `IF NOT EXISTS` for every kind);
//! - `INSERT … VALUES` whose columns cover the table's primary key skips rows
//!   that are there (`ON DUPLICATE KEY UPDATE` a key column to itself, `ON
//!   CONFLICT DO NOTHING`);
//! - statements whose effect does not depend on having run run as they are:
//!   `ALTER COLUMN … SET/DROP DEFAULT|NOT NULL` and `TYPE` without `USING`,
//!   `VALIDATE CONSTRAINT`, `MODIFY`, `DELETE`, statements that already say
//!   `IF [NOT] EXISTS`, and `UPDATE … SET` whose assigned values read none of
//!   the assigned columns (a backfill from other columns: running it twice
//!   writes the same values).
//!
//! Every DDL statement is atomic on both backends (MariaDB's atomic DDL,
//! PostgreSQL's transactional DDL), so a statement either ran or did not.
//! Anything else (`INSERT … SELECT`, an `UPDATE` that reads what it assigns,
//! triggers, renames, partitioning) cannot be proven either way: the runner
//! refuses to guess and names it, and `migrate repair` settles it.

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

/// How an uncertain statement runs again.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Rerun {
    /// Its effect does not depend on whether it ran: it runs as it is.
    AsIs,
    /// It runs in this form (`IF NOT EXISTS`, ...).
    Rewritten(Statement),
    /// It ran when this catalog query counts more than 0: it is skipped then.
    SkipIfFound(Statement),
}

/// How `statement` runs again, or `None` when that cannot be made safe.
///
/// # Errors
/// A database error while reading the catalog.
pub(super) async fn plan<C: ConnectionTrait>(
    conn: &C,
    statement: &Statement,
) -> Result<Option<Rerun>, DbErr> {
    let backend = conn.get_database_backend();
    let sql = statement.sql.as_str();
    let start = body_start(sql);
    let body = &sql[start..];
    let words = words(body, 8);
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let rewrite = |at: usize, insert: &str| {
        let mut out = statement.clone();
        let pos = start + word_offset(body, at);
        out.sql = format!("{}{insert} {}", &sql[..pos], &sql[pos..]);
        Some(Rerun::Rewritten(out))
    };
    Ok(match w.as_slice() {
        ["CREATE", "TABLE", "IF", ..] => Some(Rerun::AsIs),
        ["CREATE", "TABLE", ..] => rewrite(2, "IF NOT EXISTS"),
        ["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY", next, ..]
        | ["CREATE", "INDEX", "CONCURRENTLY", next, ..]
        | ["CREATE", "UNIQUE", "INDEX", next, ..]
        | ["CREATE", "INDEX", next, ..] => {
            if *next == "IF" {
                Some(Rerun::AsIs)
            } else {
                rewrite(
                    w.iter().position(|x| x == next).unwrap_or(2),
                    "IF NOT EXISTS",
                )
            }
        }
        ["DROP", "TABLE" | "INDEX" | "VIEW", "CONCURRENTLY", next, ..]
        | ["DROP", "TABLE" | "INDEX" | "VIEW", next, ..] => {
            if *next == "IF" {
                Some(Rerun::AsIs)
            } else {
                rewrite(w.iter().position(|x| x == next).unwrap_or(2), "IF EXISTS")
            }
        }
        ["ALTER", "TABLE", _, clause @ ..] if !has_top_level_comma(body) => {
            alter_table(backend, body, clause, &rewrite)
        }
        ["UPDATE", ..] if update_is_rerunnable(body) => Some(Rerun::AsIs),
        ["DELETE", "FROM", ..] => Some(Rerun::AsIs),
        ["INSERT", "INTO", ..] => insert(conn, backend, statement, body).await?,
        _ => None,
    })
}

/// An `ALTER TABLE` with one clause, `clause` its first words.
fn alter_table(
    backend: DbBackend,
    body: &str,
    clause: &[&str],
    rewrite: &dyn Fn(usize, &str) -> Option<Rerun>,
) -> Option<Rerun> {
    match clause {
        ["ADD", "COLUMN", "IF", ..] | ["DROP", "COLUMN", "IF", ..] => Some(Rerun::AsIs),
        ["ADD", "COLUMN", ..] => rewrite(5, "IF NOT EXISTS"),
        ["DROP", "COLUMN", ..] => rewrite(5, "IF EXISTS"),
        ["ADD", "CONSTRAINT", ..] => {
            let raw = raw_words(body, 6);
            match (raw.get(2), raw.get(5)) {
                (Some(table), Some(name)) => Some(Rerun::SkipIfFound(constraint_exists(
                    backend,
                    &unquote(table),
                    &unquote(name),
                ))),
                _ => None,
            }
        }
        ["VALIDATE", "CONSTRAINT", ..] | ["MODIFY", ..] => Some(Rerun::AsIs),
        ["ALTER", "COLUMN", _, "SET" | "DROP", ..] => Some(Rerun::AsIs),
        ["ALTER", "COLUMN", _, "TYPE", ..] if !contains_word(body, "USING") => Some(Rerun::AsIs),
        _ => None,
    }
}

/// `INSERT INTO t (cols) VALUES ...` whose columns cover t's primary key.
async fn insert<C: ConnectionTrait>(
    conn: &C,
    backend: DbBackend,
    statement: &Statement,
    body: &str,
) -> Result<Option<Rerun>, DbErr> {
    let upper = body.to_ascii_uppercase();
    if upper.contains(" ON DUPLICATE KEY ") || upper.contains(" ON CONFLICT ") {
        return Ok(None);
    }
    let raw = raw_words(body, 3);
    let Some(table) = raw
        .get(2)
        .map(|t| unquote(t.split('(').next().unwrap_or(t)))
    else {
        return Ok(None);
    };
    let (Some(open), Some(close)) = (body.find('('), body.find(')')) else {
        return Ok(None);
    };
    if open > close
        || !upper[close..]
            .trim_start_matches(')')
            .trim_start()
            .starts_with("VALUES")
    {
        return Ok(None);
    }
    let columns: Vec<String> = body[open + 1..close].split(',').map(unquote).collect();
    let key = primary_key(conn, backend, &table).await?;
    if key.is_empty() || !key.iter().all(|k| columns.contains(k)) {
        return Ok(None);
    }
    let mut out = statement.clone();
    out.sql = match backend {
        DbBackend::MySql => {
            let c = &key[0];
            format!(
                "{} ON DUPLICATE KEY UPDATE `{c}` = `{c}`",
                out.sql.trim_end_matches(';')
            )
        }
        _ => format!("{} ON CONFLICT DO NOTHING", out.sql.trim_end_matches(';')),
    };
    Ok(Some(Rerun::Rewritten(out)))
}

/// The primary key's columns of `table`, in the connection's database/schema.
async fn primary_key<C: ConnectionTrait>(
    conn: &C,
    backend: DbBackend,
    table: &str,
) -> Result<Vec<String>, DbErr> {
    let query = match backend {
        DbBackend::MySql => Statement::from_sql_and_values(
            backend,
            "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
            [table.into()],
        ),
        DbBackend::Postgres => Statement::from_sql_and_values(
            backend,
            "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid \
             AND a.attnum = ANY(i.indkey) WHERE i.indisprimary AND i.indrelid = \
             (SELECT c.oid FROM pg_class c WHERE c.relname = $1 \
              AND c.relnamespace = current_schema()::regnamespace)",
            [table.into()],
        ),
        _ => return Ok(Vec::new()),
    };
    conn.query_all_raw(query)
        .await?
        .iter()
        .map(|row| row.try_get_by_index::<String>(0))
        .collect()
}

/// Counts the constraints named `name` on `table`.
fn constraint_exists(backend: DbBackend, table: &str, name: &str) -> Statement {
    match backend {
        DbBackend::MySql => Statement::from_sql_and_values(
            backend,
            "SELECT COUNT(*) FROM information_schema.TABLE_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() \
             AND TABLE_NAME = ? AND CONSTRAINT_NAME = ?",
            [table.into(), name.into()],
        ),
        _ => Statement::from_sql_and_values(
            backend,
            "SELECT COUNT(*) FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid \
             WHERE t.relname = $1 AND t.relnamespace = current_schema()::regnamespace AND c.conname = $2",
            [table.into(), name.into()],
        ),
    }
}

/// Whether an `UPDATE … SET a = x, b = y [WHERE …]` assigns values that read
/// none of the columns it assigns (so running it again writes the same).
fn update_is_rerunnable(body: &str) -> bool {
    let Some(set) = find_word(body, "SET") else {
        return false;
    };
    let rest = &body[set + 3..];
    let end = ["WHERE", "LIMIT", "ORDER", "RETURNING", "FROM"]
        .iter()
        .filter_map(|k| find_word(rest, k))
        .min()
        .unwrap_or(rest.len());
    let mut assigned = Vec::new();
    let mut values = Vec::new();
    for assignment in split_top_level(&rest[..end]) {
        let Some((column, value)) = assignment.split_once('=') else {
            return false;
        };
        assigned.push(unquote(column.rsplit('.').next().unwrap_or(column)));
        values.push(value.to_owned());
    }
    // The WHERE clause may hold a sub-select reading assigned columns into
    // the values (`SET a = (SELECT ...)` is within `values`); the filter
    // itself only narrows which rows get the same values again.
    !assigned.is_empty()
        && values
            .iter()
            .all(|v| identifiers(v).iter().all(|i| !assigned.contains(i)))
}

/// Where the statement proper starts: after leading blanks and comments
/// (gatehouse's markers, MariaDB's `/*M! SET STATEMENT … FOR */`).
fn body_start(sql: &str) -> usize {
    let mut at = 0;
    loop {
        let rest = &sql[at..];
        let trimmed = rest.trim_start();
        at += rest.len() - trimmed.len();
        if trimmed.starts_with("/*")
            && let Some(end) = trimmed.find("*/")
        {
            at += end + 2;
            continue;
        }
        return at;
    }
}

/// The first `n` words of `body`, upper-cased, a `(` ending a word.
fn words(body: &str, n: usize) -> Vec<String> {
    raw_words(body, n)
        .iter()
        .map(|w| w.split('(').next().unwrap_or(w).to_ascii_uppercase())
        .collect()
}

fn raw_words(body: &str, n: usize) -> Vec<&str> {
    body.split_whitespace().take(n).collect()
}

/// The byte offset of word `index` in `body`.
fn word_offset(body: &str, index: usize) -> usize {
    let mut seen = 0;
    let mut in_word = false;
    for (i, c) in body.char_indices() {
        if c.is_whitespace() {
            in_word = false;
        } else if !in_word {
            if seen == index {
                return i;
            }
            seen += 1;
            in_word = true;
        }
    }
    body.len()
}

/// A name without its quotes, lower-cased as both backends fold unquoted ones.
fn unquote(name: &str) -> String {
    name.trim()
        .trim_matches(|c| c == '`' || c == '"')
        .to_ascii_lowercase()
}

/// Whether `body` has a comma outside parentheses and quotes (several clauses).
fn has_top_level_comma(body: &str) -> bool {
    split_top_level(body).len() > 1
}

/// `text` split at commas outside parentheses and quotes.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut quote, mut from) = (0i32, None::<char>, 0);
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(&text[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[from..]);
    parts
}

/// The position of `word` (upper case) as a whole word outside quotes.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let upper = text.to_ascii_uppercase();
    let bytes = upper.as_bytes();
    let mut quote = None::<u8>;
    for (i, &b) in bytes.iter().enumerate() {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if matches!(b, b'\'' | b'"' | b'`') => quote = Some(b),
            None => {
                let before = i == 0 || !is_ident(bytes[i - 1]);
                let after = bytes.get(i + word.len()).is_none_or(|&a| !is_ident(a));
                if before && after && upper[i..].starts_with(word) {
                    return Some(i);
                }
            }
        }
    }
    None
}

fn contains_word(text: &str, word: &str) -> bool {
    find_word(text, word).is_some()
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

/// Every identifier in `text` (quoted or bare, lower-cased), skipping string literals.
fn identifiers(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' => {
                for (_, d) in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                }
            }
            '"' | '`' => {
                let mut name = String::new();
                for (_, d) in chars.by_ref() {
                    if d == c {
                        break;
                    }
                    name.push(d);
                }
                out.push(name.to_ascii_lowercase());
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut end = i + c.len_utf8();
                while let Some(&(j, d)) = chars.peek() {
                    if d.is_ascii_alphanumeric() || d == '_' {
                        end = j + d.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(text[i..end].to_ascii_lowercase());
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(plan: Option<Rerun>) -> String {
        match plan {
            Some(Rerun::Rewritten(s)) => s.sql,
            Some(Rerun::AsIs) => "as is".into(),
            Some(Rerun::SkipIfFound(_)) => "skip if found".into(),
            None => "unsafe".into(),
        }
    }

    async fn planned(text: &str) -> String {
        use sea_orm_migration::sea_orm::{DatabaseBackend, MockDatabase};
        let db = MockDatabase::new(DatabaseBackend::MySql).into_connection();
        sql(plan(&db, &Statement::from_string(DbBackend::MySql, text))
            .await
            .unwrap())
    }

    #[tokio::test]
    async fn ddl_gains_if_not_exists() {
        assert_eq!(
            planned("CREATE TABLE `t` ( `id` int )").await,
            "CREATE TABLE IF NOT EXISTS `t` ( `id` int )"
        );
        assert_eq!(
            planned("CREATE UNIQUE INDEX `i` ON `t` (`a`)").await,
            "CREATE UNIQUE INDEX IF NOT EXISTS `i` ON `t` (`a`)"
        );
        assert_eq!(
            planned("CREATE INDEX CONCURRENTLY \"i\" ON \"t\" (\"a\")").await,
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS \"i\" ON \"t\" (\"a\")"
        );
        assert_eq!(
            planned("ALTER TABLE `t` ADD COLUMN `c` int NOT NULL DEFAULT 0 CHECK (`c` BETWEEN 0 AND 100)").await,
            "ALTER TABLE `t` ADD COLUMN IF NOT EXISTS `c` int NOT NULL DEFAULT 0 CHECK (`c` BETWEEN 0 AND 100)"
        );
        assert_eq!(
            planned("DROP INDEX `i` ON `t`").await,
            "DROP INDEX IF EXISTS `i` ON `t`"
        );
        assert_eq!(
            planned("/* gatehouse: runs again when the next statement is retried */ DROP INDEX CONCURRENTLY IF EXISTS \"i\"").await,
            "as is"
        );
        assert_eq!(
            planned("/*M! SET STATEMENT foreign_key_checks = 0 FOR */ ALTER TABLE `s` ADD CONSTRAINT `fk` FOREIGN KEY (`k`) REFERENCES `e` (`id`)").await,
            "skip if found"
        );
    }

    #[tokio::test]
    async fn what_cannot_be_proven_is_refused() {
        assert_eq!(planned("UPDATE `t` SET `n` = `n` + 1").await, "unsafe");
        assert_eq!(
            planned("UPDATE `t` SET `a` = `b`, `b` = `a`").await,
            "unsafe"
        );
        assert_eq!(
            planned("ALTER TABLE `t` ADD COLUMN `a` int, ADD COLUMN `b` int").await,
            "unsafe"
        );
        assert_eq!(
            planned("ALTER TABLE `t` ALTER COLUMN `a` TYPE bigint USING `a` * 10").await,
            "unsafe"
        );
        assert_eq!(planned("RENAME TABLE `a` TO `b`").await, "unsafe");
        assert_eq!(
            planned("INSERT INTO `t` (`a`) SELECT `a` FROM `u`").await,
            "unsafe"
        );
        assert_eq!(
            planned("CREATE TRIGGER `x` BEFORE INSERT ON `t` FOR EACH ROW SET NEW.a = 1").await,
            "unsafe"
        );
    }

    #[tokio::test]
    async fn backfills_from_other_columns_run_again() {
        assert_eq!(
            planned("/* gatehouse: repeat while a batch changes 10000 rows */ UPDATE `sessions` SET `last_validated_at` = `last_activity_at` WHERE `last_validated_at` IS NULL LIMIT 10000").await,
            "as is"
        );
        assert_eq!(
            planned("UPDATE `users` SET `email_folded` = `email`, `username_folded` = `username`")
                .await,
            "as is"
        );
        assert_eq!(
            planned("UPDATE `m` SET `k` = (SELECT `id` FROM `e` WHERE `t` = 'session' ORDER BY `v` DESC LIMIT 1) WHERE `k` IS NULL").await,
            "as is"
        );
    }
}
