//! Reservations on the extension's own items: a hold raises
//! `items.reserved`, its lines live in `reservation_lines` (one per item),
//! and `items.reserved` always equals the sum of the item's active tracked
//! lines (reconcile() checks it). A commit, release or expiry finishes
//! lines and moves their units in one statement each.
//!
//! A partial commit (commit_reservation's p_lines) sells some units of a
//! line: with the rest released the line is finished (committed); with the
//! rest kept it stays active and its `quantity` drops to the units it still
//! holds, so the sum above stays exact and a later commit, release or the
//! sweep finishes just those. Every line counts what it settled:
//! `committed_quantity` (sold, over all its commits) and
//! `released_quantity` (given back by a release, an expiry or a partial
//! commit's rest); a finished line's two add up to the units it was
//! reserved with, an active line's committed units and `quantity` do.
//!
//! Lock order, as everywhere: the reservation row first (the caller holds
//! it), then item rows in ascending id, then the levels of lines held at
//! other locations (level_holds.rs), by (item, location).

use super::level_holds::{self, EXPIRE_APPLY_AT, FINISH_AT};
use super::levels::LevelKey;
use super::settle::{commit_parts_lines, finish_lines};
use super::Own;
use crate::core::caller::Caller;
use crate::core::movement::LedgerNote;
use crate::core::validate;
use crate::error::{Error, Result};
use crate::pg::spi::{run, Stmt};
use crate::settings::ledger_on;
use crate::source::holds;
use crate::source::{
    Finish, HeldLine, HoldSource, Lines, LockedLines, NewHold, Part, Rest, StockSource,
};
use pgrx::pg_sys::{self, Oid};
use pgrx::spi::SpiClient;
use pgrx::{AnyNumeric, Uuid};

const UUID: Oid = pg_sys::UUIDOID;
const UUIDS: Oid = pg_sys::UUIDARRAYOID;
const TEXT: Oid = pg_sys::TEXTOID;
const BOOL: Oid = pg_sys::BOOLOID;
const INT: Oid = pg_sys::INT4OID;
const NUM: Oid = pg_sys::NUMERICOID;

/// Record a reservation of lines $1/$2 (merged, sorted) whose item rows
/// the caller holds locked, and raise their reserved units: the answer,
/// and how many item rows took their hold (each tracked line's must).
pub(crate) const RESERVE_APPLY: Stmt = Stmt {
    name: "reserve_apply",
    sql: "WITH r AS ( \
            SELECT l.id, pg_catalog.sum(l.qty) AS qty \
              FROM ROWS FROM (pg_catalog.unnest($1::uuid[]), pg_catalog.unnest($2::numeric[])) AS l(id, qty) \
             GROUP BY l.id \
          ), res AS ( \
            INSERT INTO atomic_inventory.reservations (status, reference, tenant_id, expires_at) \
            VALUES ('active', $4, $5, pg_catalog.now() + pg_catalog.make_interval(secs => $3)) \
            RETURNING id, expires_at \
          ), upd AS ( \
            UPDATE atomic_inventory.items AS i \
               SET reserved = i.reserved + r.qty, updated_at = pg_catalog.now() \
              FROM r WHERE i.id = r.id AND i.track_inventory \
            RETURNING i.id \
          ), lines AS ( \
            INSERT INTO atomic_inventory.reservation_lines (reservation_id, inventory_id, quantity, tracked) \
            SELECT res.id, r.id, r.qty, i.track_inventory \
              FROM res, r JOIN atomic_inventory.items AS i ON i.id = r.id \
            RETURNING inventory_id, quantity \
          ) \
          SELECT pg_catalog.json_build_object('success', true, 'reservation_id', res.id, \
                   'status', 'active', 'expires_at', res.expires_at, \
                   'lines', (SELECT pg_catalog.json_agg(pg_catalog.json_build_object( \
                               'inventory_id', l.inventory_id, 'quantity', l.quantity) \
                               ORDER BY l.inventory_id) FROM lines AS l))::text, \
                 (SELECT pg_catalog.count(*) FROM upd)::int4, \
                 (SELECT pg_catalog.count(*) FROM lines)::int4 \
            FROM res",
    args: &[UUIDS, pg_sys::NUMERICARRAYOID, INT, TEXT, TEXT],
};

/// A one-line hold at the default location in one statement, for the
/// common cart of one line (reserve_inventory's first try): $1 the item, $2
/// its units, $3/$4 admin and tenant, $5 the seconds it lasts, $6 the
/// reference. Taken only when the item is visible, tracks stock, is not
/// striped, covers the line (the policy's room, as LOCK_MANY's `covered`),
/// and has no stock at other locations and is no kit: the last two are
/// uncorrelated, so PostgreSQL checks them once, before the UPDATE reads a
/// row (a one-time filter over an InitPlan). When any of it fails nothing
/// is written and the call takes the full path (kits, allocation, stripes,
/// untracked lines, the errors), which asks it all again under its locks.
///
/// The item's row is the only row locked, by the UPDATE, so the lock order
/// (reservation, then items by id) holds trivially: the reservation is new
/// and nobody else can see it. The reservation's tenant is record_tenant's
/// (a tenant caller's own; an admin's, the item's if it has one). Returns
/// the rows written (items, reservations, lines) and RESERVE_APPLY's answer.
///
/// Measured: three statements fewer than the full path (the guard, the
/// lock, then the hold), docs/benchmarks.md ("reserve_commit").
pub(crate) const HOLD_PLAIN_ONE: Stmt = Stmt {
    name: "reserve_plain_one",
    sql: "WITH upd AS ( \
            UPDATE atomic_inventory.items AS i \
               SET reserved = i.reserved + $2, updated_at = pg_catalog.now() \
             WHERE i.id = $1 \
               AND i.track_inventory AND i.stripes = 0 \
               AND (i.tenant_id IS NULL OR $3 OR i.tenant_id = $4) \
               AND i.quantity - i.reserved - i.unsellable + i.backorder_limit >= $2 \
               AND (i.preorder_until IS NULL OR i.preorder_until > pg_catalog.now() OR i.quantity - i.reserved - i.unsellable >= $2) \
               AND NOT EXISTS (SELECT FROM atomic_inventory.stock_levels AS l WHERE l.item_id = $1) \
               AND NOT EXISTS (SELECT FROM atomic_inventory.kit_components AS k WHERE k.kit_id = $1) \
            RETURNING i.id, i.tenant_id \
          ), res AS ( \
            INSERT INTO atomic_inventory.reservations (status, reference, tenant_id, expires_at) \
            SELECT 'active', $6, CASE WHEN $3 THEN COALESCE(u.tenant_id, $4) ELSE $4 END, \
                   pg_catalog.now() + pg_catalog.make_interval(secs => $5) \
              FROM upd AS u \
            RETURNING id, expires_at \
          ), lines AS ( \
            INSERT INTO atomic_inventory.reservation_lines (reservation_id, inventory_id, quantity, tracked) \
            SELECT res.id, u.id, $2, true FROM res, upd AS u \
            RETURNING inventory_id, quantity \
          ) \
          SELECT (SELECT pg_catalog.count(*) FROM upd)::int4, \
                 (SELECT pg_catalog.count(*) FROM res)::int4, \
                 (SELECT pg_catalog.count(*) FROM lines)::int4, \
                 (SELECT pg_catalog.json_build_object('success', true, 'reservation_id', res.id, \
                           'status', 'active', 'expires_at', res.expires_at, \
                           'lines', (SELECT pg_catalog.json_agg(pg_catalog.json_build_object( \
                                       'inventory_id', l.inventory_id, 'quantity', l.quantity) \
                                       ORDER BY l.inventory_id) FROM lines AS l))::text \
                    FROM res)",
    args: &[UUID, NUM, BOOL, TEXT, INT, TEXT],
};

/// Lock the items of the reservation's active lines (all, or those in $2),
/// ascending id; returns each line's item, units, whether it tracks and
/// the location it holds at (NULL: the default one; level_holds.rs then
/// locks the levels of the others).
pub(crate) const LOCK_LINES: Stmt = Stmt {
    name: "reservation_lock_lines",
    sql: "SELECT l.inventory_id, l.quantity, l.tracked, l.location_id \
            FROM atomic_inventory.reservation_lines AS l \
            JOIN atomic_inventory.items AS i ON i.id = l.inventory_id \
           WHERE l.reservation_id = $1 AND l.status = 'active' \
             AND ($2::uuid[] IS NULL OR l.inventory_id = ANY ($2)) \
           ORDER BY l.inventory_id \
             FOR NO KEY UPDATE OF i",
    args: &[UUID, UUIDS],
};

/// FINISH's statement after its `fl` CTE (finish_lines!): the items
/// given back or sold, their ledger rows, the reservation's new status
/// (`$active`: its first WHEN, for lines left active; `$guard`: added to the
/// reservation's WHERE). One text for FINISH and FINISH_PLAIN_ONE, so
/// their rules can't drift apart.
macro_rules! finish_rest {
    ($active:literal, $guard:literal) => {
        concat!(
            "), upd AS ( \
                UPDATE atomic_inventory.items AS i \
                   SET reserved = i.reserved - fl.quantity, \
                       quantity = CASE WHEN $3 = 'committed' THEN i.quantity - fl.quantity \
                                       ELSE i.quantity END, \
                       updated_at = pg_catalog.now() \
                  FROM fl WHERE i.id = fl.inventory_id AND fl.tracked \
                RETURNING i.id, i.quantity, i.stripes, fl.quantity AS qty, i.tenant_id \
              ), led AS ( \
                INSERT INTO atomic_inventory.ledger \
                  (inventory_id, delta, quantity_after, kind, reason, reference, idempotency_key, tenant_id) \
                SELECT u.id, -u.qty, CASE WHEN u.stripes = 0 THEN u.quantity END, 'commit', $4, $1::text, $5, \
                       u.tenant_id \
                  FROM upd AS u WHERE $3 = 'committed' AND $6 \
              ), res AS ( \
                UPDATE atomic_inventory.reservations AS r \
                   SET status = CASE ",
            $active,
            " WHEN $3 = 'committed' OR EXISTS ( \
                                SELECT 1 FROM atomic_inventory.reservation_lines AS x \
                                 WHERE x.reservation_id = $1 \
                                   AND (x.status = 'committed' OR x.committed_quantity > 0)) THEN 'committed' \
                         ELSE $3 END, \
                       updated_at = pg_catalog.now() \
                 WHERE r.id = $1",
            $guard,
            " RETURNING r.id, r.status, r.expires_at \
              ) "
        )
    };
}

/// The answer of a finish, from its `res` and `fl`.
macro_rules! finish_answer {
    () => {
        "pg_catalog.json_build_object('success', true, 'reservation_id', res.id, \
           'status', res.status, 'expires_at', res.expires_at, \
           $3, (SELECT pg_catalog.json_agg(pg_catalog.json_build_object( \
                  'inventory_id', fl.inventory_id, 'quantity', fl.quantity) \
                  ORDER BY fl.inventory_id) FROM fl))::text"
    };
}

/// Finish lines $2 of reservation $1 as $3 ('committed' or 'released').
/// Committing takes the units off quantity and reserved and writes ledger
/// rows (`quantity_after` NULL for a striped item, as for its sales: its row
/// holds the reserved units, its free stock is in stripes we don't lock
/// here); releasing only lowers reserved. The reservation stays active while
/// any line is. The status checks name `$1`, not `r.id`: uncorrelated, each
/// runs once as a key lookup; correlated, PostgreSQL 18 hashed the second
/// over every committed line of the table when its statistics said small
/// (reservation_plans_use_keys).
pub(crate) const FINISH: Stmt = Stmt {
    name: "reservation_finish",
    sql: concat!(
        finish_lines!(""),
        finish_rest!(
            "WHEN EXISTS (SELECT 1 FROM atomic_inventory.reservation_lines AS x \
                           WHERE x.reservation_id = $1 AND x.status = 'active' \
                             AND x.inventory_id <> ALL ($2)) THEN 'active'",
            ""
        ),
        "SELECT ",
        finish_answer!(),
        ", (SELECT pg_catalog.count(*) FROM upd)::int4 FROM res"
    ),
    args: &[UUID, UUIDS, TEXT, TEXT, TEXT, BOOL],
};

/// FINISH of a reservation whose only active line holds at the default
/// location, in one statement with no lock before it but the reservation's
/// (the commit or release of a one-line cart): the line's item row is the
/// only other row it locks, so no order among items can be broken, and the
/// caller (ops/reservations.rs) holds the reservation row. The guard, a
/// count of the reservation's active lines, is uncorrelated, so PostgreSQL
/// checks it once before a row is read (a one-time filter): when the
/// reservation has more lines, or its line holds at another location,
/// nothing is written and the call takes the full path (held_lines, then
/// FINISH or FINISH_AT). $2 is unused (FINISH's numbering, so the two share
/// finish_rest!). Returns the lines, item rows and reservations it wrote,
/// how many of its lines track stock, FINISH's answer and the line's item.
pub(crate) const FINISH_PLAIN_ONE: Stmt = Stmt {
    name: "reservation_finish_plain_one",
    sql: concat!(
        finish_lines!(
            "",
            "l.location_id IS NULL \
             AND (SELECT pg_catalog.count(*) FROM atomic_inventory.reservation_lines AS x \
                   WHERE x.reservation_id = $1 AND x.status = 'active') = 1"
        ),
        finish_rest!("", " AND EXISTS (SELECT FROM fl)"),
        "SELECT (SELECT pg_catalog.count(*) FROM fl)::int4, \
                (SELECT pg_catalog.count(*) FROM fl WHERE fl.tracked)::int4, \
                (SELECT pg_catalog.count(*) FROM upd)::int4, \
                (SELECT pg_catalog.count(*) FROM res)::int4, \
                (SELECT ",
        finish_answer!(),
        " FROM res), \
                (SELECT fl.inventory_id FROM fl)"
    ),
    args: &[UUID, UUIDS, TEXT, TEXT, TEXT, BOOL],
};

/// Commit $3 units of each line $2 of reservation $1 (active, holding at
/// least that many; the caller holds the reservation and the items locked)
/// and give the rest of each line back ($4 false: the line is committed) or
/// keep it held ($4 true: the line stays active holding the rest; all of
/// it committed finishes the line). Quantity drops by the committed units,
/// reserved by the committed and released ones; one ledger row per
/// committed tracked line, as FINISH writes them. The reservation stays
/// active while any line is. Returns the answer, how many lines and how
/// many item rows it wrote.
pub(crate) const COMMIT_PARTS: Stmt = Stmt {
    name: "reservation_commit_parts",
    sql: concat!(
        commit_parts_lines!(""),
        "), upd AS ( \
            UPDATE atomic_inventory.items AS i \
               SET reserved = i.reserved - (fl.sold + fl.freed), \
                   quantity = i.quantity - fl.sold, \
                   updated_at = pg_catalog.now() \
              FROM fl WHERE i.id = fl.inventory_id AND fl.tracked \
            RETURNING i.id, i.quantity, i.stripes, fl.sold, i.tenant_id \
          ), led AS ( \
            INSERT INTO atomic_inventory.ledger \
              (inventory_id, delta, quantity_after, kind, reason, reference, idempotency_key, tenant_id) \
            SELECT u.id, -u.sold, CASE WHEN u.stripes = 0 THEN u.quantity END, 'commit', $5, $1::text, $6, \
                   u.tenant_id \
              FROM upd AS u WHERE $7 \
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
                   'committed', COALESCE((SELECT pg_catalog.json_agg(pg_catalog.json_build_object( \
                          'inventory_id', fl.inventory_id, 'quantity', fl.sold) \
                          ORDER BY fl.inventory_id) FROM fl), '[]'::json), \
                   'released', COALESCE((SELECT pg_catalog.json_agg(pg_catalog.json_build_object( \
                          'inventory_id', fl.inventory_id, 'quantity', fl.freed) \
                          ORDER BY fl.inventory_id) FROM fl WHERE fl.freed > 0), '[]'::json), \
                   'kept', COALESCE((SELECT pg_catalog.json_agg(pg_catalog.json_build_object( \
                          'inventory_id', fl.inventory_id, 'quantity', fl.kept) \
                          ORDER BY fl.inventory_id) FROM fl WHERE fl.kept IS NOT NULL), '[]'::json) \
                 )::text, \
                 (SELECT pg_catalog.count(*) FROM fl)::int4, \
                 (SELECT pg_catalog.count(*) FROM upd)::int4 \
            FROM res"
    ),
    args: &[UUID, UUIDS, pg_sys::NUMERICARRAYOID, BOOL, TEXT, TEXT, BOOL, TEXT],
};

/// Lines of a reservation that are no longer active, among the given ids
/// (the refusal path of a partial commit/release only).
const FINISHED_LINES: Stmt = Stmt {
    name: "finished_lines",
    sql: "SELECT DISTINCT l.inventory_id::text, l.status \
            FROM atomic_inventory.reservation_lines AS l \
           WHERE l.reservation_id = $1 AND l.inventory_id = ANY ($2) AND l.status <> 'active'",
    args: &[UUID, UUIDS],
};

/// Step 2: lock their items, ascending id; and whether any of their
/// active lines holds at another location than the default one (then
/// level_holds.rs locks those levels and the expiry moves them too).
const DUE_ITEMS: Stmt = Stmt {
    name: "reservation_due_items",
    sql: "SELECT i.id, (SELECT pg_catalog.bool_or(x.location_id IS NOT NULL) \
                          FROM atomic_inventory.reservation_lines AS x \
                         WHERE x.reservation_id = ANY ($1) AND x.status = 'active') \
            FROM atomic_inventory.items AS i \
           WHERE i.id IN (SELECT l.inventory_id FROM atomic_inventory.reservation_lines AS l \
                           WHERE l.reservation_id = ANY ($1) AND l.status = 'active') \
           ORDER BY i.id \
             FOR NO KEY UPDATE",
    args: &[UUIDS],
};

/// Step 3: expire all their active lines and give the units back.
const EXPIRE_APPLY: Stmt = Stmt {
    name: "reservation_expire_apply",
    sql: "WITH fl AS ( \
            UPDATE atomic_inventory.reservation_lines AS l \
               SET status = 'expired', released_quantity = l.released_quantity + l.quantity, \
                   updated_at = pg_catalog.now() \
             WHERE l.reservation_id = ANY ($1) AND l.status = 'active' \
            RETURNING l.inventory_id, l.quantity, l.tracked \
          ), per_item AS ( \
            SELECT fl.inventory_id, pg_catalog.sum(fl.quantity) AS qty \
              FROM fl WHERE fl.tracked GROUP BY fl.inventory_id \
          ), upd AS ( \
            UPDATE atomic_inventory.items AS i \
               SET reserved = i.reserved - p.qty, updated_at = pg_catalog.now() \
              FROM per_item AS p WHERE i.id = p.inventory_id \
            RETURNING i.id \
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
                 (SELECT pg_catalog.count(*) FROM upd)::int4, \
                 (SELECT pg_catalog.count(*) FROM per_item)::int4 \
            FROM res",
    args: &[UUIDS],
};

impl Own {
    /// A one-line hold in one statement (HOLD_PLAIN_ONE): the answer, or
    /// None when the line needs the full path (nothing written then).
    pub fn hold_plain_one(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        item: &Uuid,
        qty: &AnyNumeric,
        ttl_seconds: i32,
        reference: Option<String>,
    ) -> Result<Option<String>> {
        let done = run(
            c,
            &HOLD_PLAIN_ONE,
            &[
                (*item).into(),
                qty.clone().into(),
                who.admin.into(),
                who.tenant.clone().into(),
                ttl_seconds.into(),
                reference.into(),
            ],
        )?;
        let row = done.first();
        if row.get::<i32>(1)?.unwrap_or(0) == 0 {
            return Ok(None);
        }
        // the item took the hold: a reservation and its line must record
        // it, or reserved would count units no line holds
        let recorded = row.get::<i32>(2)?.unwrap_or(0) == 1 && row.get::<i32>(3)?.unwrap_or(0) == 1;
        match row.get::<String>(4)? {
            Some(answer) if recorded => Ok(Some(answer)),
            _ => Err(holds::skipped_record(std::iter::once(item))),
        }
    }
}

impl HoldSource for Own {
    fn hold(
        &self,
        c: &mut SpiClient<'_>,
        lines: &Lines<Uuid>,
        locked: &LockedLines<Uuid>,
        new: &NewHold,
    ) -> Result<String> {
        let done = run(
            c,
            &RESERVE_APPLY,
            &[
                lines.keys.clone().into(),
                lines.qtys.clone().into(),
                new.ttl_seconds.into(),
                new.reference.clone().into(),
                new.tenant.clone().into(),
            ],
        )?;
        if done.is_empty() {
            // the reservation's row was skipped
            return Err(holds::skipped_record(lines.keys.iter()));
        }
        let row = done.first();
        // every tracked line's row (locked, covering it) must take its hold,
        // or the reservation would hold units reserved lacks
        let tracked: Vec<&Uuid> = locked
            .rows
            .iter()
            .filter(|(_, l)| l.tracked)
            .map(|(k, _)| k)
            .collect();
        if row.get::<i32>(2)?.unwrap_or(0) as usize != tracked.len() {
            return Err(self.skipped(&tracked));
        }
        // and every line its record (none if the reservation's was skipped)
        if row.get::<i32>(3)?.unwrap_or(0) as usize != lines.keys.len() {
            return Err(holds::skipped_record(lines.keys.iter()));
        }
        Ok(row.get::<String>(1)?.unwrap_or_default())
    }

    fn line_key_name(&self) -> &'static str {
        "inventory_id"
    }

    fn stored_keys(&self, wanted: Vec<String>, _field: &str) -> Vec<String> {
        wanted
            .into_iter()
            .map(|w| validate::parse_uuid(&w).map_or(w, |u| validate::uuid_text(&u)))
            .collect()
    }

    fn held_lines(
        &self,
        c: &mut SpiClient<'_>,
        id: Uuid,
        only: Option<&[String]>,
    ) -> Result<Vec<HeldLine>> {
        // ids that aren't uuids can't name a line
        let wanted: Option<Vec<Uuid>> =
            only.map(|v| v.iter().filter_map(|t| validate::parse_uuid(t)).collect());
        let mut out = Vec::new();
        for row in run(c, &LOCK_LINES, &[id.into(), wanted.into()])? {
            if let Some(u) = row.get::<Uuid>(1)? {
                out.push(HeldLine {
                    key: validate::uuid_text(&u),
                    qty: row.get::<AnyNumeric>(2)?.unwrap_or_default(),
                    tracked: row.get::<bool>(3)?.unwrap_or(true),
                    location: row.get::<Uuid>(4)?,
                });
            }
        }
        // then the levels lines at other locations hold at (after the
        // items' rows, as every caller locking several locations does)
        let at: Vec<LevelKey> = out
            .iter()
            .filter_map(|l| {
                let item = validate::parse_uuid(&l.key)?;
                l.location.map(|location| LevelKey { item, location })
            })
            .collect();
        level_holds::lock_held(c, &at)?;
        Ok(out)
    }

    fn finished_lines(
        &self,
        c: &mut SpiClient<'_>,
        id: Uuid,
        keys: &[String],
    ) -> Result<Vec<(String, String)>> {
        let ids: Vec<Uuid> = keys
            .iter()
            .filter_map(|w| validate::parse_uuid(w))
            .collect();
        let mut done = Vec::new();
        for row in run(c, &FINISHED_LINES, &[id.into(), ids.into()])? {
            done.push((
                row.get::<String>(1)?.unwrap_or_default(),
                row.get::<String>(2)?.unwrap_or_default(),
            ));
        }
        done.sort();
        Ok(done)
    }

    fn settle_at_once(
        &self,
        c: &mut SpiClient<'_>,
        id: Uuid,
        how: Finish,
        note: &LedgerNote<'_>,
    ) -> Result<Option<String>> {
        let done = run(
            c,
            &FINISH_PLAIN_ONE,
            &[
                id.into(),
                None::<Vec<Uuid>>.into(),
                how.status().to_string().into(),
                note.reason.clone().into(),
                note.key.map(str::to_string).into(),
                ledger_on().into(),
            ],
        )?;
        let row = done.first();
        let count = |n: usize| -> Result<i32> { Ok(row.get::<i32>(n)?.unwrap_or(0)) };
        if count(1)? == 0 {
            return Ok(None);
        }
        // the line is finished: a tracked line's item must give its units
        // back and the reservation must record it, or reserved and the
        // reservation's status would disagree with its lines
        if count(3)? != count(2)? {
            let item: Vec<Uuid> = row.get::<Uuid>(6)?.into_iter().collect();
            return Err(self.skipped(&item.iter().collect::<Vec<_>>()));
        }
        if count(4)? != 1 {
            return Err(holds::skipped(&id));
        }
        Ok(Some(row.get::<String>(5)?.unwrap_or_default()))
    }

    fn settle(
        &self,
        c: &mut SpiClient<'_>,
        id: Uuid,
        lines: &[HeldLine],
        _partial: bool,
        how: Finish,
        note: &LedgerNote<'_>,
    ) -> Result<String> {
        let active: Vec<Uuid> = lines
            .iter()
            .map(|l| {
                validate::parse_uuid(&l.key)
                    .ok_or_else(|| Error::Internal(format!("a line keyed {:?}", l.key)))
            })
            .collect::<Result<_>>()?;
        // lines at other locations than the default one: the statement
        // that also moves levels; else the default location's own
        let at = lines.iter().any(|l| l.location.is_some());
        let done = run(
            c,
            if at { &FINISH_AT } else { &FINISH },
            &[
                id.into(),
                active.clone().into(),
                how.status().to_string().into(),
                note.reason.clone().into(),
                note.key.map(str::to_string).into(),
                ledger_on().into(),
            ],
        )?;
        if done.is_empty() {
            return Err(holds::skipped(&id));
        }
        let row = done.first();
        // each tracked line's item (locked by held_lines) must give its
        // units back, or reserved would keep units no line holds
        let tracked: Vec<Uuid> = lines
            .iter()
            .zip(&active)
            .filter(|(l, _)| l.tracked)
            .map(|(_, id)| *id)
            .collect();
        if row.get::<i32>(2)?.unwrap_or(0) as usize != tracked.len() {
            return Err(self.skipped(&tracked.iter().collect::<Vec<_>>()));
        }
        Ok(row.get::<String>(1)?.unwrap_or_default())
    }

    fn settle_parts(
        &self,
        c: &mut SpiClient<'_>,
        id: Uuid,
        parts: &[Part],
        rest: Rest,
        note: &LedgerNote<'_>,
    ) -> Result<String> {
        let keys: Vec<Uuid> = parts
            .iter()
            .map(|p| {
                validate::parse_uuid(&p.line.key)
                    .ok_or_else(|| Error::Internal(format!("a line keyed {:?}", p.line.key)))
            })
            .collect::<Result<_>>()?;
        let takes: Vec<AnyNumeric> = parts.iter().map(|p| p.take.clone()).collect();
        let at = parts.iter().any(|p| p.line.location.is_some());
        let done = run(
            c,
            if at {
                &level_holds::COMMIT_PARTS_AT
            } else {
                &COMMIT_PARTS
            },
            &[
                id.into(),
                keys.clone().into(),
                takes.into(),
                (rest == Rest::Keep).into(),
                note.reason.clone().into(),
                note.key.map(str::to_string).into(),
                ledger_on().into(),
                rest.as_str().to_string().into(),
            ],
        )?;
        if done.is_empty() {
            return Err(holds::skipped(&id));
        }
        let row = done.first();
        // every line was checked active and covering its units under the
        // reservation's lock: each must be written
        if row.get::<i32>(2)?.unwrap_or(0) as usize != parts.len() {
            return Err(holds::skipped_lines(&id));
        }
        // and each tracked line's item (locked by held_lines) must move its
        // units, or reserved would keep units no line holds
        let tracked: Vec<Uuid> = parts
            .iter()
            .zip(&keys)
            .filter(|(p, _)| p.line.tracked)
            .map(|(_, k)| *k)
            .collect();
        if row.get::<i32>(3)?.unwrap_or(0) as usize != tracked.len() {
            return Err(self.skipped(&tracked.iter().collect::<Vec<_>>()));
        }
        Ok(row.get::<String>(1)?.unwrap_or_default())
    }

    fn expire(&self, c: &mut SpiClient<'_>, ids: &[Uuid]) -> Result<i32> {
        if ids.is_empty() {
            return Ok(0);
        }
        let locked = run(c, &DUE_ITEMS, &[ids.to_vec().into()])?;
        let at = !locked.is_empty() && locked.first().get::<bool>(2)?.unwrap_or(false);
        // the levels lines at other locations hold at, after the items
        if at {
            level_holds::lock_due(c, ids)?;
        }
        let done = run(
            c,
            if at { &EXPIRE_APPLY_AT } else { &EXPIRE_APPLY },
            &[ids.to_vec().into()],
        )?;
        let row = done.first();
        // every item holding units of these reservations must give them
        // back (a trigger of the operator's that skips the write fails the
        // sweep: the holds stay active, nothing half done)
        if row.get::<i32>(2)? != row.get::<i32>(3)? {
            return Err(Error::Internal(
                "a trigger or rule on atomic_inventory.items skipped the expiry's write".into(),
            ));
        }
        Ok(row.get::<i32>(1)?.unwrap_or(0))
    }
}
