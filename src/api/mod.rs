//! The SQL-callable functions: each reads its arguments, validates them,
//! picks the source and runs the operation (ops/), or answers itself.

mod batches;
mod bind;
mod caller;
mod packing;
mod reservations;
mod states;
mod stats;
mod stock;
mod stripes;

/// Every C function of the extension and the argument types its body
/// reads (a #[pg_test] compares them with pg_proc).
#[cfg(any(test, feature = "pg_test"))]
pub fn declared() -> Vec<&'static crate::pg::fmgr::Declared> {
    [
        batches::DECLARED,
        bind::DECLARED,
        packing::DECLARED,
        reservations::DECLARED,
        states::DECLARED,
        stats::DECLARED,
        stock::DECLARED,
        stripes::DECLARED,
        crate::pg::check::DECLARED,
    ]
    .into_iter()
    .flatten()
    .collect()
}
