//! increment_packing_quantity and decrement_packing_quantity on the
//! extension's packing tables, and their bound_* twins on a warehouse's own
//! tables (bind_packing_source) (ops/packing.rs).

use crate::core::caller::Caller;
use crate::core::idempotency;
use crate::error::{Error, Result};
use crate::ops::packing;
use crate::pg::fmgr::{entry_points, Args};
use crate::pg::spi::with_spi;
use crate::source::bound::binding::{self, Kind};
use crate::source::own::Own;
use serde_json::json;

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
        packing::change(&Own, c, &who, &session, &line, product.as_ref(), n)
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
        packing::change(&Own, c, &who, &session, &line, None, -n)
    })
}

/// bound_increment_packing_quantity(p_source, p_progress_id, p_session_id,
/// p_product_id, p_quantity, p_idempotency_key, p_lock_timeout_ms) and
/// bound_decrement_packing_quantity(p_source, p_progress_id, p_session_id,
/// p_quantity, p_idempotency_key, p_lock_timeout_ms): the product, for a
/// pack only, at `product_at`.
fn bound_change(args: &Args, pack: bool) -> Result<String> {
    let src = args.source(0)?;
    let line_text = args.text(1, "p_progress_id")?;
    let session_text = args.text(2, "p_session_id")?;
    let (product_text, rest) = if pack {
        (args.text(3, "p_product_id")?, 4)
    } else {
        (None, 3)
    };
    let n = units(args, rest)?;
    let key = args.idempotency_key(rest + 1)?;
    let lock_ms = args.lock_timeout_ms(rest + 2)?;
    let who = Caller::current()?;
    let function = if pack {
        "bound_increment_packing_quantity"
    } else {
        "bound_decrement_packing_quantity"
    };
    with_spi(lock_ms, |c| {
        let b = binding::get(c, &src, Kind::Packing)?;
        let spec = b
            .packing
            .as_ref()
            .ok_or_else(|| Error::Internal(format!("packing binding {src} without its tables")))?;
        let line = b.packing_key(spec.line_id_type, line_text.clone(), "p_progress_id")?;
        let session = b.packing_key(b.id_type, session_text.clone(), "p_session_id")?;
        let product = match product_text.clone() {
            Some(p) => Some(b.packing_key(spec.product_id_type, Some(p), "p_product_id")?),
            None => None,
        };
        let request = || {
            json!({"source": src, "progress_id": line, "session_id": session,
                   "product_id": product, "quantity": n})
            .to_string()
        };
        let delta = if pack { n } else { -n };
        idempotency::once(c, &who, key.as_deref(), function, request, |c| {
            packing::change(&*b, c, &who, &session, &line, product.as_ref(), delta)
        })
    })
}

fn bound_increment(args: &Args) -> Result<String> {
    bound_change(args, true)
}

fn bound_decrement(args: &Args) -> Result<String> {
    bound_change(args, false)
}

entry_points! {
    ai_increment_packing_quantity / pg_finfo_ai_increment_packing_quantity
        (UUIDOID, INT4OID, INT4OID, UUIDOID, UUIDOID, INT4OID, INT4OID) => increment;
    ai_decrement_packing_quantity / pg_finfo_ai_decrement_packing_quantity
        (UUIDOID, UUIDOID, INT4OID, INT4OID) => decrement;
    ai_bound_increment_packing_quantity / pg_finfo_ai_bound_increment_packing_quantity
        (TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID, INT4OID) => bound_increment;
    ai_bound_decrement_packing_quantity / pg_finfo_ai_bound_decrement_packing_quantity
        (TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID, INT4OID) => bound_decrement;
}
