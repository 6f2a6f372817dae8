//! Stock movements on `atomic_inventory.items`: decrement (one line or many,
//! all or nothing), increment (restock) and compare-and-set adjust. Each
//! writes one ledger row per changed item in the same statement.
//!
//! Concurrency: every write is a single UPDATE whose WHERE clause carries the
//! availability check, so under READ COMMITTED a waiting caller re-checks the
//! row's newest version after the lock holder commits (EvalPlanQual): no
//! read-then-write window, no lost update. Multi-line calls lock all their
//! rows first in ascending id order (duplicates merged), so two orders naming
//! the same items in opposite order queue up instead of deadlocking. At
//! REPEATABLE READ/SERIALIZABLE a concurrent change raises 40001 as usual;
//! we don't hide it.

use crate::context::Caller;
use crate::errors::{Error, Result, Shortfall};
use crate::fmgr::{entry_point, Args};
use crate::idempotency;
use crate::spi::{run, with_spi, Stmt};
use crate::validate;
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
            RETURNING i.id, i.quantity, i.tenant_id \
          ), led AS ( \
            INSERT INTO atomic_inventory.ledger \
              (inventory_id, delta, quantity_after, kind, reason, reference, idempotency_key, tenant_id) \
            SELECT u.id, -$2, u.quantity, 'decrement', $5, $6, $7, u.tenant_id FROM upd AS u \
          ) \
          SELECT pg_catalog.json_build_object('success', true, 'inventory_id', u.id, \
                   'old_quantity', u.quantity + $2, 'new_quantity', u.quantity, \
                   'deducted', $2)::text \
            FROM upd AS u",
    args: &[UUID, NUM, BOOL, TEXT, TEXT, TEXT, TEXT],
};

const INCREMENT_ONE: Stmt = Stmt {
    name: "increment_one",
    sql: "WITH upd AS ( \
            UPDATE atomic_inventory.items AS i \
               SET quantity = i.quantity + $2, updated_at = pg_catalog.now() \
             WHERE i.id = $1 \
               AND (i.tenant_id IS NULL OR $3 OR i.tenant_id = $4) \
            RETURNING i.id, i.quantity, i.tenant_id \
          ), led AS ( \
            INSERT INTO atomic_inventory.ledger \
              (inventory_id, delta, quantity_after, kind, reason, reference, idempotency_key, tenant_id) \
            SELECT u.id, $2, u.quantity, 'increment', $5, $6, $7, u.tenant_id FROM upd AS u \
          ) \
          SELECT pg_catalog.json_build_object('success', true, 'inventory_id', u.id, \
                   'old_quantity', u.quantity - $2, 'new_quantity', u.quantity, \
                   'added', $2)::text \
            FROM upd AS u",
    args: &[UUID, NUM, BOOL, TEXT, TEXT, TEXT, TEXT],
};

/// Lock one visible row and report its state (the slow path of a refused
/// decrement, and the first step of adjust).
const LOCK_ONE: Stmt = Stmt {
    name: "lock_one",
    sql: "SELECT i.quantity::text, i.reserved::text, (i.quantity - i.reserved)::text, \
                 i.track_inventory, (i.quantity - i.reserved >= $4) \
            FROM atomic_inventory.items AS i \
           WHERE i.id = $1 AND (i.tenant_id IS NULL OR $2 OR i.tenant_id = $3) \
             FOR UPDATE",
    args: &[UUID, BOOL, TEXT, NUM],
};

/// Lock every line's row in ascending id order; duplicates merged.
pub(crate) const LOCK_MANY: Stmt = Stmt {
    name: "lock_many",
    sql: "SELECT i.id, (i.quantity - i.reserved)::text, r.qty::text, \
                 (NOT i.track_inventory OR i.quantity - i.reserved >= r.qty) \
            FROM atomic_inventory.items AS i \
            JOIN (SELECT l.id, pg_catalog.sum(l.qty) AS qty \
                    FROM ROWS FROM (pg_catalog.unnest($1::uuid[]), pg_catalog.unnest($2::numeric[])) AS l(id, qty) \
                   GROUP BY l.id) AS r ON r.id = i.id \
           WHERE (i.tenant_id IS NULL OR $3 OR i.tenant_id = $4) \
           ORDER BY i.id \
             FOR UPDATE OF i",
    args: &[pg_sys::UUIDARRAYOID, pg_sys::NUMERICARRAYOID, BOOL, TEXT],
};

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
            SELECT u.id, -u.qty, u.quantity, 'decrement', $3, $4, $5, u.tenant_id FROM upd AS u \
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
    ],
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
              FROM upd AS u, old \
          ) \
          SELECT pg_catalog.json_build_object('success', true, 'inventory_id', u.id, \
                   'old_quantity', old.quantity, 'new_quantity', u.quantity, \
                   'delta', u.quantity - old.quantity)::text \
            FROM upd AS u, old",
    args: &[UUID, NUM, TEXT, TEXT, TEXT],
};

/// Arguments common to every movement.
struct Movement {
    reason: Option<String>,
    reference: Option<String>,
    key: Option<String>,
    lock_timeout_ms: Option<i32>,
}

impl Movement {
    fn read(args: &Args, first: usize) -> Result<Movement> {
        Ok(Movement {
            reason: args.text(first, "p_reason")?,
            reference: args.text(first + 1, "p_reference")?,
            key: args.idempotency_key(first + 2)?,
            lock_timeout_ms: args.lock_timeout_ms(first + 3)?,
        })
    }
}

fn num_json(text: &str) -> serde_json::Value {
    text.parse::<serde_json::Number>()
        .map(serde_json::Value::Number)
        .unwrap_or_else(|_| json!(text))
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

fn decrement_one(
    client: &mut SpiClient<'_>,
    caller: &Caller,
    id: Uuid,
    qty: &AnyNumeric,
    mv: &Movement,
) -> Result<String> {
    let params = || {
        [
            id.into(),
            qty.clone().into(),
            caller.admin.into(),
            caller.tenant.clone().into(),
            mv.reason.clone().into(),
            mv.reference.clone().into(),
            mv.key.clone().into(),
        ]
    };
    // Fast path: one statement does check, update and ledger.
    let done = run(client, &DECREMENT_ONE, &params())?;
    if !done.is_empty() {
        return Ok(done.first().get::<String>(1)?.unwrap_or_default());
    }
    // Refused: lock the row to learn why with a stable answer. If a restock
    // landed in between, the row is now locked by us and the retry succeeds.
    let state = run(
        client,
        &LOCK_ONE,
        &[
            id.into(),
            caller.admin.into(),
            caller.tenant.clone().into(),
            qty.clone().into(),
        ],
    )?;
    if state.is_empty() {
        return Err(Error::NotFound {
            entity: "inventory item",
            ids: vec![id.to_string()],
        });
    }
    let row = state.first();
    let quantity = row.get::<String>(1)?.unwrap_or_default();
    let available = row.get::<String>(3)?.unwrap_or_default();
    let tracked = row.get::<bool>(4)?.unwrap_or(true);
    let enough = row.get::<bool>(5)?.unwrap_or(false);
    if !tracked {
        // Untracked items (services, made-to-order) sell without stock checks
        // and their quantity is left alone.
        return Ok(json!({"success": true, "inventory_id": id.to_string(),
                         "old_quantity": num_json(&quantity), "new_quantity": num_json(&quantity),
                         "deducted": 0, "tracked": false})
        .to_string());
    }
    if enough {
        let done = run(client, &DECREMENT_ONE, &params())?;
        if !done.is_empty() {
            return Ok(done.first().get::<String>(1)?.unwrap_or_default());
        }
    }
    Err(Error::Insufficient {
        lines: vec![Shortfall {
            inventory_id: id.to_string(),
            available,
            requested: qty.normalize().to_string(),
        }],
    })
}

fn decrement_many(args: &Args) -> Result<String> {
    let lines = validate::lines(args.jsonb(0), "p_lines")?;
    let mv = Movement::read(args, 1)?;
    let caller = Caller::current()?;
    let request = || {
        json!({"lines": validate::canonical_lines(&lines), "reason": mv.reason,
               "reference": mv.reference})
        .to_string()
    };
    let ids: Vec<Uuid> = lines.iter().map(|l| l.inventory_id).collect();
    let qtys: Vec<AnyNumeric> = lines.iter().map(|l| l.quantity.clone()).collect();
    with_spi(mv.lock_timeout_ms, |client| {
        idempotency::once(
            client,
            &caller,
            mv.key.as_deref(),
            "decrement_inventory_many",
            request,
            |c| {
                lock_and_check_lines(c, &caller, &ids, &qtys)?;
                let applied = run(
                    c,
                    &APPLY_MANY,
                    &[
                        ids.clone().into(),
                        qtys.clone().into(),
                        mv.reason.clone().into(),
                        mv.reference.clone().into(),
                        mv.key.clone().into(),
                    ],
                )?;
                Ok(applied.first().get::<String>(1)?.unwrap_or_default())
            },
        )
    })
}

/// Lock every line's item in ascending id order and check that each exists
/// (for this tenant) and that available stock covers it. Nothing is written;
/// on success the caller holds all the row locks. Shared by multi-line
/// decrements and reservations.
pub(crate) fn lock_and_check_lines(
    c: &mut SpiClient<'_>,
    caller: &Caller,
    ids: &[Uuid],
    qtys: &[AnyNumeric],
) -> Result<()> {
    let locked = run(
        c,
        &LOCK_MANY,
        &[
            ids.to_vec().into(),
            qtys.to_vec().into(),
            caller.admin.into(),
            caller.tenant.clone().into(),
        ],
    )?;
    let mut found = Vec::with_capacity(ids.len());
    let mut short = Vec::new();
    for row in locked {
        let id = row
            .get::<Uuid>(1)?
            .map(|u| u.to_string())
            .unwrap_or_default();
        if !row.get::<bool>(4)?.unwrap_or(false) {
            short.push(Shortfall {
                inventory_id: id.clone(),
                available: row.get::<String>(2)?.unwrap_or_default(),
                requested: row.get::<String>(3)?.unwrap_or_default(),
            });
        }
        found.push(id);
    }
    let mut missing: Vec<String> = ids
        .iter()
        .map(|u| u.to_string())
        .filter(|u| !found.contains(u))
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
                let done = run(
                    c,
                    &INCREMENT_ONE,
                    &[
                        id.into(),
                        qty.clone().into(),
                        caller.admin.into(),
                        caller.tenant.clone().into(),
                        mv.reason.clone().into(),
                        mv.reference.clone().into(),
                        mv.key.clone().into(),
                    ],
                )?;
                if done.is_empty() {
                    return Err(Error::NotFound {
                        entity: "inventory item",
                        ids: vec![id.to_string()],
                    });
                }
                Ok(done.first().get::<String>(1)?.unwrap_or_default())
            },
        )
    })
}

fn adjust(args: &Args) -> Result<String> {
    let id = args.uuid(0, "p_inventory_id")?;
    let new_qty = validate::non_negative_quantity(args.numeric(1), "p_new_quantity")?;
    let expected = match args.numeric(2) {
        Some(n) => Some(validate::non_negative_quantity(
            Some(n),
            "p_expected_quantity",
        )?),
        None => None,
    };
    let force = args.bool_or(3, false);
    if expected.is_none() && !force {
        return Err(Error::invalid_input(
            "p_expected_quantity",
            "is required: pass the quantity you read (compare-and-set), or p_force => true to overwrite unconditionally",
        ));
    }
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
                let state = run(
                    c,
                    &LOCK_ONE,
                    &[
                        id.into(),
                        caller.admin.into(),
                        caller.tenant.clone().into(),
                        new_qty.clone().into(),
                    ],
                )?;
                if state.is_empty() {
                    return Err(Error::NotFound {
                        entity: "inventory item",
                        ids: vec![id.to_string()],
                    });
                }
                let row = state.first();
                let quantity = row.get::<String>(1)?.unwrap_or_default();
                let reserved = row.get::<String>(2)?.unwrap_or_default();
                if let Some(exp) = &expected {
                    let actual = AnyNumeric::try_from(quantity.as_str())
                        .map_err(|e| Error::Internal(format!("numeric: {e}")))?;
                    if actual != *exp {
                        return Err(Error::QuantityMismatch {
                            inventory_id: id.to_string(),
                            expected: exp.normalize().to_string(),
                            actual: actual.normalize().to_string(),
                        });
                    }
                }
                // LOCK_ONE's 5th column is "quantity - reserved >= $4"; for adjust
                // we need "new >= reserved", so compare directly.
                let reserved_n = AnyNumeric::try_from(reserved.as_str())
                    .map_err(|e| Error::Internal(format!("numeric: {e}")))?;
                if new_qty < reserved_n {
                    return Err(Error::BelowReserved {
                        inventory_id: id.to_string(),
                        requested: new_qty.normalize().to_string(),
                        reserved: reserved_n.normalize().to_string(),
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
                    ],
                )?;
                Ok(done.first().get::<String>(1)?.unwrap_or_default())
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
    ai_decrement_inventory_many,
    pg_finfo_ai_decrement_inventory_many,
    decrement_many
);
entry_point!(
    ai_increment_inventory,
    pg_finfo_ai_increment_inventory,
    increment
);
entry_point!(ai_adjust_inventory, pg_finfo_ai_adjust_inventory, adjust);
