//! PostgreSQL glue: the only place that calls into PostgreSQL's C API
//! beyond pgrx's safe wrappers.

pub mod fmgr;
pub mod jsonb;
pub mod path;
pub mod spi;
