//! `data_classification` lookups: how sensitive a `table.column` is, which
//! columns have a given sensitivity, and access counting (one atomic `UPDATE`).

use chrono::{DateTime, Utc};
use gatehouse_entity::data_classification::{self, Column, Entity};
use gatehouse_entity::sea_orm_active_enums::Sensitivity;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, QueryFilter, QueryOrder, sea_query::Expr,
};

use crate::Error;

/// Column size of `table_name` and `column_name`.
const NAME_CHARS: usize = 64;

/// Table and column names are SQL identifiers: 1 to 64 ASCII letters,
/// digits and underscores, not starting with a digit.
fn check_name(field: &'static str, name: &str) -> Result<(), Error> {
    let valid = !name.is_empty()
        && name.len() <= NAME_CHARS
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidInput {
            field,
            reason: format!(
                "must be an identifier of 1 to {NAME_CHARS} ASCII letters, digits and underscores"
            ),
        })
    }
}

/// The classification of `table.column`, if it is classified.
///
/// # Errors
/// [`Error::InvalidInput`] for names that cannot be identifiers; a database error.
pub async fn classification<C: ConnectionTrait>(
    db: &C,
    table: &str,
    column: &str,
) -> Result<Option<data_classification::Model>, Error> {
    check_name("table_name", table)?;
    check_name("column_name", column)?;
    Ok(Entity::find()
        .filter(Column::TableName.eq(table))
        .filter(Column::ColumnName.eq(column))
        .one(db)
        .await?)
}

/// Every classified column of `sensitivity`, by table then column.
///
/// # Errors
/// A database error.
pub async fn list_by_sensitivity<C: ConnectionTrait>(
    db: &C,
    sensitivity: Sensitivity,
) -> Result<Vec<data_classification::Model>, Error> {
    Ok(Entity::find()
        .filter(Column::Sensitivity.eq(sensitivity))
        .order_by_asc(Column::TableName)
        .order_by_asc(Column::ColumnName)
        .all(db)
        .await?)
}

/// Records an access to `table.column`: increments `access_count` and sets
/// `last_accessed_at` in one `UPDATE`, so concurrent accesses all count.
///
/// # Errors
/// [`Error::InvalidInput`] for bad names; [`Error::NotFound`] for a column
/// that is not classified; a database error.
pub async fn record_access<C: ConnectionTrait>(
    db: &C,
    table: &str,
    column: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    check_name("table_name", table)?;
    check_name("column_name", column)?;
    let updated = Entity::update_many()
        .col_expr(Column::AccessCount, Expr::col(Column::AccessCount).add(1))
        .col_expr(Column::LastAccessedAt, Expr::value(now))
        .filter(Column::TableName.eq(table))
        .filter(Column::ColumnName.eq(column))
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        return Err(Error::NotFound(format!(
            "classification of {table}.{column}"
        )));
    }
    Ok(())
}
