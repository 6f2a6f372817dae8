//! Reservations on the extension's own items: a hold raises
//! `items.reserved`, its lines live in `reservation_lines` (one per item),
//! and `items.reserved` always equals the sum of the item's active tracked
//! lines (reconcile() checks it). A commit, release or expiry finishes
//! lines and moves their units in one statement each.
//!
//! Lock order, as everywhere: the reservation row first (the caller holds
//! it), then item rows in ascending id.

use super::Own;
use crate::core::movement::LedgerNote;
use crate::core::validate;
use crate::error::{Error, Result};
use crate::pg::spi::{run, Stmt};
use crate::settings::ledger_on;
use crate::source::{Finish, HeldLine, HoldSource, Lines, LockedLines, NewHold, StockSource};
use pgrx::pg_sys::{self, Oid};
use pgrx::spi::SpiClient;
use pgrx::{AnyNumeric, Uuid};

const UUID: Oid = pg_sys::UUIDOID;
const UUIDS: Oid = pg_sys::UUIDARRAYOID;
const TEXT: Oid = pg_sys::TEXTOID;
const BOOL: Oid = pg_sys::BOOLOID;
const INT: Oid = pg_sys::INT4OID;

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
                 (SELECT pg_catalog.count(*) FROM upd)::int4 \
            FROM res",
    args: &[UUIDS, pg_sys::NUMERICARRAYOID, INT, TEXT, TEXT],
};

/// Lock the items of the reservation's active lines (all, or those in $2),
/// ascending id; returns each line's item, units and whether it tracks.
pub(crate) const LOCK_LINES: Stmt = Stmt {
    name: "reservation_lock_lines",
    sql: "SELECT l.inventory_id, l.quantity, l.tracked \
            FROM atomic_inventory.reservation_lines AS l \
            JOIN atomic_inventory.items AS i ON i.id = l.inventory_id \
           WHERE l.reservation_id = $1 AND l.status = 'active' \
             AND ($2::uuid[] IS NULL OR l.inventory_id = ANY ($2)) \
           ORDER BY l.inventory_id \
             FOR UPDATE OF i",
    args: &[UUID, UUIDS],
};

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
    sql: "WITH fl AS ( \
            UPDATE atomic_inventory.reservation_lines AS l \
               SET status = $3, updated_at = pg_catalog.now() \
             WHERE l.reservation_id = $1 AND l.status = 'active' AND l.inventory_id = ANY ($2) \
            RETURNING l.inventory_id, l.quantity, l.tracked \
          ), upd AS ( \
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
               SET status = CASE \
                     WHEN EXISTS (SELECT 1 FROM atomic_inventory.reservation_lines AS x \
                                   WHERE x.reservation_id = $1 AND x.status = 'active' \
                                     AND x.inventory_id <> ALL ($2)) THEN 'active' \
                     WHEN $3 = 'committed' OR EXISTS ( \
                            SELECT 1 FROM atomic_inventory.reservation_lines AS x \
                             WHERE x.reservation_id = $1 AND x.status = 'committed') THEN 'committed' \
                     ELSE $3 END, \
                   updated_at = pg_catalog.now() \
             WHERE r.id = $1 \
            RETURNING r.id, r.status, r.expires_at \
          ) \
          SELECT pg_catalog.json_build_object('success', true, 'reservation_id', res.id, \
                   'status', res.status, 'expires_at', res.expires_at, \
                   $3, (SELECT pg_catalog.json_agg(pg_catalog.json_build_object( \
                          'inventory_id', fl.inventory_id, 'quantity', fl.quantity) \
                          ORDER BY fl.inventory_id) FROM fl))::text, \
                 (SELECT pg_catalog.count(*) FROM upd)::int4 \
            FROM res",
    args: &[UUID, UUIDS, TEXT, TEXT, TEXT, BOOL],
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

/// Step 2: lock their items, ascending id.
const DUE_ITEMS: Stmt = Stmt {
    name: "reservation_due_items",
    sql: "SELECT i.id FROM atomic_inventory.items AS i \
           WHERE i.id IN (SELECT l.inventory_id FROM atomic_inventory.reservation_lines AS l \
                           WHERE l.reservation_id = ANY ($1) AND l.status = 'active') \
           ORDER BY i.id \
             FOR UPDATE",
    args: &[UUIDS],
};

/// Step 3: expire all their active lines and give the units back.
const EXPIRE_APPLY: Stmt = Stmt {
    name: "reservation_expire_apply",
    sql: "WITH fl AS ( \
            UPDATE atomic_inventory.reservation_lines AS l \
               SET status = 'expired', updated_at = pg_catalog.now() \
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
                               WHERE x.reservation_id = r.id AND x.status = 'committed') \
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
                });
            }
        }
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
        let done = run(
            c,
            &FINISH,
            &[
                id.into(),
                active.clone().into(),
                how.status().to_string().into(),
                note.reason.clone().into(),
                note.key.map(str::to_string).into(),
                ledger_on().into(),
            ],
        )?;
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

    fn expire(&self, c: &mut SpiClient<'_>, ids: &[Uuid]) -> Result<i32> {
        if ids.is_empty() {
            return Ok(0);
        }
        run(c, &DUE_ITEMS, &[ids.to_vec().into()])?;
        let done = run(c, &EXPIRE_APPLY, &[ids.to_vec().into()])?;
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
