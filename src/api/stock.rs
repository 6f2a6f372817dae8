//! The stock functions: decrement_inventory, decrement_inventory_many,
//! increment_inventory, adjust_inventory, transfer_inventory (and the
//! receipt or cancellation of a transfer in transit) on the extension's
//! items, and their bound_* twins on an adopted table. Each reads its
//! arguments, validates them, takes an idempotency key, picks the source
//! and runs the operation (ops/stock.rs, ops/transfers.rs).

use crate::core::caller::Caller;
use crate::core::idempotency;
use crate::core::movement::Movement;
use crate::core::validate;
use crate::error::{Error, Result};
use crate::ops::{kits, stock, transfers};
use crate::pg::fmgr::{entry_points, Args};
use crate::pg::spi::with_spi;
use crate::source::bound::binding::{self, Kind};
use crate::source::bound::stock::{describe, lines as bound_lines, row_key};
use crate::source::own::levels::{self, Level, LevelKey};
use crate::source::own::Own;
use crate::source::StockSource;
use pgrx::spi::SpiClient;
use pgrx::Uuid;
use serde_json::json;

/// The location an argument names, unless it is the default one (whose
/// stock is the item's own row: the calls without a location).
fn location(args: &Args, n: usize) -> Option<Uuid> {
    args.get_uuid(n).filter(|l| !levels::is_default(l))
}

/// An idempotency key's request: `base` and the location, when one was
/// named (so a key first used without one replays as before).
fn with_location(mut base: serde_json::Value, at: Option<Uuid>) -> String {
    if let Some(l) = at {
        base["location_id"] = json!(l.to_string());
    }
    base.to_string()
}

/// decrement_inventory(p_inventory_id, p_quantity, p_reason, p_reference,
/// p_idempotency_key, p_lock_timeout_ms, p_location_id)
fn decrement(args: &Args) -> Result<String> {
    let id = args.uuid(0, "p_inventory_id")?;
    let qty = validate::positive_quantity(args.numeric(1), "p_quantity")?;
    let mv = Movement::read(args, 2)?;
    let at = location(args, 6);
    let who = Caller::current()?;
    let request = || {
        with_location(
            json!({"inventory_id": id.to_string(), "quantity": qty.normalize(),
                   "reason": mv.reason, "reference": mv.reference}),
            at,
        )
    };
    with_spi(mv.lock_timeout_ms, |c| {
        idempotency::once(
            c,
            &who,
            mv.key.as_deref(),
            "decrement_inventory",
            request,
            |c| {
                // A kit's own row holds nothing, so its sale is refused
                // there first: then (never on the path of a sale that
                // succeeds) it is sold as its components.
                let kit = |c: &mut SpiClient<'_>| kits::decrement_kit(c, &who, id, &qty, at, &mv);
                match at {
                    None => stock::decrement_unless(&Own, c, &who, &id, &qty, &mv, kit),
                    Some(location) => {
                        let key = LevelKey { item: id, location };
                        let l = Level { sale: true };
                        stock::decrement_unless(&l, c, &who, &key, &qty, &mv, kit)
                    }
                }
            },
        )
    })
}

/// increment_inventory(p_inventory_id, p_quantity, p_reason, p_reference,
/// p_idempotency_key, p_lock_timeout_ms, p_location_id)
fn increment(args: &Args) -> Result<String> {
    let id = args.uuid(0, "p_inventory_id")?;
    let qty = validate::positive_quantity(args.numeric(1), "p_quantity")?;
    let mv = Movement::read(args, 2)?;
    let at = location(args, 6);
    let who = Caller::current()?;
    let request = || {
        with_location(
            json!({"inventory_id": id.to_string(), "quantity": qty.normalize(),
                   "reason": mv.reason, "reference": mv.reference}),
            at,
        )
    };
    with_spi(mv.lock_timeout_ms, |c| {
        idempotency::once(
            c,
            &who,
            mv.key.as_deref(),
            "increment_inventory",
            request,
            |c| match at {
                None => stock::increment(&Own, c, &who, &id, &qty, &mv),
                Some(location) => {
                    let key = LevelKey { item: id, location };
                    stock::increment(&Level { sale: false }, c, &who, &key, &qty, &mv)
                }
            },
        )
    })
}

/// transfer_inventory(p_inventory_id, p_from_location_id, p_to_location_id,
/// p_quantity, p_reason, p_reference, p_idempotency_key, p_lock_timeout_ms,
/// p_receive)
fn transfer(args: &Args) -> Result<String> {
    let id = args.uuid(0, "p_inventory_id")?;
    let from = args.uuid(1, "p_from_location_id")?;
    let to = args.uuid(2, "p_to_location_id")?;
    if from == to {
        return Err(Error::invalid_input(
            "p_to_location_id",
            "is the same location as p_from_location_id",
        ));
    }
    let qty = validate::positive_quantity(args.numeric(3), "p_quantity")?;
    let mv = Movement::read(args, 4)?;
    // NULL is the default: received at once
    let receive = args.bool_or(8, true);
    let who = Caller::current()?;
    let request = || {
        let mut r = json!({"inventory_id": id.to_string(), "from_location_id": from.to_string(),
               "to_location_id": to.to_string(), "quantity": qty.normalize(),
               "reason": mv.reason, "reference": mv.reference});
        // only when shipped, so a key first used before p_receive existed
        // replays as before
        if !receive {
            r["receive"] = json!(false);
        }
        r.to_string()
    };
    with_spi(mv.lock_timeout_ms, |c| {
        idempotency::once(
            c,
            &who,
            mv.key.as_deref(),
            "transfer_inventory",
            request,
            |c| {
                let route = stock::Route { item: id, from, to };
                let l = Level { sale: false };
                if receive {
                    stock::transfer(&l, c, &who, &route, &qty, &mv)
                } else {
                    transfers::ship(&l, c, &who, &route, &qty, &mv)
                }
            },
        )
    })
}

/// receive_transfer(p_transfer_id, p_quantity, p_reason, p_reference,
/// p_idempotency_key, p_lock_timeout_ms) and cancel_transfer(p_transfer_id,
/// p_reason, p_reference, p_idempotency_key, p_lock_timeout_ms)
fn finish_transfer(args: &Args, received: bool) -> Result<String> {
    let id = args.uuid(0, "p_transfer_id")?;
    let (qty, first) = if received {
        let q = args
            .numeric(1)
            .map(|q| validate::positive_quantity(Some(q), "p_quantity"))
            .transpose()?;
        (q, 2)
    } else {
        (None, 1)
    };
    let mv = Movement::read(args, first)?;
    let who = Caller::current()?;
    let function = if received {
        "receive_transfer"
    } else {
        "cancel_transfer"
    };
    let request = || {
        json!({"transfer_id": id.to_string(),
               "quantity": qty.as_ref().map(|q| q.normalize().to_string()),
               "reason": mv.reason, "reference": mv.reference})
        .to_string()
    };
    with_spi(mv.lock_timeout_ms, |c| {
        idempotency::once(c, &who, mv.key.as_deref(), function, request, |c| {
            let l = Level { sale: false };
            transfers::finish(&l, c, &who, id, qty.as_ref(), received, &mv)
        })
    })
}

fn receive_transfer(args: &Args) -> Result<String> {
    finish_transfer(args, true)
}

fn cancel_transfer(args: &Args) -> Result<String> {
    finish_transfer(args, false)
}

/// adjust_inventory(p_inventory_id, p_new_quantity, p_expected_quantity,
/// p_force, p_reason, p_reference, p_idempotency_key, p_lock_timeout_ms,
/// p_location_id)
fn adjust(args: &Args) -> Result<String> {
    let id = args.uuid(0, "p_inventory_id")?;
    let (new_qty, expected, force) = validate::compare_and_set(args, 1)?;
    let mv = Movement::read(args, 4)?;
    let at = location(args, 8);
    let who = Caller::current()?;
    let request = || {
        with_location(
            json!({"inventory_id": id.to_string(), "new_quantity": new_qty.normalize(),
                   "expected_quantity": expected.as_ref().map(|e| e.normalize().to_string()),
                   "force": force, "reason": mv.reason, "reference": mv.reference}),
            at,
        )
    };
    with_spi(mv.lock_timeout_ms, |c| {
        idempotency::once(
            c,
            &who,
            mv.key.as_deref(),
            "adjust_inventory",
            request,
            |c| match at {
                None => stock::adjust(&Own, c, &who, &id, &new_qty, expected.as_ref(), &mv),
                Some(location) => {
                    let key = LevelKey { item: id, location };
                    let l = Level { sale: false };
                    stock::adjust(&l, c, &who, &key, &new_qty, expected.as_ref(), &mv)
                }
            },
        )
    })
}

/// decrement_inventory_many(p_lines, p_reason, p_reference,
/// p_idempotency_key, p_lock_timeout_ms)
fn decrement_many(args: &Args) -> Result<String> {
    let lines = validate::lines(args.jsonb_container(0), "p_lines")?;
    let mv = Movement::read(args, 1)?;
    let who = Caller::current()?;
    let request = || {
        json!({"lines": validate::canonical_lines(&lines), "reason": mv.reason,
               "reference": mv.reference})
        .to_string()
    };
    with_spi(mv.lock_timeout_ms, |c| {
        idempotency::once(
            c,
            &who,
            mv.key.as_deref(),
            "decrement_inventory_many",
            request,
            // Kits read as their components; then an order naming a
            // location, or of items with stock at other locations, is
            // allocated across them (ops/allocate.rs), else the
            // one-statement sale of the items' own rows.
            |c| kits::decrement_order(c, &who, &lines, &mv),
        )
    })
}

/// Which one-row movement a bound_* function makes.
#[derive(Clone, Copy)]
enum OneRow {
    Decrement,
    Increment,
}

/// bound_decrement / bound_increment(p_source, p_item_id, p_quantity,
/// p_reason, p_reference, p_idempotency_key, p_lock_timeout_ms, p_location)
fn bound_one(args: &Args, how: OneRow) -> Result<String> {
    let src = args.source(0)?;
    let key_text = args.text(1, "p_item_id")?;
    let loc_text = args.text(7, "p_location")?;
    let qty = validate::positive_quantity(args.numeric(2), "p_quantity")?;
    let mv = Movement::read(args, 3)?;
    let who = Caller::current()?;
    let function = match how {
        OneRow::Decrement => "bound_decrement",
        OneRow::Increment => "bound_increment",
    };
    with_spi(mv.lock_timeout_ms, |c| {
        let b = binding::get(c, &src, Kind::Stock)?;
        let key = row_key(
            &b,
            key_text.clone(),
            loc_text.clone(),
            "p_item_id",
            "p_location",
        )?;
        b.fits(&qty, "p_quantity")?;
        let request = || {
            json!({"source": src, "item_id": key, "quantity": qty.normalize(),
                   "reason": mv.reason, "reference": mv.reference})
            .to_string()
        };
        idempotency::once(
            c,
            &who,
            mv.key.as_deref(),
            function,
            request,
            |c| match how {
                OneRow::Decrement => stock::decrement(&*b, c, &who, &key, &qty, &mv),
                OneRow::Increment => stock::increment(&*b, c, &who, &key, &qty, &mv),
            },
        )
    })
}

fn bound_decrement(args: &Args) -> Result<String> {
    bound_one(args, OneRow::Decrement)
}

fn bound_increment(args: &Args) -> Result<String> {
    bound_one(args, OneRow::Increment)
}

/// bound_adjust(p_source, p_item_id, p_new_quantity, p_expected_quantity,
/// p_force, p_reason, p_reference, p_idempotency_key, p_lock_timeout_ms,
/// p_location)
fn bound_adjust(args: &Args) -> Result<String> {
    let src = args.source(0)?;
    let key_text = args.text(1, "p_item_id")?;
    let loc_text = args.text(9, "p_location")?;
    let (new_qty, expected, force) = validate::compare_and_set(args, 2)?;
    let mv = Movement::read(args, 5)?;
    let who = Caller::current()?;
    with_spi(mv.lock_timeout_ms, |c| {
        let b = binding::get(c, &src, Kind::Stock)?;
        let key = row_key(
            &b,
            key_text.clone(),
            loc_text.clone(),
            "p_item_id",
            "p_location",
        )?;
        b.fits(&new_qty, "p_new_quantity")?;
        let request = || {
            json!({"source": src, "item_id": key, "new_quantity": new_qty.normalize(),
                   "expected_quantity": expected.as_ref().map(|e| e.normalize().to_string()),
                   "force": force, "reason": mv.reason, "reference": mv.reference})
            .to_string()
        };
        idempotency::once(c, &who, mv.key.as_deref(), "bound_adjust", request, |c| {
            stock::adjust(&*b, c, &who, &key, &new_qty, expected.as_ref(), &mv)
        })
    })
}

/// bound_decrement_many(p_source, p_lines, p_reason, p_reference,
/// p_idempotency_key, p_lock_timeout_ms)
fn bound_decrement_many(args: &Args) -> Result<String> {
    let src = args.source(0)?;
    let raw = args.jsonb_container(1);
    let mv = Movement::read(args, 2)?;
    let who = Caller::current()?;
    with_spi(mv.lock_timeout_ms, |c| {
        let b = binding::get(c, &src, Kind::Stock)?;
        let merged = bound_lines(&b, raw)?;
        let request = || {
            let canon: Vec<(String, String)> = merged
                .keys
                .iter()
                .zip(&merged.qtys)
                .map(|(k, q)| (k.clone(), q.normalize().to_string()))
                .collect();
            json!({"source": src, "lines": canon, "reason": mv.reason, "reference": mv.reference})
                .to_string()
        };
        idempotency::once(
            c,
            &who,
            mv.key.as_deref(),
            "bound_decrement_many",
            request,
            |c| stock::decrement_many(&*b, c, &who, &merged, &mv),
        )
    })
}

/// bound_get(p_source, p_item_id, p_location)
fn bound_get(args: &Args) -> Result<String> {
    let src = args.source(0)?;
    let key_text = args.text(1, "p_item_id")?;
    let loc_text = args.text(2, "p_location")?;
    let who = Caller::current()?;
    with_spi(None, |c| {
        let b = binding::get(c, &src, Kind::Stock)?;
        let key = row_key(&b, key_text, loc_text, "p_item_id", "p_location")?;
        describe(&b, c, &who, &key)
    })
}

entry_points! {
    ai_decrement_inventory / pg_finfo_ai_decrement_inventory
        (UUIDOID, NUMERICOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, UUIDOID) => decrement;
    ai_increment_inventory / pg_finfo_ai_increment_inventory
        (UUIDOID, NUMERICOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, UUIDOID) => increment;
    ai_adjust_inventory / pg_finfo_ai_adjust_inventory
        (UUIDOID, NUMERICOID, NUMERICOID, BOOLOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, UUIDOID)
        => adjust;
    ai_transfer_inventory / pg_finfo_ai_transfer_inventory
        (UUIDOID, UUIDOID, UUIDOID, NUMERICOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, BOOLOID)
        => transfer;
    ai_receive_transfer / pg_finfo_ai_receive_transfer
        (UUIDOID, NUMERICOID, TEXTOID, TEXTOID, TEXTOID, INT4OID) => receive_transfer;
    ai_cancel_transfer / pg_finfo_ai_cancel_transfer
        (UUIDOID, TEXTOID, TEXTOID, TEXTOID, INT4OID) => cancel_transfer;
    ai_decrement_inventory_many / pg_finfo_ai_decrement_inventory_many
        (JSONBOID, TEXTOID, TEXTOID, TEXTOID, INT4OID) => decrement_many;
    ai_bound_decrement / pg_finfo_ai_bound_decrement
        (TEXTOID, TEXTOID, NUMERICOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID)
        => bound_decrement;
    ai_bound_increment / pg_finfo_ai_bound_increment
        (TEXTOID, TEXTOID, NUMERICOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID)
        => bound_increment;
    ai_bound_adjust / pg_finfo_ai_bound_adjust
        (TEXTOID, TEXTOID, NUMERICOID, NUMERICOID, BOOLOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID)
        => bound_adjust;
    ai_bound_decrement_many / pg_finfo_ai_bound_decrement_many
        (TEXTOID, JSONBOID, TEXTOID, TEXTOID, TEXTOID, INT4OID) => bound_decrement_many;
    ai_bound_get / pg_finfo_ai_bound_get (TEXTOID, TEXTOID, TEXTOID) => bound_get;
}
