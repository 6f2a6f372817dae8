//! The delivery-batch functions: claim_batch, claim_next_batch,
//! unclaim_batch, start_batch, complete_batch, extend_batch_lease on the
//! extension's batches,
//! and bound_claim_batch, bound_claim_next_batch, bound_unclaim_batch on an
//! adopted table (ops/batches.rs).

use crate::core::caller::Caller;
use crate::error::{Error, Result};
use crate::ops::batches;
use crate::pg::fmgr::{entry_points, Args};
use crate::pg::spi::with_spi;
use crate::source::bound::batches::driver as bound_driver;
use crate::source::bound::binding::{self, Kind};
use crate::source::bound::stock::item_key;
use crate::source::own::Own;
use crate::source::{ClaimTerms, Transition};

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

/// claim_batch(p_batch_id, p_driver_id, p_lease_seconds, p_max_active,
/// p_lock_timeout_ms)
fn claim_batch(args: &Args) -> Result<String> {
    let id = args.uuid(0, "p_batch_id")?;
    let who = Caller::current()?;
    let driver = who.driver(args.text(1, "p_driver_id")?)?;
    let terms = ClaimTerms {
        lease_seconds: lease_seconds(args, 2)?,
        max_active: max_active(args, 3)?,
    };
    let lock_ms = args.lock_timeout_ms(4)?;
    with_spi(lock_ms, |c| {
        batches::claim(&Own, c, &who, &id, &driver, &terms)
    })
}

/// claim_next_batch(p_driver_id, p_zone, p_lease_seconds, p_max_active,
/// p_lock_timeout_ms): NULL when none is left.
fn claim_next_batch(args: &Args) -> Result<Option<String>> {
    let who = Caller::current()?;
    let driver = who.driver(args.text(0, "p_driver_id")?)?;
    let zone = args.text(1, "p_zone")?;
    let terms = ClaimTerms {
        lease_seconds: lease_seconds(args, 2)?,
        max_active: max_active(args, 3)?,
    };
    let lock_ms = args.lock_timeout_ms(4)?;
    with_spi(lock_ms, |c| {
        batches::claim_next(&Own, c, &who, &driver, zone.as_deref(), &terms)
    })
}

/// extend_batch_lease(p_batch_id, p_driver_id, p_seconds, p_lock_timeout_ms)
fn extend_lease(args: &Args) -> Result<String> {
    let id = args.uuid(0, "p_batch_id")?;
    let who = Caller::current()?;
    let driver = who.driver(args.text(1, "p_driver_id")?)?;
    let seconds = match args.int(2) {
        Some(s) if (1..=604_800).contains(&s) => s,
        other => {
            return Err(Error::invalid_input(
                "p_seconds",
                format!(
                    "must be between 1 and 604800 (got {})",
                    other.map_or("NULL".to_string(), |s| s.to_string())
                ),
            ))
        }
    };
    let lock_ms = args.lock_timeout_ms(3)?;
    with_spi(lock_ms, |c| {
        batches::extend_lease(c, &who, &id, &driver, seconds)
    })
}

/// unclaim/start/complete_batch(p_batch_id, p_driver_id, p_lock_timeout_ms)
fn transition(args: &Args, t: Transition) -> Result<String> {
    let id = args.uuid(0, "p_batch_id")?;
    let who = Caller::current()?;
    let driver = who.driver(args.text(1, "p_driver_id")?)?;
    let lock_ms = args.lock_timeout_ms(2)?;
    with_spi(lock_ms, |c| {
        batches::transition(&Own, c, &who, &id, &driver, t)
    })
}

fn unclaim_batch(args: &Args) -> Result<String> {
    transition(args, Transition::Unclaim)
}

fn start_batch(args: &Args) -> Result<String> {
    transition(args, Transition::Start)
}

fn complete_batch(args: &Args) -> Result<String> {
    transition(args, Transition::Complete)
}

/// Bound batches have no leases and no limits.
const NO_TERMS: ClaimTerms = ClaimTerms {
    lease_seconds: None,
    max_active: None,
};

/// bound_claim_batch(p_source, p_batch_id, p_driver_id)
fn bound_claim(args: &Args) -> Result<String> {
    let src = args.source(0)?;
    let raw_id = args.text(1, "p_batch_id")?;
    let who = Caller::current()?;
    with_spi(None, |c| {
        let b = binding::get(c, &src, Kind::Batch)?;
        let id = item_key(b.id_type, raw_id.clone(), "p_batch_id")?;
        let driver = bound_driver(&b, who.driver(args.text(2, "p_driver_id")?)?)?;
        batches::claim(&*b, c, &who, &id, &driver, &NO_TERMS)
    })
}

/// bound_claim_next_batch(p_source, p_driver_id): NULL when none is left.
fn bound_claim_next(args: &Args) -> Result<Option<String>> {
    let src = args.source(0)?;
    let who = Caller::current()?;
    with_spi(None, |c| {
        let b = binding::get(c, &src, Kind::Batch)?;
        let driver = bound_driver(&b, who.driver(args.text(1, "p_driver_id")?)?)?;
        batches::claim_next(&*b, c, &who, &driver, None, &NO_TERMS)
    })
}

/// bound_unclaim_batch(p_source, p_batch_id, p_driver_id)
fn bound_unclaim(args: &Args) -> Result<String> {
    let src = args.source(0)?;
    let raw_id = args.text(1, "p_batch_id")?;
    let who = Caller::current()?;
    with_spi(None, |c| {
        let b = binding::get(c, &src, Kind::Batch)?;
        let id = item_key(b.id_type, raw_id.clone(), "p_batch_id")?;
        let driver = bound_driver(&b, who.driver(args.text(2, "p_driver_id")?)?)?;
        batches::transition(&*b, c, &who, &id, &driver, Transition::Unclaim)
    })
}

entry_points! {
    ai_claim_batch / pg_finfo_ai_claim_batch
        (UUIDOID, TEXTOID, INT4OID, INT4OID, INT4OID) => claim_batch;
    ai_claim_next_batch / pg_finfo_ai_claim_next_batch
        (TEXTOID, TEXTOID, INT4OID, INT4OID, INT4OID) => claim_next_batch;
    ai_unclaim_batch / pg_finfo_ai_unclaim_batch (UUIDOID, TEXTOID, INT4OID) => unclaim_batch;
    ai_start_batch / pg_finfo_ai_start_batch (UUIDOID, TEXTOID, INT4OID) => start_batch;
    ai_complete_batch / pg_finfo_ai_complete_batch (UUIDOID, TEXTOID, INT4OID) => complete_batch;
    ai_extend_batch_lease / pg_finfo_ai_extend_batch_lease (UUIDOID, TEXTOID, INT4OID, INT4OID)
        => extend_lease;
    ai_bound_claim_batch / pg_finfo_ai_bound_claim_batch (TEXTOID, TEXTOID, TEXTOID) => bound_claim;
    ai_bound_claim_next_batch / pg_finfo_ai_bound_claim_next_batch (TEXTOID, TEXTOID)
        => bound_claim_next;
    ai_bound_unclaim_batch / pg_finfo_ai_bound_unclaim_batch (TEXTOID, TEXTOID, TEXTOID)
        => bound_unclaim;
}
