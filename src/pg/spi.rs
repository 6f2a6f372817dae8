//! SPI helpers: statements prepared once per backend and kept, the optional
//! lock wait limit, and the mapping of lock timeouts to LOCK_TIMEOUT.

use crate::error::{Error, Result};
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::pg_sys::{self, PgOid};
use pgrx::spi::{OwnedPreparedStatement, Spi, SpiClient, SpiTupleTable};
use pgrx::PgSqlErrorCode;
use pgrx::PgTryBuilder;
use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;

/// A statement with its parameter types. `name` keys the per-backend plan cache.
pub struct Stmt {
    pub name: &'static str,
    pub sql: &'static str,
    pub args: &'static [pg_sys::Oid],
}

thread_local! {
    // Kept SPI plans live in CacheMemoryContext and are revalidated by the
    // plan cache when tables change, so one prepare per backend suffices.
    // Rc so no RefCell borrow is held while a statement runs (a trigger could
    // call back into us).
    static PLANS: RefCell<HashMap<&'static str, Rc<OwnedPreparedStatement>>> =
        RefCell::new(HashMap::new());
}

/// Run a (possibly writing) statement through its kept plan.
pub fn run<'conn>(
    client: &mut SpiClient<'conn>,
    stmt: &Stmt,
    args: &[DatumWithOid<'_>],
) -> Result<SpiTupleTable<'conn>> {
    let cached = PLANS.with_borrow(|p| p.get(stmt.name).cloned());
    let plan = match cached {
        Some(p) => p,
        None => {
            let oids: Vec<PgOid> = stmt.args.iter().map(|o| PgOid::from_untagged(*o)).collect();
            let p = Rc::new(client.prepare_mut(stmt.sql, &oids)?.keep());
            PLANS.with_borrow_mut(|m| m.insert(stmt.name, p.clone()));
            p
        }
    };
    execute_kept(client, &plan, args)
}

/// Execute a kept plan. The plans are prepared with `prepare_mut`, so SPI
/// always runs them read-write (a fresh snapshot per statement, our own
/// writes visible to the next one), as `update` would. What `update` adds,
/// and this leaves out, is pgrx's `Spi::mark_mutable`: it assigns a
/// transaction id before the statement runs. PostgreSQL assigns one itself
/// on the first row a statement writes or locks, so a call that writes
/// something is unchanged; a call that changes nothing (claim_next_batch
/// with no batch left, an idempotent replay) commits without consuming a
/// transaction id or writing a commit record. With `update` it was 1 xid and
/// 1 WAL record per empty claim_next_batch poll, which drivers polling an
/// empty pool turn into anti-wraparound vacuums (pg_test/faults.py checks
/// both calls, and that a sale does get its xid).
pub fn execute_kept<'conn>(
    client: &SpiClient<'conn>,
    plan: &OwnedPreparedStatement,
    args: &[DatumWithOid<'_>],
) -> Result<SpiTupleTable<'conn>> {
    Ok(client.select(plan, None, args)?)
}

const INSTALLED_VERSION: Stmt = Stmt {
    name: "installed_version",
    sql:
        "SELECT e.extversion FROM pg_catalog.pg_extension AS e WHERE e.extname = 'atomic_inventory'",
    args: &[],
};

thread_local! {
    /// This backend found the installed SQL at the library's version.
    static SCHEMA_CHECKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Once per backend: the library's statements need the tables of its own
/// release. Between installing a new library and `ALTER EXTENSION
/// atomic_inventory UPDATE`, calls fail with SCHEMA_OUTDATED (nothing is
/// changed) instead of with whatever column a statement misses. Only a match
/// is remembered, so the first call after the update goes through.
fn check_schema(client: &mut SpiClient<'_>) -> Result<()> {
    if SCHEMA_CHECKED.get() {
        return Ok(());
    }
    require_version(installed_version(client)?.unwrap_or_default())?;
    SCHEMA_CHECKED.set(true);
    Ok(())
}

/// The extension's SQL version in this database; None if not installed.
pub(crate) fn installed_version(client: &mut SpiClient<'_>) -> Result<Option<String>> {
    let t = run(client, &INSTALLED_VERSION, &[])?;
    if t.is_empty() {
        return Ok(None);
    }
    Ok(t.first().get::<String>(1)?)
}

/// SCHEMA_OUTDATED unless `installed` is this library's release.
pub(crate) fn require_version(installed: String) -> Result<()> {
    let library = env!("CARGO_PKG_VERSION");
    if installed != library {
        return Err(Error::SchemaOutdated {
            installed,
            library: library.to_string(),
        });
    }
    Ok(())
}

/// Run `f` with row lock waits limited to `ms` (lock_timeout), the
/// caller's setting back afterwards; on an error, the abort of the
/// transaction or subtransaction puts it back (guc.rs).
pub fn with_lock_timeout<T>(ms: i32, f: impl FnOnce() -> T) -> T {
    let value = std::ffi::CString::new(format!("{ms}ms")).expect("no NUL in a number");
    super::guc::with_settings(&[(c"lock_timeout", value.as_c_str())], f)
}

/// A lock wait past lock_timeout (55P03), as PgTryBuilder caught it.
fn lock_wait_ran_out(e: &CaughtError) -> bool {
    match e {
        CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => {
            r.sql_error_code() == PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE
        }
        CaughtError::RustPanic { .. } => false,
    }
}

/// Run `f` in one SPI connection. With `lock_timeout_ms`, row lock waits are
/// limited for the duration of `f` only (the caller's setting is restored, so
/// nothing leaks into the rest of their transaction). A lock wait that runs
/// out, ours or the session's own lock_timeout, becomes LOCK_TIMEOUT (PT503):
/// the statement failed before changing anything, so a retry is safe.
pub fn with_spi<T>(
    lock_timeout_ms: Option<i32>,
    f: impl FnOnce(&mut SpiClient<'_>) -> Result<T>,
) -> Result<T> {
    let work = AssertUnwindSafe(move || {
        Spi::connect_mut(|client| {
            check_schema(client)?;
            match lock_timeout_ms {
                Some(ms) => with_lock_timeout(ms, || f(client)),
                None => f(client),
            }
        })
    });
    PgTryBuilder::new(work)
        .catch_when(PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE, move |_| {
            // Raised again by the entry point as our own error; the transaction
            // is aborted right after, so nothing runs in the failed state.
            Err(Error::LockTimeout {
                timeout_ms: lock_timeout_ms,
                busy: Vec::new(),
            })
        })
        .execute()
}

/// Open an internal subtransaction as PL/pgSQL's exec_stmt_block does: the
/// work runs in the caller's memory context (so what it allocates survives
/// either ending) under the subtransaction's resource owner, so that rolling
/// it back releases what the work held (buffer pins, relation references,
/// snapshots, plan references) even when an error cut the work short; in
/// the caller's owner they would stay held until the whole transaction
/// ended, and a caller that went on to commit would log them as leaks.
/// Returns what restores the caller's context and owner: call it after
/// releasing or rolling the subtransaction back.
fn begin_subtransaction() -> impl Fn() + Copy {
    // SAFETY: reads two backend globals, opens a subtransaction of the
    // current transaction, then switches back to the caller's memory
    // context; the owner stays the subtransaction's until restore().
    let (cxt, owner) = unsafe { (pg_sys::CurrentMemoryContext, pg_sys::CurrentResourceOwner) };
    let restore = move || unsafe {
        pg_sys::MemoryContextSwitchTo(cxt);
        pg_sys::CurrentResourceOwner = owner;
    };
    unsafe {
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(cxt);
    }
    restore
}

/// `attempt` for work whose failure must not end the rest of the caller's
/// (the sweep of one bound source, a round of the sweeper): `f` runs in a
/// subtransaction, kept if it answers Ok, rolled back if it fails; a
/// PostgreSQL error inside is not raised again but answered as Err: a lock
/// wait past lock_timeout as LOCK_TIMEOUT, any other with its SQLSTATE and
/// message.
pub fn isolated<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    let restore = begin_subtransaction();
    let out = PgTryBuilder::new(AssertUnwindSafe(f))
        .catch_others(move |e| {
            if lock_wait_ran_out(&e) {
                return Err(Error::LockTimeout {
                    timeout_ms: None,
                    busy: Vec::new(),
                });
            }
            let report = match &e {
                CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => r,
                CaughtError::RustPanic { ereport, .. } => ereport,
            };
            Err(Error::Internal(format!(
                "{} ({:?})",
                report.message(),
                report.sql_error_code()
            )))
        })
        .execute();
    unsafe {
        match out {
            Ok(_) => pg_sys::ReleaseCurrentSubTransaction(),
            Err(_) => pg_sys::RollbackAndReleaseCurrentSubTransaction(),
        }
    }
    restore();
    out
}

/// Run `f` in an internal subtransaction (what a PL/pgSQL block with an
/// EXCEPTION clause opens): its writes are kept if it answers `Some`, rolled
/// back (row locks released with them) if it answers `None`. An error inside
/// rolls the subtransaction back before it propagates, so whoever catches it
/// (a caller's own EXCEPTION block) finds the transaction nesting it left.
///
/// Measured (PL/pgSQL, 5-line UPDATE, pgbench -c 8, uniform keys): about 1%
/// of the call. On contended rows far more: its release wakes every caller
/// queued on the rows it wrote, who queue again on our top-level transaction
/// (15-25% of 5-line orders on hot rows, docs/benchmarks.md), which is why
/// the multi-line sale does without one. Used by stripe attempts.
///
/// `f` must not keep a tuple table of a statement it ran past its return
/// (rolling back frees them; read what it needs into Rust values first).
pub fn attempt<T>(f: impl FnOnce() -> Result<Option<T>>) -> Result<Option<T>> {
    in_subtransaction(false, f)
}

/// Run `f`, whose statements must not wait for a row lock (SKIP LOCKED),
/// in a subtransaction with lock waits limited to `WAIT_CAP_MS`: None if a
/// wait ran past that (rolled back: the rows `f` locked are released, the
/// caller's are kept), else `f`'s answer (kept, the caller's lock_timeout
/// back). Any other error rolls back and propagates unchanged.
///
/// Why: SKIP LOCKED does not always keep PostgreSQL from waiting. Locking a
/// row version whose updater commits right as it is checked, PostgreSQL
/// follows the update chain and waits for whoever holds the newer version
/// (heap_lock_updated_tuple takes no wait policy). A caller that holds rows
/// of higher ids must not wait (a deadlock with a call that holds that
/// newer version and waits for one of ours: the stress test met it, 40P01,
/// with commit_reservation); WAIT_CAP_MS ends such a wait long before the
/// deadlock check would (deadlock_timeout, 1 s by default).
pub fn without_waiting<T>(
    client: &mut SpiClient<'_>,
    f: impl FnOnce(&mut SpiClient<'_>) -> Result<T>,
) -> Result<Option<T>> {
    in_subtransaction(true, || {
        with_lock_timeout(WAIT_CAP_MS, || f(client)).map(Some)
    })
}

/// `attempt` whose lock waits are limited as `without_waiting` limits
/// them: kept if `f` answers `Some`, rolled back (its row locks released)
/// if it answers None or a wait ran past `WAIT_CAP_MS`. For a statement
/// that may lock a row and go on to wait for another in the same scan
/// (stripes.rs, a striped sale's SKIP LOCKED attempt, at any level).
pub fn attempt_without_waiting<T>(
    client: &mut SpiClient<'_>,
    f: impl FnOnce(&mut SpiClient<'_>) -> Result<Option<T>>,
) -> Result<Option<T>> {
    in_subtransaction(true, || with_lock_timeout(WAIT_CAP_MS, || f(client)))
}

/// The longest lock wait of `without_waiting` and `attempt_without_waiting`.
const WAIT_CAP_MS: i32 = 10;

/// `attempt`, and (`lock_wait_is_none`) `without_waiting`: `f` in a
/// subtransaction, kept on `Some`, rolled back on `None` or an error; a
/// PostgreSQL error propagates after the rollback, except a lock wait past
/// lock_timeout when `lock_wait_is_none`, answered as None.
fn in_subtransaction<T>(
    lock_wait_is_none: bool,
    f: impl FnOnce() -> Result<Option<T>>,
) -> Result<Option<T>> {
    let restore = begin_subtransaction();
    let out = PgTryBuilder::new(AssertUnwindSafe(f))
        .catch_others(move |e| {
            if lock_wait_is_none && lock_wait_ran_out(&e) {
                return Ok(None);
            }
            unsafe { pg_sys::RollbackAndReleaseCurrentSubTransaction() };
            restore();
            e.rethrow()
        })
        .execute();
    // SAFETY: ends the subtransaction begin_subtransaction opened (a rethrow
    // above never gets here); restore() puts the caller's memory context and
    // resource owner back.
    unsafe {
        match out {
            Ok(Some(_)) => pg_sys::ReleaseCurrentSubTransaction(),
            _ => pg_sys::RollbackAndReleaseCurrentSubTransaction(),
        }
    }
    restore();
    out
}

/// The transaction reads one snapshot throughout (REPEATABLE READ or
/// SERIALIZABLE): counts it takes miss what committed since it began.
pub fn uses_xact_snapshot() -> bool {
    // SAFETY: reading the backend's isolation level.
    unsafe { pg_sys::XactIsoLevel >= pg_sys::XACT_REPEATABLE_READ as i32 }
}

/// The count `stmt` answers (one row, one integer column) against the
/// latest committed state instead of the transaction's snapshot: run
/// read-only under a pushed latest snapshot, so SPI takes none of its own.
/// Planned each time: only callers at REPEATABLE READ or above come here,
/// when a check must not miss a concurrent commit.
pub fn count_at_latest_snapshot(stmt: &Stmt, args: &[Option<pg_sys::Datum>]) -> Result<i64> {
    let sql = std::ffi::CString::new(format!("SELECT ({})::pg_catalog.int8", stmt.sql))
        .map_err(|e| Error::Internal(format!("{}: {e}", stmt.name)))?;
    let mut types: Vec<pg_sys::Oid> = stmt.args.to_vec();
    let mut values: Vec<pg_sys::Datum> = args
        .iter()
        .map(|d| d.unwrap_or(pg_sys::Datum::from(0)))
        .collect();
    let nulls: Vec<std::ffi::c_char> = args
        .iter()
        .map(|d| if d.is_some() { b' ' } else { b'n' } as std::ffi::c_char)
        .collect();
    if types.len() != values.len() {
        return Err(Error::Internal(format!(
            "{}: wrong number of arguments",
            stmt.name
        )));
    }
    // SAFETY: inside the caller's SPI connection; the snapshot pushed here
    // is popped before returning (on an error, abort cleans the stack up).
    // The arrays outlive the call, and the one int8 is read at once.
    unsafe {
        pg_sys::PushActiveSnapshot(pg_sys::GetLatestSnapshot());
        let rc = pg_sys::SPI_execute_with_args(
            sql.as_ptr(),
            types.len() as i32,
            types.as_mut_ptr(),
            values.as_mut_ptr(),
            nulls.as_ptr(),
            true,
            1,
        );
        pg_sys::PopActiveSnapshot();
        let table = pg_sys::SPI_tuptable;
        if rc != pg_sys::SPI_OK_SELECT as i32 || table.is_null() || (*table).numvals < 1 {
            return Err(Error::Internal(format!("{}: SPI returned {rc}", stmt.name)));
        }
        let mut isnull = false;
        let d = pg_sys::SPI_getbinval(*(*table).vals, (*table).tupdesc, 1, &mut isnull);
        Ok(if isnull { 0 } else { d.value() as i64 })
    }
}

/// PostgreSQL's own answer to a transaction whose snapshot missed a
/// concurrent change that decides the call: 40001, retry the transaction.
/// Raised as PostgreSQL raises it (the statistics count it as
/// SERIALIZATION_FAILURE); never returns.
pub fn stale_snapshot(detail: String) -> ! {
    pgrx::pg_sys::panic::ErrorReport::new(
        PgSqlErrorCode::ERRCODE_T_R_SERIALIZATION_FAILURE,
        "could not serialize access due to concurrent update",
        "stale_snapshot",
    )
    // a JSON detail with a code, as every error a call raises itself
    .set_detail(serde_json::json!({"code": "SERIALIZATION_FAILURE", "reason": detail}).to_string())
    .set_hint("Retry the transaction.")
    .report(pgrx::PgLogLevel::ERROR);
    unreachable!("ereport(ERROR) returned")
}
