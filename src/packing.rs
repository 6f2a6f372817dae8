//! Warehouse packing (the packing RPC of docs/background.md): move picked units from a session's
//! basket into orders, one RPC per click, with all nine of its validations.
//!
//! Concurrency: the basket limit spans rows (all progress lines of a product
//! in a session), so row locks on the line alone can't protect it; two
//! workers packing the last unit into two different orders would both pass.
//! Every pack/unpack therefore locks, in this fixed order:
//!   1. the session row (FOR NO KEY UPDATE): serializes all packing of one
//!      session, which makes the basket sum stable, and lets us update
//!      last_activity_at without a lock upgrade (a shared lock upgraded by two
//!      packers would deadlock);
//!   2. the progress row (FOR UPDATE);
//!   3. the order row (FOR SHARE): its status can't change under us.
//!
//! Every path takes them in this order, so packing calls can't deadlock with
//! each other. Sessions don't block each other.
//!
//! `p_quantity_needed` and `p_picked_quantity` are accepted for the packing RPC's
//! signature, but the tables are the truth: a client's stale numbers can't
//! let it over-pack.

use crate::core::caller::Caller;
use crate::error::{Error, Result};
use crate::pg::fmgr::{entry_point, Args};
use crate::pg::spi::{run, with_spi, Stmt};
use pgrx::pg_sys::{self, Oid};
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
                            WHERE b.picking_session_id = $2 AND b.product_id = $3), 0), \
                 (SELECT COALESCE(pg_catalog.sum(x.quantity_packed), 0)::int8 \
                    FROM atomic_inventory.packing_progress AS x \
                   WHERE x.picking_session_id = $2 AND x.product_id = $3) \
            FROM atomic_inventory.orders AS o \
           WHERE o.id = $1 \
             FOR SHARE OF o",
    args: &[UUID, UUID, UUID],
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

const COMPLETED: [&str; 3] = ["ready_to_ship", "shipped", "delivered"];
const CLOSED: [&str; 3] = ["cancelled", "rejected", "returned"];

/// Pack (`delta` > 0) or unpack (`delta` < 0) units on one progress line.
fn change(
    session_id: Uuid,
    progress_id: Uuid,
    product_id: Option<Uuid>,
    delta: i32,
    lock_ms: Option<i32>,
) -> Result<String> {
    let caller = Caller::current()?;
    with_spi(lock_ms, |c| {
        // 1. session
        let s = run(
            c,
            &LOCK_SESSION,
            &[
                session_id.into(),
                caller.admin.into(),
                caller.tenant.clone().into(),
            ],
        )?;
        if s.is_empty() {
            return Err(Error::SessionNotFound {
                session_id: session_id.to_string(),
            });
        }
        let status = s.first().get::<String>(1)?.unwrap_or_default();
        if status != "packing" {
            return Err(Error::SessionNotPacking {
                session_id: session_id.to_string(),
                status,
            });
        }
        // 2. progress line
        let p = run(c, &LOCK_PROGRESS, &[progress_id.into(), session_id.into()])?;
        let mismatch = || Error::ProgressSessionMismatch {
            progress_id: progress_id.to_string(),
            session_id: session_id.to_string(),
        };
        if p.is_empty() {
            let elsewhere = run(
                c,
                &PROGRESS_ELSEWHERE,
                &[
                    progress_id.into(),
                    caller.admin.into(),
                    caller.tenant.clone().into(),
                ],
            )?;
            // another session's record (the packing RPC's cross-session attack)
            return Err(if elsewhere.is_empty() {
                Error::ProgressNotFound {
                    progress_id: progress_id.to_string(),
                }
            } else {
                mismatch()
            });
        }
        let row = p.first();
        let line_product = row.get::<Uuid>(2)?;
        if product_id.is_some() && product_id != line_product {
            // a product that isn't this line's
            return Err(mismatch());
        }
        let order_id = row.get::<Uuid>(1)?;
        let product =
            line_product.ok_or_else(|| Error::Internal("progress without product".into()))?;
        let needed = row.get::<i32>(3)?.unwrap_or(0);
        let packed = row.get::<i32>(4)?.unwrap_or(0);
        // 3. order and basket
        let o = run(
            c,
            &ORDER_AND_BASKET,
            &[order_id.into(), session_id.into(), product.into()],
        )?;
        if o.is_empty() {
            return Err(Error::OrderNotFound {
                order_id: order_id.map(|u| u.to_string()).unwrap_or_default(),
            });
        }
        let row = o.first();
        let order_status = row.get::<String>(1)?.unwrap_or_default();
        let order_number = row.get::<String>(2)?.unwrap_or_default();
        let picked = row.get::<i32>(3)?.unwrap_or(0);
        let packed_total = row.get::<i64>(4)?.unwrap_or(0);
        if COMPLETED.contains(&order_status.as_str()) {
            return Err(Error::OrderCompleted {
                order_number,
                status: order_status,
            });
        }
        if CLOSED.contains(&order_status.as_str()) {
            return Err(Error::OrderClosed {
                order_number,
                status: order_status,
            });
        }
        if delta > 0 {
            // i64: both are integer columns, and their sum may not fit i32
            if i64::from(packed) + i64::from(delta) > i64::from(needed) {
                return Err(Error::AlreadyFullyPacked {
                    progress_id: progress_id.to_string(),
                    needed,
                    packed,
                    requested: delta,
                });
            }
            if packed_total + i64::from(delta) > i64::from(picked) {
                return Err(Error::BasketExhausted {
                    product_id: product.to_string(),
                    picked,
                    packed_total,
                    requested: delta,
                });
            }
        } else if i64::from(packed) + i64::from(delta) < 0 {
            return Err(Error::NothingToUnpack {
                progress_id: progress_id.to_string(),
                packed,
                requested: -delta,
            });
        }
        let done = run(
            c,
            &APPLY,
            &[progress_id.into(), delta.into(), session_id.into()],
        )?;
        Ok(done.first().get::<String>(1)?.unwrap_or_default())
    })
}

/// Units per call: 1..=10000.
fn units(args: &Args, n: usize) -> Result<i32> {
    match args.int(n) {
        None => Ok(1),
        Some(q) if (1..=10_000).contains(&q) => Ok(q),
        Some(q) => Err(Error::invalid_quantity(
            "p_quantity",
            "must be between 1 and 10000",
            Some(q.to_string()),
        )),
    }
}

/// increment_packing_quantity(p_progress_id, p_quantity_needed, p_picked_quantity,
///                            p_session_id, p_product_id, p_quantity, p_lock_timeout_ms)
fn increment(args: &Args) -> Result<String> {
    let progress_id = args.uuid(0, "p_progress_id")?;
    // args 1 and 2 (p_quantity_needed, p_picked_quantity) are advisory: the
    // tables decide.
    let session_id = args.uuid(3, "p_session_id")?;
    let product_id = args.get_uuid(4);
    let n = units(args, 5)?;
    let lock_ms = args.lock_timeout_ms(6)?;
    change(session_id, progress_id, product_id, n, lock_ms)
}

/// decrement_packing_quantity(p_progress_id, p_session_id, p_quantity, p_lock_timeout_ms)
fn decrement(args: &Args) -> Result<String> {
    let progress_id = args.uuid(0, "p_progress_id")?;
    let session_id = args.uuid(1, "p_session_id")?;
    let n = units(args, 2)?;
    let lock_ms = args.lock_timeout_ms(3)?;
    change(session_id, progress_id, None, -n, lock_ms)
}

entry_point!(
    ai_increment_packing_quantity,
    pg_finfo_ai_increment_packing_quantity,
    increment
);
entry_point!(
    ai_decrement_packing_quantity,
    pg_finfo_ai_decrement_packing_quantity,
    decrement
);
