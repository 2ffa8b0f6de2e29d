//! Reads the live schema back from the database (tables, columns, indexes,
//! foreign keys, checks) and compares it with the entities, so drift between
//! the migrations and the `entity` crate is found on every backend. Tables
//! no gatehouse entity declares are the application's: listed by
//! [`application_tables`], not drift.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sea_orm::sea_query::ColumnType;
use sea_orm::{ColumnTrait, IdenStatic};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, Iterable, QueryResult, Statement};

/// The table sea-orm-migration records applied migrations in.
pub const MIGRATIONS_TABLE: &str = "seaql_migrations";

/// One column as the database reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// The backend's own spelling of the type (`timestamp with time zone`, `datetime(6)`, ...).
    pub data_type: String,
    /// Whether the column accepts NULL.
    pub nullable: bool,
    /// The default expression as the backend prints it.
    pub default: Option<String>,
}

/// One index, including the primary key's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Index {
    /// Index name (the backend's name for a primary key's).
    pub name: String,
    /// Whether the index is unique.
    pub unique: bool,
    /// Whether it is the primary key.
    pub primary: bool,
    /// Column names in order; an expression part is given as its SQL.
    pub columns: Vec<String>,
    /// The backend's definition of the index, where it keeps one (PostgreSQL, SQLite).
    pub definition: Option<String>,
}

/// One foreign key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForeignKey {
    /// The referencing columns, in order.
    pub columns: Vec<String>,
    /// The table referenced.
    pub referenced_table: String,
    /// Upper case: `CASCADE`, `SET NULL`, `RESTRICT`, `NO ACTION`, `SET DEFAULT`.
    pub on_delete: String,
    /// As `on_delete`, for updates of the referenced key.
    pub on_update: String,
}

/// One table of the live schema.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    /// Columns in table order.
    pub columns: Vec<Column>,
    /// Indexes, the primary key's included.
    pub indexes: Vec<Index>,
    /// Foreign keys.
    pub foreign_keys: Vec<ForeignKey>,
    /// CHECK constraint definitions as the backend prints them.
    pub checks: Vec<String>,
    /// The backend's CREATE statement, where it keeps one (SQLite).
    pub definition: Option<String>,
}

impl Table {
    /// Whether `column` is the leading column of some index (the primary key included).
    pub fn is_indexed(&self, column: &str) -> bool {
        self.indexes
            .iter()
            .any(|i| i.columns.first().is_some_and(|c| c == column))
    }

    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// The live schema: every table of the current database/schema by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveSchema {
    /// Tables by name.
    pub tables: BTreeMap<String, Table>,
}

impl LiveSchema {
    /// A stable, complete text form of the schema, for comparing two schemas
    /// and showing the difference.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (name, table) in &self.tables {
            let _ = writeln!(out, "table {name}");
            for c in &table.columns {
                let _ = writeln!(
                    out,
                    "  column {} {} {} default {}",
                    c.name,
                    c.data_type,
                    if c.nullable { "null" } else { "not null" },
                    c.default.as_deref().unwrap_or("-")
                );
            }
            let mut indexes = table.indexes.clone();
            indexes.sort_by(|a, b| a.name.cmp(&b.name));
            for i in &indexes {
                let _ = writeln!(
                    out,
                    "  index {}{}{} ({}) {}",
                    i.name,
                    if i.primary { " primary" } else { "" },
                    if i.unique { " unique" } else { "" },
                    i.columns.join(", "),
                    i.definition.as_deref().unwrap_or("")
                );
            }
            let mut fks = table.foreign_keys.clone();
            fks.sort_by(|a, b| a.columns.cmp(&b.columns));
            for f in &fks {
                let _ = writeln!(
                    out,
                    "  foreign key ({}) -> {} on delete {} on update {}",
                    f.columns.join(", "),
                    f.referenced_table,
                    f.on_delete,
                    f.on_update
                );
            }
            let mut checks = table.checks.clone();
            checks.sort();
            for c in &checks {
                let _ = writeln!(out, "  check {c}");
            }
            if let Some(def) = &table.definition {
                let _ = writeln!(out, "  definition {def}");
            }
        }
        out
    }
}

/// Reads the schema of the database `db` is connected to.
///
/// # Errors
/// A database error from one of the catalog queries.
pub async fn introspect<C: ConnectionTrait>(db: &C) -> Result<LiveSchema, DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => postgres::introspect(db).await,
        DbBackend::MySql => mysql::introspect(db).await,
        _ => sqlite::introspect(db).await,
    }
}

async fn rows<C: ConnectionTrait>(db: &C, sql: &str) -> Result<Vec<QueryResult>, DbErr> {
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        sql.to_owned(),
    ))
    .await
}

fn text(row: &QueryResult, col: &str) -> Result<String, DbErr> {
    row.try_get::<String>("", col)
}

fn opt_text(row: &QueryResult, col: &str) -> Result<Option<String>, DbErr> {
    row.try_get::<Option<String>>("", col)
}

mod postgres {
    use super::*;

    pub async fn introspect<C: ConnectionTrait>(db: &C) -> Result<LiveSchema, DbErr> {
        let mut schema = LiveSchema::default();
        for row in rows(
            db,
            // A partition belongs to its partitioned table, not the schema's list.
            "SELECT table_name::text AS t FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
               AND NOT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = \
                   (quote_ident(table_schema) || '.' || quote_ident(table_name))::regclass)",
        )
        .await?
        {
            schema.tables.insert(text(&row, "t")?, Table::default());
        }
        for row in rows(
            db,
            "SELECT table_name::text AS t, column_name::text AS c, \
                    format_type(a.atttypid, a.atttypmod) AS ty, \
                    is_nullable::text AS n, column_default::text AS d \
             FROM information_schema.columns ic \
             JOIN pg_attribute a ON a.attrelid = (quote_ident(ic.table_schema) || '.' || quote_ident(ic.table_name))::regclass \
                                 AND a.attname = ic.column_name \
             WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position",
        )
        .await?
        {
            if let Some(table) = schema.tables.get_mut(&text(&row, "t")?) {
                table.columns.push(Column {
                    name: text(&row, "c")?,
                    data_type: text(&row, "ty")?,
                    nullable: text(&row, "n")? == "YES",
                    default: opt_text(&row, "d")?,
                });
            }
        }
        for row in rows(
            db,
            "SELECT t.relname::text AS t, i.relname::text AS name, ix.indisunique AS u, \
                    ix.indisprimary AS p, pg_get_indexdef(ix.indexrelid) AS def, \
                    array_to_string(ARRAY( \
                        SELECT pg_get_indexdef(ix.indexrelid, k, true) \
                        FROM generate_series(1, ix.indnatts) AS k ORDER BY k), '|') AS cols \
             FROM pg_index ix \
             JOIN pg_class t ON t.oid = ix.indrelid \
             JOIN pg_class i ON i.oid = ix.indexrelid \
             JOIN pg_namespace n ON n.oid = t.relnamespace \
             WHERE n.nspname = current_schema()",
        )
        .await?
        {
            if let Some(table) = schema.tables.get_mut(&text(&row, "t")?) {
                table.indexes.push(Index {
                    name: text(&row, "name")?,
                    unique: row.try_get("", "u")?,
                    primary: row.try_get("", "p")?,
                    columns: text(&row, "cols")?
                        .split('|')
                        .map(|c| c.trim_matches('"').to_owned())
                        .collect(),
                    definition: Some(text(&row, "def")?),
                });
            }
        }
        for row in rows(
            db,
            "SELECT c.conrelid::regclass::text AS t, c.contype::text AS k, \
                    pg_get_constraintdef(c.oid) AS def, c.confrelid::regclass::text AS rt, \
                    c.confdeltype::text AS del, c.confupdtype::text AS upd, \
                    array_to_string(ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(n, o) \
                        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o), '|') AS cols \
             FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace \
             WHERE n.nspname = current_schema() AND c.contype IN ('f', 'c')",
        )
        .await?
        {
            let name = text(&row, "t")?;
            let Some(table) = schema.tables.get_mut(name.trim_matches('"')) else {
                continue;
            };
            if text(&row, "k")? == "c" {
                table.checks.push(text(&row, "def")?);
            } else {
                table.foreign_keys.push(ForeignKey {
                    columns: text(&row, "cols")?.split('|').map(str::to_owned).collect(),
                    referenced_table: text(&row, "rt")?.trim_matches('"').to_owned(),
                    on_delete: action(&text(&row, "del")?),
                    on_update: action(&text(&row, "upd")?),
                });
            }
        }
        Ok(schema)
    }

    /// pg_constraint's one-letter referential action codes.
    fn action(code: &str) -> String {
        match code {
            "c" => "CASCADE",
            "n" => "SET NULL",
            "r" => "RESTRICT",
            "d" => "SET DEFAULT",
            _ => "NO ACTION",
        }
        .to_owned()
    }
}

mod mysql {
    use super::*;

    pub async fn introspect<C: ConnectionTrait>(db: &C) -> Result<LiveSchema, DbErr> {
        let mut schema = LiveSchema::default();
        for row in rows(
            db,
            "SELECT CAST(TABLE_NAME AS CHAR) AS t FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'",
        )
        .await?
        {
            schema.tables.insert(text(&row, "t")?, Table::default());
        }
        for row in rows(
            db,
            "SELECT CAST(TABLE_NAME AS CHAR) AS t, CAST(COLUMN_NAME AS CHAR) AS c, \
                    CAST(COLUMN_TYPE AS CHAR) AS ty, CAST(IS_NULLABLE AS CHAR) AS n, \
                    CAST(COLUMN_DEFAULT AS CHAR) AS d \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
             ORDER BY TABLE_NAME, ORDINAL_POSITION",
        )
        .await?
        {
            if let Some(table) = schema.tables.get_mut(&text(&row, "t")?) {
                table.columns.push(Column {
                    name: text(&row, "c")?,
                    data_type: text(&row, "ty")?,
                    nullable: text(&row, "n")? == "YES",
                    default: opt_text(&row, "d")?,
                });
            }
        }
        let mut indexes: BTreeMap<(String, String), Index> = BTreeMap::new();
        for row in rows(
            db,
            "SELECT CAST(TABLE_NAME AS CHAR) AS t, CAST(INDEX_NAME AS CHAR) AS name, \
                    CAST(NON_UNIQUE AS SIGNED) AS nu, CAST(COLUMN_NAME AS CHAR) AS c \
             FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
             ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
        )
        .await?
        {
            let name = text(&row, "name")?;
            let index = indexes
                .entry((text(&row, "t")?, name.clone()))
                .or_insert_with(|| Index {
                    primary: name == "PRIMARY",
                    name,
                    unique: false,
                    columns: Vec::new(),
                    definition: None,
                });
            index.unique = row.try_get::<i64>("", "nu")? == 0;
            index
                .columns
                .push(opt_text(&row, "c")?.unwrap_or_else(|| "<expression>".to_owned()));
        }
        for ((t, _), index) in indexes {
            if let Some(table) = schema.tables.get_mut(&t) {
                table.indexes.push(index);
            }
        }
        let mut fks: BTreeMap<(String, String), ForeignKey> = BTreeMap::new();
        for row in rows(
            db,
            "SELECT CAST(k.TABLE_NAME AS CHAR) AS t, CAST(k.CONSTRAINT_NAME AS CHAR) AS name, \
                    CAST(k.COLUMN_NAME AS CHAR) AS c, CAST(k.REFERENCED_TABLE_NAME AS CHAR) AS rt, \
                    CAST(r.DELETE_RULE AS CHAR) AS del, CAST(r.UPDATE_RULE AS CHAR) AS upd \
             FROM information_schema.KEY_COLUMN_USAGE k \
             JOIN information_schema.REFERENTIAL_CONSTRAINTS r \
               ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME \
              AND r.TABLE_NAME = k.TABLE_NAME \
             WHERE k.TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME IS NOT NULL \
             ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION",
        )
        .await?
        {
            let fk = fks
                .entry((text(&row, "t")?, text(&row, "name")?))
                .or_insert(ForeignKey {
                    columns: Vec::new(),
                    referenced_table: text(&row, "rt")?,
                    on_delete: text(&row, "del")?,
                    on_update: text(&row, "upd")?,
                });
            fk.columns.push(text(&row, "c")?);
        }
        for ((t, _), fk) in fks {
            if let Some(table) = schema.tables.get_mut(&t) {
                table.foreign_keys.push(fk);
            }
        }
        for row in rows(
            db,
            "SELECT CAST(tc.TABLE_NAME AS CHAR) AS t, CAST(tc.CONSTRAINT_NAME AS CHAR) AS name, \
                    CAST(cc.CHECK_CLAUSE AS CHAR) AS def \
             FROM information_schema.TABLE_CONSTRAINTS tc \
             JOIN information_schema.CHECK_CONSTRAINTS cc \
               ON cc.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA AND cc.CONSTRAINT_NAME = tc.CONSTRAINT_NAME \
             WHERE tc.TABLE_SCHEMA = DATABASE() AND tc.CONSTRAINT_TYPE = 'CHECK'",
        )
        .await?
        {
            if let Some(table) = schema.tables.get_mut(&text(&row, "t")?) {
                let check = format!("{}: {}", text(&row, "name")?, text(&row, "def")?);
                if !table.checks.contains(&check) {
                    table.checks.push(check);
                }
            }
        }
        Ok(schema)
    }
}

mod sqlite {
    use super::*;

    pub async fn introspect<C: ConnectionTrait>(db: &C) -> Result<LiveSchema, DbErr> {
        let mut schema = LiveSchema::default();
        for row in rows(
            db,
            "SELECT name AS t, sql AS def FROM sqlite_master \
             WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .await?
        {
            let definition = opt_text(&row, "def")?;
            schema.tables.insert(
                text(&row, "t")?,
                Table {
                    definition,
                    ..Table::default()
                },
            );
        }
        let names: Vec<String> = schema.tables.keys().cloned().collect();
        for name in names {
            let quoted = name.replace('\'', "''");
            let mut table = schema.tables.remove(&name).unwrap_or_default();
            for row in rows(
                db,
                &format!(
                    "SELECT name AS c, type AS ty, \"notnull\" AS nn, pk, dflt_value AS d \
                     FROM pragma_table_info('{quoted}') ORDER BY cid"
                ),
            )
            .await?
            {
                let pk: i32 = row.try_get("", "pk")?;
                let not_null: i32 = row.try_get("", "nn")?;
                table.columns.push(Column {
                    name: text(&row, "c")?,
                    data_type: text(&row, "ty")?,
                    nullable: not_null == 0 && pk == 0,
                    default: opt_text(&row, "d")?,
                });
            }
            let pk_columns: Vec<String> = {
                let mut pk: Vec<(i32, String)> = Vec::new();
                for row in rows(
                    db,
                    &format!(
                        "SELECT name AS c, pk FROM pragma_table_info('{quoted}') WHERE pk > 0"
                    ),
                )
                .await?
                {
                    pk.push((row.try_get("", "pk")?, text(&row, "c")?));
                }
                pk.sort();
                pk.into_iter().map(|(_, c)| c).collect()
            };
            if !pk_columns.is_empty() {
                table.indexes.push(Index {
                    name: format!("pk-{name}"),
                    unique: true,
                    primary: true,
                    columns: pk_columns,
                    definition: None,
                });
            }
            for row in rows(
                db,
                &format!(
                    "SELECT l.name AS name, l.\"unique\" AS u, l.origin AS o, m.sql AS def \
                     FROM pragma_index_list('{quoted}') l \
                     LEFT JOIN sqlite_master m ON m.type = 'index' AND m.name = l.name"
                ),
            )
            .await?
            {
                let index_name = text(&row, "name")?;
                if text(&row, "o")? == "pk" {
                    continue;
                }
                let mut columns = Vec::new();
                for col in rows(
                    db,
                    &format!(
                        "SELECT name AS c FROM pragma_index_info('{}') ORDER BY seqno",
                        index_name.replace('\'', "''")
                    ),
                )
                .await?
                {
                    columns.push(opt_text(&col, "c")?.unwrap_or_else(|| "<expression>".to_owned()));
                }
                let unique: i32 = row.try_get("", "u")?;
                table.indexes.push(Index {
                    name: index_name,
                    unique: unique == 1,
                    primary: false,
                    columns,
                    definition: opt_text(&row, "def")?,
                });
            }
            let mut fks: BTreeMap<i32, ForeignKey> = BTreeMap::new();
            for row in rows(
                db,
                &format!(
                    "SELECT id, \"table\" AS rt, \"from\" AS c, on_update AS upd, on_delete AS del \
                     FROM pragma_foreign_key_list('{quoted}') ORDER BY id, seq"
                ),
            )
            .await?
            {
                let fk = fks.entry(row.try_get("", "id")?).or_insert(ForeignKey {
                    columns: Vec::new(),
                    referenced_table: text(&row, "rt")?,
                    on_delete: text(&row, "del")?,
                    on_update: text(&row, "upd")?,
                });
                fk.columns.push(text(&row, "c")?);
            }
            table.foreign_keys = fks.into_values().collect();
            schema.tables.insert(name, table);
        }
        Ok(schema)
    }
}

/// The portable family of a column type, as far as drift detection cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TypeFamily {
    /// UUIDs (`uuid`, `binary(16)`, blob).
    Uuid,
    /// Character data.
    Text,
    /// Integers of any width.
    Integer,
    /// Booleans (`tinyint(1)` on MySQL/MariaDB).
    Boolean,
    /// Date and time.
    Timestamp,
    /// Date only.
    Date,
    /// JSON (`jsonb`, `json`, text on SQLite).
    Json,
    /// Anything else.
    Other,
}

/// The family of an entity column type.
pub fn entity_family(ty: &ColumnType) -> TypeFamily {
    match ty {
        ColumnType::Uuid => TypeFamily::Uuid,
        ColumnType::Char(_) | ColumnType::String(_) | ColumnType::Text => TypeFamily::Text,
        ColumnType::TinyInteger
        | ColumnType::SmallInteger
        | ColumnType::Integer
        | ColumnType::BigInteger
        | ColumnType::TinyUnsigned
        | ColumnType::SmallUnsigned
        | ColumnType::Unsigned
        | ColumnType::BigUnsigned => TypeFamily::Integer,
        ColumnType::Boolean => TypeFamily::Boolean,
        ColumnType::DateTime | ColumnType::Timestamp | ColumnType::TimestampWithTimeZone => {
            TypeFamily::Timestamp
        }
        ColumnType::Date => TypeFamily::Date,
        ColumnType::Json | ColumnType::JsonBinary => TypeFamily::Json,
        _ => TypeFamily::Other,
    }
}

/// The family of a live column type as `backend` spells it.
pub fn live_family(backend: DbBackend, ty: &str) -> TypeFamily {
    let ty = ty.to_ascii_lowercase();
    let base = ty.split('(').next().unwrap_or_default().trim();
    match (backend, base) {
        (DbBackend::MySql, "binary") if ty == "binary(16)" => TypeFamily::Uuid,
        (DbBackend::MySql, "tinyint") if ty == "tinyint(1)" => TypeFamily::Boolean,
        // MariaDB implements JSON as LONGTEXT with a json_valid() check.
        (DbBackend::MySql, "longtext") => TypeFamily::Json,
        (_, "uuid" | "uuid_text") => TypeFamily::Uuid,
        (_, "character varying" | "varchar" | "character" | "char" | "text") => TypeFamily::Text,
        (_, "integer" | "int" | "bigint" | "smallint" | "tinyint") => TypeFamily::Integer,
        (_, "boolean" | "bool") => TypeFamily::Boolean,
        (
            _,
            "timestamp with time zone" | "timestamp_with_timezone_text" | "datetime" | "timestamp",
        ) => TypeFamily::Timestamp,
        (_, "date" | "date_text") => TypeFamily::Date,
        (_, "json" | "jsonb" | "json_text" | "jsonb_text") => TypeFamily::Json,
        _ => TypeFamily::Other,
    }
}

/// One entity column as declared in the `entity` crate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityColumn {
    /// Column name.
    pub name: String,
    /// Its type family.
    pub family: TypeFamily,
    /// Whether the entity declares it nullable.
    pub nullable: bool,
}

/// Every table the `entity` crate declares, with its columns.
pub fn entity_tables() -> BTreeMap<String, Vec<EntityColumn>> {
    fn table<E: EntityTrait + Default>() -> (String, Vec<EntityColumn>) {
        let columns = E::Column::iter()
            .map(|col| {
                let def = col.def();
                EntityColumn {
                    name: col.as_str().to_owned(),
                    family: entity_family(def.get_column_type()),
                    nullable: def.is_null(),
                }
            })
            .collect();
        (E::default().table_name().to_owned(), columns)
    }
    use gatehouse_entity::*;
    BTreeMap::from([
        table::<api_keys::Entity>(),
        table::<audit_log_basic::Entity>(),
        table::<audit_logs::Entity>(),
        table::<data_classification::Entity>(),
        table::<encryption_keys::Entity>(),
        table::<failed_login_attempts::Entity>(),
        table::<login_throttles::Entity>(),
        table::<mfa_backup_codes::Entity>(),
        table::<mfa_configurations::Entity>(),
        table::<mfa_trusted_devices::Entity>(),
        table::<password_history::Entity>(),
        table::<permissions::Entity>(),
        table::<role_permissions::Entity>(),
        table::<roles::Entity>(),
        table::<security_events::Entity>(),
        table::<security_metrics::Entity>(),
        table::<session_audit_log::Entity>(),
        table::<sessions::Entity>(),
        table::<user_roles::Entity>(),
        table::<users::Entity>(),
    ])
}

/// The tables of the live schema that are not gatehouse's: no gatehouse
/// entity declares them and they are not the migration records. In an
/// application's database these are the application's own (`posts`, ...).
pub fn application_tables(live: &LiveSchema) -> Vec<String> {
    let entities = entity_tables();
    live.tables
        .keys()
        .filter(|name| {
            let tracking = *name == MIGRATIONS_TABLE
                || *name == gatehouse_migration::runner::ledger::LEDGER_TABLE
                || *name == gatehouse_migration::runner::lock::LEASE_TABLE;
            !tracking && !entities.contains_key(*name)
        })
        .cloned()
        .collect()
}

/// Every difference between the live schema and gatehouse's entities, one
/// sentence each saying what differs and where to fix it. Empty when they
/// agree. Only gatehouse's tables are judged: a table no entity declares is
/// the application's ([`application_tables`]), not drift.
pub fn drift(backend: DbBackend, live: &LiveSchema) -> Vec<String> {
    let entities = entity_tables();
    let mut problems = Vec::new();
    for (name, columns) in &entities {
        let Some(table) = live.tables.get(name) else {
            problems.push(format!(
                "entity `{name}` has no table in the database: a migration must create it (or run `migrate up`)"
            ));
            continue;
        };
        for column in columns {
            let Some(live_col) = table.column(&column.name) else {
                problems.push(format!(
                    "column `{name}.{}` is declared by the entity but missing from the database",
                    column.name
                ));
                continue;
            };
            let family = live_family(backend, &live_col.data_type);
            if family != column.family {
                problems.push(format!(
                    "column `{name}.{}` is {:?} in the entity but `{}` ({family:?}) in the database",
                    column.name, column.family, live_col.data_type
                ));
            }
            if live_col.nullable != column.nullable {
                problems.push(format!(
                    "column `{name}.{}` is {} in the entity but {} in the database",
                    column.name,
                    if column.nullable {
                        "nullable (Option)"
                    } else {
                        "NOT NULL"
                    },
                    if live_col.nullable {
                        "nullable"
                    } else {
                        "NOT NULL"
                    },
                ));
            }
        }
        for live_col in &table.columns {
            if !columns.iter().any(|c| c.name == live_col.name) {
                problems.push(format!(
                    "column `{name}.{}` exists in the database but not in entity/src/{name}.rs",
                    live_col.name
                ));
            }
        }
    }
    problems
}
