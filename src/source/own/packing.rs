//! The extension's own packing tables (`picking_sessions`,
//! `packing_progress`, `orders`, `picking_session_items`) as a packing
//! source: the rows ops/packing.rs locks and the write it makes.

use super::Own;
use crate::core::caller::Caller;
use crate::error::{Error, Result};
use crate::pg::spi::{run, Stmt};
use crate::source::{OrderState, PackLine, PackOrder, PackingSource};
use pgrx::pg_sys::{self, Oid};
use pgrx::spi::{SpiClient, SpiTupleTable};
use pgrx::Uuid;

const UUID: Oid = pg_sys::UUIDOID;
const TEXT: Oid = pg_sys::TEXTOID;
const BOOL: Oid = pg_sys::BOOLOID;
const INT: Oid = pg_sys::INT4OID;

const LOCK_SESSION: Stmt = Stmt {
    name: "packing_lock_session",
    sql: "SELECT s.status FROM atomic_inventory.picking_sessions AS s \
           WHERE s.id = $1 AND (s.tenant_id IS NULL OR $2 OR s.tenant_id = $3) \
             FOR NO KEY UPDATE",
    args: &[UUID, BOOL, TEXT],
};

/// The progress line, locked only if it is this session's: another
/// session's line (perhaps another tenant's) is never locked by us.
const LOCK_PROGRESS: Stmt = Stmt {
    name: "packing_lock_progress",
    sql: "SELECT p.order_id, p.product_id, p.quantity_needed, p.quantity_packed \
            FROM atomic_inventory.packing_progress AS p \
           WHERE p.id = $1 AND p.picking_session_id = $2 \
             FOR UPDATE",
    args: &[UUID, UUID],
};

/// A line that is not this session's: does it exist in a session the
/// caller may see (then it is the packing RPC's cross-session attempt,
/// PROGRESS_SESSION_MISMATCH), or not at all for this caller (NOT_FOUND, as
/// other tenants' rows always answer)? Read without a lock.
const PROGRESS_ELSEWHERE: Stmt = Stmt {
    name: "packing_progress_elsewhere",
    sql: "SELECT 1 FROM atomic_inventory.packing_progress AS p \
            JOIN atomic_inventory.picking_sessions AS s ON s.id = p.picking_session_id \
           WHERE p.id = $1 AND (s.tenant_id IS NULL OR $2 OR s.tenant_id = $3)",
    args: &[UUID, BOOL, TEXT],
};

/// The order (locked against status changes) and the basket totals. The
/// basket sum is stable because we hold the session lock.
const ORDER_AND_BASKET: Stmt = Stmt {
    name: "packing_order_and_basket",
    sql: "SELECT o.status, COALESCE(o.order_number, o.id::text), \
                 COALESCE((SELECT b.quantity_picked FROM atomic_inventory.picking_session_items AS b \
                            WHERE b.picking_session_id = $2 AND b.product_id = $3), 0)::int8, \
                 (SELECT COALESCE(pg_catalog.sum(x.quantity_packed), 0)::int8 \
                    FROM atomic_inventory.packing_progress AS x \
                   WHERE x.picking_session_id = $2 AND x.product_id = $3) \
            FROM atomic_inventory.orders AS o \
           WHERE o.id = $1 \
             FOR SHARE OF o",
    args: &[UUID, UUID, UUID],
};

/// LOCK_PROGRESS and ORDER_AND_BASKET in one statement: the line (this
/// session's) locked by the CTE, which the join must read before it can
/// return the order row it share-locks, so the line is always locked
/// first, as ops/packing.rs orders them. The line's own packed units come
/// from its locked version, the other lines' from the statement's snapshot
/// (taken under the session's lock, which every packer of the session holds).
const LINE_AND_ORDER: Stmt = Stmt {
    name: "packing_line_and_order",
    sql: "WITH p AS MATERIALIZED ( \
            SELECT p.id, p.order_id, p.product_id, p.quantity_needed, p.quantity_packed \
              FROM atomic_inventory.packing_progress AS p \
             WHERE p.id = $1 AND p.picking_session_id = $2 \
               FOR UPDATE \
          ) \
          SELECT p.order_id, p.product_id, p.quantity_needed, p.quantity_packed, \
                 o.status, COALESCE(o.order_number, o.id::text), \
                 COALESCE((SELECT b.quantity_picked FROM atomic_inventory.picking_session_items AS b \
                            WHERE b.picking_session_id = $2 AND b.product_id = p.product_id), 0)::int8, \
                 p.quantity_packed + (SELECT COALESCE(pg_catalog.sum(x.quantity_packed), 0)::int8 \
                    FROM atomic_inventory.packing_progress AS x \
                   WHERE x.picking_session_id = $2 AND x.product_id = p.product_id AND x.id <> p.id) \
            FROM p JOIN atomic_inventory.orders AS o ON o.id = p.order_id \
             FOR SHARE OF o",
    args: &[UUID, UUID],
};

const APPLY: Stmt = Stmt {
    name: "packing_apply",
    sql: "WITH s AS ( \
            UPDATE atomic_inventory.picking_sessions \
               SET last_activity_at = pg_catalog.now() WHERE id = $3 \
          ) \
          UPDATE atomic_inventory.packing_progress AS p \
             SET quantity_packed = p.quantity_packed + $2, updated_at = pg_catalog.now() \
           WHERE p.id = $1 \
          RETURNING pg_catalog.json_build_object('success', true, 'id', p.id, \
                      'picking_session_id', p.picking_session_id, 'order_id', p.order_id, \
                      'product_id', p.product_id, 'quantity_needed', p.quantity_needed, \
                      'quantity_packed', p.quantity_packed, \
                      'remaining', p.quantity_needed - p.quantity_packed, \
                      'updated_at', p.updated_at)::text",
    args: &[UUID, INT, UUID],
};

/// Orders that left the warehouse workflow, and those that won't ship.
const COMPLETED: [&str; 3] = ["ready_to_ship", "shipped", "delivered"];
const CLOSED: [&str; 3] = ["cancelled", "rejected", "returned"];

impl PackingSource for Own {
    type Key = Uuid;

    fn lock_session(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        session: &Uuid,
    ) -> Result<Option<String>> {
        let s = run(
            c,
            &LOCK_SESSION,
            &[
                (*session).into(),
                who.admin.into(),
                who.tenant.clone().into(),
            ],
        )?;
        if s.is_empty() {
            return Ok(None);
        }
        Ok(Some(s.first().get::<String>(1)?.unwrap_or_default()))
    }

    fn is_packing(&self, status: &str) -> bool {
        status == "packing"
    }

    fn lock_line(
        &self,
        c: &mut SpiClient<'_>,
        line: &Uuid,
        session: &Uuid,
    ) -> Result<Option<PackLine<Uuid>>> {
        let p = run(c, &LOCK_PROGRESS, &[(*line).into(), (*session).into()])?;
        if p.is_empty() {
            return Ok(None);
        }
        Ok(Some(line_at(&p.first())?))
    }

    fn line_elsewhere(&self, c: &mut SpiClient<'_>, who: &Caller, line: &Uuid) -> Result<bool> {
        Ok(!run(
            c,
            &PROGRESS_ELSEWHERE,
            &[(*line).into(), who.admin.into(), who.tenant.clone().into()],
        )?
        .is_empty())
    }

    fn lock_order(
        &self,
        c: &mut SpiClient<'_>,
        order: Option<&Uuid>,
        session: &Uuid,
        product: &Uuid,
    ) -> Result<Option<PackOrder>> {
        let o = run(
            c,
            &ORDER_AND_BASKET,
            &[order.copied().into(), (*session).into(), (*product).into()],
        )?;
        if o.is_empty() {
            return Ok(None);
        }
        let row = o.first();
        Ok(Some(PackOrder::from_row(&row, 1, state_of)?))
    }

    fn lock_line_and_order(
        &self,
        c: &mut SpiClient<'_>,
        line: &Uuid,
        session: &Uuid,
    ) -> Result<Option<(PackLine<Uuid>, PackOrder)>> {
        let t = run(c, &LINE_AND_ORDER, &[(*line).into(), (*session).into()])?;
        if t.is_empty() {
            return Ok(None);
        }
        let row = t.first();
        Ok(Some((
            line_at(&row)?,
            PackOrder::from_row(&row, 5, state_of)?,
        )))
    }

    fn pack(
        &self,
        c: &mut SpiClient<'_>,
        line: &Uuid,
        delta: i32,
        session: &Uuid,
    ) -> Result<String> {
        let done = run(
            c,
            &APPLY,
            &[(*line).into(), delta.into(), (*session).into()],
        )?;
        if done.is_empty() {
            // the line is ours (locked) and checked: the table's own
            // trigger or rule skipped the write
            return Err(Error::invalid_input(
                "p_progress_id",
                format!(
                    "a trigger or rule on atomic_inventory.packing_progress skipped the write of line {line}; nothing changed"
                ),
            ));
        }
        Ok(done.first().get::<String>(1)?.unwrap_or_default())
    }
}

/// A line from columns 1-4 of a row (order, product, needed, packed).
fn line_at(row: &SpiTupleTable<'_>) -> Result<PackLine<Uuid>> {
    Ok(PackLine {
        order: row.get::<Uuid>(1)?,
        product: row.get::<Uuid>(2)?,
        needed: row.get::<i32>(3)?.unwrap_or(0).into(),
        packed: row.get::<i32>(4)?.unwrap_or(0).into(),
    })
}

/// Where an order with `status` is in the workflow.
fn state_of(status: &str) -> OrderState {
    if COMPLETED.contains(&status) {
        OrderState::Completed
    } else if CLOSED.contains(&status) {
        OrderState::Closed
    } else {
        OrderState::Open
    }
}
