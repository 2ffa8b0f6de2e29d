#!/usr/bin/env bash
# An application laid out by sea-orm-cli (root package `app`, crates `entity`
# and `migration`) adds gatehouse, gatehouse-entity and gatehouse-migration as
# it would from crates.io (here by path, with versions), composes one migrator
# that runs gatehouse's migrations and then its own (`posts`, with a foreign
# key to gatehouse's `users`), builds, and migrates a SQLite file. Fails if the
# crate names collide or the composed migrator does not build or run.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
app="$work/app"
mkdir -p "$app/src" "$app/entity/src" "$app/migration/src"

cat >"$app/Cargo.toml" <<EOF
[workspace]
members = [".", "entity", "migration"]

[package]
name = "app"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
entity = { path = "entity" }
migration = { path = "migration" }
gatehouse = { path = "$repo", version = "$version", default-features = false, features = ["sqlite"] }
sea-orm = { version = "2.0.4", default-features = false, features = ["sqlx-sqlite", "runtime-tokio-rustls", "macros"] }
tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
EOF

cat >"$app/entity/Cargo.toml" <<EOF
[package]
name = "entity"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
name = "entity"
path = "src/lib.rs"

[dependencies]
gatehouse-entity = { path = "$repo/entity", version = "$version" }
sea-orm = { version = "2.0.4", default-features = false, features = ["macros", "with-uuid", "with-chrono"] }
EOF

cat >"$app/entity/src/lib.rs" <<'EOF'
//! The application's own tables; gatehouse's are in `gatehouse_entity`.

pub mod posts;
EOF

cat >"$app/entity/src/posts.rs" <<'EOF'
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "posts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub title: String,
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
    pub user: BelongsTo<gatehouse_entity::users::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
EOF

# As `sea-orm-cli migrate init` writes it (tokio instead of async-std).
cat >"$app/migration/Cargo.toml" <<EOF
[package]
name = "migration"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
name = "migration"
path = "src/lib.rs"

[dependencies]
tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
gatehouse-migration = { path = "$repo/migration", version = "$version", default-features = false, features = ["sqlite"] }

[dependencies.sea-orm-migration]
version = "2.0.4"
default-features = false
features = ["runtime-tokio-rustls", "sqlx-sqlite"]
EOF

cat >"$app/migration/src/lib.rs" <<'EOF'
pub use sea_orm_migration::prelude::*;

mod m20260301_000001_create_posts;

/// gatehouse's migrations first, then the application's.
pub struct AppMigrator;

#[async_trait::async_trait]
impl MigratorTrait for AppMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut migrations = gatehouse_migration::Migrator::migrations();
        migrations.push(Box::new(m20260301_000001_create_posts::Migration));
        migrations
    }
}
EOF

cat >"$app/migration/src/m20260301_000001_create_posts.rs" <<'EOF'
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("posts"))
                    .col(pk_uuid(Alias::new("id")))
                    .col(uuid(Alias::new("user_id")))
                    .col(string(Alias::new("title")))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk-posts-user_id")
                            .from(Alias::new("posts"), Alias::new("user_id"))
                            .to(Alias::new("users"), Alias::new("id"))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new("posts")).to_owned())
            .await
    }
}
EOF

cat >"$app/migration/src/main.rs" <<'EOF'
use sea_orm_migration::MigratorTrait;

#[tokio::main]
async fn main() -> Result<(), sea_orm_migration::DbErr> {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let db = sea_orm_migration::sea_orm::Database::connect(url).await?;
    migration::AppMigrator::up(&db, None).await
}
EOF

# The application: migrates, then checks both crates' tables exist and a
# post can refer to a gatehouse user.
cat >"$app/src/main.rs" <<'EOF'
use migration::MigratorTrait;
use sea_orm::{ConnectionTrait, Database, EntityTrait, Statement};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")?;
    let db = Database::connect(&url).await?;
    migration::AppMigrator::up(&db, None).await?;
    for table in ["users", "posts"] {
        let found = db
            .query_one_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?",
                [table.into()],
            ))
            .await?;
        if found.is_none() {
            return Err(format!("table `{table}` missing after AppMigrator::up").into());
        }
    }
    let posts = entity::posts::Entity::find().all(&db).await?;
    let users = gatehouse::entity::users::Entity::find().all(&db).await?;
    println!("users and posts exist ({} users, {} posts)", users.len(), posts.len());
    Ok(())
}
EOF

# Start from the repository's lockfile so the same dependency versions (and
# their compiled artifacts in the shared target directory) are used.
cp "$repo/Cargo.lock" "$app/Cargo.lock"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
echo "[app-workspace] building $app (target $CARGO_TARGET_DIR)"
cargo build -q --manifest-path "$app/Cargo.toml" --workspace
DATABASE_URL="sqlite://$work/app.db?mode=rwc" cargo run -q --manifest-path "$app/Cargo.toml" -p app
echo "[app-workspace] ok: entity, migration, gatehouse-entity and gatehouse-migration coexist"
