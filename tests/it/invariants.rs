//! Invariants of the schema as a whole, each failing with a sentence that
//! says what to fix.

use gatehouse::schema::{MIGRATIONS_TABLE, introspect};

use crate::support::TestDb;

backend_tests!(run_migrated: every_reference_is_an_indexed_foreign_key, no_column_holds_a_plaintext_secret);

/// `*_id` columns that are deliberately not foreign keys, and why.
const NOT_FOREIGN_KEYS: [(&str, &str, &str); 3] = [
    (
        "audit_log_basic",
        "resource_id",
        "identifies a row of any table, so it cannot reference one",
    ),
    (
        "audit_logs",
        "resource_id",
        "identifies a row of any table, so it cannot reference one",
    ),
    (
        "audit_logs",
        "request_id",
        "a correlation id issued outside the database",
    ),
];

/// Referential actions that state a decision; NO ACTION is what a forgotten ON DELETE gives.
const EXPLICIT_ON_DELETE: [&str; 3] = ["CASCADE", "SET NULL", "RESTRICT"];

async fn every_reference_is_an_indexed_foreign_key(t: TestDb) {
    let schema = introspect(&t.db).await.unwrap();
    let mut problems = Vec::new();
    for (table_name, table) in schema.tables.iter().filter(|(n, _)| *n != MIGRATIONS_TABLE) {
        for column in &table.columns {
            let name = column.name.as_str();
            let fk = table.foreign_keys.iter().find(|f| f.columns == [name]);
            let exempt = NOT_FOREIGN_KEYS
                .iter()
                .any(|(t, c, _)| t == table_name && *c == name);
            if name.ends_with("_id") && fk.is_none() && !exempt {
                problems.push(format!(
                    "{table_name}.{name} is named like a reference but is no foreign key: add one with an explicit ON DELETE, or list it in NOT_FOREIGN_KEYS with the reason"
                ));
            }
            if let Some(fk) = fk {
                if !EXPLICIT_ON_DELETE.contains(&fk.on_delete.as_str()) {
                    problems.push(format!(
                        "{table_name}.{name} references {} with ON DELETE {}: say CASCADE, SET NULL or RESTRICT",
                        fk.referenced_table, fk.on_delete
                    ));
                }
                if !table.is_indexed(name) {
                    problems.push(format!(
                        "{table_name}.{name} is a foreign key without an index leading with it: add idx-{table_name}-{name}"
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "on {}:\n{}",
        t.backend.name(),
        problems.join("\n")
    );
}

/// Words that mark a column as holding a credential or secret.
const SECRET_WORDS: [&str; 6] = [
    "password",
    "secret",
    "token",
    "otp",
    "backup_code",
    "code_hash",
];
/// How a column naming a secret may end: a digest, a ciphertext, or metadata about it.
const SAFE_SUFFIXES: [&str; 6] = ["_hash", "_encrypted", "_at", "_count", "_attempts", "_step"];

async fn no_column_holds_a_plaintext_secret(t: TestDb) {
    let schema = introspect(&t.db).await.unwrap();
    let mut problems = Vec::new();
    let mut secret_columns = Vec::new();
    for (table_name, table) in &schema.tables {
        for column in &table.columns {
            let name = column.name.as_str();
            let holds_secret =
                SECRET_WORDS.iter().any(|w| name.contains(w)) || name.ends_with("key_hash");
            if !holds_secret {
                continue;
            }
            if !SAFE_SUFFIXES.iter().any(|s| name.ends_with(s)) {
                problems.push(format!(
                    "{table_name}.{name} looks like it stores a secret as is: store a hash (`_hash`) or ciphertext (`_encrypted`)"
                ));
            }
            if name.ends_with("_hash") || name.ends_with("_encrypted") {
                secret_columns.push((table_name.clone(), name.to_owned()));
            }
        }
    }
    // Every stored credential is classified as restricted.
    for (table_name, column) in &secret_columns {
        let n = t
            .count(&format!(
                "data_classification WHERE table_name = '{table_name}' AND column_name = '{column}' AND sensitivity = 'restricted'"
            ))
            .await;
        if n != 1 {
            problems.push(format!(
                "{table_name}.{column} holds a credential but is not classified `restricted` in data_classification: add it to the classification seed"
            ));
        }
    }
    assert!(
        secret_columns.len() >= 7,
        "expected the credential columns to be found: {secret_columns:?}"
    );
    assert!(
        problems.is_empty(),
        "on {}:\n{}",
        t.backend.name(),
        problems.join("\n")
    );
}
