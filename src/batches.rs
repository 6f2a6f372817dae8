//! Delivery batches (the delivery-batch claim route of docs/background.md): claim exactly once, hand out the next free
//! batch without drivers waiting on each other, unclaim, start, complete.
//!
//! Concurrency:
//! - A claim is one `UPDATE … WHERE status is claimable`: of N concurrent
//!   drivers, the first takes the row lock and wins; the others wait, re-check
//!   the committed row (EvalPlanQual), match nothing and get BATCH_UNAVAILABLE
//!   (PT409 → HTTP 409, the claim route's contract).
//! - `claim_next_batch` picks with `FOR UPDATE SKIP LOCKED`: concurrent
//!   drivers each get a different batch and never queue behind each other.
//! - Per-driver limits are checked under a transaction-scoped advisory lock on
//!   the driver id, taken *before* any batch row lock by every claim path
//!   (driver lock → row lock, never the reverse), so two claims by one driver
//!   can't both pass the count and nothing can deadlock.
//! - A lease (`p_lease_seconds`) lets an abandoned claim lapse: a claimed batch
//!   whose lease has passed is claimable again. Started batches (`in_progress`)
//!   don't lapse. Leases start and are judged at `statement_timestamp()`
//!   (when the caller's statement began), not `now()` (when its transaction
//!   began): a call in a transaction older than a lapse would still see the
//!   claim held and start it, while calls in newer transactions, seeing it
//!   lapsed, let the same driver claim another batch past `p_max_active`.

use crate::core::caller::Caller;
use crate::error::{Error, Result};
use crate::pg::fmgr::{entry_point, Args};
use crate::pg::spi::{self, run, with_spi, Stmt};
use pgrx::pg_sys::{self, Oid};
use pgrx::spi::SpiClient;
use pgrx::{IntoDatum, Uuid};

const UUID: Oid = pg_sys::UUIDOID;
const TEXT: Oid = pg_sys::TEXTOID;
const BOOL: Oid = pg_sys::BOOLOID;
const INT: Oid = pg_sys::INT4OID;

/// Row → the JSON every batch function returns.
macro_rules! batch_json {
    ($b:literal) => {
        concat!(
            "pg_catalog.json_build_object('success', true, 'batch_id', ",
            $b,
            ".id, ",
            "'status', ",
            $b,
            ".status, 'claimed_by', ",
            $b,
            ".claimed_by, ",
            "'claimed_at', ",
            $b,
            ".claimed_at, 'lease_expires_at', ",
            $b,
            ".lease_expires_at, ",
            "'zone', ",
            $b,
            ".zone, 'reference', ",
            $b,
            ".reference)::text"
        )
    };
}

/// Serializes one driver's claims (class id 0x41494442 = "AIDB").
const DRIVER_LOCK: Stmt = Stmt {
    name: "batch_driver_lock",
    sql: "SELECT pg_catalog.pg_advisory_xact_lock(1095320642, pg_catalog.hashtext($1))",
    args: &[TEXT],
};

/// The driver's active batches among those the caller may see: another
/// tenant's batches are neither counted nor revealed by a refusal.
const ACTIVE_COUNT: Stmt = Stmt {
    name: "batch_active_count",
    sql: "SELECT pg_catalog.count(*)::int4 FROM atomic_inventory.batches AS b \
           WHERE b.claimed_by = $1 AND b.id IS DISTINCT FROM $2 \
             AND (b.tenant_id IS NULL OR $3 OR b.tenant_id = $4) \
             AND (b.status = 'in_progress' \
                  OR (b.status = 'claimed' \
                      AND (b.lease_expires_at IS NULL OR b.lease_expires_at >= pg_catalog.statement_timestamp())))",
    args: &[TEXT, UUID, BOOL, TEXT],
};

const CLAIM: Stmt = Stmt {
    name: "batch_claim",
    sql: concat!(
        "UPDATE atomic_inventory.batches AS b \
            SET status = 'claimed', claimed_by = $2, claimed_at = pg_catalog.statement_timestamp(), \
                lease_expires_at = pg_catalog.statement_timestamp() + pg_catalog.make_interval(secs => $3), \
                updated_at = pg_catalog.now() \
          WHERE b.id = $1 AND (b.tenant_id IS NULL OR $4 OR b.tenant_id = $5) \
            AND (b.status = 'available' \
                 OR (b.status = 'claimed' AND b.lease_expires_at < pg_catalog.statement_timestamp())) \
          RETURNING ",
        batch_json!("b")
    ),
    args: &[UUID, TEXT, INT, BOOL, TEXT],
};

/// The next claimable batch, highest priority then oldest, taken with SKIP
/// LOCKED so concurrent drivers never wait for each other.
///
/// Two candidates, each from an index of its own, then the better one by
/// priority: the first free available batch (batches_available_idx, which
/// claimed rows leave) and the first free claim whose lease lapsed, in the
/// order the leases lapsed (batches_lease_idx read in its own order; with
/// stale statistics the planner read every claimed batch through
/// batches_claimed_by_idx instead, until that index's predicate was given
/// `claimed_by IS NOT NULL`, which this query cannot imply). One index over
/// both states made every call walk past all claimed, unstarted batches,
/// re-checking each one's lease: throughput fell as claims piled up
/// (docs/benchmarks.md). When both
/// candidates exist, the one not taken stays locked until this transaction
/// ends (other drivers skip it meanwhile); a lapsed claim is rare.
const CLAIM_NEXT: Stmt = Stmt {
    name: "batch_claim_next",
    sql: concat!(
        "WITH avail AS ( \
            SELECT c.id, c.priority, c.created_at FROM atomic_inventory.batches AS c \
             WHERE c.status = 'available' \
               AND (c.tenant_id IS NULL OR $3 OR c.tenant_id = $4) \
               AND ($5::text IS NULL OR c.zone = $5) \
             ORDER BY c.priority DESC, c.created_at, c.id \
             LIMIT 1 \
               FOR UPDATE SKIP LOCKED \
          ), lapsed AS ( \
            SELECT c.id, c.priority, c.created_at FROM atomic_inventory.batches AS c \
             WHERE c.status = 'claimed' AND c.lease_expires_at < pg_catalog.statement_timestamp() \
               AND (c.tenant_id IS NULL OR $3 OR c.tenant_id = $4) \
               AND ($5::text IS NULL OR c.zone = $5) \
             ORDER BY c.lease_expires_at, c.priority DESC, c.created_at, c.id \
             LIMIT 1 \
               FOR UPDATE SKIP LOCKED \
          ), next AS ( \
            SELECT n.id FROM (SELECT * FROM avail UNION ALL SELECT * FROM lapsed) AS n \
             ORDER BY n.priority DESC, n.created_at, n.id \
             LIMIT 1 \
          ) \
          UPDATE atomic_inventory.batches AS b \
             SET status = 'claimed', claimed_by = $1, claimed_at = pg_catalog.statement_timestamp(), \
                 lease_expires_at = pg_catalog.statement_timestamp() + pg_catalog.make_interval(secs => $2), \
                 updated_at = pg_catalog.now() \
            FROM next WHERE b.id = next.id \
          RETURNING ",
        batch_json!("b")
    ),
    args: &[TEXT, INT, BOOL, TEXT, TEXT],
};

/// Lock a visible batch and describe it (why a change was refused).
const LOCK_BATCH: Stmt = Stmt {
    name: "batch_lock",
    sql: concat!(
        "SELECT b.status, b.claimed_by, \
                (b.status = 'available' \
                 OR (b.status = 'claimed' AND b.lease_expires_at < pg_catalog.statement_timestamp())), \
                CASE WHEN b.status = 'claimed' AND b.lease_expires_at < pg_catalog.statement_timestamp() \
                     THEN b.lease_expires_at::text END, ",
        batch_json!("b"),
        " FROM atomic_inventory.batches AS b \
          WHERE b.id = $1 AND (b.tenant_id IS NULL OR $2 OR b.tenant_id = $3) \
            FOR UPDATE"
    ),
    args: &[UUID, BOOL, TEXT],
};

/// Holder-only transitions: $6 = allowed current statuses, $7 = new status.
/// A claim whose lease lapsed is no longer held: it can be given back
/// (unclaim), but starting or completing it needs a new claim, which checks
/// the driver's limit again (the limit stopped counting it when it lapsed,
/// so starting it as it was would let a driver exceed p_max_active).
const TRANSITION: Stmt = Stmt {
    name: "batch_transition",
    sql: concat!(
        "UPDATE atomic_inventory.batches AS b \
            SET status = $7, \
                claimed_by = CASE WHEN $7 = 'available' THEN NULL ELSE b.claimed_by END, \
                claimed_at = CASE WHEN $7 = 'available' THEN NULL ELSE b.claimed_at END, \
                lease_expires_at = CASE WHEN $7 = 'claimed' THEN b.lease_expires_at END, \
                completed_at = CASE WHEN $7 = 'completed' THEN pg_catalog.now() END, \
                updated_at = pg_catalog.now() \
          WHERE b.id = $1 AND (b.tenant_id IS NULL OR $3 OR b.tenant_id = $4) \
            AND (b.claimed_by = $2 OR $5) \
            AND b.status = ANY ($6) \
            AND ($7 = 'available' OR b.status <> 'claimed' \
                 OR b.lease_expires_at IS NULL OR b.lease_expires_at >= pg_catalog.statement_timestamp()) \
          RETURNING ",
        batch_json!("b")
    ),
    args: &[UUID, TEXT, BOOL, TEXT, BOOL, pg_sys::TEXTARRAYOID, TEXT],
};

/// The driver: `p_driver_id`, or the JWT `sub` when PostgREST set claims. A
/// non-admin caller with a JWT can only act as themselves; one whose JWT
/// has no `sub` (an anon key's token) as no driver at all: without the
/// claims it could name any driver, since only trusted backends call
/// without claims.
pub(crate) fn driver_id(args: &Args, n: usize, caller: &Caller) -> Result<String> {
    let given = args.text(n, "p_driver_id")?;
    match (given, &caller.subject) {
        (Some(d), Some(sub)) if !caller.admin && d != *sub => Err(Error::invalid_input(
            "p_driver_id",
            "must be your own id (the JWT sub) unless you are an admin",
        )),
        (_, None) if caller.jwt && !caller.admin => Err(Error::invalid_input(
            "p_driver_id",
            "can't be named with a JWT that has no sub (only an admin or a caller without a JWT names drivers)",
        )),
        (Some(d), _) if d.is_empty() || d.chars().count() > 255 => Err(Error::invalid_input(
            "p_driver_id",
            "must be 1 to 255 characters",
        )),
        (Some(d), _) => Ok(d),
        (None, Some(sub)) => Ok(sub.clone()),
        (None, None) => Err(Error::invalid_input(
            "p_driver_id",
            "is required (or call with a JWT whose sub is the driver)",
        )),
    }
}

/// Lease in seconds: NULL = no lease (the claim never lapses), else 1..=7 days.
fn lease_seconds(args: &Args, n: usize) -> Result<Option<i32>> {
    match args.int(n) {
        Some(s) if !(1..=604_800).contains(&s) => Err(Error::invalid_input(
            "p_lease_seconds",
            format!("must be between 1 and 604800 (got {s})"),
        )),
        other => Ok(other),
    }
}

fn max_active(args: &Args, n: usize) -> Result<Option<i32>> {
    match args.int(n) {
        Some(m) if !(1..=10_000).contains(&m) => Err(Error::invalid_input(
            "p_max_active",
            format!("must be between 1 and 10000 (got {m})"),
        )),
        other => Ok(other),
    }
}

fn check_limit(
    client: &mut SpiClient<'_>,
    caller: &Caller,
    driver: &str,
    except: Option<Uuid>,
    limit: Option<i32>,
) -> Result<()> {
    run(client, &DRIVER_LOCK, &[driver.to_string().into()])?;
    if let Some(limit) = limit {
        let active = run(
            client,
            &ACTIVE_COUNT,
            &[
                driver.to_string().into(),
                except.into(),
                caller.admin.into(),
                caller.tenant.clone().into(),
            ],
        )?
        .first()
        .get::<i32>(1)?
        .unwrap_or(0);
        if active >= limit {
            return Err(Error::DriverLimit {
                driver_id: driver.to_string(),
                limit,
            });
        }
        // At REPEATABLE READ or SERIALIZABLE the count saw the transaction's
        // snapshot, taken before the driver lock was granted (often long
        // before, in a multi-statement transaction): a claim by the same
        // driver committed since then is invisible to it, and the limit
        // would not hold. Counted again against the latest snapshot: if that
        // reaches the limit, the caller's snapshot is out of date
        // (spi::stale_snapshot: 40001, retry). SERIALIZABLE would catch it
        // later, as a rw-conflict; REPEATABLE READ never would.
        if spi::uses_xact_snapshot() {
            let args = [
                driver.to_string().into_datum(),
                except.into_datum(),
                caller.admin.into_datum(),
                caller.tenant.clone().into_datum(),
            ];
            if spi::count_at_latest_snapshot(&ACTIVE_COUNT, &args)? >= i64::from(limit) {
                spi::stale_snapshot(format!(
                    "driver {driver} claimed a batch after this transaction's snapshot; p_max_active = {limit} is reached"
                ));
            }
        }
    }
    Ok(())
}

fn not_found(id: Uuid) -> Error {
    Error::NotFound {
        entity: "batch",
        ids: vec![id.to_string()],
    }
}

/// A batch row locked by `lock_batch`: why a fast-path UPDATE matched nothing.
struct LockedBatch {
    status: String,
    holder: Option<String>,
    /// available, or claimed with a lapsed lease
    claimable: bool,
    /// claimed with a lapsed lease: when it lapsed
    lapsed_at: Option<String>,
    /// the batch as returned to callers
    json: String,
}

/// Lock the batch (as the caller may see it) to learn why an UPDATE refused,
/// with a stable answer; NOT_FOUND for a missing or other tenant's batch.
fn lock_batch(c: &mut SpiClient<'_>, id: Uuid, caller: &Caller) -> Result<LockedBatch> {
    let state = run(
        c,
        &LOCK_BATCH,
        &[id.into(), caller.admin.into(), caller.tenant.clone().into()],
    )?;
    if state.is_empty() {
        return Err(not_found(id));
    }
    let row = state.first();
    Ok(LockedBatch {
        status: row.get::<String>(1)?.unwrap_or_default(),
        holder: row.get::<String>(2)?,
        claimable: row.get::<bool>(3)?.unwrap_or(false),
        lapsed_at: row.get::<String>(4)?,
        json: row.get::<String>(5)?.unwrap_or_default(),
    })
}

fn claim_batch(args: &Args) -> Result<String> {
    let id = args.uuid(0, "p_batch_id")?;
    let caller = Caller::current()?;
    let driver = driver_id(args, 1, &caller)?;
    let lease = lease_seconds(args, 2)?;
    let limit = max_active(args, 3)?;
    let lock_ms = args.lock_timeout_ms(4)?;
    with_spi(lock_ms, |c| {
        let claim_args = || {
            [
                id.into(),
                driver.clone().into(),
                lease.into(),
                caller.admin.into(),
                caller.tenant.clone().into(),
            ]
        };
        // Re-claiming a batch you hold is a success, so the limit ignores it.
        check_limit(c, &caller, &driver, Some(id), limit)?;
        let done = run(c, &CLAIM, &claim_args())?;
        if !done.is_empty() {
            return Ok(done.first().get::<String>(1)?.unwrap_or_default());
        }
        let b = lock_batch(c, id, &caller)?;
        if b.holder.as_deref() == Some(driver.as_str())
            && (b.status == "claimed" || b.status == "in_progress")
        {
            // Idempotent: the driver already holds it (a retried request).
            return Ok(b.json);
        }
        if b.claimable {
            // Freed between our UPDATE and the lock: we hold the row now.
            let done = run(c, &CLAIM, &claim_args())?;
            if !done.is_empty() {
                return Ok(done.first().get::<String>(1)?.unwrap_or_default());
            }
        }
        Err(Error::BatchUnavailable {
            batch_id: id.to_string(),
            status: b.status,
        })
    })
}

fn claim_next_batch(args: &Args) -> Result<Option<String>> {
    let caller = Caller::current()?;
    let driver = driver_id(args, 0, &caller)?;
    let zone = args.text(1, "p_zone")?;
    let lease = lease_seconds(args, 2)?;
    let limit = max_active(args, 3)?;
    let lock_ms = args.lock_timeout_ms(4)?;
    with_spi(lock_ms, |c| {
        check_limit(c, &caller, &driver, None, limit)?;
        let done = run(
            c,
            &CLAIM_NEXT,
            &[
                driver.clone().into(),
                lease.into(),
                caller.admin.into(),
                caller.tenant.clone().into(),
                zone.clone().into(),
            ],
        )?;
        if done.is_empty() {
            return Ok(None); // none left: SQL NULL, not an error
        }
        Ok(done.first().get::<String>(1)?)
    })
}

/// unclaim/start/complete: only from `from` statuses, only by the holder (or
/// an admin). `done_already` is the status that makes a retry a no-op success.
fn transition(args: &Args, from: &[&str], to: &str, done_already: Option<&str>) -> Result<String> {
    let id = args.uuid(0, "p_batch_id")?;
    let caller = Caller::current()?;
    let driver = driver_id(args, 1, &caller)?;
    let lock_ms = args.lock_timeout_ms(2)?;
    let from: Vec<String> = from.iter().map(|s| s.to_string()).collect();
    with_spi(lock_ms, |c| {
        let done = run(
            c,
            &TRANSITION,
            &[
                id.into(),
                driver.clone().into(),
                caller.admin.into(),
                caller.tenant.clone().into(),
                caller.admin.into(),
                from.clone().into(),
                to.to_string().into(),
            ],
        )?;
        if !done.is_empty() {
            return Ok(done.first().get::<String>(1)?.unwrap_or_default());
        }
        let b = lock_batch(c, id, &caller)?;
        // A retry is a success for whoever could make the change: the holder,
        // or an admin (as TRANSITION's `OR $5`), who is not the holder.
        if done_already == Some(b.status.as_str())
            && (caller.admin || b.holder.as_deref() == Some(driver.as_str()))
        {
            return Ok(b.json);
        }
        Err(Error::BatchNotHeld {
            batch_id: id.to_string(),
            driver_id: driver.clone(),
            status: b.status,
            lease_lapsed_at: b.lapsed_at,
        })
    })
}

fn unclaim_batch(args: &Args) -> Result<String> {
    transition(args, &["claimed", "in_progress"], "available", None)
}

fn start_batch(args: &Args) -> Result<String> {
    transition(args, &["claimed"], "in_progress", Some("in_progress"))
}

fn complete_batch(args: &Args) -> Result<String> {
    transition(
        args,
        &["claimed", "in_progress"],
        "completed",
        Some("completed"),
    )
}

entry_point!(ai_claim_batch, pg_finfo_ai_claim_batch, claim_batch);
entry_point!(
    ai_claim_next_batch,
    pg_finfo_ai_claim_next_batch,
    claim_next_batch
);
entry_point!(ai_unclaim_batch, pg_finfo_ai_unclaim_batch, unclaim_batch);
entry_point!(ai_start_batch, pg_finfo_ai_start_batch, start_batch);
entry_point!(
    ai_complete_batch,
    pg_finfo_ai_complete_batch,
    complete_batch
);
