//! atomic_inventory: row-locked, atomic inventory operations for PostgreSQL.
//!
//! Layers, each using only those above it in this list:
//! - `settings` (every GUC), `error` (the one error type and its SQLSTATEs),
//!   `stats` (per-function counters);
//! - `pg`: PostgreSQL glue: entry points and their arguments, SPI and kept
//!   plans, subtransactions and lock limits, the pinned search path, jsonb;
//! - `core`: the caller and their tenant, input validation, idempotency
//!   keys, movements and their ledger rows;
//! - `source`: where stock, holds and batches live, behind traits: the
//!   extension's own tables (`own`, with striped items) and adopted app
//!   tables (`bound`, with the binding cache and bind/unbind);
//! - `ops`: each operation's protocol, written once over the sources;
//! - `api`: the SQL-callable functions (read the arguments, pick the
//!   source, run the operation);
//! - `worker`: the reservation sweeper.
//!
//! SQL declarations live in `sql/`: tables in bootstrap.sql, functions and
//! grants in functions.sql.

::pgrx::pg_module_magic!(name, version);

mod error;
mod settings;
mod stats;

mod pg;

mod core;

mod source;

mod ops;

mod api;
mod worker;

/// Registers the settings and, when preloaded, the reservation sweeper.
#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    settings::init();
    worker::init();
    stats::init();
    pg::catalog::init();
}

pgrx::extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);
pgrx::extension_sql_file!("../sql/functions.sql", name = "functions", finalize);

#[cfg(any(test, feature = "pg_test"))]
mod tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
