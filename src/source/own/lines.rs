//! The own items' sale of many lines (`decrement_inventory_many`), all or
//! nothing (checkout, POS basket). Lines arrive merged per item and sorted
//! by id, so two orders naming the same items in opposite order queue up
//! instead of deadlocking.
//!
//! One UPDATE (SELL_LINES) takes every line it can, locking its rows in id
//! order, and locks striped items' rows on the way. What it leaves is
//! settled afterwards without ever waiting for a row out of that order
//! (finish): an error for a missing or short line (the error rolls back the
//! lines already taken, so nothing needs undoing by hand), the answer for an
//! untracked one, the gathered stripes for a striped one (its row is already
//! ours). No subtransaction: measured, one costs 15-25% of the throughput of
//! 5-line orders on hot rows at 32-64 clients (docs/benchmarks.md), since
//! its commit wakes every waiter on our rows, which then queue again on the
//! top-level transaction.

use super::{stripes, Own};
use crate::core::caller::Caller;
use crate::core::movement::{Movement, Owed, Sold};
use crate::core::validate;
use crate::error::{Error, Result, Shortfall};
use crate::ops::stock::require_found;
use crate::pg::spi::{self, run, Stmt};
use crate::source::{Lines, StockSource};
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::{self, Oid};
use pgrx::spi::SpiClient;
use pgrx::{AnyNumeric, Uuid};

const TEXT: Oid = pg_sys::TEXTOID;
const BOOL: Oid = pg_sys::BOOLOID;
const UUIDS: Oid = pg_sys::UUIDARRAYOID;
const NUMS: Oid = pg_sys::NUMERICARRAYOID;
const TIDARRAY: Oid = pg_sys::TIDARRAYOID;

/// The one UPDATE of the sale statements, with what it returns: one text
/// for all, so the check that keeps a sale from overselling cannot drift
/// between the ledgered and the bare statement, guarded or not.
///
/// `plain` adds the guard of an order's first statement (PLAIN_ORDER): none
/// of the order's items has stock at other locations or is a kit. Both
/// subqueries are uncorrelated, so PostgreSQL checks them once, before the
/// UPDATE reads a row (a one-time filter over an InitPlan): when either
/// finds something, the statement touches nothing and the order takes its
/// full path (ops/kits.rs). This spares every plain order the separate
/// statement that asked the same question (measured: docs/benchmarks.md).
macro_rules! sell_update {
    (all, $returning:literal) => {
        sell_update!(@ "", $returning)
    };
    (plain, $returning:literal) => {
        sell_update!(@
            " AND NOT EXISTS (SELECT FROM atomic_inventory.stock_levels AS l WHERE l.item_id = ANY ($1)) \
              AND NOT EXISTS (SELECT FROM atomic_inventory.kit_components AS k WHERE k.kit_id = ANY ($1))",
            $returning)
    };
    (@ $guard:literal, $returning:literal) => {
        concat!(
            "UPDATE atomic_inventory.items AS i \
                SET quantity = CASE WHEN i.stripes = 0 THEN i.quantity - r.qty ELSE i.quantity END, \
                    updated_at = CASE WHEN i.stripes = 0 THEN pg_catalog.now() ELSE i.updated_at END \
               FROM ROWS FROM (pg_catalog.unnest($1::uuid[]), pg_catalog.unnest($2::numeric[])) AS r(id, qty) \
              WHERE i.id = ANY (ARRAY[r.id]) \
                AND i.track_inventory \
                AND (i.tenant_id IS NULL OR $3 OR i.tenant_id = $4) \
                AND (i.stripes > 0 OR i.quantity - i.reserved - i.unsellable + i.backorder_limit >= r.qty) \
                AND (i.preorder_until IS NULL OR i.preorder_until > pg_catalog.now() OR i.quantity - i.reserved - i.unsellable >= r.qty)",
            $guard,
            " RETURNING ",
            $returning
        )
    };
}

/// What the bare statements return per row.
macro_rules! bare_returning {
    ($kind:ident) => {
        sell_update!(
            $kind,
            "i.id, i.stripes = 0, (i.quantity + r.qty)::text, i.quantity::text, \
             CASE WHEN i.stripes = 0 AND i.quantity < i.reserved + i.unsellable \
                  THEN LEAST(r.qty, i.reserved + i.unsellable - i.quantity)::text END, \
             i.preorder_until IS NOT NULL"
        )
    };
}

/// Every line in one statement (ledger off): each named row that tracks
/// stock is decremented if it covers its line, and locked either way if it
/// is striped (written unchanged: its stock is settled after the statement,
/// from its stripes). Short rows and untracked rows are left alone and
/// unlocked. Lines arrive merged per item and sorted by id. Returns per row
/// touched, in the order it was updated: id, whether the line was taken,
/// old and new quantity (meaningful if taken), the units of the line that
/// went past the stock on hand (backorders; NULL for none), and whether the
/// item is on preorder (those units answer as preordered). The room past
/// the stock is the same as the single sale's (stock.rs: backorder_limit,
/// for a preorder only before its release date).
///
/// Why this is safe:
/// - The availability check is in the UPDATE's WHERE clause, so a row changed
///   by a concurrent caller is re-checked on its newest version after they
///   commit (EvalPlanQual re-evaluates WHERE and SET, the stripes test
///   included): no oversell.
/// - Rows are locked as the UPDATE reaches them, in the order of its join,
///   which must be the index nested loop driven by the sorted line array.
///   The join condition is written `i.id = ANY (ARRAY[r.id])`, which no hash
///   or merge join can use, so only a nested loop is possible; the
///   function's `SET enable_seqscan = off` (sql/functions.sql) keeps a
///   sequential scan of a small items table from driving it (planner
///   choices measured in the #[pg_test] many_one_statement_plan_...).
/// - Whatever it did not take is settled by `finish` without waiting for a
///   row out of id order.
///
/// Measured: one statement instead of lock + update runs a 5-line sale
/// about 20% faster (docs/benchmarks.md), the lock's WAL record per row and
/// one statement's executor start fewer.
pub(crate) const SELL_LINES_BARE: Stmt = Stmt {
    name: "sell_lines_bare",
    sql: bare_returning!(all),
    args: &[UUIDS, NUMS, BOOL, TEXT],
};

/// SELL_LINES_BARE guarded as an order's first statement (sell_update!).
pub(crate) const SELL_PLAIN_BARE: Stmt = Stmt {
    name: "sell_plain_bare",
    sql: bare_returning!(plain),
    args: &[UUIDS, NUMS, BOOL, TEXT],
};

/// SELL_LINES_BARE with a ledger row per line taken ($5-$7: reason,
/// reference, key). The CTE's rows are read back in the order the UPDATE
/// produced them.
/// The ledgered statement around sell_update! `$kind` (all or plain).
macro_rules! ledgered {
    ($kind:ident) => {
        concat!(
            "WITH upd AS (",
            sell_update!(
                $kind,
                "i.id, i.stripes = 0 AS taken, i.quantity, r.qty, i.tenant_id, \
                 i.reserved + i.unsellable AS held, i.preorder_until IS NOT NULL AS pre"
            ),
            "), led AS ( \
                INSERT INTO atomic_inventory.ledger \
                  (inventory_id, delta, quantity_after, kind, reason, reference, idempotency_key, tenant_id) \
                SELECT u.id, -u.qty, u.quantity, 'decrement', $5, $6, $7, u.tenant_id FROM upd AS u WHERE u.taken \
              ) \
              SELECT u.id, u.taken, (u.quantity + u.qty)::text, u.quantity::text, \
                     CASE WHEN u.taken AND u.quantity < u.held \
                          THEN LEAST(u.qty, u.held - u.quantity)::text END, u.pre \
                FROM upd AS u"
        )
    };
}

const SELL_LINES: Stmt = Stmt {
    name: "sell_lines",
    sql: ledgered!(all),
    args: &[UUIDS, NUMS, BOOL, TEXT, TEXT, TEXT, TEXT],
};

/// SELL_LINES guarded as an order's first statement (sell_update!).
const SELL_PLAIN: Stmt = Stmt {
    name: "sell_plain",
    sql: ledgered!(plain),
    args: &[UUIDS, NUMS, BOOL, TEXT, TEXT, TEXT, TEXT],
};

/// The lines SELL_LINES did not touch, read without a lock (a lock here
/// would be taken out of id order while we hold rows): found? tracked?
/// striped? covered? available, quantity.
const LEFT_LINES: Stmt = Stmt {
    name: "left_lines",
    sql: "SELECT i.id, i.track_inventory, i.stripes > 0, \
                 (i.quantity - i.reserved - i.unsellable + i.backorder_limit >= r.qty \
                  AND (i.preorder_until IS NULL OR i.preorder_until > pg_catalog.now() OR i.quantity - i.reserved - i.unsellable >= r.qty)), \
                 (i.quantity - i.reserved - i.unsellable)::text, i.quantity::text \
            FROM ROWS FROM (pg_catalog.unnest($1::uuid[]), pg_catalog.unnest($2::numeric[])) AS r(id, qty) \
            JOIN atomic_inventory.items AS i ON i.id = r.id \
           WHERE (i.tenant_id IS NULL OR $3 OR i.tenant_id = $4)",
    args: &[UUIDS, NUMS, BOOL, TEXT],
};

/// Lock the rows that are free right now, skip the others: meant never to
/// wait, so it may run while we hold rows of higher ids (run through
/// spi::without_waiting, since PostgreSQL may still wait in one case).
const LOCK_IF_FREE: Stmt = Stmt {
    name: "lock_if_free",
    sql: "SELECT i.id FROM atomic_inventory.items AS i \
           WHERE i.id = ANY ($1) AND (i.tenant_id IS NULL OR $2 OR i.tenant_id = $3) \
           ORDER BY i.id \
             FOR NO KEY UPDATE SKIP LOCKED",
    args: &[UUIDS, BOOL, TEXT],
};

/// Striped lines, whose item rows SELL_LINES locked and left unchanged,
/// after their stripes were gathered into those rows: read each again (found?
/// short? tracked? striped? ctid). The rows are ours already, so the lock
/// never waits; APPLY_LINES_FAST then updates them and writes the ledger.
/// Lines arrive merged per item and sorted by id, so neither statement
/// groups.
///
/// A second statement, not a CTE under the UPDATE: within one statement the
/// UPDATE works from the statement's snapshot and may meet a row version
/// newer than the one a locking CTE reported (the stress test caught such a
/// version overselling under concurrent reservations, 0.2.0). A second
/// statement takes a new snapshot after the locks are held, so what it reads
/// is what was checked.
const LOCK_LINES_FAST: Stmt = Stmt {
    name: "lock_lines_fast",
    sql: "SELECT i.id, \
                 CASE WHEN i.track_inventory \
                       AND NOT (i.quantity - i.reserved - i.unsellable + i.backorder_limit >= r.qty \
                                AND (i.preorder_until IS NULL OR i.preorder_until > pg_catalog.now() OR i.quantity - i.reserved - i.unsellable >= r.qty)) \
                      THEN (i.quantity - i.reserved - i.unsellable)::text END, \
                 i.quantity::text, i.track_inventory, i.stripes > 0, i.ctid \
            FROM ROWS FROM (pg_catalog.unnest($1::uuid[]), pg_catalog.unnest($2::numeric[])) AS r(id, qty) \
            JOIN atomic_inventory.items AS i ON i.id = r.id \
           WHERE (i.tenant_id IS NULL OR $3 OR i.tenant_id = $4) \
           ORDER BY i.id \
             FOR NO KEY UPDATE OF i",
    args: &[UUIDS, NUMS, BOOL, TEXT],
};

/// Apply lines whose rows LOCK_LINES_FAST holds and found covered: $1/$2
/// are the tracked lines' row versions (ctid) and quantities, $3-$5 the
/// ledger's reason, reference and key.
///
/// By ctid, not id: the rows are locked by this transaction since
/// LOCK_LINES_FAST, so the version it returned is the newest and stays put
/// until we update it; a TID scan fetches it without a second index descent
/// (measured: docs/benchmarks.md). This statement's snapshot is taken after
/// the locks were granted, so it sees those versions; if it ever did not,
/// apply_lines refuses with INTERNAL (nothing written).
///
/// Returns each updated row's new quantity; the answer's JSON is built in
/// Rust from these and the locked rows (measured: the aggregate, join and
/// json_build_object per line cost more than the rest of the statement;
/// docs/benchmarks.md).
const APPLY_LINES_FAST: Stmt = Stmt {
    name: "apply_lines_fast",
    sql: "WITH upd AS ( \
            UPDATE atomic_inventory.items AS i \
               SET quantity = i.quantity - r.qty, updated_at = pg_catalog.now() \
              FROM ROWS FROM (pg_catalog.unnest($1::tid[]), pg_catalog.unnest($2::numeric[])) AS r(t, qty) \
             WHERE i.ctid = r.t \
            RETURNING i.id, i.quantity, r.qty, i.tenant_id \
          ), led AS ( \
            INSERT INTO atomic_inventory.ledger \
              (inventory_id, delta, quantity_after, kind, reason, reference, idempotency_key, tenant_id) \
            SELECT u.id, -u.qty, u.quantity, 'decrement', $3, $4, $5, u.tenant_id FROM upd AS u \
          ) \
          SELECT u.id, u.quantity::text FROM upd AS u",
    args: &[TIDARRAY, pg_sys::NUMERICARRAYOID, TEXT, TEXT, TEXT],
};

/// APPLY_LINES_FAST with the ledger off: the bare UPDATE (no CTE, no ledger
/// table opened with its indexes).
const APPLY_LINES_BARE: Stmt = Stmt {
    name: "apply_lines_bare",
    sql: "UPDATE atomic_inventory.items AS i \
             SET quantity = i.quantity - r.qty, updated_at = pg_catalog.now() \
            FROM ROWS FROM (pg_catalog.unnest($1::tid[]), pg_catalog.unnest($2::numeric[])) AS r(t, qty) \
           WHERE i.ctid = r.t \
          RETURNING i.id, i.quantity::text",
    args: &[TIDARRAY, pg_sys::NUMERICARRAYOID],
};

/// NOT_FOUND for the ids not among `found` (every missing one, sorted),
/// else INSUFFICIENT_INVENTORY for the `short` lines; Ok when neither.
fn refuse(ids: &[Uuid], found: &[Uuid], short: Vec<Shortfall>) -> Result<()> {
    require_found(&Own, ids, |k| found.contains(k))?;
    if !short.is_empty() {
        return Err(Error::Insufficient { lines: short });
    }
    Ok(())
}

/// Sell every line or none: SELL_LINES, then what it left (`finish`).
pub fn sell(
    c: &mut SpiClient<'_>,
    who: &Caller,
    lines: &Lines<Uuid>,
    mv: &Movement,
) -> Result<Vec<Sold<Uuid>>> {
    let (ids, qtys) = (&lines.keys, &lines.qtys);
    let (mut sold, striped) = sell_once(c, who, ids, qtys, mv, false)?;
    if sold.len() < ids.len() {
        // Some line missing, short, untracked or striped.
        finish(c, who, ids, qtys, mv, &mut sold, striped)?;
    }
    Ok(sold)
}

/// An order's first statement, for lines that name no location: sell them
/// as `sell` does if none of their items has stock at other locations or
/// is a kit (the guard of sell_update!, checked before any row is read).
/// None when the statement touched no row: such an item is among them, or
/// no line could be taken; the caller then takes the order's full path,
/// which asks what the items are and refuses what must be refused (one
/// statement more, on that path only).
pub fn sell_plain(
    c: &mut SpiClient<'_>,
    who: &Caller,
    lines: &Lines<Uuid>,
    mv: &Movement,
) -> Result<Option<Vec<Sold<Uuid>>>> {
    let (ids, qtys) = (&lines.keys, &lines.qtys);
    let (mut sold, striped) = sell_once(c, who, ids, qtys, mv, true)?;
    if sold.is_empty() && striped.is_empty() {
        return Ok(None);
    }
    if sold.len() < ids.len() {
        finish(c, who, ids, qtys, mv, &mut sold, striped)?;
    }
    Ok(Some(sold))
}

/// The quantity of the line for `id` among merged, sorted lines.
fn qty_of<'a>(ids: &[Uuid], qtys: &'a [AnyNumeric], id: &Uuid) -> Result<&'a AnyNumeric> {
    ids.binary_search_by(|m| m.as_bytes().cmp(id.as_bytes()))
        .map(|at| &qtys[at])
        .map_err(|_| Error::Internal(format!("item {id} is not among the lines")))
}

/// The line for `id` is short: `available` units for it.
fn shortfall(ids: &[Uuid], qtys: &[AnyNumeric], id: &Uuid, available: String) -> Result<Shortfall> {
    Ok(Shortfall {
        inventory_id: validate::uuid_text(id),
        available,
        requested: qty_of(ids, qtys, id)?.to_string(),
    })
}

/// SELL_LINES(_BARE), or with `plain` their guarded twins, for merged,
/// sorted lines: the lines it took, and the
/// striped items whose rows it locked without taking their lines.
fn sell_once(
    c: &mut SpiClient<'_>,
    caller: &Caller,
    ids: &[Uuid],
    qtys: &[AnyNumeric],
    mv: &Movement,
    plain: bool,
) -> Result<(Vec<Sold<Uuid>>, Vec<Uuid>)> {
    let mut params: Vec<DatumWithOid<'static>> = vec![
        ids.to_vec().into(),
        qtys.to_vec().into(),
        caller.admin.into(),
        caller.tenant.clone().into(),
    ];
    let stmt = if mv.ledger {
        params.extend([
            mv.reason.clone().into(),
            mv.reference.clone().into(),
            mv.key.clone().into(),
        ]);
        if plain {
            &SELL_PLAIN
        } else {
            &SELL_LINES
        }
    } else if plain {
        &SELL_PLAIN_BARE
    } else {
        &SELL_LINES_BARE
    };
    let mut sold = Vec::with_capacity(ids.len());
    let mut striped = Vec::new();
    let mut last: Option<Uuid> = None;
    for row in run(c, stmt, &params)? {
        let id = row
            .get::<Uuid>(1)?
            .ok_or_else(|| Error::Internal("an updated item row without an id".into()))?;
        if last.is_some_and(|l| l.as_bytes() >= id.as_bytes()) {
            // RETURNING order is the order rows were updated and locked: not
            // the plan the function's settings ask for (see SELL_LINES_BARE).
            // The rows are right; only the lock order was not.
            pgrx::debug1!("atomic_inventory: sell_lines updated rows out of id order");
        }
        last = Some(id);
        if row.get::<bool>(2)?.unwrap_or(false) {
            sold.push(Sold {
                key: id,
                old: row.get::<String>(3)?.unwrap_or_default(),
                new: row.get::<String>(4)?.unwrap_or_default(),
                deducted: qty_of(ids, qtys, &id)?.to_string(),
                tracked: true,
                backordered: match row.get::<String>(5)? {
                    Some(units) => Some(Owed {
                        units,
                        preorder: row.get::<bool>(6)?.unwrap_or(false),
                    }),
                    None => None,
                },
            });
        } else {
            striped.push(id);
        }
    }
    Ok((sold, striped))
}

/// Settle the lines SELL_LINES did not take, holding the rows it took and
/// the striped rows it locked, without ever waiting for another row (that
/// wait would be out of id order: a deadlock with an order holding it and
/// waiting for one of ours). Missing items: NOT_FOUND, every one. Short
/// lines: INSUFFICIENT_INVENTORY, every one (striped items judged on their
/// gathered total). Either error rolls back what was taken. Untracked items:
/// answered, unchanged. Striped items: gathered into their (locked) rows,
/// sold from there, spread again.
fn finish(
    c: &mut SpiClient<'_>,
    caller: &Caller,
    ids: &[Uuid],
    qtys: &[AnyNumeric],
    mv: &Movement,
    sold: &mut Vec<Sold<Uuid>>,
    mut striped: Vec<Uuid>,
) -> Result<()> {
    let mut found: Vec<Uuid> = sold
        .iter()
        .map(|s| s.key)
        .chain(striped.iter().copied())
        .collect();
    let (left_ids, left_qtys): (Vec<Uuid>, Vec<AnyNumeric>) = ids
        .iter()
        .zip(qtys)
        .filter(|(id, _)| !found.contains(id))
        .map(|(id, q)| (*id, q.clone()))
        .unzip();
    let mut short: Vec<Shortfall> = Vec::new();
    // Lines the UPDATE left though they look sellable now: it read the row
    // before a restock committed (its snapshot), or the item changed mode
    // meanwhile.
    let mut changed: Vec<Uuid> = Vec::new();
    if !left_ids.is_empty() {
        let args = [
            left_ids.clone().into(),
            left_qtys.clone().into(),
            caller.admin.into(),
            caller.tenant.clone().into(),
        ];
        for row in run(c, &LEFT_LINES, &args)? {
            let id = row
                .get::<Uuid>(1)?
                .ok_or_else(|| Error::Internal("an item row without an id".into()))?;
            let tracked = row.get::<bool>(2)?.unwrap_or(true);
            let is_striped = row.get::<bool>(3)?.unwrap_or(false);
            let covered = row.get::<bool>(4)?.unwrap_or(false);
            let available = row.get::<String>(5)?.unwrap_or_default();
            let quantity = row.get::<String>(6)?.unwrap_or_default();
            found.push(id);
            if !tracked {
                // Untracked items (services, made-to-order) sell without
                // stock checks and their quantity is left alone.
                sold.push(Sold {
                    key: id,
                    old: quantity.clone(),
                    new: quantity,
                    deducted: "0".into(),
                    tracked: false,
                    backordered: None,
                });
            } else if covered || is_striped {
                changed.push(id);
            } else {
                short.push(shortfall(ids, qtys, &id, available)?);
            }
        }
    }
    // every missing item, before anything else is done
    refuse(ids, &found, Vec::new())?;
    if !changed.is_empty() && short.is_empty() {
        // Take those whose rows are free right now, by the same statement
        // (its new snapshot sees them as locked). A row someone else holds
        // cannot be waited for here (we may hold rows of higher ids): that
        // line is refused as busy, LOCK_TIMEOUT (retry), not as short, since
        // its stock covers it.
        // (spi::without_waiting: PostgreSQL can wait under SKIP LOCKED too;
        // if it does, every such line counts as busy.)
        let free: Vec<Uuid> = spi::without_waiting(c, |c| {
            let args = [
                changed.clone().into(),
                caller.admin.into(),
                caller.tenant.clone().into(),
            ];
            let mut free = Vec::with_capacity(changed.len());
            for row in run(c, &LOCK_IF_FREE, &args)? {
                free.extend(row.get::<Uuid>(1)?);
            }
            Ok(free)
        })?
        .unwrap_or_default();
        if !free.is_empty() {
            let fqtys = free
                .iter()
                .map(|id| qty_of(ids, qtys, id).cloned())
                .collect::<Result<Vec<_>>>()?;
            let (more, more_striped) = sell_once(c, caller, &free, &fqtys, mv, false)?;
            sold.extend(more);
            striped.extend(more_striped);
            // Rows we now hold that the statement still left: read again
            // (locked, so as they stay): short since we read them, or
            // covered, and then the table's own trigger or rule skipped
            // the write.
            let left: Vec<Uuid> = free
                .iter()
                .filter(|id| !sold.iter().any(|s| s.key == **id) && !striped.contains(id))
                .copied()
                .collect();
            if !left.is_empty() {
                let lqtys = left
                    .iter()
                    .map(|id| qty_of(ids, qtys, id).cloned())
                    .collect::<Result<Vec<_>>>()?;
                let args = [
                    left.clone().into(),
                    lqtys.into(),
                    caller.admin.into(),
                    caller.tenant.clone().into(),
                ];
                let mut skipped = Vec::new();
                for row in run(c, &LEFT_LINES, &args)? {
                    let id = row
                        .get::<Uuid>(1)?
                        .ok_or_else(|| Error::Internal("an item row without an id".into()))?;
                    if row.get::<bool>(4)?.unwrap_or(false) {
                        skipped.push(id);
                    } else {
                        let available = row.get::<String>(5)?.unwrap_or_default();
                        short.push(shortfall(ids, qtys, &id, available)?);
                    }
                }
                if !skipped.is_empty() {
                    return Err(Own.skipped(&skipped.iter().collect::<Vec<_>>()));
                }
            }
        }
        let busy: Vec<String> = changed
            .iter()
            .filter(|id| !free.contains(id))
            .filter(|id| !sold.iter().any(|s| s.key == **id) && !striped.contains(id))
            .map(|id| id.to_string())
            .collect();
        if !busy.is_empty() {
            return Err(Error::LockTimeout {
                timeout_ms: None,
                busy,
            });
        }
    }
    if striped.is_empty() {
        short.sort_by(|a, b| a.inventory_id.cmp(&b.inventory_id));
        return refuse(ids, &found, short);
    }
    // A striped item's free stock is mostly in its stripes. Its row is ours
    // (locked by SELL_LINES in id order); its stripes come after it in the
    // lock order (stripes.rs), so gathering them here keeps to it.
    striped.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    stripes::gather(c, &striped)?;
    let sqtys = striped
        .iter()
        .map(|id| qty_of(ids, qtys, id).cloned())
        .collect::<Result<Vec<_>>>()?;
    let args = [
        striped.clone().into(),
        sqtys.clone().into(),
        caller.admin.into(),
        caller.tenant.clone().into(),
    ];
    let mut rows: Vec<Locked> = Vec::with_capacity(striped.len());
    for row in run(c, &LOCK_LINES_FAST, &args)? {
        let id = row
            .get::<Uuid>(1)?
            .ok_or_else(|| Error::Internal("a locked item row without an id".into()))?;
        // the available stock is only spelled out for a short line
        if let Some(available) = row.get::<String>(2)? {
            short.push(shortfall(ids, qtys, &id, available)?);
        }
        rows.push(Locked {
            id,
            quantity: row.get::<String>(3)?.unwrap_or_default(),
            tracked: row.get::<bool>(4)?.unwrap_or(true),
            tid: row
                .get::<pg_sys::ItemPointerData>(6)?
                .ok_or_else(|| Error::Internal("a locked item row without a ctid".into()))?,
        });
    }
    short.sort_by(|a, b| a.inventory_id.cmp(&b.inventory_id));
    refuse(ids, &found, short)?;
    sold.extend(apply_lines(c, &rows, &sqtys, mv)?);
    stripes::respread(c, &striped)
}

/// `{success, lines: [{inventory_id, old_quantity, new_quantity, deducted}]}`
/// in id order, as json_build_object writes it.
pub fn answer(mut sold: Vec<Sold<Uuid>>) -> String {
    sold.sort_by(|a, b| a.key.as_bytes().cmp(b.key.as_bytes()));
    let mut out = String::with_capacity(32 + sold.len() * 140);
    out.push_str("{\"success\" : true, \"lines\" : [");
    for (i, s) in sold.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str("{\"inventory_id\" : \"");
        out.push_str(&validate::uuid_text(&s.key));
        out.push_str("\", \"old_quantity\" : ");
        out.push_str(&s.old);
        out.push_str(", \"new_quantity\" : ");
        out.push_str(&s.new);
        out.push_str(", \"deducted\" : ");
        out.push_str(&s.deducted);
        // as the single sale: only when some units went past the stock on hand
        if let Some(b) = &s.backordered {
            out.push_str(", \"");
            out.push_str(b.key());
            out.push_str("\" : ");
            out.push_str(&b.units);
        }
        out.push('}');
    }
    out.push_str("]}");
    out
}

/// An item row LOCK_LINES_FAST locked: its id, quantity (as numeric_out
/// writes it), whether it tracks stock, and the locked version's ctid.
struct Locked {
    id: Uuid,
    quantity: String,
    tracked: bool,
    tid: pg_sys::ItemPointerData,
}

/// Decrement the tracked lines among `rows` (locked by LOCK_LINES_FAST, in id
/// order, one per line) by `qtys`, with a ledger row each if the ledger is
/// on. Untracked lines keep their quantity, deducted 0.
fn apply_lines(
    c: &mut SpiClient<'_>,
    rows: &[Locked],
    qtys: &[AnyNumeric],
    mv: &Movement,
) -> Result<Vec<Sold<Uuid>>> {
    if rows.len() != qtys.len() {
        return Err(Error::Internal(format!(
            "{} locked rows for {} lines",
            rows.len(),
            qtys.len()
        )));
    }
    let (tids, amounts): (Vec<pg_sys::ItemPointerData>, Vec<AnyNumeric>) = rows
        .iter()
        .zip(qtys)
        .filter(|(r, _)| r.tracked)
        .map(|(r, q)| (r.tid, q.clone()))
        .unzip();
    // id -> new quantity text
    let mut after: Vec<(Uuid, String)> = Vec::with_capacity(tids.len());
    if !tids.is_empty() {
        let done = if mv.ledger {
            run(
                c,
                &APPLY_LINES_FAST,
                &[
                    tids.into(),
                    amounts.into(),
                    mv.reason.clone().into(),
                    mv.reference.clone().into(),
                    mv.key.clone().into(),
                ],
            )?
        } else {
            run(c, &APPLY_LINES_BARE, &[tids.into(), amounts.into()])?
        };
        for row in done {
            let id = row
                .get::<Uuid>(1)?
                .ok_or_else(|| Error::Internal("an updated item row without an id".into()))?;
            after.push((id, row.get::<String>(2)?.unwrap_or_default()));
        }
    }
    rows.iter()
        .zip(qtys)
        .map(|(r, qty)| {
            if !r.tracked {
                return Ok(Sold {
                    key: r.id,
                    old: r.quantity.clone(),
                    new: r.quantity.clone(),
                    deducted: "0".into(),
                    tracked: false,
                    backordered: None,
                });
            }
            let new = after
                .iter()
                .find(|a| a.0 == r.id)
                .map(|a| a.1.clone())
                .ok_or_else(|| Own.skipped(&[&r.id]))?;
            Ok(Sold {
                key: r.id,
                old: r.quantity.clone(),
                new,
                deducted: qty.to_string(),
                tracked: true,
                backordered: None,
            })
        })
        .collect()
}
