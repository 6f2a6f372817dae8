//! The extension's own delivery batches (`atomic_inventory.batches`) as a
//! batch source: claim exactly once, hand out the next free batch without
//! drivers waiting on each other, unclaim, start, complete.
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

use super::Own;
use crate::core::caller::Caller;
use crate::error::{Error, Result};
use crate::pg::spi::{self, run, Stmt};
use crate::source::{BatchSource, BatchState, ClaimTerms, Transition};
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
             AND b.status IN ('claimed', 'in_progress') \
             AND (b.lease_expires_at IS NULL OR b.lease_expires_at >= pg_catalog.statement_timestamp())",
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
                 OR (b.status IN ('claimed', 'in_progress') \
                     AND b.lease_expires_at < pg_catalog.statement_timestamp())) \
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
             WHERE c.status IN ('claimed', 'in_progress') \
               AND c.lease_expires_at < pg_catalog.statement_timestamp() \
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
                 OR (b.status IN ('claimed', 'in_progress') \
                     AND b.lease_expires_at < pg_catalog.statement_timestamp())), \
                CASE WHEN b.status IN ('claimed', 'in_progress') \
                          AND b.lease_expires_at < pg_catalog.statement_timestamp() \
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
            AND ($7 = 'available' OR b.status NOT IN ('claimed', 'in_progress') \
                 OR b.lease_expires_at IS NULL OR b.lease_expires_at >= pg_catalog.statement_timestamp()) \
          RETURNING ",
        batch_json!("b")
    ),
    args: &[UUID, TEXT, BOOL, TEXT, BOOL, pg_sys::TEXTARRAYOID, TEXT],
};

/// The statuses a transition starts from and the one it ends in.
fn statuses(t: Transition) -> (&'static [&'static str], &'static str) {
    match t {
        Transition::Unclaim => (&["claimed", "in_progress"], "available"),
        Transition::Start => (&["claimed"], "in_progress"),
        Transition::Complete => (&["claimed", "in_progress"], "completed"),
    }
}

/// The sweep's part for batches: up to $1 claimed or started batches whose
/// lease lapsed go back to available (the trigger batches_lease_events records each one). SKIP
/// LOCKED: a claim some driver is changing right now is left for the next
/// sweep, which never waits on a batch.
const LAPSE: Stmt = Stmt {
    name: "batch_lapse",
    sql: "WITH due AS ( \
            SELECT c.id FROM atomic_inventory.batches AS c \
             WHERE c.status IN ('claimed', 'in_progress') \
               AND c.lease_expires_at < pg_catalog.statement_timestamp() \
             ORDER BY c.lease_expires_at \
             LIMIT $1 \
               FOR UPDATE SKIP LOCKED \
          ), done AS ( \
            UPDATE atomic_inventory.batches AS b \
               SET status = 'available', claimed_by = NULL, claimed_at = NULL, \
                   lease_expires_at = NULL, updated_at = pg_catalog.now() \
              FROM due WHERE b.id = due.id \
            RETURNING b.id \
          ) \
          SELECT pg_catalog.count(*)::int4 FROM done",
    args: &[INT],
};

/// A heartbeat: the holder's claimed or started batch, its lease not
/// lapsed, leased for $3 seconds from now.
const EXTEND: Stmt = Stmt {
    name: "batch_extend_lease",
    sql: concat!(
        "UPDATE atomic_inventory.batches AS b \
            SET lease_expires_at = pg_catalog.statement_timestamp() + pg_catalog.make_interval(secs => $3), \
                updated_at = pg_catalog.now() \
          WHERE b.id = $1 AND (b.tenant_id IS NULL OR $4 OR b.tenant_id = $5) \
            AND (b.claimed_by = $2 OR $4) AND b.status IN ('claimed', 'in_progress') \
            AND (b.lease_expires_at IS NULL OR b.lease_expires_at >= pg_catalog.statement_timestamp()) \
          RETURNING ",
        batch_json!("b")
    ),
    args: &[UUID, TEXT, INT, BOOL, TEXT],
};

/// Extend the lease of a batch `driver` holds (an admin: any); None if it
/// is not held (the caller says why).
pub fn extend(
    c: &mut SpiClient<'_>,
    who: &Caller,
    id: &Uuid,
    driver: &str,
    seconds: i32,
) -> Result<Option<String>> {
    answer(run(
        c,
        &EXTEND,
        &[
            (*id).into(),
            driver.to_string().into(),
            seconds.into(),
            who.admin.into(),
            who.tenant.clone().into(),
        ],
    )?)
}

/// Return up to `limit` lapsed claims of the extension's own batches to
/// available; how many.
pub fn lapse(c: &mut SpiClient<'_>, limit: i32) -> Result<i32> {
    let t = run(c, &LAPSE, &[limit.into()])?;
    Ok(t.first().get::<i32>(1)?.unwrap_or(0))
}

/// The status that makes a retry of `t` a success.
pub fn done_status(t: Transition) -> Option<&'static str> {
    match t {
        Transition::Unclaim => None,
        Transition::Start => Some("in_progress"),
        Transition::Complete => Some("completed"),
    }
}

/// The single row of a statement answering a batch's JSON, if any.
fn answer(t: pgrx::spi::SpiTupleTable<'_>) -> Result<Option<String>> {
    if t.is_empty() {
        return Ok(None);
    }
    Ok(t.first().get::<String>(1)?)
}

impl BatchSource for Own {
    type Key = Uuid;

    fn key_text(&self, key: &Uuid) -> String {
        key.to_string()
    }

    fn skipped(&self, key: &Uuid) -> Error {
        Error::invalid_input(
            "p_batch_id",
            format!(
                "a trigger or rule on atomic_inventory.batches skipped the write of batch {key}; nothing changed"
            ),
        )
    }

    fn check_limit(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        driver: &str,
        except: Option<&Uuid>,
        terms: &ClaimTerms,
    ) -> Result<()> {
        run(c, &DRIVER_LOCK, &[driver.to_string().into()])?;
        let Some(limit) = terms.max_active else {
            return Ok(());
        };
        let except = except.copied();
        let active = run(
            c,
            &ACTIVE_COUNT,
            &[
                driver.to_string().into(),
                except.into(),
                who.admin.into(),
                who.tenant.clone().into(),
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
                who.admin.into_datum(),
                who.tenant.clone().into_datum(),
            ];
            if spi::count_at_latest_snapshot(&ACTIVE_COUNT, &args)? >= i64::from(limit) {
                spi::stale_snapshot(format!(
                    "driver {driver} claimed a batch after this transaction's snapshot; p_max_active = {limit} is reached"
                ));
            }
        }
        Ok(())
    }

    fn claim(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &Uuid,
        driver: &str,
        terms: &ClaimTerms,
    ) -> Result<Option<String>> {
        answer(run(
            c,
            &CLAIM,
            &[
                (*key).into(),
                driver.to_string().into(),
                terms.lease_seconds.into(),
                who.admin.into(),
                who.tenant.clone().into(),
            ],
        )?)
    }

    fn claim_next(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        driver: &str,
        zone: Option<&str>,
        terms: &ClaimTerms,
    ) -> Result<Option<String>> {
        answer(run(
            c,
            &CLAIM_NEXT,
            &[
                driver.to_string().into(),
                terms.lease_seconds.into(),
                who.admin.into(),
                who.tenant.clone().into(),
                zone.map(str::to_string).into(),
            ],
        )?)
    }

    fn transition(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &Uuid,
        driver: &str,
        t: Transition,
    ) -> Result<Option<String>> {
        let (from, to) = statuses(t);
        let from: Vec<String> = from.iter().map(|s| s.to_string()).collect();
        answer(run(
            c,
            &TRANSITION,
            &[
                (*key).into(),
                driver.to_string().into(),
                who.admin.into(),
                who.tenant.clone().into(),
                who.admin.into(),
                from.into(),
                to.to_string().into(),
            ],
        )?)
    }

    fn lock(&self, c: &mut SpiClient<'_>, who: &Caller, key: &Uuid) -> Result<Option<BatchState>> {
        let state = run(
            c,
            &LOCK_BATCH,
            &[(*key).into(), who.admin.into(), who.tenant.clone().into()],
        )?;
        if state.is_empty() {
            return Ok(None);
        }
        let row = state.first();
        Ok(Some(BatchState {
            status: row.get::<String>(1)?.unwrap_or_default(),
            holder: row.get::<String>(2)?,
            claimable: row.get::<bool>(3)?.unwrap_or(false),
            lapsed_at: row.get::<String>(4)?,
            reply: row.get::<String>(5)?.unwrap_or_default(),
        }))
    }

    fn supports(&self, _t: Transition) -> bool {
        true
    }

    fn holds(&self, b: &BatchState, driver: &str) -> bool {
        b.holder.as_deref() == Some(driver) && (b.status == "claimed" || b.status == "in_progress")
    }

    fn done_already(&self, b: &BatchState, t: Transition) -> bool {
        done_status(t) == Some(b.status.as_str())
    }

    fn allows(&self, b: &BatchState, who: &Caller, driver: &str, t: Transition) -> bool {
        let (from, to) = statuses(t);
        (who.admin || b.holder.as_deref() == Some(driver))
            && from.contains(&b.status.as_str())
            // a lapsed lease (claimed, or started with a heartbeat's lease)
            // holds nothing but the way back to available
            && (to == "available" || b.lapsed_at.is_none())
    }
}
