//! Orders that may name kits (docs/kits.md): each kit line is read as its
//! components' lines (source/own/kits.rs), then the order is sold as any
//! other: in one call, rows locked once each in ascending order, all or
//! nothing. The answer lists the components sold and, under `kits`, the
//! kit lines they came from.

use crate::core::caller::Caller;
use crate::core::movement::{num, Movement};
use crate::core::validate::{self, Line};
use crate::error::{Error, Result};
use crate::ops::{allocate, stock};
use crate::pg::plans;
use crate::source::own::kits::{self, Expanded, KitUse};
use crate::source::own::Own;
use crate::source::own::{level_orders, lines};
use crate::source::{Lines, StockSource};
use pgrx::{AnyNumeric, Uuid};
use serde_json::{json, Value};

/// Sell an order (`decrement_inventory_many`'s lines), kits included.
pub fn decrement_order(
    c: &mut pgrx::spi::SpiClient<'_>,
    who: &Caller,
    lines: &[Line],
    mv: &Movement,
) -> Result<String> {
    // (Generic plans: decrement_inventory_many's SET clause asks for them.)
    // Most orders name no location, no kit and no item with stock at other
    // locations: their first statement sells them, guarded so that it
    // touches nothing otherwise (source/own/lines.rs, sell_plain).
    if lines.iter().all(|l| l.location_id.is_none()) {
        let (keys, qtys) = validate::merged_lines(lines);
        if let Some(sold) = lines::sell_plain(c, who, &Lines { keys, qtys }, mv)? {
            return Ok(Own.lines_sold(sold));
        }
    }
    let order = kits::expand(c, who, lines)?;
    let done = sell(c, who, &order, mv)?;
    if order.kits.is_empty() {
        return Ok(done);
    }
    let mut answer = parse(&done)?;
    answer["kits"] = kit_lines(&order.kits);
    Ok(answer.to_string())
}

/// A single-line sale that the item's own row refused: if `id` is a kit
/// visible to the caller, its components sold (the answer); else None, and
/// the sale goes on to learn why the row refused (one statement more on
/// that path, none on a sale that succeeds).
pub fn decrement_kit(
    c: &mut pgrx::spi::SpiClient<'_>,
    who: &Caller,
    id: Uuid,
    qty: &AnyNumeric,
    at: Option<Uuid>,
    mv: &Movement,
) -> Result<Option<String>> {
    let line = Line {
        inventory_id: id,
        quantity: qty.clone(),
        location_id: at,
    };
    let sold = plans::generic(|| {
        let order = kits::expand(c, who, std::slice::from_ref(&line))?;
        if order.kits.is_empty() {
            return Ok(None);
        }
        sell(c, who, &order, mv).map(Some)
    })?;
    let Some(sold) = sold else {
        return Ok(None);
    };
    let sold = parse(&sold)?;
    let mut answer = json!({"success": true, "inventory_id": validate::uuid_text(&id),
                            "kit": true, "deducted": num(qty),
                            "lines": sold.get("lines").cloned().unwrap_or(Value::Null)});
    if let Some(l) = at {
        answer["location_id"] = json!(l.to_string());
    }
    Ok(Some(answer.to_string()))
}

/// The order's lines as reserve_inventory holds them (merged per item,
/// sorted), the kits they came from, and whether any of their items has
/// stock at other locations.
pub fn hold_lines(
    c: &mut pgrx::spi::SpiClient<'_>,
    who: &Caller,
    lines: &[Line],
) -> Result<(Lines<Uuid>, Vec<KitUse>, bool)> {
    // one statement on every hold: on its generic plan (pg/plans.rs), not
    // planned again for each one- or two-line cart
    let order = plans::generic(|| kits::expand(c, who, lines))?;
    let (keys, qtys) = validate::merged_lines(&order.lines);
    let any_levels = match order.any_levels {
        Some(known) => known,
        // kits: their components' levels
        None => level_orders::any_levels(c, &keys)?,
    };
    Ok((Lines { keys, qtys }, order.kits, any_levels))
}

/// The order's lines as reserve_inventory holds them when a line names a
/// location (kits read as their components, each at its kit line's
/// location), not merged: ops::reservations::reserve_at merges them per
/// item and location.
pub fn hold_lines_at(
    c: &mut pgrx::spi::SpiClient<'_>,
    who: &Caller,
    lines: &[Line],
) -> Result<(Vec<Line>, Vec<KitUse>)> {
    let order = kits::expand(c, who, lines)?;
    Ok((order.lines, order.kits))
}

/// A reservation's answer with the kit lines it held, if any.
pub fn with_kits(done: String, used: &[KitUse]) -> Result<String> {
    if used.is_empty() {
        return Ok(done);
    }
    let mut answer = parse(&done)?;
    answer["kits"] = kit_lines(used);
    Ok(answer.to_string())
}

/// Sell the expanded order: across locations when a line names one or an
/// item has levels (ops/allocate.rs), else the one-statement sale.
fn sell(
    c: &mut pgrx::spi::SpiClient<'_>,
    who: &Caller,
    order: &Expanded,
    mv: &Movement,
) -> Result<String> {
    let located = order.lines.iter().any(|l| l.location_id.is_some());
    let (keys, qtys) = validate::merged_lines(&order.lines);
    let any_levels = match order.any_levels {
        Some(known) => known,
        None if located => true,
        // kits' components: the guarded first statement asks about their
        // levels itself, and sells them when they have none
        None => {
            let lines = Lines {
                keys: keys.clone(),
                qtys: qtys.clone(),
            };
            if let Some(sold) = lines::sell_plain(c, who, &lines, mv)? {
                return Ok(Own.lines_sold(sold));
            }
            level_orders::any_levels(c, &keys)?
        }
    };
    if any_levels || located {
        return allocate::decrement_many_at(c, who, &order.lines, mv);
    }
    stock::decrement_many(&Own, c, who, &Lines { keys, qtys }, mv)
}

fn kit_lines(used: &[KitUse]) -> Value {
    Value::Array(
        used.iter()
            .map(|k| {
                let mut v = json!({"inventory_id": validate::uuid_text(&k.kit),
                                   "quantity": num(&k.quantity)});
                if let Some(l) = k.location_id {
                    v["location_id"] = json!(l.to_string());
                }
                v
            })
            .collect(),
    )
}

fn parse(done: &str) -> Result<Value> {
    serde_json::from_str(done)
        .map_err(|e| Error::Internal(format!("an answer that isn't JSON: {e}")))
}
