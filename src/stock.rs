//! Stock movements on `atomic_inventory.items`: decrement of one line,
//! increment (restock) and compare-and-set adjust (many lines at once:
//! stock_many.rs). Each writes one ledger row per changed item in the same
//! statement.
//!
//! Concurrency: every write is a single UPDATE whose WHERE clause carries the
//! availability check, so under READ COMMITTED a waiting caller re-checks the
//! row's newest version after the lock holder commits (EvalPlanQual): no
//! read-then-write window, no lost update. Multi-line calls lock all their
//! rows first in ascending id order (duplicates merged), so two orders naming
//! the same items in opposite order queue up instead of deadlocking. At
//! REPEATABLE READ/SERIALIZABLE a concurrent change raises 40001 as usual;
//! we don't hide it.

use crate::core::caller::Caller;
use crate::core::idempotency;
use crate::core::validate;
use crate::error::{Error, Result, Shortfall};
use crate::pg::fmgr::{entry_point, Args};
use crate::pg::spi::{run, with_spi, Stmt};
use crate::settings::ledger_on;
use crate::stripes;
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::{self, Oid};
use pgrx::spi::SpiClient;
use pgrx::{AnyNumeric, Uuid};
use serde_json::json;

const UUID: Oid = pg_sys::UUIDOID;
const NUM: Oid = pg_sys::NUMERICOID;
const TEXT: Oid = pg_sys::TEXTOID;
const BOOL: Oid = pg_sys::BOOLOID;

// The tenant predicate shared by every statement: $admin, $tenant.
// (Spelled out in each statement so each stays one readable SQL string.)

const DECREMENT_ONE: Stmt = Stmt {
    name: "decrement_one",
    sql: "WITH upd AS ( \
            UPDATE atomic_inventory.items AS i \
               SET quantity = i.quantity - $2, updated_at = pg_catalog.now() \
             WHERE i.id = $1 \
               AND i.track_inventory \
               AND (i.tenant_id IS NULL OR $3 OR i.tenant_id = $4) \
               AND i.quantity - i.reserved >= $2 \
               AND (i.stripes = 0 OR $8) \
            RETURNING i.id, i.quantity, i.tenant_id \
          ), led AS ( \
            INSERT INTO atomic_inventory.ledger \
              (inventory_id, delta, quantity_after, kind, reason, reference, idempotency_key, tenant_id) \
            SELECT u.id, -$2, u.quantity, 'decrement', $5, $6, $7, u.tenant_id FROM upd AS u \
          ) \
          SELECT (u.quantity + $2)::text, u.quantity::text FROM upd AS u",
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
             AND i.quantity - i.reserved >= $2 \
             AND (i.stripes = 0 OR $5) \
          RETURNING (i.quantity + $2)::text, i.quantity::text",
    args: &[UUID, NUM, BOOL, TEXT, BOOL],
};

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
          SELECT pg_catalog.json_build_object('success', true, 'inventory_id', u.id, \
                   'old_quantity', u.quantity - $2, 'new_quantity', u.quantity, \
                   'added', $2)::text \
            FROM upd AS u",
    args: &[UUID, NUM, BOOL, TEXT, TEXT, TEXT, TEXT, BOOL, BOOL],
};

/// Lock one visible row and report its state (the slow path of a refused
/// decrement, and the first step of adjust).
const LOCK_ONE: Stmt = Stmt {
    name: "lock_one",
    sql: "SELECT i.quantity::text, i.reserved::text, (i.quantity - i.reserved)::text, \
                 i.track_inventory, (i.quantity - i.reserved >= $4), i.stripes \
            FROM atomic_inventory.items AS i \
           WHERE i.id = $1 AND (i.tenant_id IS NULL OR $2 OR i.tenant_id = $3) \
             FOR UPDATE",
    args: &[UUID, BOOL, TEXT, NUM],
};

/// Lock every line's row in ascending id order; duplicates merged.
pub(crate) const LOCK_MANY: Stmt = Stmt {
    name: "lock_many",
    sql: "SELECT i.id, (i.quantity - i.reserved)::text, r.qty::text, \
                 (NOT i.track_inventory OR i.quantity - i.reserved >= r.qty), i.stripes > 0, \
                 i.tenant_id \
            FROM atomic_inventory.items AS i \
            JOIN (SELECT l.id, pg_catalog.sum(l.qty) AS qty \
                    FROM ROWS FROM (pg_catalog.unnest($1::uuid[]), pg_catalog.unnest($2::numeric[])) AS l(id, qty) \
                   GROUP BY l.id) AS r ON r.id = i.id \
           WHERE (i.tenant_id IS NULL OR $3 OR i.tenant_id = $4) \
           ORDER BY i.id \
             FOR UPDATE OF i",
    args: &[pg_sys::UUIDARRAYOID, pg_sys::NUMERICARRAYOID, BOOL, TEXT],
};

/// Set a quantity on a row LOCK_ONE holds.
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
          SELECT pg_catalog.json_build_object('success', true, 'inventory_id', u.id, \
                   'old_quantity', old.quantity, 'new_quantity', u.quantity, \
                   'delta', u.quantity - old.quantity)::text \
            FROM upd AS u, old",
    args: &[UUID, NUM, TEXT, TEXT, TEXT, BOOL],
};

/// Arguments common to every movement (managed and bound, bound.rs).
pub(crate) struct Movement {
    pub reason: Option<String>,
    pub reference: Option<String>,
    pub key: Option<String>,
    pub lock_timeout_ms: Option<i32>,
    /// `atomic_inventory.ledger`, read once per call.
    pub ledger: bool,
}

impl Movement {
    pub(crate) fn read(args: &Args, first: usize) -> Result<Movement> {
        Ok(Movement {
            reason: args.text(first, "p_reason")?,
            reference: args.text(first + 1, "p_reference")?,
            key: args.idempotency_key(first + 2)?,
            lock_timeout_ms: args.lock_timeout_ms(first + 3)?,
            ledger: ledger_on(),
        })
    }

    /// What a bound movement's ledger rows share (bound::write_ledger).
    pub(crate) fn note(&self, kind: &'static str) -> crate::bound::LedgerNote<'_> {
        crate::bound::LedgerNote {
            kind,
            reason: self.reason.clone(),
            reference: self.reference.clone(),
            key: self.key.as_deref(),
        }
    }

    /// The parameters every single-row movement statement starts with:
    /// $1 the row (id or bound key), $2 the quantity, $3/$4 the caller's
    /// admin flag and tenant, $5-$7 the ledger's reason, reference and key.
    /// Statements without a ledger row take the first four.
    pub(crate) fn params(
        &self,
        row: DatumWithOid<'static>,
        qty: &AnyNumeric,
        caller: &Caller,
    ) -> [DatumWithOid<'static>; 7] {
        [
            row,
            qty.clone().into(),
            caller.admin.into(),
            caller.tenant.clone().into(),
            self.reason.clone().into(),
            self.reference.clone().into(),
            self.key.clone().into(),
        ]
    }
}

pub(crate) fn num_json(text: &str) -> serde_json::Value {
    text.parse::<serde_json::Number>()
        .map(serde_json::Value::Number)
        .unwrap_or_else(|_| json!(text))
}

/// One item row, locked by `lock_one`.
pub(crate) struct LockedItem {
    pub quantity: String,
    pub reserved: String,
    pub available: String,
    pub tracked: bool,
    /// available >= the quantity asked about
    pub enough: bool,
    pub stripes: i16,
}

/// Lock one visible item row (FOR UPDATE) and read its state; NOT_FOUND if it
/// does not exist for this caller. `qty` is the quantity `enough` is about.
pub(crate) fn lock_one(
    client: &mut SpiClient<'_>,
    caller: &Caller,
    id: Uuid,
    qty: Option<&AnyNumeric>,
) -> Result<LockedItem> {
    let state = run(
        client,
        &LOCK_ONE,
        &[
            id.into(),
            caller.admin.into(),
            caller.tenant.clone().into(),
            qty.cloned().unwrap_or_else(|| AnyNumeric::from(0)).into(),
        ],
    )?;
    if state.is_empty() {
        return Err(Error::NotFound {
            entity: "inventory item",
            ids: vec![id.to_string()],
        });
    }
    let row = state.first();
    Ok(LockedItem {
        quantity: row.get::<String>(1)?.unwrap_or_default(),
        reserved: row.get::<String>(2)?.unwrap_or_default(),
        available: row.get::<String>(3)?.unwrap_or_default(),
        tracked: row.get::<bool>(4)?.unwrap_or(true),
        enough: row.get::<bool>(5)?.unwrap_or(false),
        stripes: row.get::<i16>(6)?.unwrap_or(0),
    })
}

fn decrement(args: &Args) -> Result<String> {
    let id = args.uuid(0, "p_inventory_id")?;
    let qty = validate::positive_quantity(args.numeric(1), "p_quantity")?;
    let mv = Movement::read(args, 2)?;
    let caller = Caller::current()?;
    let request = || {
        json!({"inventory_id": id.to_string(), "quantity": qty.normalize(),
               "reason": mv.reason, "reference": mv.reference})
        .to_string()
    };
    with_spi(mv.lock_timeout_ms, |client| {
        idempotency::once(
            client,
            &caller,
            mv.key.as_deref(),
            "decrement_inventory",
            request,
            |c| decrement_one(c, &caller, id, &qty, &mv),
        )
    })
}

/// The item row's fast path: check, update (and ledger row) in one statement.
/// None: the row was not changed (not enough, untracked, striped, missing).
/// A striped item is sold from its row only once its stripes are `gathered`
/// into it (and the row locked): otherwise the row holds just part of its
/// stock (units a release or expiry freed stay there until the next
/// gather), and the answer and ledger row would show that part as the
/// item's quantity.
fn decrement_row(
    client: &mut SpiClient<'_>,
    caller: &Caller,
    id: Uuid,
    qty: &AnyNumeric,
    mv: &Movement,
    gathered: bool,
) -> Result<Option<String>> {
    let answer = |old: &str, new: &str| {
        // The same text json_build_object gives: numbers as numeric_out writes them.
        let deducted = qty.to_string();
        let mut out = String::with_capacity(160);
        out.push_str("{\"success\" : true, \"inventory_id\" : \"");
        out.push_str(&validate::uuid_text(&id));
        out.push_str("\", \"old_quantity\" : ");
        out.push_str(old);
        out.push_str(", \"new_quantity\" : ");
        out.push_str(new);
        out.push_str(", \"deducted\" : ");
        out.push_str(&deducted);
        out.push('}');
        out
    };
    let [a1, a2, a3, a4, a5, a6, a7] = mv.params(id.into(), qty, caller);
    let done = if mv.ledger {
        run(
            client,
            &DECREMENT_ONE,
            &[a1, a2, a3, a4, a5, a6, a7, gathered.into()],
        )?
    } else {
        run(
            client,
            &DECREMENT_ONE_BARE,
            &[a1, a2, a3, a4, gathered.into()],
        )?
    };
    if done.is_empty() {
        return Ok(None);
    }
    let row = done.first();
    let old = row.get::<String>(1)?.unwrap_or_default();
    let new = row.get::<String>(2)?.unwrap_or_default();
    Ok(Some(answer(&old, &new)))
}

fn decrement_one(
    client: &mut SpiClient<'_>,
    caller: &Caller,
    id: Uuid,
    qty: &AnyNumeric,
    mv: &Movement,
) -> Result<String> {
    if let Some(done) = decrement_row(client, caller, id, qty, mv, false)? {
        return Ok(done);
    }
    // A striped item keeps its free stock in stripes: take one that covers
    // the sale, without touching (or waiting for) the item row.
    let sale = stripes::Sale {
        id,
        qty,
        caller,
        reason: mv.reason.clone(),
        reference: mv.reference.clone(),
        key: mv.key.clone(),
        ledger: mv.ledger,
    };
    if let Some(done) = stripes::take(client, &sale)? {
        return Ok(done);
    }
    // Refused: lock the row to learn why with a stable answer. If a restock
    // landed in between, the row is now locked by us and the retry succeeds.
    let mut item = lock_one(client, caller, id, Some(qty))?;
    if !item.tracked {
        // Untracked items (services, made-to-order) sell without stock checks
        // and their quantity is left alone.
        return Ok(json!({"success": true, "inventory_id": id.to_string(),
                         "old_quantity": num_json(&item.quantity), "new_quantity": num_json(&item.quantity),
                         "deducted": 0, "tracked": false})
        .to_string());
    }
    if item.stripes > 0 {
        // No single stripe covers it: gather the stripes into the (locked)
        // item row, sell from there if the total covers it, spread again.
        stripes::gather(client, &[id])?;
        item = lock_one(client, caller, id, Some(qty))?;
    }
    if item.enough {
        if let Some(done) = decrement_row(client, caller, id, qty, mv, item.stripes > 0)? {
            if item.stripes > 0 {
                stripes::respread(client, &[id])?;
            }
            return Ok(done);
        }
    }
    Err(Error::Insufficient {
        lines: vec![Shortfall {
            inventory_id: id.to_string(),
            available: item.available,
            requested: qty.normalize().to_string(),
        }],
    })
}

/// NOT_FOUND for the ids not among `found` (every missing one, sorted), else
/// INSUFFICIENT_INVENTORY for the `short` lines; Ok when neither.
pub(crate) fn refuse(ids: &[Uuid], found: &[Uuid], short: Vec<Shortfall>) -> Result<()> {
    let mut missing: Vec<String> = ids
        .iter()
        .filter(|u| !found.contains(u))
        .map(validate::uuid_text)
        .collect();
    missing.sort();
    missing.dedup();
    if !missing.is_empty() {
        return Err(Error::NotFound {
            entity: "inventory item",
            ids: missing,
        });
    }
    if !short.is_empty() {
        return Err(Error::Insufficient { lines: short });
    }
    Ok(())
}

/// The items lock_and_check_lines holds.
pub(crate) struct LockedLines {
    /// striped items, to respread once done
    pub striped: Vec<Uuid>,
    /// the distinct tenants of the items (shared ones have none), sorted
    pub tenants: Vec<String>,
}

/// Lock every line's item in ascending id order and check that each exists
/// (for this tenant) and that available stock covers it. Nothing is written
/// but the gathering of striped items' stripes into their item rows; on
/// success the caller holds all the row locks and must respread the returned
/// striped items once done. Used by reserve_inventory.
pub(crate) fn lock_and_check_lines(
    c: &mut SpiClient<'_>,
    caller: &Caller,
    ids: &[Uuid],
    qtys: &[AnyNumeric],
) -> Result<LockedLines> {
    let args = || {
        [
            ids.to_vec().into(),
            qtys.to_vec().into(),
            caller.admin.into(),
            caller.tenant.clone().into(),
        ]
    };
    // (id, available, requested, covered, striped, tenant) per locked row
    type Row = (Uuid, String, String, bool, bool, Option<String>);
    let read = |c: &mut SpiClient<'_>| -> Result<Vec<Row>> {
        let mut rows = Vec::with_capacity(ids.len());
        for row in run(c, &LOCK_MANY, &args())? {
            rows.push((
                row.get::<Uuid>(1)?
                    .ok_or_else(|| Error::Internal("a locked item row without an id".into()))?,
                row.get::<String>(2)?.unwrap_or_default(),
                row.get::<String>(3)?.unwrap_or_default(),
                row.get::<bool>(4)?.unwrap_or(false),
                row.get::<bool>(5)?.unwrap_or(false),
                row.get::<String>(6)?,
            ));
        }
        Ok(rows)
    };
    let mut locked = read(c)?;
    // rows come in id order, one per item: so do these
    let striped: Vec<Uuid> = locked.iter().filter(|r| r.4).map(|r| r.0).collect();
    if !striped.is_empty() {
        // The rows are ours now; bring the stripes in and read the totals again.
        stripes::gather(c, &striped)?;
        locked = read(c)?;
    }
    let found: Vec<Uuid> = locked.iter().map(|r| r.0).collect();
    let mut tenants: Vec<String> = locked.iter().filter_map(|r| r.5.clone()).collect();
    tenants.sort();
    tenants.dedup();
    let short = locked
        .into_iter()
        .filter(|r| !r.3)
        .map(|(id, available, requested, _, _, _)| Shortfall {
            inventory_id: validate::uuid_text(&id),
            available,
            requested,
        })
        .collect();
    refuse(ids, &found, short)?;
    Ok(LockedLines { striped, tenants })
}

fn increment(args: &Args) -> Result<String> {
    let id = args.uuid(0, "p_inventory_id")?;
    let qty = validate::positive_quantity(args.numeric(1), "p_quantity")?;
    let mv = Movement::read(args, 2)?;
    let caller = Caller::current()?;
    let request = || {
        json!({"inventory_id": id.to_string(), "quantity": qty.normalize(),
               "reason": mv.reason, "reference": mv.reference})
        .to_string()
    };
    with_spi(mv.lock_timeout_ms, |client| {
        idempotency::once(
            client,
            &caller,
            mv.key.as_deref(),
            "increment_inventory",
            request,
            |c| {
                let apply = |c: &mut SpiClient<'_>, striped: bool| -> Result<Option<String>> {
                    let [a1, a2, a3, a4, a5, a6, a7] = mv.params(id.into(), &qty, &caller);
                    let t = run(
                        c,
                        &INCREMENT_ONE,
                        &[a1, a2, a3, a4, a5, a6, a7, striped.into(), mv.ledger.into()],
                    )?;
                    if t.is_empty() {
                        return Ok(None);
                    }
                    Ok(t.first().get::<String>(1)?)
                };
                if let Some(done) = apply(c, false)? {
                    return Ok(done);
                }
                // Missing, or striped: a restock of a striped item is added to
                // the gathered total (so the ledger row carries it) and spread.
                let item = lock_one(c, &caller, id, None)?;
                if item.stripes == 0 {
                    // Striped in our snapshot, unstriped by a `stripe_item(id, 0)`
                    // that committed while lock_one waited for the row (the
                    // UPDATE's condition failed on the version we saw, without
                    // waiting). We hold the row now: apply to its new version.
                    return apply(c, false)?.ok_or_else(|| {
                        Error::Internal(
                            "increment matched no row of a locked unstriped item".into(),
                        )
                    });
                }
                stripes::gather(c, &[id])?;
                let done = apply(c, true)?.unwrap_or_default();
                stripes::respread(c, &[id])?;
                Ok(done)
            },
        )
    })
}

fn adjust(args: &Args) -> Result<String> {
    let id = args.uuid(0, "p_inventory_id")?;
    let (new_qty, expected, force) = validate::compare_and_set(args, 1)?;
    let mv = Movement::read(args, 4)?;
    let caller = Caller::current()?;
    let request = || {
        json!({"inventory_id": id.to_string(), "new_quantity": new_qty.normalize(),
               "expected_quantity": expected.as_ref().map(|e| e.normalize().to_string()),
               "force": force, "reason": mv.reason, "reference": mv.reference})
        .to_string()
    };
    with_spi(mv.lock_timeout_ms, |client| {
        idempotency::once(
            client,
            &caller,
            mv.key.as_deref(),
            "adjust_inventory",
            request,
            |c| {
                let mut item = lock_one(c, &caller, id, None)?;
                if item.stripes > 0 {
                    // compare and set the item's total, not its row's part
                    stripes::gather(c, &[id])?;
                    item = lock_one(c, &caller, id, None)?;
                }
                let numeric = |t: &str| {
                    AnyNumeric::try_from(t).map_err(|e| Error::Internal(format!("numeric: {e}")))
                };
                if let Some(exp) = &expected {
                    let actual = numeric(&item.quantity)?;
                    if actual != *exp {
                        return Err(Error::QuantityMismatch {
                            inventory_id: id.to_string(),
                            expected: exp.normalize().to_string(),
                            actual: actual.normalize().to_string(),
                        });
                    }
                }
                let reserved = numeric(&item.reserved)?;
                if new_qty < reserved {
                    return Err(Error::BelowReserved {
                        inventory_id: id.to_string(),
                        requested: new_qty.normalize().to_string(),
                        reserved: reserved.normalize().to_string(),
                    });
                }
                let done = run(
                    c,
                    &APPLY_ADJUST,
                    &[
                        id.into(),
                        new_qty.clone().into(),
                        mv.reason.clone().into(),
                        mv.reference.clone().into(),
                        mv.key.clone().into(),
                        mv.ledger.into(),
                    ],
                )?;
                let out = done.first().get::<String>(1)?.unwrap_or_default();
                if item.stripes > 0 {
                    stripes::respread(c, &[id])?;
                }
                Ok(out)
            },
        )
    })
}

entry_point!(
    ai_decrement_inventory,
    pg_finfo_ai_decrement_inventory,
    decrement
);
entry_point!(
    ai_increment_inventory,
    pg_finfo_ai_increment_inventory,
    increment
);
entry_point!(ai_adjust_inventory, pg_finfo_ai_adjust_inventory, adjust);
