//! move_stock_state: units of an item between available and its stock
//! states (source/own/states.rs, docs/stock-states.md).

use crate::core::caller::Caller;
use crate::core::idempotency;
use crate::core::movement::Movement;
use crate::core::validate;
use crate::error::{Error, Result};
use crate::pg::fmgr::{entry_points, Args};
use crate::pg::spi::with_spi;
use crate::source::own::states::{self, Move};
use serde_json::json;

/// move_stock_state(p_inventory_id, p_from, p_to, p_quantity, p_reason,
/// p_reference, p_idempotency_key, p_lock_timeout_ms)
fn move_stock_state(args: &Args) -> Result<pgrx::JsonB> {
    let item = args.uuid(0, "p_inventory_id")?;
    let from = states::parse_from(args.text(1, "p_from")?)?;
    let to = states::parse_to(args.text(2, "p_to")?)?;
    // the pair first: a move that can never be is bad input whatever the quantity
    states::plan(from, to)?;
    let quantity = validate::positive_quantity(args.numeric(3), "p_quantity")?;
    let mv = Movement::read(args, 4)?;
    let who = Caller::current()?;
    let m = Move {
        item,
        from,
        to,
        quantity,
    };
    let request = || {
        json!({"inventory_id": item.to_string(), "from": from.as_str(), "to": to.as_str(),
               "quantity": m.quantity.normalize(), "reason": mv.reason, "reference": mv.reference})
        .to_string()
    };
    let answer = with_spi(mv.lock_timeout_ms, |c| {
        idempotency::once(
            c,
            &who,
            mv.key.as_deref(),
            "move_stock_state",
            request,
            |c| states::move_units(c, &who, &m, &mv),
        )
    })?;
    // declared jsonb (the answer's states read as one object); stored and
    // replayed as text like every other answer
    let value = serde_json::from_str(&answer)
        .map_err(|e| Error::Internal(format!("a stored answer is not JSON: {e}")))?;
    Ok(pgrx::JsonB(value))
}

entry_points! {
    ai_move_stock_state / pg_finfo_ai_move_stock_state
        (UUIDOID, TEXTOID, TEXTOID, NUMERICOID, TEXTOID, TEXTOID, TEXTOID, INT4OID) => move_stock_state;
}
