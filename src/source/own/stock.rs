//! The extension's own items as a stock source: one row per item in
//! `atomic_inventory.items`, its ledger row written in the same statement
//! as the change (a data-modifying CTE), striped items (stripes.rs) and the
//! one-statement sale of many lines (lines.rs).

use super::{stripes, Own};
use crate::core::caller::Caller;
use crate::core::movement::{num_json, Moved, Movement, Owed, Sold};
use crate::core::validate;
use crate::error::{Error, Result, Shortfall};
use crate::pg::spi::{run, Stmt};
use crate::source::{Lines, LockedLine, LockedLines, RowState, StockSource};
use pgrx::pg_sys::{self, Oid};
use pgrx::spi::SpiClient;
use pgrx::{AnyNumeric, Uuid};
use serde_json::json;
use std::collections::BTreeMap;

const UUID: Oid = pg_sys::UUIDOID;
const NUM: Oid = pg_sys::NUMERICOID;
const TEXT: Oid = pg_sys::TEXTOID;
const BOOL: Oid = pg_sys::BOOLOID;

// The tenant predicate shared by every statement: $admin, $tenant.
// (Spelled out in each statement so each stays one readable SQL string.)
//
// The room past the stock on hand, in every guarded sale and hold:
// backorder_limit, and for an item on preorder only before its release
// date. Written as a second term beside the stock test, `(preorder_until IS
// NULL OR preorder_until > now() OR <the stock on hand covers it>)`, rather
// than a CASE inside the sum: an item that is no preorder settles it with
// one null test and no numeric arithmetic (these statements are
// benchmarked against plain SQL). The clock stays out of the CHECK, which
// must not turn a stored row invalid as time passes.

const DECREMENT_ONE: Stmt = Stmt {
    name: "decrement_one",
    sql: "WITH upd AS ( \
            UPDATE atomic_inventory.items AS i \
               SET quantity = i.quantity - $2, updated_at = pg_catalog.now() \
             WHERE i.id = $1 \
               AND i.track_inventory \
               AND (i.tenant_id IS NULL OR $3 OR i.tenant_id = $4) \
               AND i.quantity - i.reserved - i.unsellable + i.backorder_limit >= $2 \
               AND (i.preorder_until IS NULL OR i.preorder_until > pg_catalog.now() OR i.quantity - i.reserved - i.unsellable >= $2) \
               AND (i.stripes = 0 OR $8) \
            RETURNING i.id, i.quantity, i.tenant_id, i.reserved + i.unsellable AS held, \
                      i.preorder_until IS NOT NULL AS pre \
          ), led AS ( \
            INSERT INTO atomic_inventory.ledger \
              (inventory_id, delta, quantity_after, kind, reason, reference, idempotency_key, tenant_id) \
            SELECT u.id, -$2, u.quantity, 'decrement', $5, $6, $7, u.tenant_id FROM upd AS u \
          ) \
          SELECT (u.quantity + $2)::text, u.quantity::text, \
                 CASE WHEN u.quantity < u.held THEN LEAST($2, u.held - u.quantity)::text END, u.pre \
            FROM upd AS u",
    args: &[UUID, NUM, BOOL, TEXT, TEXT, TEXT, TEXT, BOOL],
};

/// DECREMENT_ONE with the ledger off (`atomic_inventory.ledger = off`): the
/// bare UPDATE, no CTE (a data-modifying CTE costs ~5 us of materialising on
/// its own). Both return the old and new quantity; the JSON is built in Rust
/// (json_build_object looks up each argument's type and output function on
/// every call).
const DECREMENT_ONE_BARE: Stmt = Stmt {
    name: "decrement_one_bare",
    sql: "UPDATE atomic_inventory.items AS i \
             SET quantity = i.quantity - $2, updated_at = pg_catalog.now() \
           WHERE i.id = $1 \
             AND i.track_inventory \
             AND (i.tenant_id IS NULL OR $3 OR i.tenant_id = $4) \
             AND i.quantity - i.reserved - i.unsellable + i.backorder_limit >= $2 \
             AND (i.preorder_until IS NULL OR i.preorder_until > pg_catalog.now() OR i.quantity - i.reserved - i.unsellable >= $2) \
             AND (i.stripes = 0 OR $5) \
          RETURNING (i.quantity + $2)::text, i.quantity::text, \
                    CASE WHEN i.quantity < i.reserved + i.unsellable \
                         THEN LEAST($2, i.reserved + i.unsellable - i.quantity)::text END, \
                    i.preorder_until IS NOT NULL",
    args: &[UUID, NUM, BOOL, TEXT, BOOL],
};

/// A restock, with its ledger row if $9 (the ledger is on): the old and
/// new quantity. ($8: the item's stripes are gathered into its row.)
const INCREMENT_ONE: Stmt = Stmt {
    name: "increment_one",
    sql: "WITH upd AS ( \
            UPDATE atomic_inventory.items AS i \
               SET quantity = i.quantity + $2, updated_at = pg_catalog.now() \
             WHERE i.id = $1 \
               AND (i.tenant_id IS NULL OR $3 OR i.tenant_id = $4) \
               AND (i.stripes = 0 OR $8) \
            RETURNING i.id, i.quantity, i.tenant_id \
          ), led AS ( \
            INSERT INTO atomic_inventory.ledger \
              (inventory_id, delta, quantity_after, kind, reason, reference, idempotency_key, tenant_id) \
            SELECT u.id, $2, u.quantity, 'increment', $5, $6, $7, u.tenant_id FROM upd AS u WHERE $9 \
          ) \
          SELECT (u.quantity - $2)::text, u.quantity::text FROM upd AS u",
    args: &[UUID, NUM, BOOL, TEXT, TEXT, TEXT, TEXT, BOOL, BOOL],
};

/// Lock one visible row and report its state (the slow path of a refused
/// decrement, and the first step of adjust).
///
/// Item rows are locked FOR NO KEY UPDATE, here and everywhere: the lock an
/// UPDATE of the row takes, which a foreign key check's FOR KEY SHARE (a
/// level, ledger row or reservation line inserted for the item) does not
/// conflict with. With FOR UPDATE, two transfers that each created a level
/// of one item (each holding KEY SHARE on its row) and then locked the row
/// deadlocked (the crash test's --level-race; transfers.spec).
const LOCK_ONE: Stmt = Stmt {
    name: "lock_one",
    sql: "SELECT i.quantity::text, (i.reserved + i.unsellable)::text, (i.quantity - i.reserved - i.unsellable)::text, \
                 i.track_inventory, (i.quantity - i.reserved - i.unsellable + i.backorder_limit >= $4 \
                                    AND (i.preorder_until IS NULL OR i.preorder_until > pg_catalog.now() OR i.quantity - i.reserved - i.unsellable >= $4)), i.stripes \
            FROM atomic_inventory.items AS i \
           WHERE i.id = $1 AND (i.tenant_id IS NULL OR $2 OR i.tenant_id = $3) \
             FOR NO KEY UPDATE",
    args: &[UUID, BOOL, TEXT, NUM],
};

/// LOCK_MANY's statement, `$guard` added to its WHERE.
macro_rules! lock_many {
    ($guard:literal) => {
        concat!(
            "SELECT i.id, (i.quantity - i.reserved - i.unsellable)::text, r.qty::text, \
                    (NOT i.track_inventory OR (i.quantity - i.reserved - i.unsellable + i.backorder_limit >= r.qty \
                                                 AND (i.preorder_until IS NULL OR i.preorder_until > pg_catalog.now() OR i.quantity - i.reserved - i.unsellable >= r.qty))), i.stripes > 0, \
                    i.tenant_id, i.quantity::text, i.track_inventory \
               FROM atomic_inventory.items AS i \
               JOIN (SELECT l.id, pg_catalog.sum(l.qty) AS qty \
                       FROM ROWS FROM (pg_catalog.unnest($1::uuid[]), pg_catalog.unnest($2::numeric[])) AS l(id, qty) \
                      GROUP BY l.id) AS r ON r.id = i.id \
              WHERE (i.tenant_id IS NULL OR $3 OR i.tenant_id = $4)",
            $guard,
            " ORDER BY i.id \
                FOR NO KEY UPDATE OF i"
        )
    };
}

/// Lock every line's row in ascending id order; duplicates merged: id,
/// available, requested, covered, striped, tenant, quantity, tracked.
pub(crate) const LOCK_MANY: Stmt = Stmt {
    name: "lock_many",
    sql: lock_many!(""),
    args: &[pg_sys::UUIDARRAYOID, pg_sys::NUMERICARRAYOID, BOOL, TEXT],
};

/// LOCK_MANY for a cart's first statement (reserve_inventory's lines at
/// the default location): only if none of its items has stock at other
/// locations or is a kit. Both subqueries are uncorrelated, so PostgreSQL
/// checks them once, before a row is read or locked (a one-time filter):
/// when either finds something, it returns nothing and the cart takes the
/// full path (kits read as their components, allocation across locations),
/// which would have asked the same in a statement of its own.
pub(crate) const LOCK_MANY_PLAIN: Stmt = Stmt {
    name: "lock_many_plain",
    sql: lock_many!(
        " AND NOT EXISTS (SELECT FROM atomic_inventory.stock_levels AS x WHERE x.item_id = ANY ($1)) \
          AND NOT EXISTS (SELECT FROM atomic_inventory.kit_components AS k WHERE k.kit_id = ANY ($1))"
    ),
    args: &[pg_sys::UUIDARRAYOID, pg_sys::NUMERICARRAYOID, BOOL, TEXT],
};

/// Set a quantity on a row LOCK_ONE holds, with its ledger row if $6 (the
/// ledger is on): the old and new quantity.
const APPLY_ADJUST: Stmt = Stmt {
    name: "apply_adjust",
    sql: "WITH old AS (SELECT o.quantity FROM atomic_inventory.items AS o WHERE o.id = $1), \
          upd AS ( \
            UPDATE atomic_inventory.items AS i \
               SET quantity = $2, updated_at = pg_catalog.now() \
             WHERE i.id = $1 \
            RETURNING i.id, i.quantity, i.tenant_id \
          ), led AS ( \
            INSERT INTO atomic_inventory.ledger \
              (inventory_id, delta, quantity_after, kind, reason, reference, idempotency_key, tenant_id) \
            SELECT u.id, u.quantity - old.quantity, u.quantity, 'adjust', $3, $4, $5, u.tenant_id \
              FROM upd AS u, old WHERE $6 \
          ) \
          SELECT old.quantity::text, u.quantity::text FROM upd AS u, old",
    args: &[UUID, NUM, TEXT, TEXT, TEXT, BOOL],
};

/// A sale's or restock's answer as json_build_object writes it (the text
/// of the statements these answers were built by before): numbers as
/// numeric_out writes them.
fn moved(id: &Uuid, old: &str, new: &str, verb: &str, qty: &AnyNumeric) -> String {
    let qty = qty.to_string();
    let mut out = String::with_capacity(160);
    out.push_str("{\"success\" : true, \"inventory_id\" : \"");
    out.push_str(&validate::uuid_text(id));
    out.push_str("\", \"old_quantity\" : ");
    out.push_str(old);
    out.push_str(", \"new_quantity\" : ");
    out.push_str(new);
    out.push_str(", \"");
    out.push_str(verb);
    out.push_str("\" : ");
    out.push_str(&qty);
    out.push('}');
    out
}

impl StockSource for Own {
    type Key = Uuid;

    fn key_text(&self, key: &Uuid) -> String {
        validate::uuid_text(key)
    }

    fn not_found(&self, ids: Vec<String>) -> Error {
        Error::NotFound {
            entity: "inventory item",
            ids,
        }
    }

    fn skipped(&self, keys: &[&Uuid]) -> Error {
        let ids: Vec<String> = keys.iter().map(|k| validate::uuid_text(k)).collect();
        Error::invalid_input(
            "p_inventory_id",
            format!(
                "a trigger or rule on atomic_inventory.items skipped the write of item {}; nothing changed",
                ids.join(", ")
            ),
        )
    }

    fn take(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &Uuid,
        qty: &AnyNumeric,
        mv: &Movement,
        gathered: bool,
    ) -> Result<Option<Moved>> {
        let head = [
            (*key).into(),
            qty.clone().into(),
            who.admin.into(),
            who.tenant.clone().into(),
        ];
        let done = if mv.ledger {
            let [a1, a2, a3, a4] = head;
            let [r, f, k] = mv.ledger_params();
            run(
                c,
                &DECREMENT_ONE,
                &[a1, a2, a3, a4, r, f, k, gathered.into()],
            )?
        } else {
            let [a1, a2, a3, a4] = head;
            run(c, &DECREMENT_ONE_BARE, &[a1, a2, a3, a4, gathered.into()])?
        };
        sold_row(done)
    }

    fn add(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &Uuid,
        qty: &AnyNumeric,
        mv: &Movement,
        gathered: bool,
    ) -> Result<Option<Moved>> {
        let [r, f, k] = mv.ledger_params();
        let done = run(
            c,
            &INCREMENT_ONE,
            &[
                (*key).into(),
                qty.clone().into(),
                who.admin.into(),
                who.tenant.clone().into(),
                r,
                f,
                k,
                gathered.into(),
                mv.ledger.into(),
            ],
        )?;
        moved_row(done)
    }

    fn set(
        &self,
        c: &mut SpiClient<'_>,
        key: &Uuid,
        qty: &AnyNumeric,
        _old: &AnyNumeric,
        mv: &Movement,
    ) -> Result<Option<Moved>> {
        let [r, f, k] = mv.ledger_params();
        let done = run(
            c,
            &APPLY_ADJUST,
            &[(*key).into(), qty.clone().into(), r, f, k, mv.ledger.into()],
        )?;
        moved_row(done)
    }

    fn lock(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &Uuid,
        need: &AnyNumeric,
    ) -> Result<Option<RowState>> {
        let state = run(
            c,
            &LOCK_ONE,
            &[
                (*key).into(),
                who.admin.into(),
                who.tenant.clone().into(),
                need.clone().into(),
            ],
        )?;
        if state.is_empty() {
            return Ok(None);
        }
        let row = state.first();
        Ok(Some(RowState {
            quantity: row.get::<String>(1)?.unwrap_or_default(),
            reserved: row.get::<String>(2)?.unwrap_or_default(),
            available: row.get::<String>(3)?.unwrap_or_default(),
            tracked: row.get::<bool>(4)?.unwrap_or(true),
            enough: row.get::<bool>(5)?.unwrap_or(false),
            striped: row.get::<i16>(6)?.unwrap_or(0) > 0,
        }))
    }

    fn take_striped(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &Uuid,
        qty: &AnyNumeric,
        mv: &Movement,
    ) -> Result<Option<String>> {
        stripes::take(c, who, *key, qty, mv)
    }

    fn gather(&self, c: &mut SpiClient<'_>, keys: &[Uuid]) -> Result<()> {
        stripes::gather(c, keys)
    }

    fn respread(&self, c: &mut SpiClient<'_>, keys: &[Uuid]) -> Result<()> {
        stripes::respread(c, keys)
    }

    fn sell_lines(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        lines: &Lines<Uuid>,
        mv: &Movement,
    ) -> Result<Vec<Sold<Uuid>>> {
        super::lines::sell(c, who, lines, mv)
    }

    fn lock_lines(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        lines: &Lines<Uuid>,
    ) -> Result<LockedLines<Uuid>> {
        lock_lines(self, c, who, lines)
    }

    fn sold(&self, key: &Uuid, m: &Moved, qty: &AnyNumeric) -> String {
        let mut out = moved(key, &m.old, &m.new, "deducted", qty);
        if let Some(b) = &m.backordered {
            out.pop();
            out.push_str(", \"");
            out.push_str(b.key());
            out.push_str("\" : ");
            out.push_str(&b.units);
            out.push('}');
        }
        out
    }

    fn untracked(&self, key: &Uuid, row: &RowState) -> String {
        json!({"success": true, "inventory_id": validate::uuid_text(key),
               "old_quantity": num_json(&row.quantity), "new_quantity": num_json(&row.quantity),
               "deducted": 0, "tracked": false})
        .to_string()
    }

    fn added(&self, key: &Uuid, m: &Moved, qty: &AnyNumeric) -> String {
        moved(key, &m.old, &m.new, "added", qty)
    }

    fn adjusted(&self, key: &Uuid, m: &Moved, delta: &AnyNumeric) -> String {
        let mut out = String::with_capacity(160);
        out.push_str("{\"success\" : true, \"inventory_id\" : \"");
        out.push_str(&validate::uuid_text(key));
        out.push_str("\", \"old_quantity\" : ");
        out.push_str(&m.old);
        out.push_str(", \"new_quantity\" : ");
        out.push_str(&m.new);
        out.push_str(", \"delta\" : ");
        out.push_str(&delta.to_string());
        out.push('}');
        out
    }

    fn lines_sold(&self, sold: Vec<Sold<Uuid>>) -> String {
        super::lines::answer(sold)
    }
}

/// The old and new quantity a movement statement returned; None if it
/// changed no row.
fn moved_row(done: pgrx::spi::SpiTupleTable<'_>) -> Result<Option<Moved>> {
    row_of(done, false)
}

/// A sale's row: old and new quantity, the units of it that went past the
/// stock on hand (backorders), if any (a third column), and whether the item
/// is on preorder (a fourth: those units were preordered).
fn sold_row(done: pgrx::spi::SpiTupleTable<'_>) -> Result<Option<Moved>> {
    row_of(done, true)
}

fn row_of(done: pgrx::spi::SpiTupleTable<'_>, backorders: bool) -> Result<Option<Moved>> {
    if done.is_empty() {
        return Ok(None);
    }
    let row = done.first();
    Ok(Some(Moved {
        old: row.get::<String>(1)?.unwrap_or_default(),
        new: row.get::<String>(2)?.unwrap_or_default(),
        backordered: if backorders {
            match row.get::<String>(3)? {
                Some(units) => Some(Owed {
                    units,
                    preorder: row.get::<bool>(4)?.unwrap_or(false),
                }),
                None => None,
            }
        } else {
            None
        },
    }))
}

/// Lock every line's item in ascending id order and check that each exists
/// (for this tenant) and that available stock covers it. Nothing is written
/// but the gathering of striped items' stripes into their item rows; on
/// success the caller holds all the row locks and must respread the
/// striped items once done.
fn lock_lines(
    s: &Own,
    c: &mut SpiClient<'_>,
    who: &Caller,
    lines: &Lines<Uuid>,
) -> Result<LockedLines<Uuid>> {
    lock_lines_by(s, c, who, lines, &LOCK_MANY)?
        .ok_or_else(|| Error::Internal("LOCK_MANY has no guard".into()))
}

impl Own {
    /// lock_lines for a cart whose items have no stock at other locations
    /// and are no kits (LOCK_MANY_PLAIN): None, with nothing locked, when
    /// one of them does, or when none of the items is found (the full path
    /// then says which).
    pub fn lock_lines_plain(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        lines: &Lines<Uuid>,
    ) -> Result<Option<LockedLines<Uuid>>> {
        lock_lines_by(self, c, who, lines, &LOCK_MANY_PLAIN)
    }
}

/// Lock the lines' rows with `first` (LOCK_MANY or its guarded twin: None
/// when it returns nothing), gather striped rows' stripes and read them
/// again, refuse missing and short lines.
fn lock_lines_by(
    s: &Own,
    c: &mut SpiClient<'_>,
    who: &Caller,
    lines: &Lines<Uuid>,
    first: &Stmt,
) -> Result<Option<LockedLines<Uuid>>> {
    struct Row {
        id: Uuid,
        available: String,
        requested: String,
        covered: bool,
        striped: bool,
        line: LockedLine,
    }
    let read = |c: &mut SpiClient<'_>, stmt: &Stmt| -> Result<Vec<Row>> {
        let args = [
            lines.keys.clone().into(),
            lines.qtys.clone().into(),
            who.admin.into(),
            who.tenant.clone().into(),
        ];
        let mut rows = Vec::with_capacity(lines.keys.len());
        for row in run(c, stmt, &args)? {
            rows.push(Row {
                id: row
                    .get::<Uuid>(1)?
                    .ok_or_else(|| Error::Internal("a locked item row without an id".into()))?,
                available: row.get::<String>(2)?.unwrap_or_default(),
                requested: row.get::<String>(3)?.unwrap_or_default(),
                covered: row.get::<bool>(4)?.unwrap_or(false),
                striped: row.get::<bool>(5)?.unwrap_or(false),
                line: LockedLine {
                    tenant: row.get::<String>(6)?,
                    quantity: row.get::<String>(7)?.unwrap_or_default(),
                    tracked: row.get::<bool>(8)?.unwrap_or(true),
                },
            });
        }
        Ok(rows)
    };
    let mut locked = read(c, first)?;
    if locked.is_empty() && first.name != LOCK_MANY.name {
        return Ok(None);
    }
    // rows come in id order, one per item: so do these
    let striped: Vec<Uuid> = locked.iter().filter(|r| r.striped).map(|r| r.id).collect();
    if !striped.is_empty() {
        // The rows are ours now; bring the stripes in and read the totals again.
        stripes::gather(c, &striped)?;
        // (unguarded: the rows are ours, whatever changed elsewhere since)
        locked = read(c, &LOCK_MANY)?;
    }
    crate::ops::stock::require_found(s, &lines.keys, |k| locked.iter().any(|r| r.id == *k))?;
    let short: Vec<Shortfall> = locked
        .iter()
        .filter(|r| !r.covered)
        .map(|r| Shortfall {
            inventory_id: validate::uuid_text(&r.id),
            available: r.available.clone(),
            requested: r.requested.clone(),
        })
        .collect();
    if !short.is_empty() {
        return Err(Error::Insufficient { lines: short });
    }
    let rows: BTreeMap<Uuid, LockedLine> = locked.into_iter().map(|r| (r.id, r.line)).collect();
    Ok(Some(LockedLines { rows, striped }))
}
