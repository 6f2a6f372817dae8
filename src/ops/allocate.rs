//! Orders across locations (`decrement_inventory_many` when a line names a
//! location, or an item of the order has stock at other locations): every
//! line or none.
//!
//! The rows are locked first (the items' own rows by id, then the levels by
//! item and location: the order every caller locking rows of several
//! locations uses), then the order is allocated in Rust against what the
//! locked rows hold, then each allocation is one guarded write.
//!
//! Allocation of a line that names no location (docs/locations.md): the
//! default location if it covers the whole line; else the first sellable,
//! active location by priority (higher first, then id) that covers it;
//! else the default location's available units, then each location's in
//! that order, until the line is covered. Lines naming a location are
//! allocated first, there.

use crate::core::caller::Caller;
use crate::core::movement::{num_json, Movement};
use crate::core::validate::{self, Line};
use crate::error::{Error, Result, Shortfall};
use crate::source::own::level_orders;
use crate::source::own::levels::{self, default_location, is_default, Level, LevelKey};
use crate::source::own::Own;
use crate::source::StockSource;
use pgrx::spi::SpiClient;
use pgrx::{AnyNumeric, Uuid};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Sell an order whose lines may name locations.
pub fn decrement_many_at(
    c: &mut SpiClient<'_>,
    who: &Caller,
    lines: &[Line],
    mv: &Movement,
) -> Result<String> {
    // merged per (item, named location): None = allocate
    let mut wants: BTreeMap<(Uuid, Option<Uuid>), AnyNumeric> = BTreeMap::new();
    for l in lines {
        let q = wants
            .entry((l.inventory_id, l.location_id))
            .or_insert_with(|| AnyNumeric::from(0));
        *q = q.clone() + l.quantity.clone();
    }
    let mut items: Vec<Uuid> = wants.keys().map(|(i, _)| *i).collect();
    items.dedup();
    let unlocated: Vec<Uuid> = wants
        .keys()
        .filter(|(_, l)| l.is_none())
        .map(|(i, _)| *i)
        .collect();
    let named: Vec<LevelKey> = wants
        .keys()
        .filter_map(|(item, l)| {
            l.map(|location| LevelKey {
                item: *item,
                location,
            })
        })
        .collect();

    let (mut defaults, mut rows) = level_orders::lock_order(c, who, &items, &unlocated, &named)?;
    crate::ops::stock::require_found(&Own, &items, |i| defaults.contains_key(i))?;
    // striped items: their stock into their (locked) rows, read again
    let striped: Vec<Uuid> = defaults
        .iter()
        .filter(|(_, d)| d.striped)
        .map(|(i, _)| *i)
        .collect();
    if !striped.is_empty() {
        Own.gather(c, &striped)?;
        defaults = level_orders::lock_order(c, who, &items, &[], &[])?.0;
    }
    // a named level that isn't there or can't sell: say which and why
    for key in &named {
        match rows.get(key) {
            Some(r) if r.usable => {}
            r => return Err(levels::refusal(c, who, key, true, false, r.is_some())?),
        }
    }

    let zero = AnyNumeric::from(0);
    let mut take: BTreeMap<LevelKey, AnyNumeric> = BTreeMap::new();
    let mut short: Vec<Shortfall> = Vec::new();
    let mut untracked: Vec<Uuid> = Vec::new();
    let add = |take: &mut BTreeMap<LevelKey, AnyNumeric>, key: LevelKey, q: AnyNumeric| {
        let t = take.entry(key).or_insert_with(|| AnyNumeric::from(0));
        *t = t.clone() + q;
    };
    // named lines first, at their location
    for key in &named {
        let q = wants[&(key.item, Some(key.location))].clone();
        if !defaults[&key.item].tracked {
            untracked.push(key.item);
            continue;
        }
        let row = rows.get_mut(key).expect("checked above");
        if row.available < q {
            short.push(Shortfall {
                inventory_id: validate::uuid_text(&key.item),
                available: row.available.normalize().to_string(),
                requested: q.normalize().to_string(),
            });
            continue;
        }
        row.available = row.available.clone() - q.clone();
        add(&mut take, *key, q);
    }
    for item in &unlocated {
        let q = wants[&(*item, None)].clone();
        let d = defaults.get_mut(item).expect("found above");
        if !d.tracked {
            untracked.push(*item);
            continue;
        }
        let own = LevelKey {
            item: *item,
            location: default_location(),
        };
        if d.available >= q {
            d.available = d.available.clone() - q.clone();
            add(&mut take, own, q);
            continue;
        }
        let mut places: Vec<(&LevelKey, &mut level_orders::LevelRow)> = rows
            .iter_mut()
            .filter(|(k, r)| k.item == *item && r.usable)
            .collect();
        places.sort_by(|a, b| b.1.priority.cmp(&a.1.priority).then(a.0.cmp(b.0)));
        if let Some((k, r)) = places.iter_mut().find(|(_, r)| r.available >= q) {
            r.available = r.available.clone() - q.clone();
            let k = **k;
            add(&mut take, k, q);
            continue;
        }
        let total = places
            .iter()
            .fold(d.available.clone(), |t, (_, r)| t + r.available.clone());
        if total < q {
            short.push(Shortfall {
                inventory_id: validate::uuid_text(item),
                available: total.normalize().to_string(),
                requested: q.normalize().to_string(),
            });
            continue;
        }
        let mut left = q;
        if d.available > zero {
            let part = d.available.clone();
            left -= part.clone();
            d.available = zero.clone();
            add(&mut take, own, part);
        }
        for (k, r) in places.iter_mut() {
            if left <= zero {
                break;
            }
            if r.available <= zero {
                continue;
            }
            let part = if r.available >= left {
                left.clone()
            } else {
                r.available.clone()
            };
            r.available = r.available.clone() - part.clone();
            left -= part.clone();
            let k = **k;
            add(&mut take, k, part);
        }
    }
    if !short.is_empty() {
        short.sort_by(|a, b| a.inventory_id.cmp(&b.inventory_id));
        return Err(Error::Insufficient { lines: short });
    }

    // apply, in lock order (every row is ours already)
    let mut out: Vec<Value> = Vec::with_capacity(take.len() + untracked.len());
    for (key, q) in &take {
        let gathered = if is_default(&key.location) {
            striped.contains(&key.item)
        } else {
            rows.get(key).is_some_and(|r| r.striped)
        };
        let m = crate::ops::stock::written(&Level { sale: true }, c, who, key, false, |c| {
            if is_default(&key.location) {
                Own.take(c, who, &key.item, q, mv, gathered)
            } else {
                Level { sale: true }.take(c, who, key, q, mv, gathered)
            }
        })?;
        out.push(json!({"inventory_id": validate::uuid_text(&key.item),
                        "location_id": validate::uuid_text(&key.location),
                        "old_quantity": num_json(&m.old), "new_quantity": num_json(&m.new),
                        "deducted": num_json(q.normalize())}));
    }
    untracked.sort();
    untracked.dedup();
    for item in &untracked {
        let d = &defaults[item];
        out.push(json!({"inventory_id": validate::uuid_text(item),
                        "location_id": validate::uuid_text(&default_location()),
                        "old_quantity": num_json(&d.quantity), "new_quantity": num_json(&d.quantity),
                        "deducted": 0, "tracked": false}));
    }
    if !striped.is_empty() {
        Own.respread(c, &striped)?;
    }
    // striped levels (gathered by lock_order): spread again
    let striped_levels: Vec<LevelKey> = rows
        .iter()
        .filter(|(_, r)| r.striped)
        .map(|(k, _)| *k)
        .collect();
    Level { sale: true }.respread(c, &striped_levels)?;
    Ok(json!({"success": true, "lines": out}).to_string())
}

/// Where a hold (reserve_inventory) whose lines name no location takes
/// each line, when some of its items have stock at other locations
/// (docs/locations.md, "Holds"): the default location if it covers the
/// whole line, else the first sellable, active location by priority that
/// covers it, else the default location (whose check then refuses it). A
/// line is never split: a reservation holds an item at one location.
/// Some(the lines with their locations) when any goes elsewhere, else None
/// (the default location's statements hold them). Read without a lock; the
/// hold's guarded writes check again under their locks.
pub fn hold_lines(
    c: &mut SpiClient<'_>,
    who: &Caller,
    lines: &crate::source::Lines<Uuid>,
) -> Result<Option<Vec<Line>>> {
    let places = level_orders::hold_places(c, who, lines)?;
    if places.iter().all(|(_, at)| at.is_none()) {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(places.len());
    for ((id, at), (key, qty)) in places.iter().zip(lines.keys.iter().zip(&lines.qtys)) {
        if id != key {
            return Err(Error::Internal(
                "a hold's places came back out of line order".into(),
            ));
        }
        out.push(Line {
            inventory_id: *id,
            quantity: qty.clone(),
            location_id: *at,
        });
    }
    Ok(Some(out))
}
