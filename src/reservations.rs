//! Reservations (the checkout reservation of docs/background.md, done right): hold stock for a cart or a pending
//! order, then commit it into a sale or give it back, by hand or by expiry.
//!
//! Unlike the checkout reservation's bare `reserved` counter, every hold is a row with lines,
//! so a release returns exactly what that reservation held (never clamped,
//! never twice), and `items.reserved` always equals the sum of active tracked
//! lines (reconcile() checks it).
//!
//! Reservations on bound app tables (bound_reserve) are rows here too, with
//! `source` set; commit, release, extend and expiry dispatch to
//! bound_reservations.rs for their lines.
//!
//! Lock order, everywhere: the reservation row first, then item rows in
//! ascending id. `reserve_inventory` locks items (sorted) and then *inserts* a
//! reservation nobody else can see yet, so no path waits in the other order.
//! The sweep takes due reservations with SKIP LOCKED, so it never waits on a
//! reservation being committed or released, and re-checks `status = 'active'`
//! after locking: a reservation can't be both committed and expired.

use crate::bound_reservations;
use crate::core::caller::Caller;
use crate::core::idempotency;
use crate::core::validate;
use crate::error::{Error, Result};
use crate::pg::fmgr::{entry_point, Args};
use crate::pg::spi::{self, run, with_spi, Stmt};
use crate::settings::ledger_on;
use crate::stock::lock_and_check_lines;
use crate::stripes;
use pgrx::pg_sys::{self, Oid};
use pgrx::spi::SpiClient;
use pgrx::{AnyNumeric, Uuid};
use serde_json::json;
use std::collections::BTreeMap;

const UUID: Oid = pg_sys::UUIDOID;
const UUIDS: Oid = pg_sys::UUIDARRAYOID;
const TEXT: Oid = pg_sys::TEXTOID;
const BOOL: Oid = pg_sys::BOOLOID;
const INT: Oid = pg_sys::INT4OID;

/// Default hold: 15 minutes, like most checkout timers.
pub const DEFAULT_TTL_SECONDS: i32 = 900;

pub(crate) const RESERVE_APPLY: Stmt = Stmt {
    name: "reserve_apply",
    sql: "WITH r AS ( \
            SELECT l.id, pg_catalog.sum(l.qty) AS qty \
              FROM ROWS FROM (pg_catalog.unnest($1::uuid[]), pg_catalog.unnest($2::numeric[])) AS l(id, qty) \
             GROUP BY l.id \
          ), res AS ( \
            INSERT INTO atomic_inventory.reservations (status, reference, tenant_id, expires_at) \
            VALUES ('active', $4, $5, pg_catalog.now() + pg_catalog.make_interval(secs => $3)) \
            RETURNING id, expires_at \
          ), upd AS ( \
            UPDATE atomic_inventory.items AS i \
               SET reserved = i.reserved + r.qty, updated_at = pg_catalog.now() \
              FROM r WHERE i.id = r.id AND i.track_inventory \
            RETURNING i.id \
          ), lines AS ( \
            INSERT INTO atomic_inventory.reservation_lines (reservation_id, inventory_id, quantity, tracked) \
            SELECT res.id, r.id, r.qty, i.track_inventory \
              FROM res, r JOIN atomic_inventory.items AS i ON i.id = r.id \
            RETURNING inventory_id, quantity \
          ) \
          SELECT pg_catalog.json_build_object('success', true, 'reservation_id', res.id, \
                   'status', 'active', 'expires_at', res.expires_at, \
                   'lines', (SELECT pg_catalog.json_agg(pg_catalog.json_build_object( \
                               'inventory_id', l.inventory_id, 'quantity', l.quantity) \
                               ORDER BY l.inventory_id) FROM lines AS l))::text \
            FROM res",
    args: &[UUIDS, pg_sys::NUMERICARRAYOID, INT, TEXT, TEXT],
};

/// Lock a visible reservation; is it past its expiry at this moment?
pub(crate) const LOCK_RESERVATION: Stmt = Stmt {
    name: "reservation_lock",
    sql: "SELECT r.status, (r.expires_at <= pg_catalog.clock_timestamp()), r.expires_at::text, \
                 r.source \
            FROM atomic_inventory.reservations AS r \
           WHERE r.id = $1 AND (r.tenant_id IS NULL OR $2 OR r.tenant_id = $3) \
             FOR UPDATE",
    args: &[UUID, BOOL, TEXT],
};

/// Lock the items of the reservation's active lines (all, or those in $2),
/// ascending id; returns the line ids.
pub(crate) const LOCK_LINES: Stmt = Stmt {
    name: "reservation_lock_lines",
    sql: "SELECT l.inventory_id \
            FROM atomic_inventory.reservation_lines AS l \
            JOIN atomic_inventory.items AS i ON i.id = l.inventory_id \
           WHERE l.reservation_id = $1 AND l.status = 'active' \
             AND ($2::uuid[] IS NULL OR l.inventory_id = ANY ($2)) \
           ORDER BY l.inventory_id \
             FOR UPDATE OF i",
    args: &[UUID, UUIDS],
};

/// Finish lines $2 of reservation $1 as $3 ('committed' or 'released').
/// Committing takes the units off quantity and reserved and writes ledger
/// rows (`quantity_after` NULL for a striped item, as for its sales: its row
/// holds the reserved units, its free stock is in stripes we don't lock
/// here); releasing only lowers reserved. The reservation stays active while
/// any line is. The status checks name `$1`, not `r.id`: uncorrelated, each
/// runs once as a key lookup; correlated, PostgreSQL 18 hashed the second
/// over every committed line of the table when its statistics said small
/// (reservation_plans_use_keys).
pub(crate) const FINISH: Stmt = Stmt {
    name: "reservation_finish",
    sql: "WITH fl AS ( \
            UPDATE atomic_inventory.reservation_lines AS l \
               SET status = $3, updated_at = pg_catalog.now() \
             WHERE l.reservation_id = $1 AND l.status = 'active' AND l.inventory_id = ANY ($2) \
            RETURNING l.inventory_id, l.quantity, l.tracked \
          ), upd AS ( \
            UPDATE atomic_inventory.items AS i \
               SET reserved = i.reserved - fl.quantity, \
                   quantity = CASE WHEN $3 = 'committed' THEN i.quantity - fl.quantity \
                                   ELSE i.quantity END, \
                   updated_at = pg_catalog.now() \
              FROM fl WHERE i.id = fl.inventory_id AND fl.tracked \
            RETURNING i.id, i.quantity, i.stripes, fl.quantity AS qty, i.tenant_id \
          ), led AS ( \
            INSERT INTO atomic_inventory.ledger \
              (inventory_id, delta, quantity_after, kind, reason, reference, idempotency_key, tenant_id) \
            SELECT u.id, -u.qty, CASE WHEN u.stripes = 0 THEN u.quantity END, 'commit', $4, $1::text, $5, \
                   u.tenant_id \
              FROM upd AS u WHERE $3 = 'committed' AND $6 \
          ), res AS ( \
            UPDATE atomic_inventory.reservations AS r \
               SET status = CASE \
                     WHEN EXISTS (SELECT 1 FROM atomic_inventory.reservation_lines AS x \
                                   WHERE x.reservation_id = $1 AND x.status = 'active' \
                                     AND x.inventory_id <> ALL ($2)) THEN 'active' \
                     WHEN $3 = 'committed' OR EXISTS ( \
                            SELECT 1 FROM atomic_inventory.reservation_lines AS x \
                             WHERE x.reservation_id = $1 AND x.status = 'committed') THEN 'committed' \
                     ELSE $3 END, \
                   updated_at = pg_catalog.now() \
             WHERE r.id = $1 \
            RETURNING r.id, r.status, r.expires_at \
          ) \
          SELECT pg_catalog.json_build_object('success', true, 'reservation_id', res.id, \
                   'status', res.status, 'expires_at', res.expires_at, \
                   $3, (SELECT pg_catalog.json_agg(pg_catalog.json_build_object( \
                          'inventory_id', fl.inventory_id, 'quantity', fl.quantity) \
                          ORDER BY fl.inventory_id) FROM fl))::text \
            FROM res",
    args: &[UUID, UUIDS, TEXT, TEXT, TEXT, BOOL],
};

const EXTEND: Stmt = Stmt {
    name: "reservation_extend",
    sql: "UPDATE atomic_inventory.reservations AS r \
             SET expires_at = pg_catalog.now() + pg_catalog.make_interval(secs => $2), \
                 updated_at = pg_catalog.now() \
           WHERE r.id = $1 \
          RETURNING pg_catalog.json_build_object('success', true, 'reservation_id', r.id, \
                      'status', r.status, 'expires_at', r.expires_at)::text",
    args: &[UUID, INT],
};

/// The sweep, step 1: due active reservations nobody is working on (and
/// the bound source of each, NULL for managed items), leaving out the
/// sources ($2) whose expiry failed earlier in this sweep and the
/// reservations $3 (the worker's busy ones, see `Sweep`); only $4 if given.
const DUE: Stmt = Stmt {
    name: "reservation_due",
    sql: "SELECT r.id, r.source FROM atomic_inventory.reservations AS r \
           WHERE r.status = 'active' AND r.expires_at < pg_catalog.now() \
             AND (r.source IS NULL OR r.source <> ALL ($2)) \
             AND r.id <> ALL ($3) AND ($4::uuid IS NULL OR r.id = $4) \
           ORDER BY r.id LIMIT $1 \
             FOR UPDATE SKIP LOCKED",
    args: &[INT, pg_sys::TEXTARRAYOID, UUIDS, UUID],
};

/// The managed-item ids DUE would take, without locking them (the worker's
/// one-by-one pass reads them in a transaction of their own). Not bound
/// sources' holds: a lock wait past the limit there fails only that
/// source's part of the sweep (sweep_once), never the batch.
const DUE_IDS: Stmt = Stmt {
    name: "reservation_due_ids",
    sql: "SELECT r.id FROM atomic_inventory.reservations AS r \
           WHERE r.status = 'active' AND r.expires_at < pg_catalog.now() \
             AND r.source IS NULL AND r.id <> ALL ($2) \
           ORDER BY r.id LIMIT $1",
    args: &[INT, UUIDS],
};

/// Step 2: lock their items, ascending id.
const DUE_ITEMS: Stmt = Stmt {
    name: "reservation_due_items",
    sql: "SELECT i.id FROM atomic_inventory.items AS i \
           WHERE i.id IN (SELECT l.inventory_id FROM atomic_inventory.reservation_lines AS l \
                           WHERE l.reservation_id = ANY ($1) AND l.status = 'active') \
           ORDER BY i.id \
             FOR UPDATE",
    args: &[UUIDS],
};

/// Step 3: expire all their active lines and give the units back.
const EXPIRE_APPLY: Stmt = Stmt {
    name: "reservation_expire_apply",
    sql: "WITH fl AS ( \
            UPDATE atomic_inventory.reservation_lines AS l \
               SET status = 'expired', updated_at = pg_catalog.now() \
             WHERE l.reservation_id = ANY ($1) AND l.status = 'active' \
            RETURNING l.inventory_id, l.quantity, l.tracked \
          ), per_item AS ( \
            SELECT fl.inventory_id, pg_catalog.sum(fl.quantity) AS qty \
              FROM fl WHERE fl.tracked GROUP BY fl.inventory_id \
          ), upd AS ( \
            UPDATE atomic_inventory.items AS i \
               SET reserved = i.reserved - p.qty, updated_at = pg_catalog.now() \
              FROM per_item AS p WHERE i.id = p.inventory_id \
            RETURNING i.id \
          ), res AS ( \
            UPDATE atomic_inventory.reservations AS r \
               SET status = CASE WHEN EXISTS ( \
                              SELECT 1 FROM atomic_inventory.reservation_lines AS x \
                               WHERE x.reservation_id = r.id AND x.status = 'committed') \
                            THEN 'committed' ELSE 'expired' END, \
                   updated_at = pg_catalog.now() \
             WHERE r.id = ANY ($1) \
            RETURNING r.id \
          ) \
          SELECT pg_catalog.count(*)::int4 FROM res",
    args: &[UUIDS],
};

pub(crate) fn ttl_seconds(args: &Args, n: usize) -> Result<i32> {
    match args.int(n) {
        None => Ok(DEFAULT_TTL_SECONDS),
        Some(s) if (1..=2_592_000).contains(&s) => Ok(s),
        Some(s) => Err(Error::invalid_input(
            "p_ttl_seconds",
            format!("must be between 1 and 2592000 (30 days) (got {s})"),
        )),
    }
}

fn reserve(args: &Args) -> Result<String> {
    let lines = validate::lines(args.jsonb_container(0), "p_lines")?;
    let ttl = ttl_seconds(args, 1)?;
    let reference = args.text(2, "p_reference")?;
    let key = args.idempotency_key(3)?;
    let lock_ms = args.lock_timeout_ms(4)?;
    let caller = Caller::current()?;
    let request = || {
        json!({"lines": validate::canonical_lines(&lines), "ttl_seconds": ttl,
               "reference": reference})
        .to_string()
    };
    let ids: Vec<Uuid> = lines.iter().map(|l| l.inventory_id).collect();
    let qtys: Vec<AnyNumeric> = lines.iter().map(|l| l.quantity.clone()).collect();
    with_spi(lock_ms, |client| {
        idempotency::once(
            client,
            &caller,
            key.as_deref(),
            "reserve_inventory",
            request,
            |c| {
                let locked = lock_and_check_lines(c, &caller, &ids, &qtys)?;
                // whose reservation it is (an admin's: the items' tenant's)
                let tenant = caller.record_tenant(&locked.tenants, "p_lines")?;
                let done = run(
                    c,
                    &RESERVE_APPLY,
                    &[
                        ids.clone().into(),
                        qtys.clone().into(),
                        ttl.into(),
                        reference.clone().into(),
                        tenant.into(),
                    ],
                )?;
                let out = done.first().get::<String>(1)?.unwrap_or_default();
                // reserved units stay in the item row; the rest goes back out
                stripes::respread(c, &locked.striped)?;
                Ok(out)
            },
        )
    })
}

/// Lock the reservation and check it can still change; `commit` also needs it
/// unexpired. Returns its bound source (None: managed items).
fn lock_active(
    c: &mut SpiClient<'_>,
    caller: &Caller,
    id: Uuid,
    must_be_unexpired: bool,
) -> Result<Option<String>> {
    let state = run(
        c,
        &LOCK_RESERVATION,
        &[id.into(), caller.admin.into(), caller.tenant.clone().into()],
    )?;
    if state.is_empty() {
        return Err(Error::NotFound {
            entity: "reservation",
            ids: vec![id.to_string()],
        });
    }
    let row = state.first();
    let status = row.get::<String>(1)?.unwrap_or_default();
    let expired = row.get::<bool>(2)?.unwrap_or(false);
    if status != "active" {
        return Err(Error::ReservationNotActive {
            reservation_id: id.to_string(),
            status,
        });
    }
    if must_be_unexpired && expired {
        return Err(Error::ReservationExpired {
            reservation_id: id.to_string(),
            expires_at: row.get::<String>(3)?.unwrap_or_default(),
        });
    }
    Ok(row.get::<String>(4)?)
}

/// The optional line filter, argument 1: `p_inventory_ids uuid[]` of the
/// managed functions or `p_item_ids text[]` of the bound_* ones (`by_key`).
/// Returns the argument's name and the ids as text (a uuid as its canonical
/// text, which is also a uuid-keyed bound row's item key); NULL = all lines.
fn line_filter(args: &Args, n: usize, by_key: bool) -> Result<(&'static str, Option<Vec<String>>)> {
    let field = if by_key {
        "p_item_ids"
    } else {
        "p_inventory_ids"
    };
    let ids: Option<Vec<Option<String>>> = if by_key {
        args.text_array(n)
    } else {
        args.uuid_array(n).map(|v| {
            v.into_iter()
                .map(|u| u.map(|u| validate::uuid_text(&u)))
                .collect()
        })
    };
    match ids {
        Some(ids) if ids.is_empty() => Err(Error::invalid_input(
            field,
            "must name at least one line (pass NULL for all lines)",
        )),
        Some(ids) if ids.iter().any(|i| i.is_none()) => {
            Err(Error::invalid_input(field, "must not contain NULL"))
        }
        // as many lines as a reservation can have, each an item key (at
        // most 255 characters): a longer one names no line, and would be
        // echoed back in the error saying so
        Some(ids) if ids.len() > validate::MAX_LINES => Err(Error::invalid_input(
            field,
            format!("names more than {} lines", validate::MAX_LINES),
        )),
        Some(ids) if ids.iter().flatten().any(|i| i.chars().count() > 255) => Err(
            Error::invalid_input(field, "has an element longer than 255 characters"),
        ),
        Some(ids) => Ok((field, Some(ids.into_iter().flatten().collect()))),
        None => Ok((field, None)),
    }
}

/// Lines of a reservation that are no longer active, among the given ids
/// (the refusal path of a partial commit/release only).
const FINISHED_LINES: Stmt = Stmt {
    name: "finished_lines",
    sql: "SELECT DISTINCT l.inventory_id::text, l.status \
            FROM atomic_inventory.reservation_lines AS l \
           WHERE l.reservation_id = $1 AND l.inventory_id = ANY ($2) AND l.status <> 'active'",
    args: &[UUID, UUIDS],
};
const FINISHED_BOUND_LINES: Stmt = Stmt {
    name: "finished_bound_lines",
    sql: "SELECT DISTINCT l.item_key, l.status \
            FROM atomic_inventory.bound_reservation_lines AS l \
           WHERE l.reservation_id = $1 AND l.item_key = ANY ($2) AND l.status <> 'active'",
    args: &[UUID, pg_sys::TEXTARRAYOID],
};

/// Which lines a partial commit/release (`field`) names that it can't
/// finish, on reservation `id` (managed items, or a bound source if
/// `bound`): ids that were never its lines are bad input (INVALID_INPUT,
/// all of them named); lines it had but that are already committed,
/// released or expired, typically by a concurrent request, are a conflict
/// (LINE_NOT_ACTIVE, PT409) like a finished reservation is.
pub(crate) fn only_active_lines(
    c: &mut SpiClient<'_>,
    id: Uuid,
    bound: bool,
    field: &str,
    wanted: &[String],
    is_line: impl Fn(&str) -> bool,
) -> Result<()> {
    let mut absent: Vec<String> = wanted.iter().filter(|w| !is_line(w)).cloned().collect();
    if absent.is_empty() {
        return Ok(());
    }
    absent.sort();
    absent.dedup();
    // key as the caller wrote it -> the key as stored (uuid text for items)
    let stored = |w: &String| -> Option<String> {
        if bound {
            Some(w.clone())
        } else {
            validate::parse_uuid(w).map(|u| u.to_string())
        }
    };
    let finished = if bound {
        run(
            c,
            &FINISHED_BOUND_LINES,
            &[id.into(), absent.clone().into()],
        )?
    } else {
        let ids: Vec<Uuid> = absent
            .iter()
            .filter_map(|w| validate::parse_uuid(w))
            .collect();
        run(c, &FINISHED_LINES, &[id.into(), ids.into()])?
    };
    let mut done: Vec<(String, String)> = Vec::new();
    for row in finished {
        done.push((
            row.get::<String>(1)?.unwrap_or_default(),
            row.get::<String>(2)?.unwrap_or_default(),
        ));
    }
    let never: Vec<String> = absent
        .iter()
        .filter(|w| stored(w).is_none_or(|k| !done.iter().any(|(d, _)| *d == k)))
        .cloned()
        .collect();
    if !never.is_empty() {
        return Err(Error::invalid_input(
            field,
            format!(
                "names items that are not lines of this reservation: {}",
                never.join(", ")
            ),
        ));
    }
    done.sort();
    Err(Error::LineNotActive {
        reservation_id: id.to_string(),
        key_name: if bound { "item_id" } else { "inventory_id" },
        lines: done,
    })
}

/// commit_reservation / release_reservation (`to`), and their bound_*
/// twins that name lines by item key (`by_key`). Either takes a managed or a
/// bound reservation: the locked reservation row says which.
pub(crate) fn finish(args: &Args, to: &'static str, by_key: bool) -> Result<String> {
    let id = args.uuid(0, "p_reservation_id")?;
    let (field, only) = line_filter(args, 1, by_key)?;
    let reason = args.text(2, "p_reason")?;
    let key = args.idempotency_key(3)?;
    let lock_ms = args.lock_timeout_ms(4)?;
    let caller = Caller::current()?;
    let function = match (to == "committed", by_key) {
        (true, false) => "commit_reservation",
        (false, false) => "release_reservation",
        (true, true) => "bound_commit_reservation",
        (false, true) => "bound_release_reservation",
    };
    let request = || {
        let only_sorted: Option<Vec<String>> = only.as_ref().map(|v| {
            let mut ids = v.clone();
            ids.sort();
            ids.dedup();
            ids
        });
        json!({"reservation_id": id.to_string(), "inventory_ids": only_sorted,
               "reason": reason})
        .to_string()
    };
    with_spi(lock_ms, |client| {
        idempotency::once(client, &caller, key.as_deref(), function, request, |c| {
            if let Some(source) = lock_active(c, &caller, id, to == "committed")? {
                let s = bound_reservations::Settle {
                    reason: reason.clone(),
                    reservation: id.to_string(),
                    key: key.as_deref(),
                };
                return bound_reservations::finish(c, id, &source, only.clone(), field, to, &s);
            }
            // Managed items: ids that aren't uuids can't name a line.
            let wanted: Option<Vec<Uuid>> = only
                .as_ref()
                .map(|v| v.iter().filter_map(|t| validate::parse_uuid(t)).collect());
            let lines = run(c, &LOCK_LINES, &[id.into(), wanted.clone().into()])?;
            let mut active = Vec::new();
            for row in lines {
                if let Some(u) = row.get::<Uuid>(1)? {
                    active.push(u);
                }
            }
            if let Some(named) = &only {
                only_active_lines(c, id, false, field, named, |w| {
                    validate::parse_uuid(w).is_some_and(|u| active.contains(&u))
                })?;
            }
            let done = run(
                c,
                &FINISH,
                &[
                    id.into(),
                    active.into(),
                    to.to_string().into(),
                    reason.clone().into(),
                    key.clone().into(),
                    ledger_on().into(),
                ],
            )?;
            Ok(done.first().get::<String>(1)?.unwrap_or_default())
        })
    })
}

fn commit(args: &Args) -> Result<String> {
    finish(args, "committed", false)
}

fn release(args: &Args) -> Result<String> {
    finish(args, "released", false)
}

fn extend(args: &Args) -> Result<String> {
    let id = args.uuid(0, "p_reservation_id")?;
    let ttl = ttl_seconds(args, 1)?;
    let lock_ms = args.lock_timeout_ms(2)?;
    let caller = Caller::current()?;
    with_spi(lock_ms, |c| {
        lock_active(c, &caller, id, true)?;
        let done = run(c, &EXTEND, &[id.into(), ttl.into()])?;
        Ok(done.first().get::<String>(1)?.unwrap_or_default())
    })
}

/// Expire due reservations, at most `limit` per call; returns how many.
/// Used by `expire_reservations()` and by the background worker. Managed
/// items first (ascending id), then each bound source's rows (sources in
/// name order, rows in id order).
///
/// A source whose expiry fails is skipped for the rest of the sweep, and
/// the sweep looks again for due rows without it: its rows stay due, and
/// since `DUE` takes the lowest ids first, a broken source with `limit`
/// due rows would otherwise fill every round and no other reservation
/// would ever expire. Each failure leaves out one more source, so this
/// loops at most once per bound source.
pub fn sweep(c: &mut SpiClient<'_>, limit: i32, which: &Sweep) -> Result<i32> {
    let mut failed: Vec<String> = Vec::new();
    let mut n = 0;
    while n < limit {
        let (due, failures) = sweep_once(c, limit - n, &failed, which)?;
        n += due;
        if failures.is_empty() {
            break;
        }
        failed.extend(failures);
    }
    Ok(n)
}

/// Which due reservations a sweep takes: all but `except`, or just `only`.
#[derive(Default)]
pub struct Sweep {
    pub except: Vec<Uuid>,
    pub only: Option<Uuid>,
}

/// Up to `limit` due reservations' ids on managed items, lowest first,
/// leaving out `except`.
pub fn due_ids(c: &mut SpiClient<'_>, limit: i32, except: &[Uuid]) -> Result<Vec<Uuid>> {
    let mut ids = Vec::new();
    for row in run(c, &DUE_IDS, &[limit.into(), except.to_vec().into()])? {
        if let Some(u) = row.get::<Uuid>(1)? {
            ids.push(u);
        }
    }
    Ok(ids)
}

/// One pass of the sweep: (how many expired, the sources that failed).
fn sweep_once(
    c: &mut SpiClient<'_>,
    limit: i32,
    skip: &[String],
    which: &Sweep,
) -> Result<(i32, Vec<String>)> {
    let due = run(
        c,
        &DUE,
        &[
            limit.into(),
            skip.to_vec().into(),
            which.except.clone().into(),
            which.only.into(),
        ],
    )?;
    let mut managed = Vec::new();
    let mut bound: BTreeMap<String, Vec<Uuid>> = BTreeMap::new();
    for row in due {
        let Some(u) = row.get::<Uuid>(1)? else {
            continue;
        };
        match row.get::<String>(2)? {
            Some(source) => bound.entry(source).or_default().push(u),
            None => managed.push(u),
        }
    }
    let mut n = 0;
    if !managed.is_empty() {
        run(c, &DUE_ITEMS, &[managed.clone().into()])?;
        n += run(c, &EXPIRE_APPLY, &[managed.into()])?
            .first()
            .get::<i32>(1)?
            .unwrap_or(0);
    }
    // Each bound source on its own: one whose table broke under its binding
    // (the reserved column renamed, a trigger that fails) must not stop the
    // expiry of everything else, nor end the background worker every round.
    // Its reservations stay active (their units held) until it is fixed.
    let mut failures = Vec::new();
    for (source, ids) in bound {
        match spi::isolated(|| bound_reservations::expire(c, &source, ids)) {
            Ok(k) => n += k,
            Err(e) => {
                pgrx::warning!(
                    "atomic_inventory: could not expire the reservations of source {source}, skipped: {e}"
                );
                failures.push(source);
            }
        }
    }
    Ok((n, failures))
}

fn expire(args: &Args) -> Result<String> {
    let limit = match args.int(0) {
        None => 1000,
        Some(l) if (1..=100_000).contains(&l) => l,
        Some(l) => {
            return Err(Error::invalid_input(
                "p_limit",
                format!("must be between 1 and 100000 (got {l})"),
            ))
        }
    };
    // Every lock wait of the sweep is limited (sweep_lock_timeout): it locks
    // the due holds' items in ascending id order, and waiting without limit
    // for one row another transaction keeps locked would hold every item
    // before it, stalling their sales for as long as that transaction lives.
    // Past the limit the call fails with LOCK_TIMEOUT, nothing changed.
    let n = with_spi(crate::settings::sweep_lock_timeout(), |c| {
        sweep(c, limit, &Sweep::default())
    })?;
    Ok(json!({"success": true, "expired": n}).to_string())
}

entry_point!(ai_reserve_inventory, pg_finfo_ai_reserve_inventory, reserve);
entry_point!(
    ai_commit_reservation,
    pg_finfo_ai_commit_reservation,
    commit
);
entry_point!(
    ai_release_reservation,
    pg_finfo_ai_release_reservation,
    release
);
entry_point!(
    ai_extend_reservation,
    pg_finfo_ai_extend_reservation,
    extend
);
entry_point!(
    ai_expire_reservations,
    pg_finfo_ai_expire_reservations,
    expire
);
