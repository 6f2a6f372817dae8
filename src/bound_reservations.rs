//! Reservations on bound stock tables (issue 8): `bound_reserve` holds units
//! in the binding's reserved column, so the app's own reads (available =
//! quantity - reserved) and every bound_* sale see the hold at once.
//!
//! A bound reservation is a row of `reservations` with `source` set; its
//! lines live in `bound_reservation_lines`, keyed by item key (the id's text).
//! commit_reservation, release_reservation, extend_reservation,
//! get_reservation and the expiry sweep take both kinds (reservations.rs
//! dispatches on `source`); bound_commit_reservation and
//! bound_release_reservation name lines by item key instead of uuid.
//!
//! Lock order, as for managed reservations: the reservation row first, then
//! the bound rows in ascending id. `bound_reserve` locks rows (sorted) and
//! then inserts a reservation nobody else can see yet.
//!
//! Unbinding can't strand held units: the statement that records a bound
//! reservation takes a KEY SHARE lock on its binding's row; unbind_source
//! deletes that row (so it waits for such a reserve to finish) and then
//! refuses while the source has active reservations (SOURCE_IN_USE).
//!
//! What the app may have written meanwhile: a release or expiry lowers the
//! reserved column by what the reservation holds but not below 0 (an app that
//! reset the column gets 0, never a negative hold that would let more be sold
//! than is on hand); a commit refuses
//! (INSUFFICIENT_INVENTORY) when the row's quantity no longer covers the line,
//! and NOT_FOUND when the row is gone; the reservation then stays active.

use crate::bindings::{self, Binding};
use crate::bound::{self, tenant_val, LedgerNote, LedgerRow};
use crate::core::caller::Caller;
use crate::core::idempotency;
use crate::error::{Error, Result, Shortfall};
use crate::pg::fmgr::{entry_point, Args};
use crate::pg::spi::{run, with_spi, Stmt};
use crate::reservations::{only_active_lines, ttl_seconds};
use crate::settings::ledger_on;
use pgrx::pg_sys::{self, Oid};
use pgrx::spi::SpiClient;
use pgrx::{AnyNumeric, Uuid};
use serde_json::json;
use std::collections::BTreeMap;

const TEXT: Oid = pg_sys::TEXTOID;
const TEXTS: Oid = pg_sys::TEXTARRAYOID;
const NUMS: Oid = pg_sys::NUMERICARRAYOID;
const UUIDS: Oid = pg_sys::UUIDARRAYOID;
const BOOL: Oid = pg_sys::BOOLOID;

/// Record the reservation and its lines; $6 is the binding, share-locked by
/// key so that unbind_source waits for this transaction (see above).
const RECORD: Stmt = Stmt {
    name: "bound_reservation_record",
    sql: "WITH b AS ( \
            SELECT x.name FROM atomic_inventory.bindings AS x WHERE x.name = $6 FOR KEY SHARE \
          ), res AS ( \
            INSERT INTO atomic_inventory.reservations (status, reference, tenant_id, expires_at, source) \
            SELECT 'active', $4, $5, pg_catalog.now() + pg_catalog.make_interval(secs => $3), b.name \
              FROM b \
            RETURNING id, expires_at \
          ), lines AS ( \
            INSERT INTO atomic_inventory.bound_reservation_lines (reservation_id, item_key, quantity, tracked) \
            SELECT res.id, l.k, l.qty, l.tracked \
              FROM res, ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::numeric[]), \
                                   pg_catalog.unnest($7::bool[])) AS l(k, qty, tracked) \
            RETURNING item_key, quantity \
          ) \
          SELECT pg_catalog.json_build_object('success', true, 'reservation_id', res.id, \
                   'source', $6, 'status', 'active', 'expires_at', res.expires_at, \
                   'lines', (SELECT pg_catalog.json_agg(pg_catalog.json_build_object( \
                               'item_id', l.item_key, 'quantity', l.quantity) ORDER BY l.item_key) \
                               FROM lines AS l))::text \
            FROM res",
    args: &[TEXTS, NUMS, pg_sys::INT4OID, TEXT, TEXT, TEXT, pg_sys::BOOLARRAYOID],
};

/// Active lines of reservations $1 (all, or those keyed in $2). The callers
/// hold the reservation rows locked, so these can't change under them.
const ACTIVE_LINES: Stmt = Stmt {
    name: "bound_reservation_active_lines",
    sql: "SELECT l.item_key, l.quantity, l.tracked \
            FROM atomic_inventory.bound_reservation_lines AS l \
           WHERE l.reservation_id = ANY ($1) AND l.status = 'active' \
             AND ($2::text[] IS NULL OR l.item_key = ANY ($2)) \
           ORDER BY l.item_key",
    args: &[UUIDS, TEXTS],
};

/// Finish lines of reservations $1 (all active, or those keyed in $2) as $3
/// (committed, released or expired); a reservation stays active while any of
/// its lines is, and ends committed if any line was committed. One JSON
/// answer per reservation. ($4: the source, for the answer.)
const FINISH: Stmt = Stmt {
    name: "bound_reservation_finish",
    sql: "WITH fl AS ( \
            UPDATE atomic_inventory.bound_reservation_lines AS l \
               SET status = $3, updated_at = pg_catalog.now() \
             WHERE l.reservation_id = ANY ($1) AND l.status = 'active' \
               AND ($2::text[] IS NULL OR l.item_key = ANY ($2)) \
            RETURNING l.reservation_id, l.item_key, l.quantity \
          ), res AS ( \
            UPDATE atomic_inventory.reservations AS r \
               SET status = CASE \
                     WHEN $2::text[] IS NOT NULL AND EXISTS ( \
                            SELECT 1 FROM atomic_inventory.bound_reservation_lines AS x \
                             WHERE x.reservation_id = r.id AND x.status = 'active' \
                               AND x.item_key <> ALL ($2)) THEN 'active' \
                     WHEN $3 = 'committed' OR EXISTS ( \
                            SELECT 1 FROM atomic_inventory.bound_reservation_lines AS x \
                             WHERE x.reservation_id = r.id AND x.status = 'committed') THEN 'committed' \
                     ELSE $3 END, \
                   updated_at = pg_catalog.now() \
             WHERE r.id = ANY ($1) \
            RETURNING r.id, r.status, r.expires_at \
          ) \
          SELECT pg_catalog.json_build_object('success', true, 'reservation_id', res.id, \
                   'source', $4, 'status', res.status, 'expires_at', res.expires_at, \
                   $3, (SELECT pg_catalog.json_agg(pg_catalog.json_build_object( \
                          'item_id', fl.item_key, 'quantity', fl.quantity) ORDER BY fl.item_key) \
                          FROM fl WHERE fl.reservation_id = res.id))::text \
            FROM res",
    args: &[UUIDS, TEXTS, TEXT, TEXT],
};

/// A bound table's reserved column, if new holds may go into it: refused
/// when it is narrower than the quantity column (bindings::narrower), which
/// bindings made before 0.3.0 may have.
fn holds_fit(b: &Binding) -> Result<()> {
    reserved_col(b)?;
    if b.reserved_narrow {
        return Err(Error::invalid_input(
            "p_source",
            format!(
                "{}'s reserved column is narrower than its quantity column, so it cannot hold \
                 every reservation; unbind_source and bind the table again with a reserved \
                 column as wide as the quantity column",
                b.name
            ),
        ));
    }
    Ok(())
}

/// A bound table's reserved column (bind_stock_source's p_reserved_column).
fn reserved_col(b: &Binding) -> Result<&str> {
    b.reserved.as_deref().ok_or_else(|| {
        Error::invalid_input(
            "p_source",
            format!(
                "{} has no reserved column; bind the table with p_reserved_column to reserve on it",
                b.name
            ),
        )
    })
}

/// Hold the tracked lines' units: reserved += qty (rows locked by lock_lines).
fn hold_sql(b: &Binding) -> String {
    let r = b.reserved.as_deref().unwrap_or_default();
    format!(
        "UPDATE {rel} AS t SET {r} = COALESCE(t.{r}, 0) + d.qty \
           FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::numeric[])) AS d(k, qty) \
          WHERE t.{id} = d.k::{ty} \
         RETURNING d.k",
        rel = b.rel,
        id = b.id,
        ty = b.id_type.sql(),
    )
}

/// Lock the rows keyed in $1, ascending id: key, quantity.
fn lock_rows_sql(b: &Binding) -> String {
    format!(
        "SELECT t.{id}::text, t.{q}::numeric FROM {rel} AS t \
          WHERE t.{id} = ANY ($1::text[]::{ty}[]) \
          ORDER BY t.{id} \
            FOR UPDATE OF t",
        id = b.id,
        q = b.qty,
        rel = b.rel,
        ty = b.id_type.sql(),
    )
}

/// Give back (or, $3 = commit, sell) held units $2 of rows $1, which the
/// caller holds locked. Reserved drops by what the reservation held, not
/// below 0 (see the module comment); a commit also lowers quantity. Returns
/// per row its key, new quantity, the units and its tenant (for the ledger
/// rows of a commit, written after it: kind commit, reference = the
/// reservation).
fn settle_sql(b: &Binding) -> String {
    let r = b.reserved.as_deref().unwrap_or_default();
    format!(
        "UPDATE {rel} AS t \
            SET {r} = GREATEST(COALESCE(t.{r}, 0) - d.qty, 0), \
                {q} = CASE WHEN $3 THEN t.{q} - d.qty ELSE t.{q} END \
           FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::numeric[])) AS d(k, qty) \
          WHERE t.{id} = d.k::{ty} \
         RETURNING d.k, t.{q}::numeric, d.qty, {tv}",
        rel = b.rel,
        q = b.qty,
        id = b.id,
        ty = b.id_type.sql(),
        tv = tenant_val(b),
    )
}

fn reserve(args: &Args) -> Result<String> {
    let src = bound::source(args)?;
    let raw = args.jsonb_container(1);
    let ttl = ttl_seconds(args, 2)?;
    let reference = args.text(3, "p_reference")?;
    let key = args.idempotency_key(4)?;
    let lock_ms = args.lock_timeout_ms(5)?;
    let caller = Caller::current()?;
    with_spi(lock_ms, |c| {
        let b = bindings::get(c, &src, true)?;
        holds_fit(&b)?;
        let merged = bound::lines(&b, raw)?;
        let request = || {
            let canon: Vec<(String, String)> = merged
                .iter()
                .map(|(k, q)| (k.clone(), q.normalize().to_string()))
                .collect();
            json!({"source": src, "lines": canon, "ttl_seconds": ttl, "reference": reference})
                .to_string()
        };
        idempotency::once(c, &caller, key.as_deref(), "bound_reserve", request, |c| {
            // Lock every row in id order and refuse if any is missing or short
            // (available = quantity - reserved, as for a sale).
            let found = bound::lock_lines(c, &b, &caller, &merged)?;
            let (tk, tq): (Vec<String>, Vec<AnyNumeric>) = merged
                .iter()
                .filter(|(k, _)| found.get(*k).is_some_and(|f| f.tracked))
                .map(|(k, q)| (k.clone(), q.clone()))
                .unzip();
            if !tk.is_empty() {
                let held = b.run_as_owner(
                    c,
                    "reserve_hold",
                    hold_sql,
                    &[TEXTS, NUMS],
                    &[tk.clone().into(), tq.into()],
                )?;
                // rows locked and covered by lock_lines: each must take its
                // hold, or the reservation would hold units the column lacks
                let mut done = std::collections::BTreeSet::new();
                for row in held {
                    done.extend(row.get::<String>(1)?);
                }
                let skipped: Vec<&str> = tk
                    .iter()
                    .filter(|k| !done.contains(*k))
                    .map(|k| k.as_str())
                    .collect();
                if !skipped.is_empty() {
                    return Err(bound::skipped_write(&b, &skipped));
                }
            }
            let keys: Vec<String> = merged.keys().cloned().collect();
            let qtys: Vec<AnyNumeric> = merged.values().cloned().collect();
            let tracked: Vec<bool> = keys
                .iter()
                .map(|k| found.get(k).is_none_or(|f| f.tracked))
                .collect();
            // whose reservation it is (an admin's: the rows' tenant's)
            let mut tenants: Vec<String> =
                found.values().filter_map(|f| f.tenant.clone()).collect();
            tenants.sort();
            tenants.dedup();
            let tenant = caller.record_tenant(&tenants, "p_lines")?;
            let t = run(
                c,
                &RECORD,
                &[
                    keys.into(),
                    qtys.into(),
                    ttl.into(),
                    reference.clone().into(),
                    tenant.into(),
                    b.name.clone().into(),
                    tracked.into(),
                ],
            )?;
            if t.is_empty() {
                // unbound between our lookup and the KEY SHARE lock: the
                // error rolls the hold back
                return Err(Error::NotFound {
                    entity: "source",
                    ids: vec![src.clone()],
                });
            }
            Ok(t.first().get::<String>(1)?.unwrap_or_default())
        })
    })
}

/// An active line: key, units held, tracked.
struct Line {
    key: String,
    qty: AnyNumeric,
    tracked: bool,
}

fn active_lines(
    c: &mut SpiClient<'_>,
    ids: &[Uuid],
    only: Option<&Vec<String>>,
) -> Result<Vec<Line>> {
    let t = run(
        c,
        &ACTIVE_LINES,
        &[ids.to_vec().into(), only.cloned().into()],
    )?;
    let mut out = Vec::new();
    for row in t {
        out.push(Line {
            key: row.get::<String>(1)?.unwrap_or_default(),
            qty: row.get::<AnyNumeric>(2)?.unwrap_or_default(),
            tracked: row.get::<bool>(3)?.unwrap_or(true),
        });
    }
    Ok(out)
}

/// Tracked units per key (several expiring reservations may hold one row).
fn held_per_key(lines: &[Line]) -> BTreeMap<String, AnyNumeric> {
    let mut m: BTreeMap<String, AnyNumeric> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.tracked) {
        let total = match m.remove(&l.key) {
            Some(prev) => prev + l.qty.clone(),
            None => l.qty.clone(),
        };
        m.insert(l.key.clone(), total);
    }
    m
}

/// Lock the held rows in id order; key -> quantity of those that still exist.
fn lock_rows(
    c: &mut SpiClient<'_>,
    b: &Binding,
    held: &BTreeMap<String, AnyNumeric>,
) -> Result<BTreeMap<String, AnyNumeric>> {
    let keys: Vec<String> = held.keys().cloned().collect();
    let t = b.run_as_owner(
        c,
        "reservation_lock_rows",
        lock_rows_sql,
        &[TEXTS],
        &[keys.into()],
    )?;
    let mut out = BTreeMap::new();
    for row in t {
        if let (Some(k), Some(q)) = (row.get::<String>(1)?, row.get::<AnyNumeric>(2)?) {
            out.insert(k, q);
        }
    }
    Ok(out)
}

/// What a commit's ledger rows carry.
pub(crate) struct Settle<'a> {
    pub reason: Option<String>,
    pub reservation: String,
    pub key: Option<&'a str>,
}

/// `present`: the rows lock_rows found (and holds locked). Each must be
/// written; one the app deleted meanwhile has nothing to give back, but one
/// present and not written was skipped by the table's own trigger or rule,
/// and settling past it would leave its units held in the column.
fn settle(
    c: &mut SpiClient<'_>,
    b: &Binding,
    held: BTreeMap<String, AnyNumeric>,
    present: &BTreeMap<String, AnyNumeric>,
    commit: bool,
    s: &Settle<'_>,
) -> Result<()> {
    if held.is_empty() {
        return Ok(());
    }
    let (keys, qtys): (Vec<String>, Vec<AnyNumeric>) = held.into_iter().unzip();
    let t = b.run_as_owner(
        c,
        "reservation_settle",
        settle_sql,
        &[TEXTS, NUMS, BOOL],
        &[keys.clone().into(), qtys.into(), commit.into()],
    )?;
    // ledger rows only for a commit with the ledger on; the keys written always
    let ledger = commit && ledger_on();
    let mut rows = Vec::new();
    let mut written = std::collections::BTreeSet::new();
    for row in t {
        let key = row.get::<String>(1)?.unwrap_or_default();
        if ledger {
            rows.push(LedgerRow {
                key: key.clone(),
                after: row.get::<AnyNumeric>(2)?.unwrap_or_default(),
                delta: AnyNumeric::from(0) - row.get::<AnyNumeric>(3)?.unwrap_or_default(),
                tenant: row.get::<String>(4)?,
            });
        }
        written.insert(key);
    }
    let skipped: Vec<&str> = keys
        .iter()
        .filter(|k| present.contains_key(*k) && !written.contains(*k))
        .map(|k| k.as_str())
        .collect();
    if !skipped.is_empty() {
        return Err(bound::skipped_write(b, &skipped));
    }
    if ledger {
        let note = LedgerNote {
            kind: "commit",
            reason: s.reason.clone(),
            reference: Some(s.reservation.clone()),
            key: s.key,
        };
        bound::write_ledger(c, b, &note, rows)?;
    }
    Ok(())
}

/// Commit or release (`to`) the active lines of bound reservation `id` (all,
/// or the keys in `only`); the caller holds the reservation row locked and
/// checked it active. `field` names the filter argument for errors.
pub(crate) fn finish(
    c: &mut SpiClient<'_>,
    id: Uuid,
    source: &str,
    only: Option<Vec<String>>,
    field: &str,
    to: &'static str,
    s: &Settle<'_>,
) -> Result<String> {
    let b = bindings::get(c, source, true)?;
    reserved_col(&b)?;
    // The keys as bound_reserve stored them (bound::item_key: a uuid in
    // lower case, an integer without padding), so the ids a client sent to
    // bound_reserve name its lines; one that doesn't parse stays as written
    // and is answered as not a line of this reservation.
    let only: Option<Vec<String>> = only.map(|v| {
        v.into_iter()
            .map(|w| bound::item_key(b.id_type, Some(w.clone()), field).unwrap_or(w))
            .collect()
    });
    let lines = active_lines(c, &[id], only.as_ref())?;
    if let Some(wanted) = &only {
        only_active_lines(c, id, true, field, wanted, |w| {
            lines.iter().any(|l| l.key == w)
        })?;
    }
    let held = held_per_key(&lines);
    if !held.is_empty() {
        let rows = lock_rows(c, &b, &held)?;
        let commit = to == "committed";
        if commit {
            bound::require_found(held.keys(), &rows)?;
            // the app may have lowered quantity under the hold
            let short: Vec<Shortfall> = held
                .iter()
                .filter(|(k, q)| rows.get(*k).is_some_and(|have| have < *q))
                .map(|(k, q)| Shortfall {
                    inventory_id: k.clone(),
                    available: rows[k].normalize().to_string(),
                    requested: q.normalize().to_string(),
                })
                .collect();
            if !short.is_empty() {
                return Err(Error::Insufficient { lines: short });
            }
        }
        settle(c, &b, held, &rows, commit, s)?;
    }
    let keys: Option<Vec<String>> = only.map(|_| lines.iter().map(|l| l.key.clone()).collect());
    let t = run(
        c,
        &FINISH,
        &[
            vec![id].into(),
            keys.into(),
            to.to_string().into(),
            source.to_string().into(),
        ],
    )?;
    Ok(t.first().get::<String>(1)?.unwrap_or_default())
}

/// The sweep's part for one source: expire reservations `ids` (locked, due,
/// active) and give their units back. A binding whose table is gone (or that
/// was unbound with the table) has nothing to give back: the lines expire.
pub(crate) fn expire(c: &mut SpiClient<'_>, source: &str, ids: Vec<Uuid>) -> Result<i32> {
    let lines = active_lines(c, &ids, None)?;
    let held = held_per_key(&lines);
    match bindings::get(c, source, true) {
        Ok(b) if b.reserved.is_some() => {
            if !held.is_empty() {
                let present = lock_rows(c, &b, &held)?;
                let s = Settle {
                    reason: None,
                    reservation: String::new(),
                    key: None,
                };
                settle(c, &b, held, &present, false, &s)?;
            }
        }
        Ok(_) | Err(Error::NotFound { .. }) | Err(Error::InvalidInput { .. }) => {}
        Err(e) => return Err(e),
    }
    let t = run(
        c,
        &FINISH,
        &[
            ids.into(),
            None::<Vec<String>>.into(),
            "expired".to_string().into(),
            source.to_string().into(),
        ],
    )?;
    Ok(t.len() as i32)
}

entry_point!(ai_bound_reserve, pg_finfo_ai_bound_reserve, reserve);

fn commit(args: &Args) -> Result<String> {
    crate::reservations::finish(args, "committed", true)
}

fn release(args: &Args) -> Result<String> {
    crate::reservations::finish(args, "released", true)
}

entry_point!(
    ai_bound_commit_reservation,
    pg_finfo_ai_bound_commit_reservation,
    commit
);
entry_point!(
    ai_bound_release_reservation,
    pg_finfo_ai_bound_release_reservation,
    release
);
