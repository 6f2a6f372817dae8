//! Striped mode for hot items (flash sales).
//!
//! A single hot row serialises every sale of that item: each one holds the
//! row lock until its commit is flushed. `stripe_item(p_inventory_id,
//! p_stripes => N)` moves the item's free stock (quantity - reserved) into N
//! sub-rows of `item_stripes`; a sale then takes any sub-row that covers it
//! with `FOR UPDATE SKIP LOCKED`, so up to N sales hold locks at once.
//!
//! Invariants: the item's quantity is `items.quantity` plus the sum of its
//! stripes; reserved units always stay in the item row (reserve, commit and
//! release work on it as before); no stripe goes below 0 (CHECK), so no sale
//! can oversell, whatever the interleaving.
//!
//! Lock order, everywhere: the item row, then its stripes in stripe order.
//! The sale path takes one stripe and never waits for the item row after it;
//! every path that needs the whole item (a sale no single stripe covers,
//! restock, adjust, multi-line orders, reservations, restriping) locks the
//! item row first, then *gathers* all stripes into it, works on the item row
//! as on an unstriped item, and *respreads* the free stock evenly at the end.

use super::Own;
use crate::core::caller::Caller;
use crate::core::movement::{num_json, numeric, Movement};
use crate::error::{Error, Result};
use crate::pg::spi::{self, run, Stmt};
use crate::source::StockSource;
use pgrx::pg_sys::{self, Oid};
use pgrx::spi::SpiClient;
use pgrx::{AnyNumeric, Uuid};
use serde_json::json;

const UUID: Oid = pg_sys::UUIDOID;
const UUIDS: Oid = pg_sys::UUIDARRAYOID;
const NUM: Oid = pg_sys::NUMERICOID;
const TEXT: Oid = pg_sys::TEXTOID;
const BOOL: Oid = pg_sys::BOOLOID;
const INT: Oid = pg_sys::INT4OID;

/// Most stripes per item: beyond the connection counts where striping pays.
pub const MAX_STRIPES: i32 = 256;

/// Take one sale from one stripe: `s` picks and locks the stripe, the rest
/// is the same for both statements below. The ledger row's quantity_after is
/// NULL because the item's total is not locked as a whole; old_quantity is
/// the item's total as this statement's snapshot sees it (concurrent sales
/// may not be in it).
macro_rules! take_sql {
    ($pick:literal) => {
        concat!(
            "WITH ",
            $pick,
            ", upd AS ( \
               UPDATE atomic_inventory.item_stripes AS st SET quantity = st.quantity - $2 \
                 FROM s WHERE st.item_id = s.item_id AND st.stripe = s.stripe \
               RETURNING st.item_id, st.stripe, s.tenant_id \
             ), led AS ( \
               INSERT INTO atomic_inventory.ledger \
                 (inventory_id, delta, quantity_after, kind, reason, reference, idempotency_key, tenant_id) \
               SELECT u.item_id, -$2, NULL, 'decrement', $5, $6, $7, u.tenant_id FROM upd AS u WHERE $9 \
             ) \
             SELECT u.stripe, \
                    ((SELECT i.quantity FROM atomic_inventory.items AS i WHERE i.id = $1) \
                     + (SELECT pg_catalog.sum(x.quantity) FROM atomic_inventory.item_stripes AS x \
                         WHERE x.item_id = $1))::text \
               FROM upd AS u"
        )
    };
}

/// Any unlocked stripe that covers the sale, starting at this backend's own
/// one ($8) so that backends spread over the stripes.
const TAKE_SKIP: Stmt = Stmt {
    name: "stripe_take_skip",
    sql: take_sql!(
        "s AS MATERIALIZED ( \
           SELECT st.item_id, st.stripe, i.tenant_id \
             FROM atomic_inventory.item_stripes AS st \
             JOIN atomic_inventory.items AS i ON i.id = st.item_id \
            WHERE st.item_id = $1 AND st.quantity >= $2 AND i.track_inventory \
              AND (i.tenant_id IS NULL OR $3 OR i.tenant_id = $4) \
            ORDER BY (st.stripe + $8) % GREATEST(i.stripes, 1) \
            LIMIT 1 \
              FOR UPDATE OF st SKIP LOCKED)"
    ),
    args: &[UUID, NUM, BOOL, TEXT, TEXT, TEXT, TEXT, INT, BOOL],
};

/// Every stripe was busy: wait for exactly one (the first that covered the
/// sale in this statement's snapshot). Waiting for one row while holding no
/// other stripe is what keeps this deadlock-free against a gatherer, who
/// holds the item row and takes stripes in order; after the wait the stripe
/// is checked again and the statement returns nothing if it no longer covers.
const TAKE_WAIT: Stmt = Stmt {
    name: "stripe_take_wait",
    sql: take_sql!(
        "c AS MATERIALIZED ( \
           SELECT st.stripe \
             FROM atomic_inventory.item_stripes AS st \
             JOIN atomic_inventory.items AS i ON i.id = st.item_id \
            WHERE st.item_id = $1 AND st.quantity >= $2 AND i.track_inventory \
              AND (i.tenant_id IS NULL OR $3 OR i.tenant_id = $4) \
            ORDER BY (st.stripe + $8) % GREATEST(i.stripes, 1) \
            LIMIT 1 \
         ), s AS MATERIALIZED ( \
           SELECT st.item_id, st.stripe, i.tenant_id \
             FROM c, atomic_inventory.item_stripes AS st \
             JOIN atomic_inventory.items AS i ON i.id = st.item_id \
            WHERE st.item_id = $1 AND st.stripe = c.stripe AND st.quantity >= $2 \
              FOR UPDATE OF st)"
    ),
    args: &[UUID, NUM, BOOL, TEXT, TEXT, TEXT, TEXT, INT, BOOL],
};

/// Lock the stripes of items $1 (whose item rows the caller holds) in
/// (item, stripe) order and move all their units into the item rows.
const GATHER: Stmt = Stmt {
    name: "stripe_gather",
    sql: "WITH s AS MATERIALIZED ( \
            SELECT st.item_id, st.stripe, st.quantity FROM atomic_inventory.item_stripes AS st \
             WHERE st.item_id = ANY ($1) ORDER BY st.item_id, st.stripe FOR UPDATE \
          ), z AS ( \
            UPDATE atomic_inventory.item_stripes AS st SET quantity = 0 \
              FROM s WHERE st.item_id = s.item_id AND st.stripe = s.stripe AND s.quantity <> 0 \
          ), g AS ( \
            SELECT s.item_id, pg_catalog.sum(s.quantity) AS total FROM s GROUP BY s.item_id \
          ) \
          UPDATE atomic_inventory.items AS i SET quantity = i.quantity + g.total \
            FROM g WHERE i.id = g.item_id AND g.total <> 0",
    args: &[UUIDS],
};

/// Spread the free stock (quantity - reserved) of the striped items $1 over
/// their stripes, evenly (stripe 0 takes the remainder, fractions included);
/// the item row keeps the reserved units. Caller holds the item rows and,
/// through GATHER, their stripes.
const RESPREAD: Stmt = Stmt {
    name: "stripe_respread",
    sql: "WITH m AS MATERIALIZED ( \
            SELECT i.id, i.quantity - i.reserved AS free, i.stripes AS n \
              FROM atomic_inventory.items AS i WHERE i.id = ANY ($1) AND i.stripes > 0 \
          ), st AS ( \
            UPDATE atomic_inventory.item_stripes AS st \
               SET quantity = CASE WHEN st.stripe = 0 \
                                   THEN m.free - (m.n - 1) * pg_catalog.floor(m.free / m.n) \
                                   ELSE pg_catalog.floor(m.free / m.n) END \
              FROM m WHERE st.item_id = m.id \
          ) \
          UPDATE atomic_inventory.items AS i SET quantity = i.reserved, updated_at = pg_catalog.now() \
            FROM m WHERE i.id = m.id",
    args: &[UUIDS],
};

/// Make stripes 0 .. $2-1 exist (and no others) for item $1, all gathered
/// (empty), and record the count on the item row.
const RESHAPE: Stmt = Stmt {
    name: "stripe_reshape",
    sql: "WITH d AS ( \
            DELETE FROM atomic_inventory.item_stripes AS st WHERE st.item_id = $1 AND st.stripe >= $2 \
          ), n AS ( \
            INSERT INTO atomic_inventory.item_stripes (item_id, stripe, quantity) \
            SELECT $1, g, 0 FROM pg_catalog.generate_series(0, $2 - 1) AS g \
            ON CONFLICT (item_id, stripe) DO NOTHING \
          ) \
          UPDATE atomic_inventory.items AS i SET stripes = $2, updated_at = pg_catalog.now() \
           WHERE i.id = $1",
    args: &[UUID, INT],
};

/// Whether item $1 may sell past its stock (backorders), and whether it has
/// units in stock states (move_stock_state): striped items have neither
/// (their stripes hold free stock, never less than none, and a sale from a
/// stripe never reads the item row where non-sellable units are counted).
const BACKORDERS: Stmt = Stmt {
    name: "stripe_backorders",
    sql: "SELECT i.backorder_limit > 0, \
                 EXISTS (SELECT FROM atomic_inventory.stock_states AS s \
                          WHERE s.item_id = i.id AND s.quantity > 0) \
            FROM atomic_inventory.items AS i WHERE i.id = $1",
    args: &[UUID],
};

const STATE: Stmt = Stmt {
    name: "stripe_state",
    sql: "SELECT (i.quantity + COALESCE((SELECT pg_catalog.sum(x.quantity) \
                   FROM atomic_inventory.item_stripes AS x WHERE x.item_id = i.id), 0))::text, \
                 i.reserved::text, \
                 (SELECT pg_catalog.json_agg(x.quantity ORDER BY x.stripe) \
                    FROM atomic_inventory.item_stripes AS x WHERE x.item_id = i.id)::text \
            FROM atomic_inventory.items AS i WHERE i.id = $1",
    args: &[UUID],
};

// Stripe attempts run in a subtransaction (spi::attempt), kept only if the
// attempt took a stripe. Why: a row that `FOR UPDATE` locked and then found
// no longer qualifying (changed by a concurrent sale) stays locked until the
// transaction ends; PostgreSQL does not unlock rows. A sale whose stripe
// attempts failed would then go on to wait for the item row while holding
// stripes, and a gatherer, who holds the item row and takes all stripes in
// order, would wait for it: a deadlock (the stress test found it). Rolling
// the attempt's subtransaction back releases those locks.

/// Take a sale from one stripe of a striped item: first any unlocked stripe
/// that covers it, else wait for one. None: no single stripe covers it (or
/// the item is not striped, or not visible), and no stripe is left locked;
/// the caller then locks the item row.
pub fn take(
    client: &mut SpiClient<'_>,
    who: &Caller,
    id: Uuid,
    qty: &AnyNumeric,
    mv: &Movement,
) -> Result<Option<String>> {
    let start = crate::pg::backend::pid().rem_euclid(MAX_STRIPES);
    for stmt in [&TAKE_SKIP, &TAKE_WAIT] {
        let taken = spi::attempt(|| {
            let done = run(
                client,
                stmt,
                &[
                    id.into(),
                    qty.clone().into(),
                    who.admin.into(),
                    who.tenant.clone().into(),
                    mv.reason.clone().into(),
                    mv.reference.clone().into(),
                    mv.key.clone().into(),
                    start.into(),
                    mv.ledger.into(),
                ],
            )?;
            if done.is_empty() {
                return Ok(None);
            }
            let row = done.first();
            Ok(Some((
                row.get::<i16>(1)?.unwrap_or_default(),
                row.get::<String>(2)?.unwrap_or_default(),
            )))
        })?;
        if let Some((stripe, before)) = taken {
            let old = numeric(&before)?;
            let new = old.clone() - qty.clone();
            return Ok(Some(
                json!({"success": true, "inventory_id": id.to_string(),
                       "old_quantity": num_json(&old.to_string()),
                       "new_quantity": num_json(&new.to_string()),
                       "deducted": num_json(&qty.to_string()),
                       "striped": true, "stripe": stripe})
                .to_string(),
            ));
        }
    }
    Ok(None)
}

/// Move all stripes of `ids` (item rows already locked by the caller) into
/// their item rows. No-op for unstriped items.
pub fn gather(client: &mut SpiClient<'_>, ids: &[Uuid]) -> Result<()> {
    if !ids.is_empty() {
        run(client, &GATHER, &[ids.to_vec().into()])?;
    }
    Ok(())
}

/// Spread the free stock of the striped items among `ids` over their stripes.
pub fn respread(client: &mut SpiClient<'_>, ids: &[Uuid]) -> Result<()> {
    if !ids.is_empty() {
        run(client, &RESPREAD, &[ids.to_vec().into()])?;
    }
    Ok(())
}

/// `stripe_item`: spread item `id`'s free stock over `n` stripes (0: back
/// to one row), as whole the item row locked.
pub fn stripe(c: &mut SpiClient<'_>, who: &Caller, id: Uuid, n: i32) -> Result<String> {
    let item = Own
        .lock(c, who, &id, &AnyNumeric::from(0))?
        .ok_or_else(|| Own.not_found(vec![id.to_string()]))?;
    if !item.tracked {
        return Err(Error::invalid_input(
            "p_inventory_id",
            "names an item that does not track inventory; there is no stock to stripe",
        ));
    }
    if n > 0 {
        let found = run(c, &BACKORDERS, &[id.into()])?;
        let row = found.first();
        if row.get::<bool>(1)? == Some(true) {
            return Err(Error::invalid_input(
                "p_inventory_id",
                "names an item that takes backorders; set_backorder_limit(p_limit => 0) first",
            ));
        }
        if row.get::<bool>(2)? == Some(true) {
            return Err(Error::invalid_input(
                "p_inventory_id",
                "names an item with units in stock states (damaged, quality_control, safety_stock or incoming); move them to available or written_off first",
            ));
        }
    }
    gather(c, &[id])?;
    run(c, &RESHAPE, &[id.into(), n.into()])?;
    respread(c, &[id])?;
    let state = run(c, &STATE, &[id.into()])?;
    let row = state.first();
    let quantity = row.get::<String>(1)?.unwrap_or_default();
    let reserved = row.get::<String>(2)?.unwrap_or_default();
    let stripes: serde_json::Value = row
        .get::<String>(3)?
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| json!([]));
    Ok(
        json!({"success": true, "inventory_id": id.to_string(), "stripes": n,
              "quantity": num_json(&quantity),
              "reserved": num_json(&reserved),
              "stripe_quantities": stripes})
        .to_string(),
    )
}
