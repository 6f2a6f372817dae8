//! `decrement_inventory_many`: a sale of many lines in one call, all or
//! nothing (checkout, POS basket). Lines are merged per item and sorted by
//! id (validate::merged_lines) before anything is locked, so two orders
//! naming the same items in opposite order queue up instead of deadlocking.

use crate::context::Caller;
use crate::errors::{Error, Result, Shortfall};
use crate::fmgr::{entry_point, Args};
use crate::idempotency;
use crate::spi::{self, run, with_spi, Stmt};
use crate::stock::{lock_and_check_lines, refuse, Movement};
use crate::stripes;
use crate::validate;
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::{self, Oid};
use pgrx::spi::SpiClient;
use pgrx::{AnyNumeric, Uuid};
use serde_json::json;

const TEXT: Oid = pg_sys::TEXTOID;
const BOOL: Oid = pg_sys::BOOLOID;
const TIDARRAY: Oid = pg_sys::TIDARRAYOID;
/// Apply a multi-line decrement whose rows LOCK_MANY holds and has checked.
const APPLY_MANY: Stmt = Stmt {
    name: "apply_many",
    sql: "WITH r AS ( \
            SELECT l.id, pg_catalog.sum(l.qty) AS qty \
              FROM ROWS FROM (pg_catalog.unnest($1::uuid[]), pg_catalog.unnest($2::numeric[])) AS l(id, qty) \
             GROUP BY l.id \
          ), upd AS ( \
            UPDATE atomic_inventory.items AS i \
               SET quantity = i.quantity - r.qty, updated_at = pg_catalog.now() \
              FROM r WHERE i.id = r.id AND i.track_inventory \
            RETURNING i.id, i.quantity, r.qty, i.tenant_id \
          ), led AS ( \
            INSERT INTO atomic_inventory.ledger \
              (inventory_id, delta, quantity_after, kind, reason, reference, idempotency_key, tenant_id) \
            SELECT u.id, -u.qty, u.quantity, 'decrement', $3, $4, $5, u.tenant_id FROM upd AS u WHERE $6 \
          ) \
          SELECT pg_catalog.json_build_object('success', true, 'lines', \
                   pg_catalog.json_agg(pg_catalog.json_build_object( \
                     'inventory_id', r.id, \
                     'old_quantity', COALESCE(u.quantity + u.qty, i.quantity), \
                     'new_quantity', COALESCE(u.quantity, i.quantity), \
                     'deducted', COALESCE(u.qty, 0)) ORDER BY r.id))::text \
            FROM r JOIN atomic_inventory.items AS i ON i.id = r.id \
            LEFT JOIN upd AS u ON u.id = r.id",
    args: &[
        pg_sys::UUIDARRAYOID,
        pg_sys::NUMERICARRAYOID,
        TEXT,
        TEXT,
        TEXT,
        BOOL,
    ],
};

/// The common multi-line case in one statement: every line's row checked and
/// decremented by one UPDATE (ledger off), no row lock of its own before it.
/// Lines arrive merged per item and sorted by id (validate::merged_lines).
///
/// Why this is safe:
/// - The availability check is in the UPDATE's WHERE clause, so a row changed
///   by a concurrent caller is re-checked on its newest version after they
///   commit (EvalPlanQual, as for one line): no oversell.
/// - Rows are locked as the UPDATE reaches them, in the order of its join,
///   which must be the index nested loop driven by the sorted line array.
///   The join condition is written `i.id = ANY (ARRAY[r.id])`, which no hash
///   or merge join can use, so only a nested loop is possible; the
///   function's `SET enable_seqscan = off` (sql/functions.sql) keeps a
///   sequential scan of a small items table from driving it (planner
///   choices measured in the #[pg_test] many_one_statement_plan_...).
///   sell_lines also checks the order the rows came back in (RETURNING order
///   is the order they were updated and locked) and takes the ordered
///   two-statement path below if it was ever not ascending.
/// - It runs in a subtransaction (spi::attempt): unless every line came back
///   (a line missing, short, untracked or striped), it is rolled back and the
///   two-statement path below locks, judges and answers as before.
///
/// Measured: one statement instead of lock + update runs a 5-line sale
/// about 20% faster (docs/benchmarks.md), the lock's WAL record per row and
/// one statement's executor start fewer.
pub(crate) const SELL_LINES_BARE: Stmt = Stmt {
    name: "sell_lines_bare",
    sql: "UPDATE atomic_inventory.items AS i \
             SET quantity = i.quantity - r.qty, updated_at = pg_catalog.now() \
            FROM ROWS FROM (pg_catalog.unnest($1::uuid[]), pg_catalog.unnest($2::numeric[])) AS r(id, qty) \
           WHERE i.id = ANY (ARRAY[r.id]) \
             AND i.track_inventory AND i.stripes = 0 \
             AND (i.tenant_id IS NULL OR $3 OR i.tenant_id = $4) \
             AND i.quantity - i.reserved >= r.qty \
          RETURNING i.id, (i.quantity + r.qty)::text, i.quantity::text",
    args: &[pg_sys::UUIDARRAYOID, pg_sys::NUMERICARRAYOID, BOOL, TEXT],
};

/// SELL_LINES_BARE with a ledger row per line ($5-$7: reason, reference,
/// key). The CTE's rows are read back in the order the UPDATE produced them.
const SELL_LINES: Stmt = Stmt {
    name: "sell_lines",
    sql: "WITH upd AS ( \
            UPDATE atomic_inventory.items AS i \
               SET quantity = i.quantity - r.qty, updated_at = pg_catalog.now() \
              FROM ROWS FROM (pg_catalog.unnest($1::uuid[]), pg_catalog.unnest($2::numeric[])) AS r(id, qty) \
             WHERE i.id = ANY (ARRAY[r.id]) \
               AND i.track_inventory AND i.stripes = 0 \
               AND (i.tenant_id IS NULL OR $3 OR i.tenant_id = $4) \
               AND i.quantity - i.reserved >= r.qty \
            RETURNING i.id, i.quantity, r.qty, i.tenant_id \
          ), led AS ( \
            INSERT INTO atomic_inventory.ledger \
              (inventory_id, delta, quantity_after, kind, reason, reference, idempotency_key, tenant_id) \
            SELECT u.id, -u.qty, u.quantity, 'decrement', $5, $6, $7, u.tenant_id FROM upd AS u \
          ) \
          SELECT u.id, (u.quantity + u.qty)::text, u.quantity::text FROM upd AS u",
    args: &[
        pg_sys::UUIDARRAYOID,
        pg_sys::NUMERICARRAYOID,
        BOOL,
        TEXT,
        TEXT,
        TEXT,
        TEXT,
    ],
};

/// The multi-line case in two lean statements, when SELL_LINES did not take
/// every line: lines arrive merged per item and sorted by id
/// (validate::merged_lines), so neither statement groups. LOCK_LINES_FAST
/// locks the rows in id order and reports each one (found? short? tracked?
/// striped?); APPLY_LINES_FAST then updates the tracked ones and writes the
/// ledger.
///
/// Why the lock is not a CTE under the UPDATE: it was measured faster, but
/// the stress test caught it oversell under concurrent reservations. Within
/// one statement the UPDATE works from the statement's snapshot and may meet
/// a row version newer than the one the locking CTE reported;
/// pg_test/stress.py fails on it. A second statement takes a new snapshot
/// after the locks are held, so what it reads is what was checked.
/// (SELL_LINES has no separate check to go stale: its check is the UPDATE's
/// own WHERE clause.)
const LOCK_LINES_FAST: Stmt = Stmt {
    name: "lock_lines_fast",
    sql: "SELECT i.id, \
                 CASE WHEN i.track_inventory AND i.quantity - i.reserved < r.qty \
                      THEN (i.quantity - i.reserved)::text END, \
                 i.quantity::text, i.track_inventory, i.stripes > 0, i.ctid \
            FROM ROWS FROM (pg_catalog.unnest($1::uuid[]), pg_catalog.unnest($2::numeric[])) AS r(id, qty) \
            JOIN atomic_inventory.items AS i ON i.id = r.id \
           WHERE (i.tenant_id IS NULL OR $3 OR i.tenant_id = $4) \
           ORDER BY i.id \
             FOR UPDATE OF i",
    args: &[pg_sys::UUIDARRAYOID, pg_sys::NUMERICARRAYOID, BOOL, TEXT],
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

fn decrement_many(args: &Args) -> Result<String> {
    let lines = validate::lines(args.jsonb_container(0), "p_lines")?;
    let mv = Movement::read(args, 1)?;
    let caller = Caller::current()?;
    let request = || {
        json!({"lines": validate::canonical_lines(&lines), "reason": mv.reason,
               "reference": mv.reference})
        .to_string()
    };
    let (merged_ids, merged_qtys) = validate::merged_lines(&lines);
    with_spi(mv.lock_timeout_ms, |client| {
        idempotency::once(
            client,
            &caller,
            mv.key.as_deref(),
            "decrement_inventory_many",
            request,
            |c| {
                // The common case: every line found, covered, tracked, none
                // striped, in one statement.
                if let Some(done) = sell_lines(c, &caller, &merged_ids, &merged_qtys, &mv)? {
                    return Ok(done);
                }
                // Otherwise (nothing written): lock every row in id order and
                // judge each line.
                let locked = run(
                    c,
                    &LOCK_LINES_FAST,
                    &[
                        merged_ids.clone().into(),
                        merged_qtys.clone().into(),
                        caller.admin.into(),
                        caller.tenant.clone().into(),
                    ],
                )?;
                // per locked row, in id order
                let mut rows: Vec<Locked> = Vec::with_capacity(merged_ids.len());
                let mut found = Vec::with_capacity(merged_ids.len());
                let mut short = Vec::new();
                let mut any_striped = false;
                for row in locked {
                    let id = row
                        .get::<Uuid>(1)?
                        .ok_or_else(|| Error::Internal("a locked item row without an id".into()))?;
                    // the available stock is only spelled out for a short line
                    if let Some(available) = row.get::<String>(2)? {
                        // merged_ids is sorted and so are the rows: find the line
                        let at = merged_ids.binary_search_by(|m| m.as_bytes().cmp(id.as_bytes()));
                        short.push(Shortfall {
                            inventory_id: validate::uuid_text(&id),
                            available,
                            requested: at.map(|i| merged_qtys[i].to_string()).unwrap_or_default(),
                        });
                    }
                    any_striped |= row.get::<bool>(5)?.unwrap_or(true);
                    rows.push(Locked {
                        id,
                        quantity: row.get::<String>(3)?.unwrap_or_default(),
                        tracked: row.get::<bool>(4)?.unwrap_or(true),
                        tid: row.get::<pg_sys::ItemPointerData>(6)?.ok_or_else(|| {
                            Error::Internal("a locked item row without a ctid".into())
                        })?,
                    });
                    found.push(id);
                }
                if !any_striped {
                    // Missing or short lines are answered from these rows;
                    // nothing was written, the transaction is aborted by the error.
                    refuse(&merged_ids, &found, short)?;
                    // every line found: rows[i] is merged_ids[i]'s row
                    return apply_lines(c, &rows, &merged_qtys, &mv);
                }
                // A striped item's stock is partly in its stripes: the general
                // path (rows already locked) gathers them, then judges and applies.
                // (the lines as given, only needed here)
                let ids: Vec<Uuid> = lines.iter().map(|l| l.inventory_id).collect();
                let qtys: Vec<AnyNumeric> = lines.iter().map(|l| l.quantity.clone()).collect();
                let striped = lock_and_check_lines(c, &caller, &ids, &qtys)?;
                let applied = run(
                    c,
                    &APPLY_MANY,
                    &[
                        ids.clone().into(),
                        qtys.clone().into(),
                        mv.reason.clone().into(),
                        mv.reference.clone().into(),
                        mv.key.clone().into(),
                        mv.ledger.into(),
                    ],
                )?;
                let out = applied.first().get::<String>(1)?.unwrap_or_default();
                stripes::respread(c, &striped)?;
                Ok(out)
            },
        )
    })
}

/// SELL_LINES(_BARE) for the merged, sorted lines, in a subtransaction: the
/// answer if it took every line, in id order; None, with nothing written and
/// no row left locked, if it did not (a line missing, short, untracked or
/// striped; or rows not updated in ascending id order, see SELL_LINES_BARE).
fn sell_lines(
    c: &mut SpiClient<'_>,
    caller: &Caller,
    ids: &[Uuid],
    qtys: &[AnyNumeric],
    mv: &Movement,
) -> Result<Option<String>> {
    spi::attempt(|| {
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
            &SELL_LINES
        } else {
            &SELL_LINES_BARE
        };
        // (id, old quantity, new quantity) per updated row, in update order;
        // read out here, the tuple table goes before a rollback frees it
        let mut sold: Vec<(Uuid, String, String)> = Vec::with_capacity(ids.len());
        for row in run(c, stmt, &params)? {
            let id = row
                .get::<Uuid>(1)?
                .ok_or_else(|| Error::Internal("an updated item row without an id".into()))?;
            let old = row.get::<String>(2)?.unwrap_or_default();
            let new = row.get::<String>(3)?.unwrap_or_default();
            sold.push((id, old, new));
        }
        if sold.len() != ids.len() {
            return Ok(None);
        }
        if sold.iter().zip(ids).any(|(s, id)| s.0 != *id) {
            // Every line taken, but not in id order: the plan is not the one
            // the function's settings ask for. Undo and take the ordered path.
            pgrx::debug1!("atomic_inventory: sell_lines updated rows out of id order");
            return Ok(None);
        }
        let mut out = String::with_capacity(32 + sold.len() * 140);
        out.push_str("{\"success\" : true, \"lines\" : [");
        for (i, ((id, old, new), qty)) in sold.iter().zip(qtys).enumerate() {
            push_line(&mut out, i, id, old, new, &qty.to_string());
        }
        out.push_str("]}");
        Ok(Some(out))
    })
}

/// One line of a multi-line answer, as json_build_object writes it (numbers
/// as numeric_out writes them); `i` its position.
fn push_line(out: &mut String, i: usize, id: &Uuid, old: &str, new: &str, deducted: &str) {
    if i > 0 {
        out.push_str(", ");
    }
    out.push_str("{\"inventory_id\" : \"");
    out.push_str(&validate::uuid_text(id));
    out.push_str("\", \"old_quantity\" : ");
    out.push_str(old);
    out.push_str(", \"new_quantity\" : ");
    out.push_str(new);
    out.push_str(", \"deducted\" : ");
    out.push_str(deducted);
    out.push('}');
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
/// order, one per merged line) by `qtys`, with
/// a ledger row each if the ledger is on, and answer
/// `{success, lines: [{inventory_id, old_quantity, new_quantity, deducted}]}`
/// in id order. Untracked lines answer their quantity, unchanged, deducted 0.
fn apply_lines(
    c: &mut SpiClient<'_>,
    rows: &[Locked],
    qtys: &[AnyNumeric],
    mv: &Movement,
) -> Result<String> {
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
    // id -> new quantity text, sorted by id for the lookups below
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
        after.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    }
    // The same text json_build_object gives: numbers as numeric_out writes them.
    let mut out = String::with_capacity(32 + rows.len() * 140);
    out.push_str("{\"success\" : true, \"lines\" : [");
    for (
        i,
        (
            Locked {
                id,
                quantity: old,
                tracked,
                ..
            },
            qty,
        ),
    ) in rows.iter().zip(qtys).enumerate()
    {
        let new = if *tracked {
            let at = after
                .binary_search_by(|a| a.0.as_bytes().cmp(id.as_bytes()))
                .map_err(|_| Error::Internal("a locked, covered line was not updated".into()))?;
            Some(&after[at].1)
        } else {
            None
        };
        let deducted = match new {
            Some(_) => qty.to_string(),
            None => "0".to_string(),
        };
        push_line(&mut out, i, id, old, new.unwrap_or(old), &deducted);
    }
    out.push_str("]}");
    Ok(out)
}

entry_point!(
    ai_decrement_inventory_many,
    pg_finfo_ai_decrement_inventory_many,
    decrement_many
);
