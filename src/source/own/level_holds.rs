//! Reservation lines held at a location other than the default one: the
//! line's units sit in that location's `stock_levels.reserved` instead of
//! `items.reserved`, and `reservation_lines.location_id` names it (NULL:
//! the default location). Each level's reserved always equals the sum of
//! its active tracked lines, as items.reserved does for the default
//! location (reconcile() checks both).
//!
//! Only a reservation with a line at a location takes these statements:
//! holds, commits, releases and expiries of lines at the default location
//! keep the statements of holds.rs (and their speed). The `_AT` twins here
//! do what those do for lines at either kind of location.
//!
//! Lock order, as levels.rs documents for every caller locking rows of
//! several locations: the items' own rows first (by id), then the levels
//! by (item, location id). A commit, release or expiry holds the
//! reservation row before either.

use super::settle::{commit_parts_lines, finish_lines};
use crate::core::caller::Caller;
use crate::core::validate;
use crate::error::{Error, Result, Shortfall};
use crate::pg::spi::{run, Stmt};
use crate::source::holds;
use crate::source::own::levels::{self, LevelKey};
use crate::source::own::stripes;
use pgrx::pg_sys::{self, Oid};
use pgrx::spi::SpiClient;
use pgrx::{AnyNumeric, Uuid};
use std::collections::BTreeMap;

const UUID: Oid = pg_sys::UUIDOID;
const UUIDS: Oid = pg_sys::UUIDARRAYOID;
const NUMS: Oid = pg_sys::NUMERICARRAYOID;
const TEXT: Oid = pg_sys::TEXTOID;
const BOOL: Oid = pg_sys::BOOLOID;
const INT: Oid = pg_sys::INT4OID;

/// Lock the levels ($1[k], $2[k]) a hold takes $3[k] units of, in (item,
/// location) order, each with its item and location visible: item,
/// location, available, requested, covered (untracked items always are),
/// usable for a hold (active and sellable), the item's tenant, tracked,
/// striped.
pub(crate) const LOCK_FOR_HOLD: Stmt = Stmt {
    name: "level_hold_lock",
    sql: "SELECT l.item_id, l.location_id, (l.quantity - l.reserved)::text, r.qty::text, \
                 (NOT i.track_inventory OR l.quantity - l.reserved >= r.qty), \
                 o.active AND o.sellable, i.tenant_id, i.track_inventory, l.stripes > 0 \
            FROM ROWS FROM (pg_catalog.unnest($1::uuid[]), pg_catalog.unnest($2::uuid[]), \
                            pg_catalog.unnest($3::numeric[])) AS r(item, loc, qty) \
            JOIN atomic_inventory.stock_levels AS l ON l.item_id = r.item AND l.location_id = r.loc \
            JOIN atomic_inventory.items AS i ON i.id = l.item_id \
            JOIN atomic_inventory.locations AS o ON o.id = l.location_id \
           WHERE (i.tenant_id IS NULL OR $4 OR i.tenant_id = $5) \
             AND (o.tenant_id IS NULL OR $4 OR o.tenant_id = $5) \
           ORDER BY l.item_id, l.location_id \
             FOR UPDATE OF l",
    args: &[UUIDS, UUIDS, NUMS, BOOL, TEXT],
};

/// Record a reservation of lines ($1 item, $2 location or NULL for the
/// default one, $3 units; one per item) whose rows the caller holds
/// locked, and raise the reserved units where each line holds: the item's
/// row, or its level (a guarded UPDATE: available must cover the line, as
/// for a sale there). The answer, and how many rows took their hold (each
/// tracked line's must).
pub(crate) const RESERVE_APPLY_AT: Stmt = Stmt {
    name: "reserve_apply_at",
    sql: "WITH r AS ( \
            SELECT l.id, l.loc, l.qty \
              FROM ROWS FROM (pg_catalog.unnest($1::uuid[]), pg_catalog.unnest($2::uuid[]), \
                              pg_catalog.unnest($3::numeric[])) AS l(id, loc, qty) \
          ), res AS ( \
            INSERT INTO atomic_inventory.reservations (status, reference, tenant_id, expires_at) \
            VALUES ('active', $5, $6, pg_catalog.now() + pg_catalog.make_interval(secs => $4)) \
            RETURNING id, expires_at \
          ), upd AS ( \
            UPDATE atomic_inventory.items AS i \
               SET reserved = i.reserved + r.qty, updated_at = pg_catalog.now() \
              FROM r WHERE i.id = r.id AND r.loc IS NULL AND i.track_inventory \
            RETURNING i.id \
          ), lvl AS ( \
            UPDATE atomic_inventory.stock_levels AS s \
               SET reserved = s.reserved + r.qty, updated_at = pg_catalog.now() \
              FROM r, atomic_inventory.items AS i \
             WHERE s.item_id = r.id AND s.location_id = r.loc AND i.id = r.id AND i.track_inventory \
               AND s.quantity - s.reserved >= r.qty \
            RETURNING s.item_id \
          ), lines AS ( \
            INSERT INTO atomic_inventory.reservation_lines \
              (reservation_id, inventory_id, location_id, quantity, tracked) \
            SELECT res.id, r.id, r.loc, r.qty, i.track_inventory \
              FROM res, r JOIN atomic_inventory.items AS i ON i.id = r.id \
            RETURNING inventory_id, location_id, quantity \
          ) \
          SELECT pg_catalog.json_build_object('success', true, 'reservation_id', res.id, \
                   'status', 'active', 'expires_at', res.expires_at, \
                   'lines', (SELECT pg_catalog.json_agg(CASE WHEN l.location_id IS NULL \
                               THEN pg_catalog.json_build_object( \
                                      'inventory_id', l.inventory_id, 'quantity', l.quantity) \
                               ELSE pg_catalog.json_build_object( \
                                      'inventory_id', l.inventory_id, 'quantity', l.quantity, \
                                      'location_id', l.location_id) END \
                               ORDER BY l.inventory_id) FROM lines AS l))::text, \
                 ((SELECT pg_catalog.count(*) FROM upd) + (SELECT pg_catalog.count(*) FROM lvl))::int4 \
            FROM res",
    args: &[UUIDS, UUIDS, NUMS, INT, TEXT, TEXT],
};

/// Lock the levels ($1[k], $2[k]) of a reservation's lines, in (item,
/// location) order (the caller holds the reservation and the items' rows).
pub(crate) const LOCK_HELD: Stmt = Stmt {
    name: "level_hold_lock_held",
    sql: "SELECT s.item_id FROM atomic_inventory.stock_levels AS s \
           WHERE (s.item_id, s.location_id) IN \
                 (SELECT k.i, k.l FROM ROWS FROM (pg_catalog.unnest($1::uuid[]), \
                                                  pg_catalog.unnest($2::uuid[])) AS k(i, l)) \
           ORDER BY s.item_id, s.location_id \
             FOR NO KEY UPDATE",
    args: &[UUIDS, UUIDS],
};

/// The sweep, step 2b: lock the levels the due reservations' ($1) active
/// lines hold at, in (item, location) order, after their items' rows.
pub(crate) const DUE_LEVELS: Stmt = Stmt {
    name: "reservation_due_levels",
    sql: "SELECT s.item_id FROM atomic_inventory.stock_levels AS s \
           WHERE (s.item_id, s.location_id) IN \
                 (SELECT l.inventory_id, l.location_id FROM atomic_inventory.reservation_lines AS l \
                   WHERE l.reservation_id = ANY ($1) AND l.status = 'active' \
                     AND l.location_id IS NOT NULL) \
           ORDER BY s.item_id, s.location_id \
             FOR NO KEY UPDATE",
    args: &[UUIDS],
};

/// FINISH (holds.rs) for reservations with lines at locations: each line's
/// units come off the row it holds at, the item's or its level's, and a
/// commit's ledger row names the level's location (as a sale there does).
pub(crate) const FINISH_AT: Stmt = Stmt {
    name: "reservation_finish_at",
    sql: concat!(
        finish_lines!("l.location_id, "),
        "), upd AS ( \
            UPDATE atomic_inventory.items AS i \
               SET reserved = i.reserved - fl.quantity, \
                   quantity = CASE WHEN $3 = 'committed' THEN i.quantity - fl.quantity \
                                   ELSE i.quantity END, \
                   updated_at = pg_catalog.now() \
              FROM fl WHERE i.id = fl.inventory_id AND fl.tracked AND fl.location_id IS NULL \
            RETURNING i.id, NULL::uuid AS location_id, i.quantity, i.stripes, fl.quantity AS qty, \
                      i.tenant_id \
          ), lvl AS ( \
            UPDATE atomic_inventory.stock_levels AS s \
               SET reserved = s.reserved - fl.quantity, \
                   quantity = CASE WHEN $3 = 'committed' THEN s.quantity - fl.quantity \
                                   ELSE s.quantity END, \
                   updated_at = pg_catalog.now() \
              FROM fl, atomic_inventory.items AS i \
             WHERE s.item_id = fl.inventory_id AND s.location_id = fl.location_id AND fl.tracked \
               AND i.id = fl.inventory_id \
            RETURNING s.item_id, s.location_id, s.quantity, s.stripes, fl.quantity AS qty, \
                      i.tenant_id \
          ), led AS ( \
            INSERT INTO atomic_inventory.ledger \
              (inventory_id, location_id, delta, quantity_after, kind, reason, reference, \
               idempotency_key, tenant_id) \
            SELECT u.id, u.location_id, -u.qty, CASE WHEN u.stripes = 0 THEN u.quantity END, 'commit', \
                   $4, $1::text, $5, u.tenant_id \
              FROM (SELECT * FROM upd UNION ALL SELECT * FROM lvl) AS u \
             WHERE $3 = 'committed' AND $6 \
          ), res AS ( \
            UPDATE atomic_inventory.reservations AS r \
               SET status = CASE \
                     WHEN EXISTS (SELECT 1 FROM atomic_inventory.reservation_lines AS x \
                                   WHERE x.reservation_id = $1 AND x.status = 'active' \
                                     AND x.inventory_id <> ALL ($2)) THEN 'active' \
                     WHEN $3 = 'committed' OR EXISTS ( \
                            SELECT 1 FROM atomic_inventory.reservation_lines AS x \
                             WHERE x.reservation_id = $1 \
                               AND (x.status = 'committed' OR x.committed_quantity > 0)) THEN 'committed' \
                     ELSE $3 END, \
                   updated_at = pg_catalog.now() \
             WHERE r.id = $1 \
            RETURNING r.id, r.status, r.expires_at \
          ) \
          SELECT pg_catalog.json_build_object('success', true, 'reservation_id', res.id, \
                   'status', res.status, 'expires_at', res.expires_at, \
                   $3, (SELECT pg_catalog.json_agg(CASE WHEN fl.location_id IS NULL \
                          THEN pg_catalog.json_build_object( \
                                 'inventory_id', fl.inventory_id, 'quantity', fl.quantity) \
                          ELSE pg_catalog.json_build_object( \
                                 'inventory_id', fl.inventory_id, 'quantity', fl.quantity, \
                                 'location_id', fl.location_id) END \
                          ORDER BY fl.inventory_id) FROM fl))::text, \
                 ((SELECT pg_catalog.count(*) FROM upd) + (SELECT pg_catalog.count(*) FROM lvl))::int4 \
            FROM res"
    ),
    args: &[UUID, UUIDS, TEXT, TEXT, TEXT, BOOL],
};

/// COMMIT_PARTS (holds.rs) for reservations with lines at locations: the
/// same partial commit, each line's units off the row it holds at.
pub(crate) const COMMIT_PARTS_AT: Stmt = Stmt {
    name: "reservation_commit_parts_at",
    sql: concat!(
        commit_parts_lines!("l.location_id, "),
        "), upd AS ( \
            UPDATE atomic_inventory.items AS i \
               SET reserved = i.reserved - (fl.sold + fl.freed), \
                   quantity = i.quantity - fl.sold, \
                   updated_at = pg_catalog.now() \
              FROM fl WHERE i.id = fl.inventory_id AND fl.tracked AND fl.location_id IS NULL \
            RETURNING i.id, NULL::uuid AS location_id, i.quantity, i.stripes, fl.sold, i.tenant_id \
          ), lvl AS ( \
            UPDATE atomic_inventory.stock_levels AS s \
               SET reserved = s.reserved - (fl.sold + fl.freed), \
                   quantity = s.quantity - fl.sold, \
                   updated_at = pg_catalog.now() \
              FROM fl, atomic_inventory.items AS i \
             WHERE s.item_id = fl.inventory_id AND s.location_id = fl.location_id AND fl.tracked \
               AND i.id = fl.inventory_id \
            RETURNING s.item_id, s.location_id, s.quantity, s.stripes, fl.sold, i.tenant_id \
          ), led AS ( \
            INSERT INTO atomic_inventory.ledger \
              (inventory_id, location_id, delta, quantity_after, kind, reason, reference, \
               idempotency_key, tenant_id) \
            SELECT u.id, u.location_id, -u.sold, CASE WHEN u.stripes = 0 THEN u.quantity END, \
                   'commit', $5, $1::text, $6, u.tenant_id \
              FROM (SELECT * FROM upd UNION ALL SELECT * FROM lvl) AS u WHERE $7 \
          ), res AS ( \
            UPDATE atomic_inventory.reservations AS r \
               SET status = CASE \
                     WHEN EXISTS (SELECT 1 FROM fl WHERE fl.kept IS NOT NULL) \
                       OR EXISTS (SELECT 1 FROM atomic_inventory.reservation_lines AS x \
                                   WHERE x.reservation_id = $1 AND x.status = 'active' \
                                     AND x.inventory_id <> ALL ($2)) THEN 'active' \
                     ELSE 'committed' END, \
                   updated_at = pg_catalog.now() \
             WHERE r.id = $1 \
            RETURNING r.id, r.status, r.expires_at \
          ) \
          SELECT pg_catalog.json_build_object('success', true, 'reservation_id', res.id, \
                   'status', res.status, 'expires_at', res.expires_at, 'rest', $8, \
                   'committed', COALESCE((SELECT pg_catalog.json_agg(CASE WHEN fl.location_id IS NULL \
                          THEN pg_catalog.json_build_object('inventory_id', fl.inventory_id, 'quantity', fl.sold) \
                          ELSE pg_catalog.json_build_object('inventory_id', fl.inventory_id, 'quantity', fl.sold, \
                                                            'location_id', fl.location_id) END \
                          ORDER BY fl.inventory_id) FROM fl), '[]'::json), \
                   'released', COALESCE((SELECT pg_catalog.json_agg(CASE WHEN fl.location_id IS NULL \
                          THEN pg_catalog.json_build_object('inventory_id', fl.inventory_id, 'quantity', fl.freed) \
                          ELSE pg_catalog.json_build_object('inventory_id', fl.inventory_id, 'quantity', fl.freed, \
                                                            'location_id', fl.location_id) END \
                          ORDER BY fl.inventory_id) FROM fl WHERE fl.freed > 0), '[]'::json), \
                   'kept', COALESCE((SELECT pg_catalog.json_agg(CASE WHEN fl.location_id IS NULL \
                          THEN pg_catalog.json_build_object('inventory_id', fl.inventory_id, 'quantity', fl.kept) \
                          ELSE pg_catalog.json_build_object('inventory_id', fl.inventory_id, 'quantity', fl.kept, \
                                                            'location_id', fl.location_id) END \
                          ORDER BY fl.inventory_id) FROM fl WHERE fl.kept IS NOT NULL), '[]'::json) \
                 )::text, \
                 (SELECT pg_catalog.count(*) FROM fl)::int4, \
                 ((SELECT pg_catalog.count(*) FROM upd) + (SELECT pg_catalog.count(*) FROM lvl))::int4 \
            FROM res"
    ),
    args: &[UUID, UUIDS, NUMS, BOOL, TEXT, TEXT, BOOL, TEXT],
};

/// EXPIRE_APPLY (holds.rs) when a due reservation has lines at locations:
/// each (item, location)'s units go back to the row they were held at.
pub(crate) const EXPIRE_APPLY_AT: Stmt = Stmt {
    name: "reservation_expire_apply_at",
    sql: "WITH fl AS ( \
            UPDATE atomic_inventory.reservation_lines AS l \
               SET status = 'expired', released_quantity = l.released_quantity + l.quantity, \
                   updated_at = pg_catalog.now() \
             WHERE l.reservation_id = ANY ($1) AND l.status = 'active' \
            RETURNING l.inventory_id, l.location_id, l.quantity, l.tracked \
          ), per_level AS ( \
            SELECT fl.inventory_id, fl.location_id, pg_catalog.sum(fl.quantity) AS qty \
              FROM fl WHERE fl.tracked GROUP BY fl.inventory_id, fl.location_id \
          ), upd AS ( \
            UPDATE atomic_inventory.items AS i \
               SET reserved = i.reserved - p.qty, updated_at = pg_catalog.now() \
              FROM per_level AS p WHERE i.id = p.inventory_id AND p.location_id IS NULL \
            RETURNING i.id \
          ), lvl AS ( \
            UPDATE atomic_inventory.stock_levels AS s \
               SET reserved = s.reserved - p.qty, updated_at = pg_catalog.now() \
              FROM per_level AS p WHERE s.item_id = p.inventory_id AND s.location_id = p.location_id \
            RETURNING s.item_id \
          ), res AS ( \
            UPDATE atomic_inventory.reservations AS r \
               SET status = CASE WHEN EXISTS ( \
                              SELECT 1 FROM atomic_inventory.reservation_lines AS x \
                               WHERE x.reservation_id = r.id \
                                 AND (x.status = 'committed' OR x.committed_quantity > 0)) \
                            THEN 'committed' ELSE 'expired' END, \
                   updated_at = pg_catalog.now() \
             WHERE r.id = ANY ($1) \
            RETURNING r.id \
          ) \
          SELECT pg_catalog.count(*)::int4, \
                 ((SELECT pg_catalog.count(*) FROM upd) + (SELECT pg_catalog.count(*) FROM lvl))::int4, \
                 (SELECT pg_catalog.count(*) FROM per_level)::int4 \
            FROM res",
    args: &[UUIDS],
};

/// Lines of a hold at locations, locked: shortfalls, the items' tenants,
/// and the tracked lines' levels (each must take its hold).
pub struct LockedLevels {
    pub short: Vec<Shortfall>,
    pub tenants: Vec<String>,
    pub tracked: Vec<LevelKey>,
    /// striped levels, their stripes gathered into their rows: to respread
    /// once the hold is applied
    pub striped: Vec<LevelKey>,
}

/// Lock the levels a hold takes units of (`want`: per level, the units), in
/// (item, location) order. A level that isn't there or can't take a hold
/// is an error saying which and why (LEVEL_NOT_FOUND, LOCATION_UNAVAILABLE,
/// NOT_FOUND), as for a sale there; a level short of the units is a
/// shortfall (the caller reports every short line at once). A striped
/// level's stripes are gathered into its row (locked first: the lock order
/// of stripes.rs) and the rows read again, so a hold sees its whole stock.
pub fn lock_for_hold(
    c: &mut SpiClient<'_>,
    who: &Caller,
    want: &BTreeMap<LevelKey, AnyNumeric>,
) -> Result<LockedLevels> {
    let mut out = read_for_hold(c, who, want)?;
    if !out.striped.is_empty() {
        stripes::gather_levels(c, &levels::pairs(&out.striped))?;
        out = read_for_hold(c, who, want)?;
    }
    Ok(out)
}

/// LOCK_FOR_HOLD, once (lock_for_hold).
fn read_for_hold(
    c: &mut SpiClient<'_>,
    who: &Caller,
    want: &BTreeMap<LevelKey, AnyNumeric>,
) -> Result<LockedLevels> {
    let items: Vec<Uuid> = want.keys().map(|k| k.item).collect();
    let locations: Vec<Uuid> = want.keys().map(|k| k.location).collect();
    let qtys: Vec<AnyNumeric> = want.values().cloned().collect();
    let mut found: BTreeMap<LevelKey, bool> = BTreeMap::new();
    let mut out = LockedLevels {
        short: Vec::new(),
        tenants: Vec::new(),
        tracked: Vec::new(),
        striped: Vec::new(),
    };
    for row in run(
        c,
        &LOCK_FOR_HOLD,
        &[
            items.into(),
            locations.into(),
            qtys.into(),
            who.admin.into(),
            who.tenant.clone().into(),
        ],
    )? {
        let (Some(item), Some(location)) = (row.get::<Uuid>(1)?, row.get::<Uuid>(2)?) else {
            return Err(Error::Internal("a locked level without its keys".into()));
        };
        let key = LevelKey { item, location };
        let usable = row.get::<bool>(6)?.unwrap_or(false);
        found.insert(key, usable);
        if row.get::<bool>(9)?.unwrap_or(false) {
            out.striped.push(key);
        }
        if !usable {
            continue;
        }
        if !row.get::<bool>(5)?.unwrap_or(false) {
            out.short.push(Shortfall {
                inventory_id: validate::uuid_text(&item),
                available: row.get::<String>(3)?.unwrap_or_default(),
                requested: row.get::<String>(4)?.unwrap_or_default(),
            });
        }
        if let Some(t) = row.get::<String>(7)? {
            out.tenants.push(t);
        }
        if row.get::<bool>(8)?.unwrap_or(true) {
            out.tracked.push(key);
        }
    }
    // a level missing or unusable: the first one, by the lock order, and why
    for key in want.keys() {
        match found.get(key) {
            Some(true) => {}
            seen => return Err(levels::refusal(c, who, key, true, false, seen.is_some())?),
        }
    }
    Ok(out)
}

/// Record the hold (lines: item, its location or None for the default
/// one, units; one per item, sorted by item) and raise the reserved units:
/// the answer, and how many rows took their hold.
pub fn apply_hold(
    c: &mut SpiClient<'_>,
    lines: &[(Uuid, Option<Uuid>, AnyNumeric)],
    ttl_seconds: i32,
    reference: Option<String>,
    tenant: Option<String>,
) -> Result<(String, usize)> {
    let items: Vec<Uuid> = lines.iter().map(|l| l.0).collect();
    let locations: Vec<Option<Uuid>> = lines.iter().map(|l| l.1).collect();
    let qtys: Vec<AnyNumeric> = lines.iter().map(|l| l.2.clone()).collect();
    let done = run(
        c,
        &RESERVE_APPLY_AT,
        &[
            items.into(),
            locations.into(),
            qtys.into(),
            ttl_seconds.into(),
            reference.into(),
            tenant.into(),
        ],
    )?;
    if done.is_empty() {
        return Err(holds::skipped_record(lines.iter().map(|l| &l.0)));
    }
    let row = done.first();
    Ok((
        row.get::<String>(1)?.unwrap_or_default(),
        row.get::<i32>(2)?.unwrap_or(0) as usize,
    ))
}

/// Lock the levels of a reservation's lines held at locations (`keys`), in
/// (item, location) order.
pub fn lock_held(c: &mut SpiClient<'_>, keys: &[LevelKey]) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let items: Vec<Uuid> = keys.iter().map(|k| k.item).collect();
    let locations: Vec<Uuid> = keys.iter().map(|k| k.location).collect();
    run(c, &LOCK_HELD, &[items.into(), locations.into()])?;
    Ok(())
}

/// The sweep: lock the levels the due reservations `ids` hold at (their
/// items' rows locked first), when any of their lines holds at one.
pub fn lock_due(c: &mut SpiClient<'_>, ids: &[Uuid]) -> Result<()> {
    run(c, &DUE_LEVELS, &[ids.to_vec().into()])?;
    Ok(())
}
