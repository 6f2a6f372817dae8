//! increment_packing_quantity and decrement_packing_quantity on the
//! extension's packing tables (ops/packing.rs).

use crate::core::caller::Caller;
use crate::error::{Error, Result};
use crate::ops::packing;
use crate::pg::fmgr::{entry_points, Args};
use crate::pg::spi::with_spi;
use crate::source::own::Own;

/// Units per call: 1..=10000.
fn units(args: &Args, n: usize) -> Result<i32> {
    match args.int(n) {
        None => Ok(1),
        Some(q) if (1..=10_000).contains(&q) => Ok(q),
        Some(q) => Err(Error::invalid_quantity(
            "p_quantity",
            "must be between 1 and 10000",
            Some(q.to_string()),
        )),
    }
}

/// increment_packing_quantity(p_progress_id, p_quantity_needed,
/// p_picked_quantity, p_session_id, p_product_id, p_quantity,
/// p_lock_timeout_ms)
fn increment(args: &Args) -> Result<String> {
    let line = args.uuid(0, "p_progress_id")?;
    // arguments 1 and 2 (p_quantity_needed, p_picked_quantity) are the
    // packing RPC's: accepted, but the tables decide
    let session = args.uuid(3, "p_session_id")?;
    let product = args.get_uuid(4);
    let n = units(args, 5)?;
    let lock_ms = args.lock_timeout_ms(6)?;
    let who = Caller::current()?;
    with_spi(lock_ms, |c| {
        packing::change(&Own, c, &who, session, line, product, n)
    })
}

/// decrement_packing_quantity(p_progress_id, p_session_id, p_quantity,
/// p_lock_timeout_ms)
fn decrement(args: &Args) -> Result<String> {
    let line = args.uuid(0, "p_progress_id")?;
    let session = args.uuid(1, "p_session_id")?;
    let n = units(args, 2)?;
    let lock_ms = args.lock_timeout_ms(3)?;
    let who = Caller::current()?;
    with_spi(lock_ms, |c| {
        packing::change(&Own, c, &who, session, line, None, -n)
    })
}

entry_points! {
    ai_increment_packing_quantity / pg_finfo_ai_increment_packing_quantity
        (UUIDOID, INT4OID, INT4OID, UUIDOID, UUIDOID, INT4OID, INT4OID) => increment;
    ai_decrement_packing_quantity / pg_finfo_ai_decrement_packing_quantity
        (UUIDOID, UUIDOID, INT4OID, INT4OID) => decrement;
}
