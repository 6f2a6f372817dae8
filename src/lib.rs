//! atomic_inventory: row-locked, atomic inventory operations for PostgreSQL.
//!
//! Layers, each using only those above it in this list:
//! - `settings` (every GUC), `error` (the one error type and its SQLSTATEs),
//!   `stats` (per-function counters);
//! - `pg`: PostgreSQL glue: entry points and their arguments, SPI and kept
//!   plans, subtransactions and lock limits, the pinned search path, jsonb;
//! - `core`: the caller and their tenant, input validation, idempotency
//!   keys, movements and their ledger rows;
//! - the operations and sources (being layered: `stock`, `stock_many`,
//!   `stripes`, `reservations`, `batches`, `packing`, `bindings`, `bind`,
//!   `bound*`);
//! - `api`: SQL-callable functions that are not operations (stats, caller);
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

mod batches;
mod bind;
mod bindings;
mod bound;
mod bound_batches;
mod bound_reservations;
mod packing;
mod reservations;
mod stock;
mod stock_many;
mod stripes;

mod api;
mod worker;

/// Registers the settings and, when preloaded, the reservation sweeper.
#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    settings::init();
    worker::init();
    stats::init();
    bindings::init();
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
