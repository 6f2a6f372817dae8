//! Striped mode for hot stock levels (flash sales).
//!
//! A single hot row serialises every sale of that item: each one holds the
//! row lock until its commit is flushed. `stripe_item(p_inventory_id,
//! p_stripes => N)` moves the item's free stock (quantity - reserved) into N
//! sub-rows of `item_stripes`; a sale then takes any sub-row that covers it
//! with `FOR UPDATE SKIP LOCKED`, so up to N sales hold locks at once.
//!
//! A level is an item at a location: the default location's row is the
//! item's own (`items`, `location_id` all zeros in `item_stripes`), any
//! other's a `stock_levels` row (`stock_levels.stripes` its count). Each
//! statement below has a twin for the other kind of row (`LEVEL_*`); the
//! default location's keep their plans and answers as they were.
//!
//! Invariants: a level's quantity is its row's quantity plus the sum of its
//! stripes; reserved units always stay in the level's row (reserve, commit
//! and release work on it as before); no stripe goes below 0 (CHECK), so no
//! sale can oversell, whatever the interleaving.
//!
//! Lock order, everywhere: the level's row, then its stripes in stripe
//! order. The sale path takes one stripe and never waits for the row after
//! it; every path that needs the whole level (a sale no single stripe
//! covers, restock, adjust, multi-line orders, reservations, transfers,
//! restriping) locks the row first, then *gathers* all stripes into it,
//! works on the row as on an unstriped level, and *respreads* the free
//! stock evenly at the end.

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
                 FROM s WHERE st.item_id = s.item_id AND st.location_id = s.location_id \
                  AND st.stripe = s.stripe \
               RETURNING st.item_id, st.stripe, s.tenant_id \
             ), led AS ( \
               INSERT INTO atomic_inventory.ledger \
                 (inventory_id, delta, quantity_after, kind, reason, reference, idempotency_key, tenant_id) \
               SELECT u.item_id, -$2, NULL, 'decrement', $5, $6, $7, u.tenant_id FROM upd AS u WHERE $9 \
             ) \
             SELECT u.stripe, \
                    ((SELECT i.quantity FROM atomic_inventory.items AS i WHERE i.id = $1) \
                     + (SELECT pg_catalog.sum(x.quantity) FROM atomic_inventory.item_stripes AS x \
                         WHERE x.item_id = $1 AND x.location_id = '00000000-0000-0000-0000-000000000000'))::text \
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
           SELECT st.item_id, st.location_id, st.stripe, i.tenant_id \
             FROM atomic_inventory.item_stripes AS st \
             JOIN atomic_inventory.items AS i ON i.id = st.item_id \
            WHERE st.item_id = $1 AND st.location_id = '00000000-0000-0000-0000-000000000000' \
              AND st.quantity >= $2 AND i.track_inventory \
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
            WHERE st.item_id = $1 AND st.location_id = '00000000-0000-0000-0000-000000000000' \
              AND st.quantity >= $2 AND i.track_inventory \
              AND (i.tenant_id IS NULL OR $3 OR i.tenant_id = $4) \
            ORDER BY (st.stripe + $8) % GREATEST(i.stripes, 1) \
            LIMIT 1 \
         ), s AS MATERIALIZED ( \
           SELECT st.item_id, st.location_id, st.stripe, i.tenant_id \
             FROM c, atomic_inventory.item_stripes AS st \
             JOIN atomic_inventory.items AS i ON i.id = st.item_id \
            WHERE st.item_id = $1 AND st.location_id = '00000000-0000-0000-0000-000000000000' \
              AND st.stripe = c.stripe AND st.quantity >= $2 \
              FOR UPDATE OF st)"
    ),
    args: &[UUID, NUM, BOOL, TEXT, TEXT, TEXT, TEXT, INT, BOOL],
};

/// Lock the stripes of items $1 (whose item rows the caller holds) in
/// (item, stripe) order and move all their units into the item rows.
const GATHER: Stmt = Stmt {
    name: "stripe_gather",
    sql: "WITH s AS MATERIALIZED ( \
            SELECT st.item_id, st.location_id, st.stripe, st.quantity \
              FROM atomic_inventory.item_stripes AS st \
             WHERE st.item_id = ANY ($1) AND st.location_id = '00000000-0000-0000-0000-000000000000' \
             ORDER BY st.item_id, st.stripe FOR UPDATE \
          ), z AS ( \
            UPDATE atomic_inventory.item_stripes AS st SET quantity = 0 \
              FROM s WHERE st.item_id = s.item_id AND st.location_id = s.location_id \
               AND st.stripe = s.stripe AND s.quantity <> 0 \
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
               AND st.location_id = '00000000-0000-0000-0000-000000000000' \
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
            DELETE FROM atomic_inventory.item_stripes AS st \
             WHERE st.item_id = $1 AND st.location_id = '00000000-0000-0000-0000-000000000000' \
               AND st.stripe >= $2 \
          ), n AS ( \
            INSERT INTO atomic_inventory.item_stripes (item_id, stripe, quantity) \
            SELECT $1, g, 0 FROM pg_catalog.generate_series(0, $2 - 1) AS g \
            ON CONFLICT (item_id, location_id, stripe) DO NOTHING \
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
                   FROM atomic_inventory.item_stripes AS x \
                  WHERE x.item_id = i.id AND x.location_id = '00000000-0000-0000-0000-000000000000'), 0))::text, \
                 i.reserved::text, \
                 (SELECT pg_catalog.json_agg(x.quantity ORDER BY x.stripe) \
                    FROM atomic_inventory.item_stripes AS x \
                   WHERE x.item_id = i.id AND x.location_id = '00000000-0000-0000-0000-000000000000')::text \
            FROM atomic_inventory.items AS i WHERE i.id = $1",
    args: &[UUID],
};

/// A sale from one stripe of a level at a location other than the default
/// one: TAKE_SKIP and TAKE_WAIT's twins ($10 the location), the location
/// checked as a sale there checks it (visible, active, sellable: levels.rs,
/// SHIFT), the ledger row naming it.
macro_rules! level_take_sql {
    ($pick:literal) => {
        concat!(
            "WITH ",
            $pick,
            ", upd AS ( \
               UPDATE atomic_inventory.item_stripes AS st SET quantity = st.quantity - $2 \
                 FROM s WHERE st.item_id = s.item_id AND st.location_id = s.location_id \
                  AND st.stripe = s.stripe \
               RETURNING st.item_id, st.location_id, st.stripe, s.tenant_id \
             ), led AS ( \
               INSERT INTO atomic_inventory.ledger \
                 (inventory_id, location_id, delta, quantity_after, kind, reason, reference, \
                  idempotency_key, tenant_id) \
               SELECT u.item_id, u.location_id, -$2, NULL, 'decrement', $5, $6, $7, u.tenant_id \
                 FROM upd AS u WHERE $9 \
             ) \
             SELECT u.stripe, \
                    ((SELECT l.quantity FROM atomic_inventory.stock_levels AS l \
                       WHERE l.item_id = $1 AND l.location_id = $10) \
                     + (SELECT pg_catalog.sum(x.quantity) FROM atomic_inventory.item_stripes AS x \
                         WHERE x.item_id = $1 AND x.location_id = $10))::text \
               FROM upd AS u"
        )
    };
}

/// TAKE_SKIP at a level: its item visible and tracked, its location
/// visible, active and sellable.
const LEVEL_TAKE_SKIP: Stmt = Stmt {
    name: "stripe_level_take_skip",
    sql: level_take_sql!(
        "s AS MATERIALIZED ( \
           SELECT st.item_id, st.location_id, st.stripe, i.tenant_id \
             FROM atomic_inventory.item_stripes AS st \
             JOIN atomic_inventory.stock_levels AS l \
               ON l.item_id = st.item_id AND l.location_id = st.location_id \
             JOIN atomic_inventory.items AS i ON i.id = st.item_id \
             JOIN atomic_inventory.locations AS o ON o.id = st.location_id \
            WHERE st.item_id = $1 AND st.location_id = $10 AND st.quantity >= $2 \
              AND i.track_inventory AND o.active AND o.sellable \
              AND (i.tenant_id IS NULL OR $3 OR i.tenant_id = $4) \
              AND (o.tenant_id IS NULL OR $3 OR o.tenant_id = $4) \
            ORDER BY (st.stripe + $8) % GREATEST(l.stripes, 1) \
            LIMIT 1 \
              FOR UPDATE OF st SKIP LOCKED)"
    ),
    args: &[UUID, NUM, BOOL, TEXT, TEXT, TEXT, TEXT, INT, BOOL, UUID],
};

/// TAKE_WAIT at a level (the same reasoning: one stripe waited for, while
/// holding no other).
const LEVEL_TAKE_WAIT: Stmt = Stmt {
    name: "stripe_level_take_wait",
    sql: level_take_sql!(
        "c AS MATERIALIZED ( \
           SELECT st.stripe \
             FROM atomic_inventory.item_stripes AS st \
             JOIN atomic_inventory.stock_levels AS l \
               ON l.item_id = st.item_id AND l.location_id = st.location_id \
             JOIN atomic_inventory.items AS i ON i.id = st.item_id \
             JOIN atomic_inventory.locations AS o ON o.id = st.location_id \
            WHERE st.item_id = $1 AND st.location_id = $10 AND st.quantity >= $2 \
              AND i.track_inventory AND o.active AND o.sellable \
              AND (i.tenant_id IS NULL OR $3 OR i.tenant_id = $4) \
              AND (o.tenant_id IS NULL OR $3 OR o.tenant_id = $4) \
            ORDER BY (st.stripe + $8) % GREATEST(l.stripes, 1) \
            LIMIT 1 \
         ), s AS MATERIALIZED ( \
           SELECT st.item_id, st.location_id, st.stripe, i.tenant_id \
             FROM c, atomic_inventory.item_stripes AS st \
             JOIN atomic_inventory.items AS i ON i.id = st.item_id \
            WHERE st.item_id = $1 AND st.location_id = $10 AND st.stripe = c.stripe \
              AND st.quantity >= $2 \
              FOR UPDATE OF st)"
    ),
    args: &[UUID, NUM, BOOL, TEXT, TEXT, TEXT, TEXT, INT, BOOL, UUID],
};

/// GATHER for levels ($1[k], $2[k]) whose rows the caller holds: their
/// stripes locked in (item, location, stripe) order, moved into the rows.
const LEVEL_GATHER: Stmt = Stmt {
    name: "stripe_level_gather",
    sql: "WITH s AS MATERIALIZED ( \
            SELECT st.item_id, st.location_id, st.stripe, st.quantity \
              FROM atomic_inventory.item_stripes AS st \
             WHERE (st.item_id, st.location_id) IN \
                   (SELECT k.i, k.l FROM ROWS FROM (pg_catalog.unnest($1::uuid[]), \
                                                    pg_catalog.unnest($2::uuid[])) AS k(i, l)) \
             ORDER BY st.item_id, st.location_id, st.stripe FOR UPDATE \
          ), z AS ( \
            UPDATE atomic_inventory.item_stripes AS st SET quantity = 0 \
              FROM s WHERE st.item_id = s.item_id AND st.location_id = s.location_id \
               AND st.stripe = s.stripe AND s.quantity <> 0 \
          ), g AS ( \
            SELECT s.item_id, s.location_id, pg_catalog.sum(s.quantity) AS total \
              FROM s GROUP BY s.item_id, s.location_id \
          ) \
          UPDATE atomic_inventory.stock_levels AS l SET quantity = l.quantity + g.total \
            FROM g WHERE l.item_id = g.item_id AND l.location_id = g.location_id AND g.total <> 0",
    args: &[UUIDS, UUIDS],
};

/// RESPREAD for the striped levels among ($1[k], $2[k]): each level's row
/// keeps its reserved units, its stripes share the rest.
const LEVEL_RESPREAD: Stmt = Stmt {
    name: "stripe_level_respread",
    sql: "WITH m AS MATERIALIZED ( \
            SELECT l.item_id, l.location_id, l.quantity - l.reserved AS free, l.stripes AS n \
              FROM atomic_inventory.stock_levels AS l \
             WHERE (l.item_id, l.location_id) IN \
                   (SELECT k.i, k.l FROM ROWS FROM (pg_catalog.unnest($1::uuid[]), \
                                                    pg_catalog.unnest($2::uuid[])) AS k(i, l)) \
               AND l.stripes > 0 \
          ), st AS ( \
            UPDATE atomic_inventory.item_stripes AS st \
               SET quantity = CASE WHEN st.stripe = 0 \
                                   THEN m.free - (m.n - 1) * pg_catalog.floor(m.free / m.n) \
                                   ELSE pg_catalog.floor(m.free / m.n) END \
              FROM m WHERE st.item_id = m.item_id AND st.location_id = m.location_id \
          ) \
          UPDATE atomic_inventory.stock_levels AS l \
             SET quantity = l.reserved, updated_at = pg_catalog.now() \
            FROM m WHERE l.item_id = m.item_id AND l.location_id = m.location_id",
    args: &[UUIDS, UUIDS],
};

/// RESHAPE for level ($1, $3): stripes 0 .. $2-1, all empty, the count on
/// the level's row.
const LEVEL_RESHAPE: Stmt = Stmt {
    name: "stripe_level_reshape",
    sql: "WITH d AS ( \
            DELETE FROM atomic_inventory.item_stripes AS st \
             WHERE st.item_id = $1 AND st.location_id = $3 AND st.stripe >= $2 \
          ), n AS ( \
            INSERT INTO atomic_inventory.item_stripes (item_id, location_id, stripe, quantity) \
            SELECT $1, $3, g, 0 FROM pg_catalog.generate_series(0, $2 - 1) AS g \
            ON CONFLICT (item_id, location_id, stripe) DO NOTHING \
          ) \
          UPDATE atomic_inventory.stock_levels AS l SET stripes = $2, updated_at = pg_catalog.now() \
           WHERE l.item_id = $1 AND l.location_id = $3",
    args: &[UUID, INT, UUID],
};

/// STATE of level ($1, $2).
const LEVEL_STATE: Stmt = Stmt {
    name: "stripe_level_state",
    sql: "SELECT (l.quantity + COALESCE((SELECT pg_catalog.sum(x.quantity) \
                   FROM atomic_inventory.item_stripes AS x \
                  WHERE x.item_id = l.item_id AND x.location_id = l.location_id), 0))::text, \
                 l.reserved::text, \
                 (SELECT pg_catalog.json_agg(x.quantity ORDER BY x.stripe) \
                    FROM atomic_inventory.item_stripes AS x \
                   WHERE x.item_id = l.item_id AND x.location_id = l.location_id)::text \
            FROM atomic_inventory.stock_levels AS l WHERE l.item_id = $1 AND l.location_id = $2",
    args: &[UUID, UUID],
};

// Stripe attempts run in a subtransaction (spi::attempt), kept only if the
// attempt took a stripe. Why: a row that `FOR UPDATE` locked and then found
// no longer qualifying (changed by a concurrent sale) stays locked until the
// transaction ends; PostgreSQL does not unlock rows. A sale whose stripe
// attempts failed would then go on to wait for the item row while holding
// stripes, and a gatherer, who holds the item row and takes all stripes in
// order, would wait for it: a deadlock (the stress test found it). Rolling
// the attempt's subtransaction back releases those locks.

/// Take a sale from one stripe of a striped item at the default location:
/// first any unlocked stripe that covers it, else wait for one. None: no
/// single stripe covers it (or the item is not striped, or not visible),
/// and no stripe is left locked; the caller then locks the item row.
pub fn take(
    client: &mut SpiClient<'_>,
    who: &Caller,
    id: Uuid,
    qty: &AnyNumeric,
    mv: &Movement,
) -> Result<Option<String>> {
    Ok(
        take_from(client, who, id, None, qty, mv)?.map(|(stripe, old)| {
            let new = old.clone() - qty.clone();
            json!({"success": true, "inventory_id": id.to_string(),
               "old_quantity": num_json(&old.to_string()),
               "new_quantity": num_json(&new.to_string()),
               "deducted": num_json(&qty.to_string()),
               "striped": true, "stripe": stripe})
            .to_string()
        }),
    )
}

/// `take` at a level other than the default location's; the answer names
/// its location, as every sale there does.
pub fn take_at(
    client: &mut SpiClient<'_>,
    who: &Caller,
    id: Uuid,
    location: Uuid,
    qty: &AnyNumeric,
    mv: &Movement,
) -> Result<Option<String>> {
    Ok(
        take_from(client, who, id, Some(location), qty, mv)?.map(|(stripe, old)| {
            let new = old.clone() - qty.clone();
            json!({"success": true, "inventory_id": id.to_string(),
                   "location_id": location.to_string(),
                   "old_quantity": num_json(&old.to_string()),
                   "new_quantity": num_json(&new.to_string()),
                   "deducted": num_json(&qty.to_string()),
                   "striped": true, "stripe": stripe})
            .to_string()
        }),
    )
}

/// The stripe taken and the level's total before the sale (as the
/// statement's snapshot sees it).
fn take_from(
    client: &mut SpiClient<'_>,
    who: &Caller,
    id: Uuid,
    location: Option<Uuid>,
    qty: &AnyNumeric,
    mv: &Movement,
) -> Result<Option<(i16, AnyNumeric)>> {
    let start = crate::pg::backend::pid().rem_euclid(MAX_STRIPES);
    let stmts: [&Stmt; 2] = match location {
        None => [&TAKE_SKIP, &TAKE_WAIT],
        Some(_) => [&LEVEL_TAKE_SKIP, &LEVEL_TAKE_WAIT],
    };
    for (n, stmt) in stmts.into_iter().enumerate() {
        let mut args = vec![
            id.into(),
            qty.clone().into(),
            who.admin.into(),
            who.tenant.clone().into(),
            mv.reason.clone().into(),
            mv.reference.clone().into(),
            mv.key.clone().into(),
            start.into(),
            mv.ledger.into(),
        ];
        if let Some(l) = location {
            args.push(l.into());
        }
        let one = |client: &mut SpiClient<'_>| -> Result<Option<(i16, String)>> {
            let done = run(client, stmt, &args)?;
            if done.is_empty() {
                return Ok(None);
            }
            let row = done.first();
            Ok(Some((
                row.get::<i16>(1)?.unwrap_or_default(),
                row.get::<String>(2)?.unwrap_or_default(),
            )))
        };
        // The SKIP LOCKED attempt runs without waiting: within its one
        // statement it may lock a stripe that a concurrent sale left short
        // (the lock is kept as the scan goes on) and then, following
        // another stripe's update chain, wait for a gatherer that holds
        // that stripe and waits for ours (PostgreSQL follows an update
        // chain without the skip policy, spi::without_waiting). Capped, the
        // wait ends as None long before a deadlock, the attempt's locks are
        // released, and the waiting statement waits for one stripe holding
        // none. The same at the default location and at any other level.
        let taken = if n == 0 {
            spi::attempt_without_waiting(client, one)?
        } else {
            spi::attempt(|| one(client))?
        };
        if let Some((stripe, before)) = taken {
            return Ok(Some((stripe, numeric(&before)?)));
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

/// `gather` for levels other than the default location's, as (item,
/// location) pairs in lock order, their rows already locked by the caller.
/// No-op for unstriped levels.
pub fn gather_levels(client: &mut SpiClient<'_>, keys: &[(Uuid, Uuid)]) -> Result<()> {
    if !keys.is_empty() {
        let (items, locations): (Vec<Uuid>, Vec<Uuid>) = keys.iter().copied().unzip();
        run(client, &LEVEL_GATHER, &[items.into(), locations.into()])?;
    }
    Ok(())
}

/// `respread` for levels other than the default location's.
pub fn respread_levels(client: &mut SpiClient<'_>, keys: &[(Uuid, Uuid)]) -> Result<()> {
    if !keys.is_empty() {
        let (items, locations): (Vec<Uuid>, Vec<Uuid>) = keys.iter().copied().unzip();
        run(client, &LEVEL_RESPREAD, &[items.into(), locations.into()])?;
    }
    Ok(())
}

/// `stripe_item`: spread item `id`'s free stock at the default location
/// over `n` stripes (0: back to one row), as whole the item row locked.
/// `named`: the location the caller named (the default one's id), which
/// the answer repeats; None answers as before levels could be striped.
pub fn stripe(
    c: &mut SpiClient<'_>,
    who: &Caller,
    id: Uuid,
    n: i32,
    named: Option<Uuid>,
) -> Result<String> {
    let item = Own
        .lock(c, who, &id, &AnyNumeric::from(0))?
        .ok_or_else(|| Own.not_found(vec![id.to_string()]))?;
    if !item.tracked {
        return Err(untracked());
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
    answer(state, id, named, n)
}

/// `stripe_item` at a level other than the default location's, whose row
/// the caller holds locked (levels.rs, `stripe_level`): gather, reshape,
/// respread. Levels take no backorders and keep no stock states, so
/// nothing else bars them.
pub fn stripe_level(c: &mut SpiClient<'_>, id: Uuid, location: Uuid, n: i32) -> Result<String> {
    gather_levels(c, &[(id, location)])?;
    run(c, &LEVEL_RESHAPE, &[id.into(), n.into(), location.into()])?;
    respread_levels(c, &[(id, location)])?;
    let state = run(c, &LEVEL_STATE, &[id.into(), location.into()])?;
    answer(state, id, Some(location), n)
}

/// The error for striping an item that does not track inventory.
pub fn untracked() -> Error {
    Error::invalid_input(
        "p_inventory_id",
        "names an item that does not track inventory; there is no stock to stripe",
    )
}

/// stripe_item's answer from STATE or LEVEL_STATE, with `location_id` if
/// the caller named one.
fn answer(
    state: pgrx::spi::SpiTupleTable<'_>,
    id: Uuid,
    location: Option<Uuid>,
    n: i32,
) -> Result<String> {
    let row = state.first();
    let quantity = row.get::<String>(1)?.unwrap_or_default();
    let reserved = row.get::<String>(2)?.unwrap_or_default();
    let stripes: serde_json::Value = row
        .get::<String>(3)?
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| json!([]));
    let mut out = json!({"success": true, "inventory_id": id.to_string(), "stripes": n,
                         "quantity": num_json(&quantity),
                         "reserved": num_json(&reserved),
                         "stripe_quantities": stripes});
    if let Some(l) = location {
        out["location_id"] = json!(l.to_string());
    }
    Ok(out.to_string())
}
