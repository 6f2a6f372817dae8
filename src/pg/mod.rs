//! PostgreSQL glue: the only place that calls into PostgreSQL's C API
//! beyond pgrx's safe wrappers.

pub mod backend;
pub mod catalog;
pub mod check;
pub mod fmgr;
pub mod guc;
pub mod jsonb;
pub mod path;
pub mod plans;
pub mod raise;
pub mod spi;
