//! The example application's own tables as SeaORM entities; gatehouse's
//! tables are `gatehouse_entity`'s.

pub mod posts;
