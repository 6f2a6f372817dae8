//! atomic_inventory: row-locked, atomic inventory operations for PostgreSQL.
//!
//! Layout: `stock` (decrement, increment, adjust; `stock_direct`: the
//! ledger-off sale's row update through the table AM; `stock_many`: many lines), `packing` (the packing RPC's
//! increment_packing_quantity and its undo), `batches` (claim, claim
//! next, unclaim, start, complete), `reservations` (reserve, commit, release,
//! extend, expire), `stripes` (striped hot items), `bindings` (adopted app tables: bind, unbind, the per-backend binding cache), `bound` (operations on them), `sweeper` (settings, expiry worker), `idempotency`, `context`
//! (caller's tenant), `validate` (inputs), `errors` (the one error type and its
//! SQLSTATEs), `stats` (per-function counters and latency), `fmgr` (raw entry points), `spi` (kept plans, lock timeouts).
//! SQL declarations live in `sql/`: tables in bootstrap.sql, functions and
//! grants in functions.sql.

::pgrx::pg_module_magic!(name, version);

mod batches;
mod bind;
mod bindings;
mod bound;
mod bound_batches;
mod bound_reservations;
mod context;
mod errors;
mod fmgr;
mod idempotency;
mod jsonb;
mod packing;
mod reservations;
mod spi;
mod stats;
mod stock;
mod stock_direct;
mod stock_many;
mod stripes;
mod sweeper;
mod validate;

/// Registers the settings and, when preloaded, the reservation sweeper.
#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    sweeper::init();
    stats::init();
    bindings::init();
}

pgrx::extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);
pgrx::extension_sql_file!("../sql/functions.sql", name = "functions", finalize);

#[cfg(any(test, feature = "pg_test"))]
mod test_support;
#[cfg(any(test, feature = "pg_test"))]
mod tests;
#[cfg(any(test, feature = "pg_test"))]
mod tests_batches;
#[cfg(any(test, feature = "pg_test"))]
mod tests_bound;
#[cfg(any(test, feature = "pg_test"))]
mod tests_bound_reservations;
#[cfg(any(test, feature = "pg_test"))]
mod tests_packing;
#[cfg(any(test, feature = "pg_test"))]
mod tests_reservations;
#[cfg(any(test, feature = "pg_test"))]
mod tests_stats;
#[cfg(any(test, feature = "pg_test"))]
mod tests_stock_direct;
#[cfg(any(test, feature = "pg_test"))]
mod tests_stripes;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
