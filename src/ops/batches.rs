//! Delivery batches, written once over any batch source: claim exactly
//! once, hand out the next free batch, and the holder's changes.
//!
//! Concurrency: a claim is one `UPDATE ... WHERE status is claimable`: of N
//! concurrent drivers, the first takes the row lock and wins; the others
//! wait, re-check the committed row (EvalPlanQual), match nothing and get
//! BATCH_UNAVAILABLE (PT409, HTTP 409: the delivery-batch claim route's
//! contract). The next free batch is picked with `FOR UPDATE SKIP LOCKED`:
//! concurrent drivers each get a different one and never queue behind each
//! other.

use crate::core::caller::Caller;
use crate::error::{Error, Result};
use crate::source::own::batches as own_batches;
use crate::source::own::Own;
use crate::source::{BatchSource, ClaimTerms, Transition};
use pgrx::spi::SpiClient;
use pgrx::Uuid;

fn not_found<S: BatchSource>(s: &S, key: &S::Key) -> Error {
    Error::NotFound {
        entity: "batch",
        ids: vec![s.key_text(key)],
    }
}

/// Claim one batch for `driver`.
pub fn claim<S: BatchSource>(
    s: &S,
    c: &mut SpiClient<'_>,
    who: &Caller,
    key: &S::Key,
    driver: &str,
    terms: &ClaimTerms,
) -> Result<String> {
    // Re-claiming a batch you hold is a success, so the limit ignores it.
    s.check_limit(c, who, driver, Some(key), terms)?;
    if let Some(done) = s.claim(c, who, key, driver, terms)? {
        return Ok(done);
    }
    let b = s.lock(c, who, key)?.ok_or_else(|| not_found(s, key))?;
    if s.holds(&b, driver) {
        // Idempotent: the driver already holds it (a retried request).
        return Ok(s.held(key, &b, driver));
    }
    if b.claimable {
        // Freed between our UPDATE and the lock: we hold the row now.
        return s
            .claim(c, who, key, driver, terms)?
            .ok_or_else(|| s.skipped(key));
    }
    Err(Error::BatchUnavailable {
        batch_id: s.key_text(key),
        status: b.status,
    })
}

/// Claim the next free batch for `driver`: None when none is left (SQL
/// NULL, not an error).
pub fn claim_next<S: BatchSource>(
    s: &S,
    c: &mut SpiClient<'_>,
    who: &Caller,
    driver: &str,
    zone: Option<&str>,
    terms: &ClaimTerms,
) -> Result<Option<String>> {
    s.check_limit(c, who, driver, None, terms)?;
    s.claim_next(c, who, driver, zone, terms)
}

/// Unclaim, start or complete: only by the holder (or an admin), only from
/// the states the change applies to; a retry that finds it done succeeds.
pub fn transition<S: BatchSource>(
    s: &S,
    c: &mut SpiClient<'_>,
    who: &Caller,
    key: &S::Key,
    driver: &str,
    t: Transition,
) -> Result<String> {
    if let Some(done) = s.transition(c, who, key, driver, t)? {
        return Ok(done);
    }
    let b = s.lock(c, who, key)?.ok_or_else(|| not_found(s, key))?;
    // A retry is a success for whoever could make the change: the holder,
    // or an admin, who is not the holder.
    if s.done_already(&b, t) && (who.admin || b.holder.as_deref() == Some(driver)) {
        return Ok(s.held(key, &b, driver));
    }
    if s.allows(&b, who, driver, t) {
        // ours, locked, in a state the change applies to: skipped
        return Err(s.skipped(key));
    }
    Err(Error::BatchNotHeld {
        batch_id: s.key_text(key),
        driver_id: driver.to_string(),
        status: b.status,
        lease_lapsed_at: b.lapsed_at,
    })
}

/// The sweep's part for batches: claims whose lease lapsed go back to
/// available, up to `limit` (the extension's own batches; an adopted batch
/// table keeps its lapsed claims claimable as they are).
pub fn lapse(c: &mut SpiClient<'_>, limit: i32) -> Result<i32> {
    own_batches::lapse(c, limit)
}

/// A heartbeat: move the lease of a claimed or started batch the driver
/// holds (an admin: any holder's) to now + `seconds`. A lease that already
/// lapsed is not extended: the batch is no longer held (BATCH_NOT_HELD,
/// with when it lapsed); claim it again.
pub fn extend_lease(
    c: &mut SpiClient<'_>,
    who: &Caller,
    key: &Uuid,
    driver: &str,
    seconds: i32,
) -> Result<String> {
    if let Some(done) = own_batches::extend(c, who, key, driver, seconds)? {
        return Ok(done);
    }
    let b = Own.lock(c, who, key)?.ok_or_else(|| not_found(&Own, key))?;
    let held = (b.status == "claimed" || b.status == "in_progress")
        && b.lapsed_at.is_none()
        && (who.admin || b.holder.as_deref() == Some(driver));
    if held {
        return Err(Own.skipped(key));
    }
    Err(Error::BatchNotHeld {
        batch_id: Own.key_text(key),
        driver_id: driver.to_string(),
        status: b.status,
        lease_lapsed_at: b.lapsed_at,
    })
}
