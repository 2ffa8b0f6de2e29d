//! `migrate create NAME`: writes a migration file in gatehouse's style into
//! the migration crate being run (gatehouse's or an application's) and
//! registers it in that crate's lib.rs.

use std::path::{Path, PathBuf};

/// The new migration's text. It names the column helpers as
/// `gatehouse_migration::columns`, so it compiles in gatehouse's migration
/// crate and in an application's (checked by `tests/fixtures/app-migration`).
pub const TEMPLATE: &str = include_str!("template.rs");

/// Whether `lib` is a migration crate's lib.rs: it implements `MigratorTrait`.
fn is_migration_crate(src: &Path) -> bool {
    std::fs::read_to_string(src.join("lib.rs"))
        .is_ok_and(|lib| lib.contains("impl MigratorTrait for"))
}

/// The migration crate's `src`: `dir`; else that of the crate `cargo run`
/// runs (`CARGO_MANIFEST_DIR`: an application's migration binary, or
/// `sea-orm-cli migrate`); else `./migration/src`; else `./src`.
fn source_dir(dir: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(dir) = dir {
        return Ok(dir.to_path_buf());
    }
    let running = std::env::var_os("CARGO_MANIFEST_DIR").map(|d| PathBuf::from(d).join("src"));
    running
        .into_iter()
        .chain(["migration/src", "src"].map(PathBuf::from))
        .find(|src| is_migration_crate(src))
        .ok_or_else(|| {
            "cannot find the migration crate (a src/lib.rs with `impl MigratorTrait for ...`); \
             run from the repository root or pass --dir"
                .into()
        })
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

/// `lib` with `mod <module>;` after the last migration module and the new
/// migration registered after the last registered one, in the same form
/// (`Box::new(m..::Migration),` in a `vec![...]`, or
/// `migrations.push(Box::new(m..::Migration));`); in a crate with no
/// migration yet, pushed after `let mut <v> = gatehouse_migration::migrations();`.
fn register(lib: &str, module: &str) -> Result<String, String> {
    let lines: Vec<&str> = lib.lines().collect();
    let indent = |l: &str| -> String { l.chars().take_while(|c| c.is_whitespace()).collect() };
    let is_mod = |l: &str| {
        let l = l.trim_start();
        (l.starts_with("mod m") || l.starts_with("pub mod m")) && l.ends_with(';')
    };
    let registered = |l: &str| l.contains("Box::new(m") && l.contains("::Migration)");
    let (at, line) = if let Some(last) = lines.iter().rposition(|l| registered(l)) {
        let old = lines[last];
        let from = old.find("Box::new(").expect("a registered line") + "Box::new(".len();
        let to = from + old[from..].find("::Migration)").expect("a registered line");
        (last + 1, format!("{}{module}{}", &old[..from], &old[to..]))
    } else {
        let start = lines
            .iter()
            .position(|l| l.contains("= gatehouse_migration::migrations();"))
            .ok_or_else(|| {
                format!(
                    "lib.rs registers no migration: add `Box::new({module}::Migration)` to your \
                     migrator's `migrations()` and `mod {module};` yourself"
                )
            })?;
        let var = lines[start]
            .trim_start()
            .trim_start_matches("let mut ")
            .split([' ', ':', '='])
            .next()
            .unwrap_or("migrations")
            .to_owned();
        (
            start + 1,
            format!(
                "{}{var}.push(Box::new({module}::Migration));",
                indent(lines[start])
            ),
        )
    };
    let mod_at = match lines.iter().rposition(|l| is_mod(l)) {
        Some(last) => last + 1,
        None => lines
            .iter()
            .position(|l| l.starts_with("pub struct") || l.starts_with("///"))
            .unwrap_or(lines.len()),
    };
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    out.insert(at, line);
    out.insert(mod_at, format!("mod {module};"));
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
    fn registers_an_applications_pushes() {
        let lib = "mod m1_a;\n\npub struct AppMigrator;\n\nfn migrations() {\n    let mut migrations = gatehouse_migration::migrations();\n    migrations.push(Box::new(m1_a::Migration));\n    migrations\n}\n";
        let out = register(lib, "m2_b").unwrap();
        assert!(out.contains("mod m1_a;\nmod m2_b;\n"), "{out}");
        assert!(
            out.contains("    migrations.push(Box::new(m1_a::Migration));\n    migrations.push(Box::new(m2_b::Migration));\n    migrations\n"),
            "{out}"
        );
    }

    #[test]
    fn registers_an_applications_first_migration() {
        let lib = "pub use sea_orm_migration::prelude::*;\n\npub struct AppMigrator;\n\nfn migrations() {\n    let mut all = gatehouse_migration::migrations();\n    all\n}\n";
        let out = register(lib, "m1_a").unwrap();
        assert!(out.contains("mod m1_a;\npub struct AppMigrator;"), "{out}");
        assert!(
            out.contains("    let mut all = gatehouse_migration::migrations();\n    all.push(Box::new(m1_a::Migration));\n"),
            "{out}"
        );
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

/// The template compiles here; `tests/fixtures/app-migration` compiles and
/// runs it in an application's crate.
#[cfg(test)]
#[allow(dead_code)]
#[path = "template.rs"]
mod m20990101_000001_template;
