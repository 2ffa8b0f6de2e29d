//! Equality on the case-insensitive unique columns `roles.name` and
//! `permissions.name`, written so that the database answers from their unique
//! index. On PostgreSQL and SQLite that index is on `lower(column)`, so only
//! `lower(column) = value` can use it; on MySQL/MariaDB it is on the column
//! itself under a case-insensitive collation, where a plain `column = value`
//! uses it and `lower()` would not.
//!
//! Not for accounts: an email or username is looked up by its folded form,
//! compared byte for byte on every backend (`accounts::find_by_identifier`).

use sea_orm::sea_query::{Expr, ExprTrait, Func, SimpleExpr};
use sea_orm::{ColumnTrait, DbBackend};

/// `column` equals `value` ignoring case, in the form the backend's unique index serves.
pub fn ci_eq<C: ColumnTrait>(backend: DbBackend, column: C, value: &str) -> SimpleExpr {
    match backend {
        DbBackend::MySql => column.eq(value),
        _ => Func::lower(Expr::col((column.entity_name(), column))).eq(value.to_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use gatehouse_entity::roles;
    use sea_orm::{DbBackend, EntityTrait, QueryFilter, QueryTrait};

    use super::ci_eq;

    fn sql(backend: DbBackend) -> String {
        roles::Entity::find()
            .filter(ci_eq(backend, roles::Column::Name, "Moderator"))
            .build(backend)
            .to_string()
    }

    #[test]
    fn postgres_and_sqlite_compare_lowered_mysql_compares_the_column() {
        assert!(
            sql(DbBackend::Postgres).contains(r#"WHERE LOWER("roles"."name") = 'moderator'"#),
            "{}",
            sql(DbBackend::Postgres)
        );
        assert!(sql(DbBackend::Sqlite).contains(r#"WHERE LOWER("roles"."name") = 'moderator'"#));
        assert!(sql(DbBackend::MySql).contains("WHERE `roles`.`name` = 'Moderator'"));
    }
}
