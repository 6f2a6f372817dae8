//! Transfers in two steps (docs/locations.md): ship now (the units leave
//! the source's level and are in transit), then receive them at the
//! destination or cancel (they return to the source). A transfer that
//! completes at once is ops::stock::transfer, which this leaves alone.
//!
//! Concurrency: shipping locks only the source's level (the destination's
//! is untouched until the receipt), with the guarded write of a transfer;
//! a receipt or a cancellation locks the transfer's row, then the one level
//! it changes (source/own/transfers.rs), so of two at once on one transfer
//! exactly one moves the units and the other is told it is no longer in
//! transit. Every ledger row of one transfer carries its id.

use crate::core::caller::Caller;
use crate::core::movement::{num, num_json, Movement};
use crate::core::validate;
use crate::error::{Error, Result};
use crate::ops::stock::{self, Route};
use crate::source::own::levels::{self, Level, LevelKey};
use crate::source::own::transfers;
use pgrx::spi::SpiClient;
use pgrx::{AnyNumeric, Uuid};
use serde_json::json;

/// Lock `key`'s row for a transfer side, gathering a striped level's
/// stripes into its row (the item's own at the default location) first so
/// the row holds all of its stock: the row's state, and whether it was
/// gathered (to respread after the write).
fn lock_side(
    l: &Level,
    c: &mut SpiClient<'_>,
    who: &Caller,
    key: &LevelKey,
    need: &AnyNumeric,
    inactive_ok: bool,
) -> Result<(crate::source::RowState, bool)> {
    let row = l.lock_at(c, who, key, need, inactive_ok)?;
    if !row.striped {
        return Ok((row, false));
    }
    l.gather_at(c, key)?;
    Ok((l.lock_at(c, who, key, need, inactive_ok)?, true))
}

/// Ship `qty` units of `route.item`: taken from the source's level now
/// (ledger kind `transfer`), recorded in transit to the destination. The
/// destination must be usable for a transfer now (visible, active); its
/// level is created empty, so it shows the units in transit.
pub fn ship(
    l: &Level,
    c: &mut SpiClient<'_>,
    who: &Caller,
    route: &Route,
    qty: &AnyNumeric,
    mv: &Movement,
) -> Result<String> {
    let Route { item, from, to } = *route;
    let src = LevelKey {
        item,
        location: from,
    };
    let dst = LevelKey { item, location: to };
    l.ensure(c, who, &dst)?;
    // The default location's row is the item's own (always there and
    // active); any other destination must have a level now, else says why.
    if !levels::is_default(&to) {
        if let Some(e) = levels::diagnose(c, who, &dst, false, false)? {
            return Err(e);
        }
    }
    let (row, striped) = lock_side(l, c, who, &src, qty, true)?;
    // stock on hand only, as for a transfer that completes at once
    stock::source_covers(&item, &row, qty)?;
    let id = crate::pg::backend::random_uuid();
    let zero = AnyNumeric::from(0);
    let minus = zero - qty.clone();
    let out = stock::written(l, c, who, &src, true, |c| {
        l.shift_at(c, who, &src, &minus, mv, id)
    })?;
    transfers::ship(
        c,
        id,
        item,
        from,
        to,
        qty,
        mv.reason.clone(),
        mv.reference.clone(),
    )?;
    if striped {
        l.respread_at(c, &src)?;
    }
    Ok(json!({
        "success": true, "transfer_id": validate::uuid_text(&id), "status": "shipped",
        "inventory_id": validate::uuid_text(&item), "quantity": num(qty),
        "from": {"location_id": validate::uuid_text(&from),
                 "old_quantity": num_json(&out.old), "new_quantity": num_json(&out.new)},
        "to": {"location_id": validate::uuid_text(&to)},
    })
    .to_string())
}

/// Receive transfer `id` (received = true: its units added to the
/// destination's level, created if it has none) or cancel it (returned to
/// the source's). `qty`, if given, must be the shipped quantity.
pub fn finish(
    l: &Level,
    c: &mut SpiClient<'_>,
    who: &Caller,
    id: Uuid,
    qty: Option<&AnyNumeric>,
    received: bool,
    mv: &Movement,
) -> Result<String> {
    let t = transfers::lock(c, who, id)?;
    if let Some(q) = qty {
        if *q != t.quantity {
            return Err(Error::invalid_input(
                "p_quantity",
                format!(
                    "must be the shipped quantity {} (a transfer is received whole)",
                    t.quantity.normalize()
                ),
            ));
        }
    }
    let key = LevelKey {
        item: t.item,
        location: if received { t.to } else { t.from },
    };
    l.ensure(c, who, &key)?;
    let zero = AnyNumeric::from(0);
    let (_, striped) = lock_side(l, c, who, &key, &zero, false)?;
    let into = stock::written(l, c, who, &key, false, |c| {
        l.shift_at(c, who, &key, &t.quantity, mv, t.id)
    })?;
    transfers::finish(c, t.id, received)?;
    if striped {
        l.respread_at(c, &key)?;
    }
    let side = json!({"location_id": validate::uuid_text(&key.location),
                      "old_quantity": num_json(&into.old), "new_quantity": num_json(&into.new)});
    let mut answer = json!({
        "success": true, "transfer_id": validate::uuid_text(&t.id),
        "status": if received { "received" } else { "cancelled" },
        "inventory_id": validate::uuid_text(&t.item), "quantity": num(&t.quantity),
        "from_location_id": validate::uuid_text(&t.from),
        "to_location_id": validate::uuid_text(&t.to),
    });
    answer[if received { "to" } else { "from" }] = side;
    Ok(answer.to_string())
}
