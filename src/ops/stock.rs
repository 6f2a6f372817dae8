//! Stock movements, written once over any stock source: sell one line,
//! restock, compare-and-set, sell many lines at once.
//!
//! Concurrency: the fast path of each is one guarded write (its condition
//! in the statement's WHERE clause), so under READ COMMITTED a waiting
//! caller re-checks the row's newest version after the holder commits: no
//! read-then-write window, no lost update. When the write refuses, the row
//! is locked to learn why with a stable answer (and if a restock landed
//! meanwhile, the row is ours now and a second write succeeds). Many lines
//! lock their rows in ascending key order, so two orders naming the same
//! items in opposite order queue instead of deadlocking. At REPEATABLE READ
//! or SERIALIZABLE a concurrent change raises 40001 as usual; it is not
//! hidden.

use crate::core::caller::Caller;
use crate::core::movement::{num, num_json, numeric, Moved, Movement};
use crate::core::validate;
use crate::error::{Error, Result, Shortfall};
use crate::source::own::levels::{is_default, Level, LevelKey};
use crate::source::{Lines, RowState, StockSource};
use pgrx::spi::SpiClient;
use pgrx::{AnyNumeric, Uuid};
use serde_json::json;

/// Sell `qty` units of one item: all or nothing.
pub fn decrement<S: StockSource>(
    s: &S,
    c: &mut SpiClient<'_>,
    who: &Caller,
    key: &S::Key,
    qty: &AnyNumeric,
    mv: &Movement,
) -> Result<String> {
    decrement_unless(s, c, who, key, qty, mv, |_| Ok(None))
}

/// Run `write` on a row the caller holds locked and found ready: what it
/// wrote, or why it wrote nothing (StockSource::why_skipped). When the
/// source finds nothing wrong, the write is tried again, twice at most: a
/// flag the statement checks (a location's `sellable` or `active`) may
/// have been turned off in its snapshot and back on before the look (the
/// admin_race test caught a location's sellable toggled that fast). The
/// row is still ours, so the lock order holds, and a try that wrote nothing
/// wrote no ledger row either. Nothing found three times: the table's own
/// trigger or rule skipped it.
pub fn written<S: StockSource, T>(
    s: &S,
    c: &mut SpiClient<'_>,
    who: &Caller,
    key: &S::Key,
    inactive_ok: bool,
    mut write: impl FnMut(&mut SpiClient<'_>) -> Result<Option<T>>,
) -> Result<T> {
    for _ in 0..3 {
        if let Some(w) = write(c)? {
            return Ok(w);
        }
        if let Some(why) = s.why_skipped(c, who, key, inactive_ok)? {
            return Err(why);
        }
    }
    Err(s.skipped(&[key]))
}

/// `decrement`, where a sale the item's row refuses is first offered to
/// `other` (a kit's components, ops/kits.rs), before anything is locked:
/// its answer, if it gives one, is the call's.
pub fn decrement_unless<S: StockSource>(
    s: &S,
    c: &mut SpiClient<'_>,
    who: &Caller,
    key: &S::Key,
    qty: &AnyNumeric,
    mv: &Movement,
    other: impl FnOnce(&mut SpiClient<'_>) -> Result<Option<String>>,
) -> Result<String> {
    if let Some(m) = s.take(c, who, key, qty, mv, false)? {
        return Ok(s.sold(key, &m, qty));
    }
    if let Some(done) = other(c)? {
        return Ok(done);
    }
    // A striped item keeps its free stock in stripes: take one that covers
    // the sale, without touching (or waiting for) the item row.
    if let Some(done) = s.take_striped(c, who, key, qty, mv)? {
        return Ok(done);
    }
    let mut row = s
        .lock(c, who, key, qty)?
        .ok_or_else(|| s.not_found(vec![s.key_text(key)]))?;
    if !row.tracked {
        // Untracked items (services, made-to-order) sell without stock
        // checks, and their quantity is left alone.
        return Ok(s.untracked(key, &row));
    }
    let striped = row.striped;
    if striped {
        // No single stripe covers it: gather the stripes into the (locked)
        // row, sell from there if the total covers it, spread again.
        s.gather(c, std::slice::from_ref(key))?;
        row = s
            .lock(c, who, key, qty)?
            .ok_or_else(|| s.not_found(vec![s.key_text(key)]))?;
    }
    if row.enough {
        let m = written(s, c, who, key, false, |c| {
            s.take(c, who, key, qty, mv, striped)
        })?;
        if striped {
            s.respread(c, std::slice::from_ref(key))?;
        }
        return Ok(s.sold(key, &m, qty));
    }
    Err(Error::Insufficient {
        lines: vec![Shortfall {
            inventory_id: s.key_text(key),
            available: row.available,
            requested: qty.normalize().to_string(),
        }],
    })
}

/// Add `qty` units to one item (a restock, a return).
pub fn increment<S: StockSource>(
    s: &S,
    c: &mut SpiClient<'_>,
    who: &Caller,
    key: &S::Key,
    qty: &AnyNumeric,
    mv: &Movement,
) -> Result<String> {
    if let Some(m) = s.add(c, who, key, qty, mv, false)? {
        return Ok(s.added(key, &m, qty));
    }
    // Missing, striped, or a row the source refuses to add to. Locked, the
    // row answers for good; a change committed meanwhile lets the second
    // try succeed.
    let row = s
        .lock(c, who, key, qty)?
        .ok_or_else(|| s.not_found(vec![s.key_text(key)]))?;
    if row.striped {
        // added to the gathered total (so the ledger row carries it), then
        // spread again
        s.gather(c, std::slice::from_ref(key))?;
        let m = written(s, c, who, key, false, |c| s.add(c, who, key, qty, mv, true))?;
        s.respread(c, std::slice::from_ref(key))?;
        return Ok(s.added(key, &m, qty));
    }
    match s.add(c, who, key, qty, mv, false)? {
        Some(m) => Ok(s.added(key, &m, qty)),
        None => Err(s.add_refused(key, &row, qty)),
    }
}

/// Compare-and-set: set the quantity to `new` if it still is `expected`
/// (None: unconditionally), never below the reserved units.
pub fn adjust<S: StockSource>(
    s: &S,
    c: &mut SpiClient<'_>,
    who: &Caller,
    key: &S::Key,
    new: &AnyNumeric,
    expected: Option<&AnyNumeric>,
    mv: &Movement,
) -> Result<String> {
    let zero = AnyNumeric::from(0);
    let lock = |c: &mut SpiClient<'_>| {
        s.lock(c, who, key, &zero)?
            .ok_or_else(|| s.not_found(vec![s.key_text(key)]))
    };
    let mut row = lock(c)?;
    let striped = row.striped;
    if striped {
        // compare and set the item's total, not its row's part
        s.gather(c, std::slice::from_ref(key))?;
        row = lock(c)?;
    }
    let old = numeric(&row.quantity)?;
    if let Some(exp) = expected {
        if old != *exp {
            return Err(Error::QuantityMismatch {
                inventory_id: s.key_text(key),
                expected: exp.normalize().to_string(),
                actual: old.normalize().to_string(),
            });
        }
    }
    let reserved = numeric(&row.reserved)?;
    if *new < reserved {
        return Err(Error::BelowReserved {
            inventory_id: s.key_text(key),
            requested: new.normalize().to_string(),
            reserved: reserved.normalize().to_string(),
        });
    }
    let m = s
        .set(c, key, new, &old, mv)?
        .ok_or_else(|| s.skipped(&[key]))?;
    if striped {
        s.respread(c, std::slice::from_ref(key))?;
    }
    Ok(s.adjusted(key, &m, &(new.clone() - old)))
}

/// Sell every line or none.
pub fn decrement_many<S: StockSource>(
    s: &S,
    c: &mut SpiClient<'_>,
    who: &Caller,
    lines: &Lines<S::Key>,
    mv: &Movement,
) -> Result<String> {
    let sold = s.sell_lines(c, who, lines, mv)?;
    Ok(s.lines_sold(sold))
}

/// NOT_FOUND naming every key of `keys` that `found` lacks (sorted, each
/// once), else Ok.
pub fn require_found<K: Ord>(
    s: &impl StockSource<Key = K>,
    keys: &[K],
    found: impl Fn(&K) -> bool,
) -> Result<()> {
    let mut missing: Vec<String> = keys
        .iter()
        .filter(|k| !found(k))
        .map(|k| s.key_text(k))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    missing.sort();
    missing.dedup();
    Err(s.not_found(missing))
}

/// Where a transfer goes: an item, from one location to another.
#[derive(Clone, Copy)]
pub struct Route {
    pub item: Uuid,
    pub from: Uuid,
    pub to: Uuid,
}

/// Move `qty` units of `item` from one location to another, all or
/// nothing. Both rows (the default location's is the item's own) are
/// locked in (item, location id) order, so A -> B and B -> A at once queue
/// instead of deadlocking; the destination's level is created first if it
/// has none (an empty row, before any lock is taken). Stock may leave an
/// inactive location or one that is not sellable; it may enter only an
/// active one. Two ledger rows, kind `transfer`, share the transfer id.
pub fn transfer(
    l: &Level,
    c: &mut SpiClient<'_>,
    who: &Caller,
    route: &Route,
    qty: &AnyNumeric,
    mv: &Movement,
) -> Result<String> {
    let Route { item, from, to } = *route;
    // Between two levels away from the default location (two stores, a
    // warehouse and a store), one statement, guarded, does it all when both
    // levels exist and are usable (levels.rs, MOVE_BETWEEN); else the steps
    // below create the destination's level or say what is wrong.
    if !is_default(&from) && !is_default(&to) {
        let id = crate::pg::backend::random_uuid();
        if let Some((out, into)) = l.move_between(c, who, item, from, to, qty, mv, id)? {
            return Ok(transfer_answer(id, route, qty, &out, &into));
        }
    }
    let src = LevelKey {
        item,
        location: from,
    };
    let dst = LevelKey { item, location: to };
    l.ensure(c, who, &dst)?;
    let zero = AnyNumeric::from(0);
    let mut locked = Vec::with_capacity(2);
    let mut order = [src, dst];
    order.sort();
    for key in &order {
        let is_src = *key == src;
        let row = l.lock_at(c, who, key, if is_src { qty } else { &zero }, is_src)?;
        locked.push((*key, row));
    }
    // a striped level's row holds only part of its stock: gather it (the
    // row is ours now; its stripes come after it in the lock order) and
    // read it again
    let striped: Vec<LevelKey> = locked
        .iter()
        .filter(|(_, r)| r.striped)
        .map(|(k, _)| *k)
        .collect();
    for key in &striped {
        l.gather_at(c, key)?;
        let is_src = *key == src;
        let row = l.lock_at(c, who, key, if is_src { qty } else { &zero }, is_src)?;
        for (k, r) in locked.iter_mut() {
            if k == key {
                *r = row;
                break;
            }
        }
    }
    let row = &locked.iter().find(|(k, _)| *k == src).expect("locked").1;
    source_covers(&item, row, qty)?;
    let id = crate::pg::backend::random_uuid();
    let minus = zero.clone() - qty.clone();
    let out = written(l, c, who, &src, true, |c| {
        l.shift_at(c, who, &src, &minus, mv, id)
    })?;
    let into = written(l, c, who, &dst, false, |c| {
        l.shift_at(c, who, &dst, qty, mv, id)
    })?;
    for key in &striped {
        l.respread_at(c, key)?;
    }
    Ok(transfer_answer(id, route, qty, &out, &into))
}

/// A transfer's source row (locked): it tracks stock and its stock on hand
/// covers `qty`. A transfer moves stock on hand only: available (quantity -
/// reserved) must cover it, whatever backorders the row's item may take in
/// sales (`enough` counts those).
pub fn source_covers(item: &Uuid, row: &RowState, qty: &AnyNumeric) -> Result<()> {
    if !row.tracked {
        return Err(Error::invalid_input(
            "p_inventory_id",
            "does not track inventory; there is nothing to transfer",
        ));
    }
    if !row.enough || numeric(&row.available)? < *qty {
        return Err(Error::Insufficient {
            lines: vec![Shortfall {
                inventory_id: validate::uuid_text(item),
                available: row.available.clone(),
                requested: qty.normalize().to_string(),
            }],
        });
    }
    Ok(())
}

/// A transfer's answer: both sides' old and new quantity.
fn transfer_answer(id: Uuid, route: &Route, qty: &AnyNumeric, out: &Moved, into: &Moved) -> String {
    json!({
        "success": true, "transfer_id": validate::uuid_text(&id),
        "inventory_id": validate::uuid_text(&route.item), "quantity": num(qty),
        "from": {"location_id": validate::uuid_text(&route.from),
                 "old_quantity": num_json(&out.old), "new_quantity": num_json(&out.new)},
        "to": {"location_id": validate::uuid_text(&route.to),
               "old_quantity": num_json(&into.old), "new_quantity": num_json(&into.new)},
    })
    .to_string()
}
