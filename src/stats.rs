//! Per-function call statistics: calls, successes, every error code, and a
//! latency histogram, read through the `atomic_inventory.stats` view and
//! zeroed by `stats_reset()`.
//!
//! Where they live: with `shared_preload_libraries = 'atomic_inventory'` one
//! table in shared memory counts every backend of the cluster (scope
//! 'cluster'). Without preloading, PostgreSQL gives no shared memory to an
//! extension, so each backend counts its own calls (scope 'backend', lost at
//! disconnect): the view still works, it just sees one connection.
//!
//! Cost: counters are relaxed atomics (no lock, no WAL): a handful of atomic
//! adds per call. Each counter is exact; a snapshot taken under load may show
//! a call in `calls` whose latency is not yet in the histogram.
//!
//! Latency is kept in a log-linear histogram (4 buckets per power of two of
//! microseconds), so a percentile is reported as the upper bound of its bucket:
//! at most 25% above the true value, never below it.

use pgrx::pg_sys;
use pgrx::pg_sys::submodules::panic::{CaughtError, ErrorReportWithLevel};
use pgrx::{PGRXSharedMemory, PgAtomic, PgSqlErrorCode};
use serde_json::{json, Map, Value};
use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// Counted functions, by SQL name; each C symbol is `ai_<name>`.
pub const FUNCTIONS: [&str; 39] = [
    "decrement_inventory",
    "decrement_inventory_many",
    "increment_inventory",
    "adjust_inventory",
    "transfer_inventory",
    "receive_transfer",
    "cancel_transfer",
    "reserve_inventory",
    "commit_reservation",
    "release_reservation",
    "extend_reservation",
    "expire_reservations",
    "claim_batch",
    "claim_next_batch",
    "unclaim_batch",
    "start_batch",
    "complete_batch",
    "extend_batch_lease",
    "increment_packing_quantity",
    "decrement_packing_quantity",
    "stripe_item",
    "bind_stock_source",
    "bind_batch_source",
    "unbind_source",
    "bound_decrement",
    "bound_decrement_many",
    "bound_increment",
    "bound_adjust",
    "bound_get",
    "bound_claim_batch",
    "bound_claim_next_batch",
    "bound_unclaim_batch",
    "bound_reserve",
    "bound_commit_reservation",
    "bound_release_reservation",
    "bind_packing_source",
    "bound_increment_packing_quantity",
    "bound_decrement_packing_quantity",
    "move_stock_state",
];

/// Every outcome but success: our codes (error.rs), then PostgreSQL errors
/// that escape a call, by the class a client acts on.
pub const CODES: [&str; 36] = [
    "INVALID_QUANTITY",
    "INVALID_INPUT",
    "NOT_FOUND",
    "INSUFFICIENT_INVENTORY",
    "QUANTITY_MISMATCH",
    "BELOW_RESERVED",
    "IDEMPOTENCY_CONFLICT",
    "BATCH_UNAVAILABLE",
    "BATCH_NOT_HELD",
    "DRIVER_LIMIT_REACHED",
    "RESERVATION_NOT_ACTIVE",
    "LINE_NOT_ACTIVE",
    "RESERVATION_EXPIRED",
    "SOURCE_IN_USE",
    "LEVEL_NOT_FOUND",
    "LOCATION_UNAVAILABLE",
    "TRANSFER_NOT_IN_TRANSIT",
    "SESSION_NOT_FOUND",
    "SESSION_NOT_PACKING",
    "PROGRESS_NOT_FOUND",
    "PROGRESS_SESSION_MISMATCH",
    "ORDER_NOT_FOUND",
    "ORDER_COMPLETED",
    "ORDER_CLOSED",
    "ALREADY_FULLY_PACKED",
    "BASKET_EXHAUSTED",
    "NOTHING_TO_UNPACK",
    "UNKNOWN_STOCK_STATE",
    "INSUFFICIENT_STOCK_STATE",
    "LOCK_TIMEOUT",
    "SCHEMA_OUTDATED",
    "INTERNAL",
    // raised by PostgreSQL inside a call:
    "DEADLOCK_DETECTED",     // 40P01
    "SERIALIZATION_FAILURE", // 40001 (caller at REPEATABLE READ / SERIALIZABLE)
    "QUERY_CANCELED",        // 57014: statement_timeout, pg_cancel_backend
    "OTHER_ERROR",           // anything else PostgreSQL raised
];

const NF: usize = FUNCTIONS.len();
const NC: usize = CODES.len();
/// 4 linear buckets per power of two, up to 2^40 µs (12 days).
const NB: usize = 160;

/// The C symbol's slot, at compile time: `entry_point!` fails to build for a
/// function missing from FUNCTIONS, unless it is one of the uncounted ones.
pub const fn slot(symbol: &str) -> Option<usize> {
    let s = symbol.as_bytes();
    let mut i = 0;
    while i < NF {
        let f = FUNCTIONS[i].as_bytes();
        if s.len() == f.len() + 3 && s[0] == b'a' && s[1] == b'i' && s[2] == b'_' {
            let mut j = 0;
            while j < f.len() && s[j + 3] == f[j] {
                j += 1;
            }
            if j == f.len() {
                return Some(i);
            }
        }
        i += 1;
    }
    None
}

struct Slot {
    calls: AtomicU64,
    ok: AtomicU64,
    errors: [AtomicU64; NC],
    total_us: AtomicU64,
    max_us: AtomicU64,
    hist: [AtomicU64; NB],
}

pub struct Table {
    /// TimestampTz of the last reset (0: not yet stamped).
    since: AtomicI64,
    slots: [Slot; NF],
}

// SAFETY: only atomics, no pointers; valid at any address in any process.
unsafe impl PGRXSharedMemory for Table {}

impl Table {
    const fn new() -> Self {
        Table {
            since: AtomicI64::new(0),
            slots: [const {
                Slot {
                    calls: AtomicU64::new(0),
                    ok: AtomicU64::new(0),
                    errors: [const { AtomicU64::new(0) }; NC],
                    total_us: AtomicU64::new(0),
                    max_us: AtomicU64::new(0),
                    hist: [const { AtomicU64::new(0) }; NB],
                }
            }; NF],
        }
    }

    fn stamped() -> Self {
        let t = Table::new();
        // SAFETY: plain clock read.
        t.since
            .store(unsafe { pg_sys::GetCurrentTimestamp() }, Relaxed);
        t
    }

    fn reset(&self) {
        for s in &self.slots {
            for c in [&s.calls, &s.ok, &s.total_us, &s.max_us]
                .into_iter()
                .chain(&s.errors)
                .chain(&s.hist)
            {
                c.store(0, Relaxed);
            }
        }
        // SAFETY: plain clock read.
        self.since
            .store(unsafe { pg_sys::GetCurrentTimestamp() }, Relaxed);
    }
}

static SHARED: PgAtomic<Table> = unsafe { PgAtomic::new(c"atomic_inventory_stats") };
static IN_SHARED_MEMORY: AtomicBool = AtomicBool::new(false);
/// This backend's own table, used when the library was not preloaded.
static LOCAL: Table = Table::new();

/// From `_PG_init`: ask for shared memory when preloaded.
// pg_shmem_init! tests features of pgrx's own (pg13, pg14, ...) in our crate.
#[allow(unexpected_cfgs)]
pub fn init() {
    use pgrx::{pg_guard, pg_sys};
    // SAFETY: reading a postmaster global during library load.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        pgrx::pg_shmem_init!(SHARED = Table::stamped());
        IN_SHARED_MEMORY.store(true, Relaxed);
    }
}

fn table() -> (&'static Table, &'static str) {
    if IN_SHARED_MEMORY.load(Relaxed) {
        (SHARED.get(), "cluster")
    } else {
        if LOCAL.since.load(Relaxed) == 0 {
            // SAFETY: plain clock read.
            LOCAL
                .since
                .store(unsafe { pg_sys::GetCurrentTimestamp() }, Relaxed);
        }
        (&LOCAL, "backend")
    }
}

fn bucket(us: u64) -> usize {
    if us < 4 {
        return us as usize;
    }
    let e = 63 - us.leading_zeros() as usize; // >= 2
    let top = (us >> (e - 2)) as usize; // 4..=7
    ((e - 1) * 4 + (top - 4)).min(NB - 1)
}

/// Largest value that falls in bucket `b`.
fn bucket_upper(b: usize) -> u64 {
    if b < 4 {
        return b as u64;
    }
    let e = b / 4 + 1;
    let top = (b % 4 + 4) as u64;
    ((top + 1) << (e - 2)) - 1
}

/// Count one finished call of function `slot`: `error` is an index into CODES.
pub fn record(slot: Option<usize>, started: Instant, error: Option<usize>) {
    let Some(slot) = slot else { return };
    let (t, _) = table();
    let s = &t.slots[slot];
    let us = started.elapsed().as_micros().min(u64::MAX as u128) as u64;
    s.calls.fetch_add(1, Relaxed);
    match error {
        None => s.ok.fetch_add(1, Relaxed),
        Some(code) => s.errors[code.min(NC - 1)].fetch_add(1, Relaxed),
    };
    s.total_us.fetch_add(us, Relaxed);
    s.max_us.fetch_max(us, Relaxed);
    s.hist[bucket(us)].fetch_add(1, Relaxed);
}

/// Index of one of our machine codes.
pub fn code_index(code: &str) -> usize {
    CODES.iter().position(|c| *c == code).unwrap_or(NC - 1)
}

/// Index of the error a call escaped with (a PostgreSQL ERROR or a panic,
/// both unwinding through pgrx as a panic payload).
pub fn panic_index(payload: &(dyn Any + Send)) -> usize {
    let report = match payload.downcast_ref::<CaughtError>() {
        Some(CaughtError::PostgresError(r)) | Some(CaughtError::ErrorReport(r)) => Some(r),
        Some(CaughtError::RustPanic { .. }) => return code_index("INTERNAL"),
        None => payload.downcast_ref::<ErrorReportWithLevel>(),
    };
    match report.map(|r| r.sql_error_code()) {
        Some(PgSqlErrorCode::ERRCODE_T_R_DEADLOCK_DETECTED) => code_index("DEADLOCK_DETECTED"),
        Some(PgSqlErrorCode::ERRCODE_T_R_SERIALIZATION_FAILURE) => {
            code_index("SERIALIZATION_FAILURE")
        }
        Some(PgSqlErrorCode::ERRCODE_QUERY_CANCELED) => code_index("QUERY_CANCELED"),
        Some(PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE) => code_index("LOCK_TIMEOUT"),
        Some(_) => code_index("OTHER_ERROR"),
        // a plain Rust panic (a bug): pgrx reports it as XX000
        None => code_index("INTERNAL"),
    }
}

fn ms(us: u64) -> Value {
    // three decimals, as a JSON number
    json!((us as f64) / 1000.0)
}

fn percentile(hist: &[u64; NB], n: u64, p: f64) -> Value {
    if n == 0 {
        return Value::Null;
    }
    let rank = ((n as f64) * p).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (b, count) in hist.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return ms(bucket_upper(b));
        }
    }
    ms(bucket_upper(NB - 1))
}

/// One JSON object per counted function, as `stats_snapshot()` answers.
pub fn snapshot() -> String {
    let (t, scope) = table();
    // SAFETY: timestamptz_to_str returns a palloc'd C string.
    let since = unsafe {
        std::ffi::CStr::from_ptr(pg_sys::timestamptz_to_str(t.since.load(Relaxed)))
            .to_string_lossy()
            .into_owned()
    };
    let rows: Vec<Value> = FUNCTIONS
        .iter()
        .zip(&t.slots)
        .map(|(name, s)| {
            let hist: [u64; NB] = std::array::from_fn(|b| s.hist[b].load(Relaxed));
            let timed: u64 = hist.iter().sum();
            let mut errors = Map::new();
            for (code, c) in CODES.iter().zip(&s.errors) {
                let n = c.load(Relaxed);
                if n > 0 {
                    errors.insert((*code).to_string(), json!(n));
                }
            }
            let err = |code: &str| s.errors[code_index(code)].load(Relaxed);
            let total_us = s.total_us.load(Relaxed);
            json!({
                "function": name,
                "calls": s.calls.load(Relaxed),
                "ok": s.ok.load(Relaxed),
                "errors": errors,
                "lock_timeouts": err("LOCK_TIMEOUT"),
                "deadlocks": err("DEADLOCK_DETECTED"),
                "serialization_failures": err("SERIALIZATION_FAILURE"),
                "canceled": err("QUERY_CANCELED"),
                "mean_ms": total_us.checked_div(timed).map_or(Value::Null, ms),
                "p50_ms": percentile(&hist, timed, 0.50),
                "p95_ms": percentile(&hist, timed, 0.95),
                "p99_ms": percentile(&hist, timed, 0.99),
                "max_ms": if timed == 0 { Value::Null } else { ms(s.max_us.load(Relaxed)) },
                "scope": scope,
                "since": since,
            })
        })
        .collect();
    Value::Array(rows).to_string()
}

/// Zero every counter (of the cluster, or of this backend when not
/// preloaded); answers the scope.
pub fn reset() -> &'static str {
    let (t, scope) = table();
    t.reset();
    scope
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_bound_their_values() {
        for us in [
            0u64, 1, 3, 4, 5, 7, 8, 9, 15, 16, 100, 999, 1000, 123_456, 10_000_000,
        ] {
            let b = bucket(us);
            assert!(bucket_upper(b) >= us, "{us} above its bucket {b}");
            assert!(
                bucket_upper(b) as f64 <= (us as f64) * 1.25 + 1.0,
                "{us}: bucket too wide"
            );
            if b > 0 {
                assert!(bucket_upper(b - 1) < us, "{us} belongs lower than {b}");
            }
        }
    }

    #[test]
    fn every_c_function_is_counted_or_deliberately_not() {
        let sql = include_str!("../sql/functions.sql");
        for sym in sql.split("'MODULE_PATHNAME', '").skip(1) {
            let sym = &sym[..sym.find('\'').unwrap()];
            let counted = slot(sym).is_some();
            let uncounted = matches!(sym, "ai_stats_snapshot" | "ai_stats_reset");
            assert!(counted != uncounted, "{sym}: add it to stats::FUNCTIONS");
        }
        for code in CODES {
            assert_eq!(CODES[code_index(code)], code);
        }
    }
}
