//! The rows an order or a hold across locations locks, and where a hold
//! that names no location is placed (docs/locations.md, "Orders" and
//! "Reservations at a location"): the items' own rows first, by id, then
//! their levels by (item, location), the lock order of levels.rs.

use super::levels::LevelKey;
use super::stripes;
use crate::core::caller::Caller;
use crate::core::movement::numeric;
use crate::error::{Error, Result};
use crate::pg::spi::{run, Stmt};
use crate::source::Lines;
use pgrx::pg_sys;
use pgrx::spi::SpiClient;
use pgrx::{AnyNumeric, Uuid};
use std::collections::BTreeMap;

const BOOL: pg_sys::Oid = pg_sys::BOOLOID;
const TEXT: pg_sys::Oid = pg_sys::TEXTOID;

/// Does any of these items have stock levels at other locations?
const ANY_LEVELS: Stmt = Stmt {
    name: "level_any",
    sql:
        "SELECT EXISTS (SELECT FROM atomic_inventory.stock_levels AS l WHERE l.item_id = ANY ($1))",
    args: &[pg_sys::UUIDARRAYOID],
};

/// Lock the default rows (the items' own) of an order's items, in id order:
/// id, quantity, available, tracked, striped.
const LOCK_DEFAULTS: Stmt = Stmt {
    name: "level_lock_defaults",
    sql: "SELECT i.id, i.quantity::text, (i.quantity - i.reserved - i.unsellable)::text, i.track_inventory, i.stripes > 0 \
            FROM atomic_inventory.items AS i \
           WHERE i.id = ANY ($1) AND (i.tenant_id IS NULL OR $2 OR i.tenant_id = $3) \
           ORDER BY i.id \
             FOR NO KEY UPDATE",
    args: &[pg_sys::UUIDARRAYOID, BOOL, TEXT],
};

/// Then the levels an order may take from, in (item, location) order: every
/// level of the items in $1 (lines naming no location), and the levels
/// ($2[k], $3[k]) lines name: item, location, available, usable
/// for a sale (active, sellable), priority, striped.
const LOCK_LEVELS: Stmt = Stmt {
    name: "level_lock_order",
    sql: "SELECT l.item_id, l.location_id, (l.quantity - l.reserved)::text, \
                 o.active AND o.sellable, o.priority, l.stripes > 0 \
            FROM atomic_inventory.stock_levels AS l \
            JOIN atomic_inventory.locations AS o ON o.id = l.location_id \
           WHERE (l.item_id = ANY ($1) \
                  OR (l.item_id, l.location_id) IN \
                     (SELECT p.i, p.l FROM ROWS FROM (pg_catalog.unnest($2::uuid[]), pg_catalog.unnest($3::uuid[])) AS p(i, l))) \
             AND (o.tenant_id IS NULL OR $4 OR o.tenant_id = $5) \
           ORDER BY l.item_id, l.location_id \
             FOR UPDATE OF l",
    args: &[
        pg_sys::UUIDARRAYOID,
        pg_sys::UUIDARRAYOID,
        pg_sys::UUIDARRAYOID,
        BOOL,
        TEXT,
    ],
};

/// An item's own row, locked for an order.
pub struct DefaultRow {
    pub quantity: String,
    pub available: AnyNumeric,
    pub tracked: bool,
    pub striped: bool,
}

/// A level, locked for an order.
pub struct LevelRow {
    pub available: AnyNumeric,
    /// active and sellable
    pub usable: bool,
    pub priority: i32,
    /// its stripes are gathered into its row: to respread once done
    pub striped: bool,
}

/// Where a hold of lines $1/$2 (merged, sorted) that name no location
/// should take each line, read without a lock: per line, whether the
/// default location covers it (or the item is striped, untracked, a kit or
/// not there: those stay at the default location, whose checks answer
/// them), and else the first sellable, active, visible location by
/// priority (higher first, then id) whose level covers the whole line (a
/// striped level with its stripes counted).
const HOLD_PLACES: Stmt = Stmt {
    name: "level_hold_places",
    sql: "SELECT r.id, \
                 COALESCE(i.stripes > 0 OR NOT i.track_inventory OR i.kit \
                          OR i.quantity - i.reserved - i.unsellable + i.backorder_limit >= r.qty, true), \
                 (SELECT l.location_id FROM atomic_inventory.stock_levels AS l \
                    JOIN atomic_inventory.locations AS o ON o.id = l.location_id \
                   WHERE l.item_id = r.id AND o.active AND o.sellable \
                     AND (o.tenant_id IS NULL OR $3 OR o.tenant_id = $4) \
                     AND l.quantity - l.reserved \
                         + CASE WHEN l.stripes > 0 THEN \
                             (SELECT COALESCE(pg_catalog.sum(x.quantity), 0) \
                                FROM atomic_inventory.item_stripes AS x \
                               WHERE x.item_id = l.item_id AND x.location_id = l.location_id) \
                           ELSE 0 END >= r.qty \
                   ORDER BY o.priority DESC, o.id LIMIT 1) \
            FROM ROWS FROM (pg_catalog.unnest($1::uuid[]), pg_catalog.unnest($2::numeric[])) AS r(id, qty) \
            LEFT JOIN atomic_inventory.items AS i \
                   ON i.id = r.id AND (i.tenant_id IS NULL OR $3 OR i.tenant_id = $4)",
    args: &[pg_sys::UUIDARRAYOID, pg_sys::NUMERICARRAYOID, BOOL, TEXT],
};

/// HOLD_PLACES: for each of the lines (merged, sorted), the location to
/// hold it at; None for the default location.
pub fn hold_places(
    c: &mut SpiClient<'_>,
    who: &Caller,
    lines: &Lines<Uuid>,
) -> Result<Vec<(Uuid, Option<Uuid>)>> {
    let mut out = Vec::with_capacity(lines.keys.len());
    for row in run(
        c,
        &HOLD_PLACES,
        &[
            lines.keys.clone().into(),
            lines.qtys.clone().into(),
            who.admin.into(),
            who.tenant.clone().into(),
        ],
    )? {
        let id = row
            .get::<Uuid>(1)?
            .ok_or_else(|| Error::Internal("a hold line without an id".into()))?;
        let at_default = row.get::<bool>(2)?.unwrap_or(true);
        let level = row.get::<Uuid>(3)?;
        out.push((id, if at_default { None } else { level }));
    }
    Ok(out)
}

/// Whether any of `items` has stock at a location other than the default.
pub fn any_levels(c: &mut SpiClient<'_>, items: &[Uuid]) -> Result<bool> {
    let t = run(c, &ANY_LEVELS, &[items.to_vec().into()])?;
    Ok(t.first().get::<bool>(1)?.unwrap_or(false))
}

/// Lock an order's rows: first the default rows of `items` (by id), then
/// every level of `unlocated` items and the `named` levels, by (item,
/// location); striped levels' stripes gathered into their rows (lock
/// order: a level's row, then its stripes). Every caller that locks rows of several locations takes the
/// default rows before any level (a transfer of one item too: its default
/// row sorts first), so orders, transfers and sales can't deadlock.
#[allow(clippy::type_complexity)]
pub fn lock_order(
    c: &mut SpiClient<'_>,
    who: &Caller,
    items: &[Uuid],
    unlocated: &[Uuid],
    named: &[LevelKey],
) -> Result<(BTreeMap<Uuid, DefaultRow>, BTreeMap<LevelKey, LevelRow>)> {
    let mut defaults = BTreeMap::new();
    for row in run(
        c,
        &LOCK_DEFAULTS,
        &[
            items.to_vec().into(),
            who.admin.into(),
            who.tenant.clone().into(),
        ],
    )? {
        let id = row
            .get::<Uuid>(1)?
            .ok_or_else(|| Error::Internal("a locked item row without an id".into()))?;
        defaults.insert(
            id,
            DefaultRow {
                quantity: row.get::<String>(2)?.unwrap_or_default(),
                available: numeric(&row.get::<String>(3)?.unwrap_or_default())?,
                tracked: row.get::<bool>(4)?.unwrap_or(true),
                striped: row.get::<bool>(5)?.unwrap_or(false),
            },
        );
    }
    let mut levels = lock_levels(c, who, unlocated, named)?;
    // striped levels: their stock into their (locked) rows, read again
    let striped: Vec<(Uuid, Uuid)> = levels
        .iter()
        .filter(|(_, r)| r.striped)
        .map(|(k, _)| (k.item, k.location))
        .collect();
    if !striped.is_empty() {
        stripes::gather_levels(c, &striped)?;
        // Read again exactly the levels locked above. "Every level of
        // these items" would also match a level created (and committed)
        // since the first statement, and lock it now, after levels that
        // follow it in the lock order: a transfer holding it and waiting
        // for one of ours deadlocks with us (the stress test met it,
        // 40P01; pg_test/isolation/specs/order_relock.spec).
        let locked: Vec<LevelKey> = levels.keys().copied().collect();
        levels = lock_levels(c, who, &[], &locked)?;
    }
    Ok((defaults, levels))
}

/// LOCK_LEVELS (lock_order's second step).
fn lock_levels(
    c: &mut SpiClient<'_>,
    who: &Caller,
    unlocated: &[Uuid],
    named: &[LevelKey],
) -> Result<BTreeMap<LevelKey, LevelRow>> {
    let named_items: Vec<Uuid> = named.iter().map(|k| k.item).collect();
    let named_locations: Vec<Uuid> = named.iter().map(|k| k.location).collect();
    let mut levels = BTreeMap::new();
    for row in run(
        c,
        &LOCK_LEVELS,
        &[
            unlocated.to_vec().into(),
            named_items.into(),
            named_locations.into(),
            who.admin.into(),
            who.tenant.clone().into(),
        ],
    )? {
        let item = row.get::<Uuid>(1)?;
        let location = row.get::<Uuid>(2)?;
        let (Some(item), Some(location)) = (item, location) else {
            return Err(Error::Internal("a locked level without its keys".into()));
        };
        levels.insert(
            LevelKey { item, location },
            LevelRow {
                available: numeric(&row.get::<String>(3)?.unwrap_or_default())?,
                usable: row.get::<bool>(4)?.unwrap_or(false),
                priority: row.get::<i32>(5)?.unwrap_or(0),
                striped: row.get::<bool>(6)?.unwrap_or(false),
            },
        );
    }
    Ok(levels)
}
