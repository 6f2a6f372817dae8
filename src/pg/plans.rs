//! Cached generic plans for an order's statements, whatever its size.
//!
//! Kept plans (spi.rs) are planned again for every execution while
//! PostgreSQL's plan cache finds a custom plan cheaper than the generic one,
//! and for an order of one to three ids it does: the planner knows the
//! arrays' lengths then, and estimates ten elements for a generic plan. The
//! plans are the same index probes either way, so the planning is pure
//! cost: 167 of the 575 us of backend CPU of a kit sale (`profile.sh
//! --variants kit`); with generic plans kit sales went from 0.69x / 0.54x
//! of a client's own three-component sale to 1.20x / 0.85x at 8 / 32
//! clients (docs/benchmarks.md, "Kits").

use super::guc::with_settings;

/// Run `f` with `plan_cache_mode = force_generic_plan`, set as fmgr sets a
/// function's SET clause (a new GUC nesting level, ended after `f`, the
/// caller's setting restored). An error unwinding through `f` leaves the
/// level to the transaction's or subtransaction's abort, as fmgr does.
pub fn generic<T>(f: impl FnOnce() -> T) -> T {
    with_settings(&[(c"plan_cache_mode", c"force_generic_plan")], f)
}

/// `generic`, planned with index scans only (no sequential or bitmap scan):
/// for a statement that locks rows in the order an index or its driving
/// array hands them over, whatever the table's size (a bitmap or
/// sequential scan hands them over in their physical order).
pub fn generic_by_index<T>(f: impl FnOnce() -> T) -> T {
    with_settings(
        &[
            (c"plan_cache_mode", c"force_generic_plan"),
            (c"enable_seqscan", c"off"),
            (c"enable_bitmapscan", c"off"),
        ],
        f,
    )
}
