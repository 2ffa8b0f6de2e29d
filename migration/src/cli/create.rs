//! `migrate create NAME`: writes a migration file in this crate's style and
//! registers it in `Migrator::migrations()`.

use std::path::{Path, PathBuf};

const TEMPLATE: &str = r#"//! TODO: what this migration changes, and why.

use crate::columns::*;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_database_backend();
        manager
            .create_table(
                create_table(db, Example::Table)
                    .col(pk_uuid(Example::Id))
                    .col(string_len(Example::Name, 64))
                    .col(timestamp_utc_now(db, Example::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Example::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Example {
    Table,
    Id,
    Name,
    CreatedAt,
}
"#;

/// The migration crate's `src`: `dir`, or `./migration/src`, or `./src` when
/// run inside the migration crate.
fn source_dir(dir: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(dir) = dir {
        return Ok(dir.to_path_buf());
    }
    for candidate in ["migration/src", "src"] {
        let path = Path::new(candidate);
        if std::fs::read_to_string(path.join("lib.rs"))
            .is_ok_and(|lib| lib.contains("impl MigratorTrait for Migrator"))
        {
            return Ok(path.to_path_buf());
        }
    }
    Err(
        "cannot find the migration crate (a src/lib.rs with `impl MigratorTrait for Migrator`); \
         run from the repository root or pass --dir"
            .into(),
    )
}

/// Writes `m<UTC timestamp>_<name>.rs` and registers it; returns its path.
///
/// # Errors
/// A message saying what is wrong with the name or the crate.
pub fn create(name: &str, dir: Option<&Path>) -> Result<PathBuf, String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(format!(
            "`{name}` is not a migration name; use lower-case snake case starting with a letter, e.g. add_user_locale"
        ));
    }
    let src = source_dir(dir)?;
    let lib_path = src.join("lib.rs");
    let lib = std::fs::read_to_string(&lib_path)
        .map_err(|e| format!("cannot read {}: {e}", lib_path.display()))?;
    let module = format!("m{}_{name}", chrono::Utc::now().format("%Y%m%d_%H%M%S"));
    let file = src.join(format!("{module}.rs"));
    if file.exists() {
        return Err(format!("{} exists already", file.display()));
    }
    let registered = register(&lib, &module)?;
    std::fs::write(&file, TEMPLATE).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    std::fs::write(&lib_path, registered)
        .map_err(|e| format!("cannot write {}: {e}", lib_path.display()))?;
    Ok(file)
}

/// `lib` with `mod <module>;` after the last migration module and
/// `Box::new(<module>::Migration),` after the last registered migration.
fn register(lib: &str, module: &str) -> Result<String, String> {
    let lines: Vec<&str> = lib.lines().collect();
    let is_mod = |l: &str| {
        let l = l.trim_start();
        (l.starts_with("mod m") || l.starts_with("pub mod m")) && l.ends_with(';')
    };
    let last_mod = lines
        .iter()
        .rposition(|l| is_mod(l))
        .ok_or("lib.rs declares no migration module")?;
    let last_box = lines
        .iter()
        .rposition(|l| l.trim_start().starts_with("Box::new(m"))
        .ok_or("lib.rs registers no migration in Migrator::migrations()")?;
    let indent: String = lines[last_box]
        .chars()
        .take_while(|c| c.is_whitespace())
        .collect();
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    out.insert(
        last_box + 1,
        format!("{indent}Box::new({module}::Migration),"),
    );
    out.insert(last_mod + 1, format!("mod {module};"));
    Ok(out.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_after_the_last_migration() {
        let lib = "mod m1_a;\nmod m2_b;\n\nfn migrations() {\n    vec![\n        Box::new(m1_a::Migration),\n        Box::new(m2_b::Migration),\n    ]\n}\n";
        let out = register(lib, "m3_c").unwrap();
        assert!(out.contains("mod m2_b;\nmod m3_c;\n"));
        assert!(out.contains(
            "        Box::new(m2_b::Migration),\n        Box::new(m3_c::Migration),\n    ]"
        ));
    }

    #[test]
    fn rejects_names_that_are_not_module_names() {
        for bad in ["", "Add", "add-user", "1st", "add user", "drop;table"] {
            assert!(
                create(bad, Some(Path::new("/nonexistent"))).is_err(),
                "{bad}"
            );
        }
    }
}
