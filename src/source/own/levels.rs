//! An item's stock at a location other than the default one
//! (`atomic_inventory.stock_levels`) as a stock source, and the two sides
//! of a transfer, which may be the default location's (the item's own row).
//!
//! Concurrency: as for items, each write is one guarded UPDATE (its
//! condition in the WHERE clause, re-checked on the row's newest version
//! after a concurrent writer commits). A level's row is locked alone: the
//! item's own row is not touched, so sales at different locations don't
//! queue behind each other. Rows of several locations are locked in
//! (item, location id) order, the default location (id all zeros) first,
//! so a transfer A -> B and one B -> A queue instead of deadlocking.

use super::{stripes, Own};
use crate::core::caller::Caller;
use crate::core::movement::{num_json, Moved, Movement, Sold};
use crate::core::validate;
use crate::error::{Error, Result};
use crate::pg::spi::{run, Stmt};
use crate::source::{Lines, LockedLines, RowState, StockSource};
use pgrx::pg_sys::{self, Oid};
use pgrx::spi::SpiClient;
use pgrx::{AnyNumeric, Uuid};
use serde_json::json;

const UUID: Oid = pg_sys::UUIDOID;
const NUM: Oid = pg_sys::NUMERICOID;
const TEXT: Oid = pg_sys::TEXTOID;
const BOOL: Oid = pg_sys::BOOLOID;

/// The default location (id all zeros): it holds every item's own row.
pub fn is_default(location: &Uuid) -> bool {
    location.as_bytes() == &[0u8; 16]
}

/// The default location's id.
pub fn default_location() -> Uuid {
    Uuid::from_bytes([0; 16])
}

/// An item at a location.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct LevelKey {
    pub item: Uuid,
    pub location: Uuid,
}

/// Stock levels at locations other than the default one. `sale`: the
/// movement is a sale or hold, which a location that is not sellable
/// refuses.
pub struct Level {
    pub sale: bool,
}

/// Move one level's quantity by $3 (signed), if available stays at 0 or
/// more, with its ledger row if $12: the old and new quantity. The location
/// must be visible and active ($13 lets a transfer move stock out of an
/// inactive one) and, for a sale ($9), sellable; the item visible, and
/// tracked unless the quantity grows. A striped level's row holds only part
/// of its stock: it is written only once its stripes are gathered ($14).
const SHIFT: Stmt = Stmt {
    name: "level_shift",
    sql: "WITH upd AS ( \
            UPDATE atomic_inventory.stock_levels AS l \
               SET quantity = l.quantity + $3, updated_at = pg_catalog.now() \
              FROM atomic_inventory.items AS i, atomic_inventory.locations AS o \
             WHERE l.item_id = $1 AND l.location_id = $2 \
               AND i.id = l.item_id AND o.id = l.location_id \
               AND (i.track_inventory OR $3 > 0) \
               AND (i.tenant_id IS NULL OR $4 OR i.tenant_id = $5) \
               AND (o.tenant_id IS NULL OR $4 OR o.tenant_id = $5) \
               AND (o.active OR $13) AND (o.sellable OR NOT $9) \
               AND l.quantity - l.reserved + $3 >= 0 AND (l.stripes = 0 OR $14) \
            RETURNING l.item_id, l.location_id, l.quantity, i.tenant_id \
          ), led AS ( \
            INSERT INTO atomic_inventory.ledger \
              (inventory_id, location_id, delta, quantity_after, kind, reason, reference, \
               idempotency_key, tenant_id, transfer_id) \
            SELECT u.item_id, u.location_id, $3, u.quantity, $10, $6, $7, $8, u.tenant_id, $11 \
              FROM upd AS u WHERE $12 \
          ) \
          SELECT (u.quantity - $3)::text, u.quantity::text FROM upd AS u",
    args: &[
        UUID, UUID, NUM, BOOL, TEXT, TEXT, TEXT, TEXT, BOOL, TEXT, UUID, BOOL, BOOL, BOOL,
    ],
};

/// The same move for the default location (the item's own row, its stripes
/// gathered into it if it is striped): a transfer's side there.
const SHIFT_DEFAULT: Stmt = Stmt {
    name: "level_shift_default",
    sql: "WITH upd AS ( \
            UPDATE atomic_inventory.items AS i \
               SET quantity = i.quantity + $2, updated_at = pg_catalog.now() \
             WHERE i.id = $1 AND i.track_inventory \
               AND (i.tenant_id IS NULL OR $3 OR i.tenant_id = $4) \
               AND ($2 > 0 OR i.quantity - i.reserved - i.unsellable + $2 >= 0) \
            RETURNING i.id, i.quantity, i.tenant_id \
          ), led AS ( \
            INSERT INTO atomic_inventory.ledger \
              (inventory_id, delta, quantity_after, kind, reason, reference, idempotency_key, \
               tenant_id, transfer_id) \
            SELECT u.id, $2, u.quantity, 'transfer', $5, $6, $7, u.tenant_id, $8 \
              FROM upd AS u WHERE $9 \
          ) \
          SELECT (u.quantity - $2)::text, u.quantity::text FROM upd AS u",
    args: &[UUID, NUM, BOOL, TEXT, TEXT, TEXT, TEXT, UUID, BOOL],
};

/// A transfer between two levels, neither at the default location, in one
/// statement: $2/$3 and $4/$5 are the two sides' locations and signed
/// moves, in ascending location order (the lock order of levels.rs), $6 the
/// destination. Its guard, checked once before a row is read (a one-time
/// filter over an InitPlan, on the statement's snapshot): both levels
/// exist, neither is striped, the item is visible and tracks stock, both
/// locations are visible and the destination active, and the source covers
/// the transfer. When it
/// fails nothing is touched and the transfer takes the path that creates
/// the destination's level, waits for a restock in flight at the source
/// (a row the snapshot shows short is not waited for by an UPDATE), or
/// says what is wrong. When it holds,
/// the UPDATE moves each side whose stock allows it, locking the two rows
/// in the order of the line array: its conditions on the level's key are
/// written `= ANY (ARRAY[d.x])`, which only a nested loop driven by the
/// array can use (as in lines.rs), planned with index scans only
/// (plans::generic_by_index), so no scan of levels drives it; a side it
/// leaves can only be a source a concurrent movement left short after the
/// UPDATE waited for it (re-checked on the newest version), and the call's
/// error then undoes the other side. Two ledger rows ($12) share the transfer id.
///
/// Measured: one statement instead of five (create the destination's level
/// if missing, lock each side, move each side) for a transfer between two
/// stores (docs/benchmarks.md, `transfer`).
pub(crate) const MOVE_BETWEEN: Stmt = Stmt {
    name: "level_move_between",
    sql: "WITH upd AS ( \
            UPDATE atomic_inventory.stock_levels AS l \
               SET quantity = l.quantity + d.delta, updated_at = pg_catalog.now() \
              FROM (VALUES ($1::uuid, $2::uuid, $3::numeric), ($1::uuid, $4::uuid, $5::numeric)) \
                   AS d(item, loc, delta) \
             WHERE l.item_id = ANY (ARRAY[d.item]) AND l.location_id = ANY (ARRAY[d.loc]) \
               AND l.quantity - l.reserved + d.delta >= 0 \
               AND (SELECT count(*) FROM atomic_inventory.stock_levels AS x \
                      JOIN atomic_inventory.items AS i ON i.id = x.item_id \
                      JOIN atomic_inventory.locations AS o ON o.id = x.location_id \
                     WHERE x.item_id = $1 AND x.location_id = ANY (ARRAY[$2::uuid, $4::uuid]) \
                       AND i.track_inventory \
                       AND (i.tenant_id IS NULL OR $7 OR i.tenant_id = $8) \
                       AND (o.tenant_id IS NULL OR $7 OR o.tenant_id = $8) \
                       AND (o.active OR o.id <> $6) AND x.stripes = 0 \
                       AND x.quantity - x.reserved + CASE x.location_id WHEN $2 THEN $3 ELSE $5 END >= 0) = 2 \
            RETURNING l.location_id, l.quantity, d.delta \
          ), led AS ( \
            INSERT INTO atomic_inventory.ledger \
              (inventory_id, location_id, delta, quantity_after, kind, reason, reference, \
               idempotency_key, tenant_id, transfer_id) \
            SELECT $1, u.location_id, u.delta, u.quantity, 'transfer', $9, $10, $11, \
                   (SELECT i.tenant_id FROM atomic_inventory.items AS i WHERE i.id = $1), $13 \
              FROM upd AS u WHERE $12 \
          ) \
          SELECT u.location_id, (u.quantity - u.delta)::text, u.quantity::text FROM upd AS u",
    args: &[
        UUID, UUID, NUM, UUID, NUM, UUID, BOOL, TEXT, TEXT, TEXT, TEXT, BOOL, UUID,
    ],
};

/// A level's available units, read without a lock (for an error's detail).
const AVAILABLE: Stmt = Stmt {
    name: "level_available",
    sql: "SELECT (l.quantity - l.reserved)::text FROM atomic_inventory.stock_levels AS l \
           WHERE l.item_id = $1 AND l.location_id = $2",
    args: &[UUID, UUID],
};

/// An empty level for a visible item at a visible, active location (the
/// first restock or transfer there); nothing if it exists.
const CREATE: Stmt = Stmt {
    name: "level_create",
    sql: "INSERT INTO atomic_inventory.stock_levels (item_id, location_id) \
          SELECT i.id, o.id FROM atomic_inventory.items AS i, atomic_inventory.locations AS o \
           WHERE i.id = $1 AND o.id = $2 AND o.active \
             AND o.id <> '00000000-0000-0000-0000-000000000000' \
             AND (i.tenant_id IS NULL OR $3 OR i.tenant_id = $4) \
             AND (o.tenant_id IS NULL OR $3 OR o.tenant_id = $4) \
          ON CONFLICT (item_id, location_id) DO NOTHING",
    args: &[UUID, UUID, BOOL, TEXT],
};

/// Lock one visible level and report its state.
const LOCK: Stmt = Stmt {
    name: "level_lock",
    sql: "SELECT l.quantity::text, l.reserved::text, (l.quantity - l.reserved)::text, \
                 i.track_inventory, (l.quantity - l.reserved >= $5), o.active, o.sellable, \
                 l.stripes > 0 \
            FROM atomic_inventory.stock_levels AS l \
            JOIN atomic_inventory.items AS i ON i.id = l.item_id \
            JOIN atomic_inventory.locations AS o ON o.id = l.location_id \
           WHERE l.item_id = $1 AND l.location_id = $2 \
             AND (i.tenant_id IS NULL OR $3 OR i.tenant_id = $4) \
             AND (o.tenant_id IS NULL OR $3 OR o.tenant_id = $4) \
             FOR UPDATE OF l",
    args: &[UUID, UUID, BOOL, TEXT, NUM],
};

/// Set a level's quantity (its row locked), with its ledger row if $6.
const SET: Stmt = Stmt {
    name: "level_set",
    sql: "WITH old AS (SELECT o.quantity FROM atomic_inventory.stock_levels AS o \
                        WHERE o.item_id = $1 AND o.location_id = $2), \
          upd AS ( \
            UPDATE atomic_inventory.stock_levels AS l \
               SET quantity = $3, updated_at = pg_catalog.now() \
             WHERE l.item_id = $1 AND l.location_id = $2 \
            RETURNING l.item_id, l.location_id, l.quantity \
          ), led AS ( \
            INSERT INTO atomic_inventory.ledger \
              (inventory_id, location_id, delta, quantity_after, kind, reason, reference, \
               idempotency_key, tenant_id) \
            SELECT u.item_id, u.location_id, u.quantity - old.quantity, u.quantity, 'adjust', \
                   $4, $5, $7, (SELECT i.tenant_id FROM atomic_inventory.items AS i WHERE i.id = $1) \
              FROM upd AS u, old WHERE $6 \
          ) \
          SELECT old.quantity::text, u.quantity::text FROM upd AS u, old",
    args: &[UUID, UUID, NUM, TEXT, TEXT, BOOL, TEXT],
};

/// Why a level could not be used: the item visible, the location visible,
/// active, sellable, and whether the level exists.
const DIAGNOSE: Stmt = Stmt {
    name: "level_diagnose",
    sql: "SELECT EXISTS (SELECT FROM atomic_inventory.items AS i \
                          WHERE i.id = $1 AND (i.tenant_id IS NULL OR $3 OR i.tenant_id = $4)), \
                 o.id IS NOT NULL, COALESCE(o.active, false), COALESCE(o.sellable, false), \
                 EXISTS (SELECT FROM atomic_inventory.stock_levels AS l \
                          WHERE l.item_id = $1 AND l.location_id = $2) \
            FROM (SELECT 1) AS one \
            LEFT JOIN atomic_inventory.locations AS o \
                   ON o.id = $2 AND (o.tenant_id IS NULL OR $3 OR o.tenant_id = $4)",
    args: &[UUID, UUID, BOOL, TEXT],
};

fn moved_row(done: pgrx::spi::SpiTupleTable<'_>) -> Result<Option<Moved>> {
    if done.is_empty() {
        return Ok(None);
    }
    let row = done.first();
    Ok(Some(Moved {
        old: row.get::<String>(1)?.unwrap_or_default(),
        new: row.get::<String>(2)?.unwrap_or_default(),
        backordered: None,
    }))
}

/// The error for a level that a guarded write or a lock did not find
/// usable, most basic reason first; None if nothing is wrong with it (the
/// write was refused for its stock, or skipped).
pub fn diagnose(
    c: &mut SpiClient<'_>,
    who: &Caller,
    key: &LevelKey,
    sale: bool,
    inactive_ok: bool,
) -> Result<Option<Error>> {
    let t = run(
        c,
        &DIAGNOSE,
        &[
            key.item.into(),
            key.location.into(),
            who.admin.into(),
            who.tenant.clone().into(),
        ],
    )?;
    let row = t.first();
    let item = row.get::<bool>(1)?.unwrap_or(false);
    let location = row.get::<bool>(2)?.unwrap_or(false);
    let active = row.get::<bool>(3)?.unwrap_or(false);
    let sellable = row.get::<bool>(4)?.unwrap_or(false);
    let level = row.get::<bool>(5)?.unwrap_or(false);
    let loc = validate::uuid_text(&key.location);
    Ok(if !item {
        Some(Error::NotFound {
            entity: "inventory item",
            ids: vec![validate::uuid_text(&key.item)],
        })
    } else if !location {
        Some(Error::NotFound {
            entity: "location",
            ids: vec![loc],
        })
    } else if !active && !inactive_ok {
        Some(Error::LocationUnavailable {
            location_id: loc,
            why: "inactive".into(),
        })
    } else if sale && !sellable {
        Some(Error::LocationUnavailable {
            location_id: loc,
            why: "not sellable".into(),
        })
    } else if !level {
        Some(Error::LevelNotFound {
            inventory_id: validate::uuid_text(&key.item),
            location_id: loc,
        })
    } else {
        None
    })
}

/// Why a call may not use the level of `key`, which its lock statement did
/// not find (`locked` false) or locked unusable (`locked` true): as
/// `diagnose` says now, or, when that finds nothing wrong (a level created,
/// or a location made usable, by a transaction that committed after the
/// lock statement's snapshot), as the lock statement saw it. The call then
/// comes before that transaction, as if it had arrived a moment earlier;
/// locking the level now would take it out of the lock order when rows
/// after it are held (level_orders.rs).
pub fn refusal(
    c: &mut SpiClient<'_>,
    who: &Caller,
    key: &LevelKey,
    sale: bool,
    inactive_ok: bool,
    locked: bool,
) -> Result<Error> {
    Ok(match diagnose(c, who, key, sale, inactive_ok)? {
        Some(e) => e,
        None if locked => Error::LocationUnavailable {
            location_id: validate::uuid_text(&key.location),
            why: if sale {
                "inactive or not sellable"
            } else {
                "inactive"
            }
            .into(),
        },
        None => Error::LevelNotFound {
            inventory_id: validate::uuid_text(&key.item),
            location_id: validate::uuid_text(&key.location),
        },
    })
}

impl Level {
    /// Move `delta` (signed) at `key`, any location (the default one's is
    /// the item row): a transfer's side, ledger kind `transfer` under
    /// `transfer`. None: refused (available would fall below 0).
    pub fn shift_at(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &LevelKey,
        delta: &AnyNumeric,
        mv: &Movement,
        transfer: Uuid,
    ) -> Result<Option<Moved>> {
        let [r, f, k] = mv.ledger_params();
        let done = if is_default(&key.location) {
            run(
                c,
                &SHIFT_DEFAULT,
                &[
                    key.item.into(),
                    delta.clone().into(),
                    who.admin.into(),
                    who.tenant.clone().into(),
                    r,
                    f,
                    k,
                    transfer.into(),
                    mv.ledger.into(),
                ],
            )?
        } else {
            run(
                c,
                &SHIFT,
                &[
                    key.item.into(),
                    key.location.into(),
                    delta.clone().into(),
                    who.admin.into(),
                    who.tenant.clone().into(),
                    r,
                    f,
                    k,
                    false.into(),
                    "transfer".into(),
                    transfer.into(),
                    mv.ledger.into(),
                    // stock may leave an inactive location, never enter one
                    (delta.clone() < AnyNumeric::from(0)).into(),
                    // a transfer's side is locked, its stripes gathered
                    true.into(),
                ],
            )?
        };
        moved_row(done)
    }

    /// Move `qty` units of `item` from one level to another, neither at the
    /// default location, in one statement (MOVE_BETWEEN): Some(the source's
    /// and the destination's old and new quantity), or None when its guard
    /// stopped it (a level missing, the item or a location not usable),
    /// nothing touched. A source short of stock is INSUFFICIENT_INVENTORY.
    #[allow(clippy::too_many_arguments)]
    pub fn move_between(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        item: Uuid,
        from: Uuid,
        to: Uuid,
        qty: &AnyNumeric,
        mv: &Movement,
        transfer: Uuid,
    ) -> Result<Option<(Moved, Moved)>> {
        let out = AnyNumeric::from(0) - qty.clone();
        // ascending location order, as PostgreSQL orders uuids (bytewise)
        let (first, second) = if from.as_bytes() < to.as_bytes() {
            ((from, out), (to, qty.clone()))
        } else {
            ((to, qty.clone()), (from, out))
        };
        let [r, f, k] = mv.ledger_params();
        // its generic plan, index scans only: the lock order (pg/plans.rs)
        let done = crate::pg::plans::generic_by_index(|| {
            run(
                c,
                &MOVE_BETWEEN,
                &[
                    item.into(),
                    first.0.into(),
                    first.1.into(),
                    second.0.into(),
                    second.1.into(),
                    to.into(),
                    who.admin.into(),
                    who.tenant.clone().into(),
                    r,
                    f,
                    k,
                    mv.ledger.into(),
                    transfer.into(),
                ],
            )
        })?;
        let (mut src, mut dst) = (None, None);
        for row in done {
            let at = row.get::<Uuid>(1)?;
            let moved = Moved {
                old: row.get::<String>(2)?.unwrap_or_default(),
                new: row.get::<String>(3)?.unwrap_or_default(),
                backordered: None,
            };
            if at == Some(from) {
                src = Some(moved);
            } else if at == Some(to) {
                dst = Some(moved);
            }
        }
        match (src, dst) {
            (Some(s), Some(d)) => Ok(Some((s, d))),
            // no row: the guard stopped it (when it holds, the destination,
            // which only gains, is always moved)
            (None, None) => Ok(None),
            // the side left is a source short of stock; the error undoes the
            // destination's move
            (None, Some(_)) => {
                let t = run(c, &AVAILABLE, &[item.into(), from.into()])?;
                let available = if t.is_empty() {
                    "0".to_string()
                } else {
                    t.first().get::<String>(1)?.unwrap_or_default()
                };
                Err(Error::Insufficient {
                    lines: vec![crate::error::Shortfall {
                        inventory_id: validate::uuid_text(&item),
                        available,
                        requested: qty.normalize().to_string(),
                    }],
                })
            }
            (Some(_), None) => Err(Error::Internal(
                "a transfer's destination level vanished while it was being moved".into(),
            )),
        }
    }

    /// Lock the row of `key`, any location; an error saying why it can't be
    /// used if it isn't there. `inactive_ok`: an inactive location will do
    /// (a transfer's source).
    pub fn lock_at(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &LevelKey,
        need: &AnyNumeric,
        inactive_ok: bool,
    ) -> Result<RowState> {
        if is_default(&key.location) {
            return Own
                .lock(c, who, &key.item, need)?
                .ok_or_else(|| Error::NotFound {
                    entity: "inventory item",
                    ids: vec![validate::uuid_text(&key.item)],
                });
        }
        self.lock_row(c, who, key, need, inactive_ok)
    }

    /// LOCK, and the checks of the location: an error saying why the level
    /// can't be used unless it is there, at an active location (or
    /// `inactive_ok`) that is sellable if this is a sale.
    ///
    /// A level its creator commits while LOCK runs is not in LOCK's
    /// snapshot, yet `diagnose`, a statement later, finds it (and so for a
    /// location made usable meanwhile): then LOCK runs once more, in the
    /// same place in the lock order (only rows before this one are held),
    /// and sees it. Measured by pg_test/level_race.py: without this, a
    /// racing call failed XX000 in 21 of 200 rounds.
    fn lock_row(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &LevelKey,
        need: &AnyNumeric,
        inactive_ok: bool,
    ) -> Result<RowState> {
        let mut locked = false;
        for _ in 0..2 {
            match self.try_lock_row(c, who, key, need, inactive_ok)? {
                Ok(row) => return Ok(row),
                Err(seen) => locked = seen,
            }
            if let Some(e) = diagnose(c, who, key, self.sale, inactive_ok)? {
                return Err(e);
            }
        }
        Err(refusal(c, who, key, self.sale, inactive_ok, locked)?)
    }

    /// One LOCK of `key`: its state, or Err(whether it was locked: found,
    /// at a location not usable for this movement).
    fn try_lock_row(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &LevelKey,
        need: &AnyNumeric,
        inactive_ok: bool,
    ) -> Result<std::result::Result<RowState, bool>> {
        let state = run(
            c,
            &LOCK,
            &[
                key.item.into(),
                key.location.into(),
                who.admin.into(),
                who.tenant.clone().into(),
                need.clone().into(),
            ],
        )?;
        let found = if state.is_empty() {
            None
        } else {
            let row = state.first();
            let usable = (row.get::<bool>(6)?.unwrap_or(false) || inactive_ok)
                && (row.get::<bool>(7)?.unwrap_or(false) || !self.sale);
            Some((
                usable,
                RowState {
                    quantity: row.get::<String>(1)?.unwrap_or_default(),
                    reserved: row.get::<String>(2)?.unwrap_or_default(),
                    available: row.get::<String>(3)?.unwrap_or_default(),
                    tracked: row.get::<bool>(4)?.unwrap_or(true),
                    enough: row.get::<bool>(5)?.unwrap_or(false),
                    striped: row.get::<bool>(8)?.unwrap_or(false),
                },
            ))
        };
        Ok(match found {
            Some((true, row)) => Ok(row),
            Some((false, _)) => Err(true),
            None => Err(false),
        })
    }

    /// Make sure the level of `key` exists (a transfer's destination);
    /// nothing for the default location, whose row is the item's.
    pub fn ensure(&self, c: &mut SpiClient<'_>, who: &Caller, key: &LevelKey) -> Result<()> {
        if !is_default(&key.location) {
            run(
                c,
                &CREATE,
                &[
                    key.item.into(),
                    key.location.into(),
                    who.admin.into(),
                    who.tenant.clone().into(),
                ],
            )?;
        }
        Ok(())
    }

    /// Gather a striped level's stripes into its (locked) row, at any
    /// location (the default one's row is the item's), before a transfer
    /// side moves it; respread after.
    pub fn gather_at(&self, c: &mut SpiClient<'_>, key: &LevelKey) -> Result<()> {
        if is_default(&key.location) {
            stripes::gather(c, &[key.item])
        } else {
            stripes::gather_levels(c, &[(key.item, key.location)])
        }
    }

    pub fn respread_at(&self, c: &mut SpiClient<'_>, key: &LevelKey) -> Result<()> {
        if is_default(&key.location) {
            stripes::respread(c, &[key.item])
        } else {
            stripes::respread_levels(c, &[(key.item, key.location)])
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn shift(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &LevelKey,
        delta: AnyNumeric,
        kind: &str,
        mv: &Movement,
        gathered: bool,
    ) -> Result<Option<Moved>> {
        let [r, f, k] = mv.ledger_params();
        let done = run(
            c,
            &SHIFT,
            &[
                key.item.into(),
                key.location.into(),
                delta.into(),
                who.admin.into(),
                who.tenant.clone().into(),
                r,
                f,
                k,
                self.sale.into(),
                kind.into(),
                Option::<Uuid>::None.into(),
                mv.ledger.into(),
                false.into(),
                gathered.into(),
            ],
        )?;
        moved_row(done)
    }

    fn answer(&self, key: &LevelKey, m: &Moved, verb: &str, qty: &str) -> String {
        json!({"success": true, "inventory_id": validate::uuid_text(&key.item),
               "location_id": validate::uuid_text(&key.location),
               "old_quantity": num_json(&m.old), "new_quantity": num_json(&m.new),
               verb: num_json(qty)})
        .to_string()
    }
}

impl StockSource for Level {
    type Key = LevelKey;

    fn key_text(&self, key: &LevelKey) -> String {
        validate::uuid_text(&key.item)
    }

    fn not_found(&self, ids: Vec<String>) -> Error {
        Error::NotFound {
            entity: "inventory item",
            ids,
        }
    }

    fn why_skipped(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &LevelKey,
        inactive_ok: bool,
    ) -> Result<Option<Error>> {
        if is_default(&key.location) {
            return Ok(None);
        }
        diagnose(c, who, key, self.sale, inactive_ok)
    }

    fn skipped(&self, keys: &[&LevelKey]) -> Error {
        let ids: Vec<String> = keys
            .iter()
            .map(|k| {
                format!(
                    "{} at location {}",
                    validate::uuid_text(&k.item),
                    validate::uuid_text(&k.location)
                )
            })
            .collect();
        Error::invalid_input(
            "p_location_id",
            format!(
                "a trigger or rule on atomic_inventory.stock_levels skipped the write of item {}; nothing changed",
                ids.join(", ")
            ),
        )
    }

    fn take(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &LevelKey,
        qty: &AnyNumeric,
        mv: &Movement,
        gathered: bool,
    ) -> Result<Option<Moved>> {
        self.shift(
            c,
            who,
            key,
            AnyNumeric::from(0) - qty.clone(),
            "decrement",
            mv,
            gathered,
        )
    }

    fn add(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &LevelKey,
        qty: &AnyNumeric,
        mv: &Movement,
        gathered: bool,
    ) -> Result<Option<Moved>> {
        if let Some(m) = self.shift(c, who, key, qty.clone(), "increment", mv, gathered)? {
            return Ok(Some(m));
        }
        // Stock received somewhere new: the level starts empty, then the
        // same guarded write.
        self.ensure(c, who, key)?;
        self.shift(c, who, key, qty.clone(), "increment", mv, gathered)
    }

    fn set(
        &self,
        c: &mut SpiClient<'_>,
        key: &LevelKey,
        qty: &AnyNumeric,
        _old: &AnyNumeric,
        mv: &Movement,
    ) -> Result<Option<Moved>> {
        let [r, f, k] = mv.ledger_params();
        let done = run(
            c,
            &SET,
            &[
                key.item.into(),
                key.location.into(),
                qty.clone().into(),
                r,
                f,
                mv.ledger.into(),
                k,
            ],
        )?;
        moved_row(done)
    }

    /// A level that is not there, or a location that can't be used, is an
    /// error saying which (never None: NOT_FOUND would name only the item).
    fn lock(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &LevelKey,
        need: &AnyNumeric,
    ) -> Result<Option<RowState>> {
        self.lock_row(c, who, key, need, false).map(Some)
    }

    /// A sale from one stripe of a striped level (stripes.rs).
    fn take_striped(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &LevelKey,
        qty: &AnyNumeric,
        mv: &Movement,
    ) -> Result<Option<String>> {
        stripes::take_at(c, who, key.item, key.location, qty, mv)
    }

    fn gather(&self, c: &mut SpiClient<'_>, keys: &[LevelKey]) -> Result<()> {
        stripes::gather_levels(c, &pairs(keys))
    }

    fn respread(&self, c: &mut SpiClient<'_>, keys: &[LevelKey]) -> Result<()> {
        stripes::respread_levels(c, &pairs(keys))
    }

    fn sell_lines(
        &self,
        _c: &mut SpiClient<'_>,
        _who: &Caller,
        _lines: &Lines<LevelKey>,
        _mv: &Movement,
    ) -> Result<Vec<Sold<LevelKey>>> {
        Err(Error::Internal(
            "many lines at locations are sold by ops::stock::decrement_many_at".into(),
        ))
    }

    fn lock_lines(
        &self,
        _c: &mut SpiClient<'_>,
        _who: &Caller,
        _lines: &Lines<LevelKey>,
    ) -> Result<LockedLines<LevelKey>> {
        Err(Error::Internal(
            "many lines at locations are locked by ops::stock::decrement_many_at".into(),
        ))
    }

    fn sold(&self, key: &LevelKey, m: &Moved, qty: &AnyNumeric) -> String {
        self.answer(key, m, "deducted", qty.normalize())
    }

    fn untracked(&self, key: &LevelKey, row: &RowState) -> String {
        json!({"success": true, "inventory_id": validate::uuid_text(&key.item),
               "location_id": validate::uuid_text(&key.location),
               "old_quantity": num_json(&row.quantity), "new_quantity": num_json(&row.quantity),
               "deducted": 0, "tracked": false})
        .to_string()
    }

    fn added(&self, key: &LevelKey, m: &Moved, qty: &AnyNumeric) -> String {
        self.answer(key, m, "added", qty.normalize())
    }

    fn adjusted(&self, key: &LevelKey, m: &Moved, delta: &AnyNumeric) -> String {
        self.answer(key, m, "delta", delta.normalize())
    }

    fn lines_sold(&self, _sold: Vec<Sold<LevelKey>>) -> String {
        String::new()
    }
}

/// Levels as the (item, location) pairs stripes.rs takes.
pub fn pairs(keys: &[LevelKey]) -> Vec<(Uuid, Uuid)> {
    keys.iter().map(|k| (k.item, k.location)).collect()
}
