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

/// Whether the server has MariaDB's `IF [NOT] EXISTS` forms for indexes and
/// columns (Oracle MySQL has them for tables only), asked once per recovery.
///
/// # Errors
/// A database error.
pub(super) async fn has_if_exists_forms<C: ConnectionTrait>(conn: &C) -> Result<bool, DbErr> {
    match conn.get_database_backend() {
        DbBackend::MySql => Ok(conn
            .query_one_raw(Statement::from_string(DbBackend::MySql, "SELECT VERSION()"))
            .await?
            .map(|row| row.try_get_by_index::<String>(0))
            .transpose()?
            .is_some_and(|v| v.contains("MariaDB"))),
        _ => Ok(true),
    }
}

/// How `statement` runs again, or `None` when that cannot be made safe.
/// `if_exists_forms`: see [`has_if_exists_forms`].
///
/// # Errors
/// A database error while reading the catalog.
pub(super) async fn plan<C: ConnectionTrait>(
    conn: &C,
    statement: &Statement,
    if_exists_forms: bool,
) -> Result<Option<Rerun>, DbErr> {
    let backend = conn.get_database_backend();
    let sql = statement.sql.as_str();
    let start = body_start(sql);
    let body = &sql[start..];
    let words = words(body, 8);
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    // Oracle MySQL knows `IF [NOT] EXISTS` for tables only.
    let table_only = !if_exists_forms;
    let rewrite = |at: usize, insert: &str| {
        let mut out = statement.clone();
        let pos = start + word_offset(body, at);
        out.sql = format!("{}{insert} {}", &sql[..pos], &sql[pos..]);
        Some(Rerun::Rewritten(out))
    };
    Ok(match w.as_slice() {
        ["CREATE", "TABLE", "IF", ..] => Some(Rerun::AsIs),
        ["CREATE", "TABLE", ..] if !contains_word(body, "SELECT") => rewrite(2, "IF NOT EXISTS"),
        ["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY", next, ..]
        | ["CREATE", "INDEX", "CONCURRENTLY", next, ..]
        | ["CREATE", "UNIQUE", "INDEX", next, ..]
        | ["CREATE", "INDEX", next, ..] => match *next {
            "IF" => Some(Rerun::AsIs),
            // An unnamed index (PostgreSQL) has no name to test.
            "ON" => None,
            _ if table_only => None,
            _ => rewrite(
                w.iter().position(|x| x == next).unwrap_or(2),
                "IF NOT EXISTS",
            ),
        },
        ["DROP", "TABLE" | "INDEX" | "VIEW", "CONCURRENTLY", next, ..]
        | ["DROP", "TABLE" | "INDEX" | "VIEW", next, ..] => {
            if *next == "IF" {
                Some(Rerun::AsIs)
            } else if table_only && w[1] != "TABLE" {
                None
            } else {
                rewrite(w.iter().position(|x| x == next).unwrap_or(2), "IF EXISTS")
            }
        }
        ["ALTER", "TABLE", _, clause @ ..] if !has_top_level_comma(body) => {
            alter_table(backend, body, clause, table_only, &rewrite)
        }
        ["UPDATE", _, "SET", ..] if update_is_rerunnable(sql, body) => Some(Rerun::AsIs),
        ["DELETE", "FROM", ..] if !contains_word(body, "LIMIT") => Some(Rerun::AsIs),
        ["INSERT", "INTO", ..] => insert(conn, backend, statement, body).await?,
        _ => None,
    })
}

/// An `ALTER TABLE` with one clause, `clause` its first words.
fn alter_table(
    backend: DbBackend,
    body: &str,
    clause: &[&str],
    table_only: bool,
    rewrite: &dyn Fn(usize, &str) -> Option<Rerun>,
) -> Option<Rerun> {
    match clause {
        ["ADD", "COLUMN", "IF", ..] | ["DROP", "COLUMN", "IF", ..] => Some(Rerun::AsIs),
        ["ADD" | "DROP", "COLUMN", ..] if table_only => None,
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
        ["ALTER", "COLUMN", _, "SET" | "DROP" | "TYPE", ..] if !contains_word(body, "USING") => {
            Some(Rerun::AsIs)
        }
        _ => None,
    }
}

/// `INSERT INTO t (cols) VALUES ...` with literal values whose columns
/// cover t's primary key, which no default generates.
async fn insert<C: ConnectionTrait>(
    conn: &C,
    backend: DbBackend,
    statement: &Statement,
    body: &str,
) -> Result<Option<Rerun>, DbErr> {
    // Another statement, a comment or a RETURNING clause after the values
    // would take the appended clause; an existing one says what it does itself.
    if [";", "--", "#", "/*"]
        .iter()
        .any(|t| outside_quotes(body).contains(t))
        || ["DUPLICATE", "CONFLICT", "RETURNING", "SELECT", "IGNORE"]
            .iter()
            .any(|k| contains_word(body, k))
        || has_volatile_value(body)
    {
        return Ok(None);
    }
    let upper = body.to_ascii_uppercase();
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
    let (key, generated) = primary_key(conn, backend, &table).await?;
    // A generated key (auto-increment, identity, a default) never collides.
    if key.is_empty() || generated || !key.iter().all(|k| columns.contains(k)) {
        return Ok(None);
    }
    let mut out = statement.clone();
    out.sql = match backend {
        DbBackend::MySql => {
            let c = &key[0];
            format!(
                "{} ON DUPLICATE KEY UPDATE `{c}` = `{c}`",
                out.sql.trim_end()
            )
        }
        _ => format!("{} ON CONFLICT DO NOTHING", out.sql.trim_end()),
    };
    Ok(Some(Rerun::Rewritten(out)))
}

/// The primary key's columns of `table`, in the connection's database/schema,
/// and whether one of them is generated (auto-increment, identity, a default).
async fn primary_key<C: ConnectionTrait>(
    conn: &C,
    backend: DbBackend,
    table: &str,
) -> Result<(Vec<String>, bool), DbErr> {
    let query = match backend {
        DbBackend::MySql => Statement::from_sql_and_values(
            backend,
            "SELECT k.COLUMN_NAME, CAST(c.EXTRA LIKE '%auto_increment%' AS SIGNED) \
             FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.COLUMNS c \
             ON c.TABLE_SCHEMA = k.TABLE_SCHEMA AND c.TABLE_NAME = k.TABLE_NAME \
             AND c.COLUMN_NAME = k.COLUMN_NAME WHERE k.TABLE_SCHEMA = DATABASE() \
             AND k.TABLE_NAME = ? AND k.CONSTRAINT_NAME = 'PRIMARY' ORDER BY k.ORDINAL_POSITION",
            [table.into()],
        ),
        DbBackend::Postgres => Statement::from_sql_and_values(
            backend,
            "SELECT a.attname::text, (a.attidentity <> '' OR a.atthasdef)::int8 \
             FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid \
             AND a.attnum = ANY(i.indkey) WHERE i.indisprimary AND i.indrelid = \
             (SELECT c.oid FROM pg_class c WHERE c.relname = $1 AND c.relnamespace = \
              (SELECT n.oid FROM pg_namespace n WHERE n.nspname = current_schema()))",
            [table.into()],
        ),
        _ => return Ok((Vec::new(), false)),
    };
    let mut columns = Vec::new();
    let mut generated = false;
    for row in conn.query_all_raw(query).await? {
        columns.push(row.try_get_by_index::<String>(0)?);
        generated |= row.try_get_by_index::<i64>(1)? != 0;
    }
    Ok((columns, generated))
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
             WHERE t.relname = $1 AND c.conname = $2 AND t.relnamespace = \
             (SELECT n.oid FROM pg_namespace n WHERE n.nspname = current_schema())",
            [table.into(), name.into()],
        ),
    }
}

/// Whether `UPDATE t SET a = x, b = y [WHERE …]` writes the same when run
/// again: one table; values that read neither the assigned columns nor the
/// table itself and call no volatile function; no `FROM` (PostgreSQL's
/// join); a `LIMIT` only in a batch marked to repeat until done (a batch
/// that selects the rows still to change). The filter may read anything: it
/// only narrows which rows get the same values again.
fn update_is_rerunnable(sql: &str, body: &str) -> bool {
    let Some(set) = find_word(body, "SET") else {
        return false;
    };
    let table = unquote(body.split_whitespace().nth(1).unwrap_or_default());
    let rest = &body[set + 3..];
    if top_level_word(rest, "FROM").is_some() {
        return false;
    }
    let end = ["WHERE", "LIMIT", "ORDER", "RETURNING"]
        .iter()
        .filter_map(|k| top_level_word(rest, k))
        .min()
        .unwrap_or(rest.len());
    // A limit picks some of the rows: run again, it may pick others, unless
    // the statement is a batch repeated until none is left to change.
    let filter = &rest[end..];
    let picks = top_level_word(rest, "LIMIT").is_some()
        || (contains_word(filter, "LIMIT") && identifiers(filter).contains(&table));
    if picks && crate::render::repeat_batch(sql).is_none() {
        return false;
    }
    let mut assigned = Vec::new();
    let mut values = Vec::new();
    for assignment in split_top_level(&rest[..end]) {
        let Some((column, value)) = assignment.split_once('=') else {
            return false;
        };
        let column = column.trim();
        if column.starts_with('(') {
            return false;
        }
        assigned.push(unquote(column.rsplit('.').next().unwrap_or(column)));
        values.push(value.to_owned());
    }
    !assigned.is_empty()
        && values.iter().all(|v| {
            !has_volatile_value(v)
                && identifiers(v)
                    .iter()
                    .all(|i| !assigned.contains(i) && *i != table)
        })
}

/// Functions whose value differs from one run to the next, and `DEFAULT`.
const VOLATILE: [&str; 16] = [
    "now",
    "current_timestamp",
    "current_date",
    "current_time",
    "localtime",
    "localtimestamp",
    "sysdate",
    "utc_timestamp",
    "unix_timestamp",
    "rand",
    "random",
    "uuid",
    "uuid_short",
    "gen_random_uuid",
    "nextval",
    "default",
];

/// Whether `text` calls a volatile function (or takes a column default).
fn has_volatile_value(text: &str) -> bool {
    identifiers(text)
        .iter()
        .any(|i| VOLATILE.contains(&i.as_str()))
}

/// The first occurrence of `word` outside parentheses and quotes.
fn top_level_word(text: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = find_word(&text[from..], word) {
        if depth_at(text, from + at) == 0 {
            return Some(from + at);
        }
        from += at + word.len();
    }
    None
}

/// How deep in parentheses byte `at` of `text` is (quotes skipped).
fn depth_at(text: &str, at: usize) -> i32 {
    let (mut depth, mut quote) = (0, None::<char>);
    for (i, c) in text.char_indices() {
        if i >= at {
            break;
        }
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            _ => {}
        }
    }
    depth
}

/// `text` with its quoted parts blanked out.
fn outside_quotes(text: &str) -> String {
    let mut quote = None::<char>;
    text.chars()
        .map(|c| match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                ' '
            }
            (Some(_), _) => ' ',
            (None, '\'' | '"' | '`') => {
                quote = Some(c);
                ' '
            }
            (None, c) => c,
        })
        .collect()
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
        let statement = Statement::from_string(DbBackend::MySql, text);
        sql(plan(&db, &statement, true).await.unwrap())
    }

    #[tokio::test]
    async fn oracle_mysql_gets_no_index_or_column_forms() {
        use sea_orm_migration::sea_orm::{DatabaseBackend, MockDatabase};
        let db = MockDatabase::new(DatabaseBackend::MySql).into_connection();
        for (text, expected) in [
            (
                "CREATE TABLE `t` (`id` int)",
                "CREATE TABLE IF NOT EXISTS `t` (`id` int)",
            ),
            ("CREATE INDEX `i` ON `t` (`a`)", "unsafe"),
            ("ALTER TABLE `t` ADD COLUMN `c` int", "unsafe"),
            ("DROP INDEX `i` ON `t`", "unsafe"),
        ] {
            let statement = Statement::from_string(DbBackend::MySql, text);
            assert_eq!(
                sql(plan(&db, &statement, false).await.unwrap()),
                expected,
                "{text}"
            );
        }
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
        for text in [
            "UPDATE `t` SET `y` = EXTRACT(YEAR FROM `d`), `n` = `n` + 1",
            "UPDATE `t` SET `a` = (SELECT `new` FROM `m` WHERE `m`.`old` = `t`.`a`)",
            "UPDATE t SET a = m.new FROM m WHERE m.old = t.a",
            "UPDATE `t` JOIN `m` ON `m`.`old` = `t`.`a` SET `t`.`a` = `m`.`new`",
            "UPDATE `t` SET (`a`, `b`) = (`b`, `a`)",
            "UPDATE `t` SET `role` = 'admin' WHERE `role` <> 'admin' ORDER BY `c` LIMIT 1",
            "UPDATE `t` SET `at` = NOW() WHERE `at` IS NULL",
            "UPDATE `t` SET `key` = UUID()",
            "DELETE FROM `t` ORDER BY `c` LIMIT 1",
            "CREATE INDEX ON \"t\" (\"a\")",
            "CREATE TABLE `t2` AS SELECT * FROM `t`",
            "ALTER TABLE \"t\" ALTER COLUMN \"a\" SET DATA TYPE bigint USING \"a\" * 100",
            "INSERT INTO `t` (`id`, `at`) VALUES (1, NOW())",
            "INSERT INTO `t` (`id`) VALUES (1); DROP TABLE `u`",
            "INSERT INTO \"t\" (\"id\") VALUES (gen_random_uuid()) RETURNING \"id\"",
        ] {
            assert_eq!(planned(text).await, "unsafe", "{text}");
        }
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
