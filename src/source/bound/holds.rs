//! Reservations on bound stock tables: `bound_reserve` holds units
//! in the binding's reserved column, so the app's own reads (available =
//! quantity - reserved) and every bound_* sale see the hold at once.
//!
//! A bound reservation is a row of `reservations` with `source` set; its
//! lines live in `bound_reservation_lines`, keyed by item key (the id's text).
//! commit_reservation, release_reservation, extend_reservation,
//! get_reservation and the expiry sweep take both kinds (ops/reservations.rs
//! picks the source by the reservation's `source`); bound_commit_reservation and
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

use super::binding::Binding;
use super::stock::{item_key, skipped_write, tenant_val, write_ledger};
use crate::core::movement::{LedgerNote, LedgerRow};
use crate::error::{Error, Result, Shortfall};
use crate::pg::spi::{run, Stmt};
use crate::settings::ledger_on;
use crate::source::holds::{skipped as skipped_reservation, skipped_lines};
use crate::source::{
    Finish, HeldLine, HoldSource, Lines, LockedLines, NewHold, Part, Rest, StockSource,
};
use pgrx::pg_sys::{self, Oid};
use pgrx::spi::SpiClient;
use pgrx::{AnyNumeric, Uuid};
use std::collections::BTreeMap;

const TEXT: Oid = pg_sys::TEXTOID;
const TEXTS: Oid = pg_sys::TEXTARRAYOID;
const NUMS: Oid = pg_sys::NUMERICARRAYOID;
const UUID: Oid = pg_sys::UUIDOID;
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
/// its lines is, and ends committed if any units of it were. One JSON
/// answer per reservation. ($4: the source, for the answer.)
const FINISH: Stmt = Stmt {
    name: "bound_reservation_finish",
    sql: "WITH fl AS ( \
            UPDATE atomic_inventory.bound_reservation_lines AS l \
               SET status = $3, \
                   committed_quantity = l.committed_quantity \
                     + CASE WHEN $3 = 'committed' THEN l.quantity ELSE 0 END, \
                   released_quantity = l.released_quantity \
                     + CASE WHEN $3 = 'committed' THEN 0 ELSE l.quantity END, \
                   updated_at = pg_catalog.now() \
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
                             WHERE x.reservation_id = r.id \
                               AND (x.status = 'committed' OR x.committed_quantity > 0)) THEN 'committed' \
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

/// A partial commit's lines: $3 units of each line $2 of reservation $1
/// (active, holding at least that many) committed, the rest given back ($4
/// false: the line is committed) or kept held ($4 true: the line stays
/// active holding the rest). The rows' columns are give_back's. As own
/// items' COMMIT_PARTS: the answer and how many lines it wrote. ($5: the
/// source, $6: p_rest, for the answer.)
const COMMIT_PARTS: Stmt = Stmt {
    name: "bound_reservation_commit_parts",
    sql: "WITH p AS ( \
            SELECT x.k, x.n \
              FROM ROWS FROM (pg_catalog.unnest($2::text[]), pg_catalog.unnest($3::numeric[])) AS x(k, n) \
          ), fl AS ( \
            UPDATE atomic_inventory.bound_reservation_lines AS l \
               SET status = CASE WHEN $4 AND p.n < l.quantity THEN 'active' ELSE 'committed' END, \
                   quantity = CASE WHEN $4 AND p.n < l.quantity THEN l.quantity - p.n \
                                   ELSE l.quantity END, \
                   committed_quantity = l.committed_quantity + p.n, \
                   released_quantity = l.released_quantity \
                     + CASE WHEN $4 THEN 0 ELSE l.quantity - p.n END, \
                   updated_at = pg_catalog.now() \
              FROM p \
             WHERE l.reservation_id = $1 AND l.status = 'active' AND l.item_key = p.k \
               AND p.n > 0 AND p.n <= l.quantity \
            RETURNING l.item_key, p.n AS sold, \
                      CASE WHEN l.status = 'committed' THEN l.quantity - p.n ELSE 0 END AS freed, \
                      CASE WHEN l.status = 'active' THEN l.quantity END AS kept \
          ), res AS ( \
            UPDATE atomic_inventory.reservations AS r \
               SET status = CASE \
                     WHEN EXISTS (SELECT 1 FROM fl WHERE fl.kept IS NOT NULL) \
                       OR EXISTS (SELECT 1 FROM atomic_inventory.bound_reservation_lines AS x \
                                   WHERE x.reservation_id = $1 AND x.status = 'active' \
                                     AND x.item_key <> ALL ($2)) THEN 'active' \
                     ELSE 'committed' END, \
                   updated_at = pg_catalog.now() \
             WHERE r.id = $1 \
            RETURNING r.id, r.status, r.expires_at \
          ) \
          SELECT pg_catalog.json_build_object('success', true, 'reservation_id', res.id, \
                   'source', $5, 'status', res.status, 'expires_at', res.expires_at, 'rest', $6, \
                   'committed', COALESCE((SELECT pg_catalog.json_agg(pg_catalog.json_build_object( \
                          'item_id', fl.item_key, 'quantity', fl.sold) ORDER BY fl.item_key) \
                          FROM fl), '[]'::json), \
                   'released', COALESCE((SELECT pg_catalog.json_agg(pg_catalog.json_build_object( \
                          'item_id', fl.item_key, 'quantity', fl.freed) ORDER BY fl.item_key) \
                          FROM fl WHERE fl.freed > 0), '[]'::json), \
                   'kept', COALESCE((SELECT pg_catalog.json_agg(pg_catalog.json_build_object( \
                          'item_id', fl.item_key, 'quantity', fl.kept) ORDER BY fl.item_key) \
                          FROM fl WHERE fl.kept IS NOT NULL), '[]'::json) \
                 )::text, \
                 (SELECT pg_catalog.count(*) FROM fl)::int4 \
            FROM res",
    args: &[UUID, TEXTS, NUMS, BOOL, TEXT, TEXT],
};

const FINISHED_BOUND_LINES: Stmt = Stmt {
    name: "finished_bound_lines",
    sql: "SELECT DISTINCT l.item_key, l.status \
            FROM atomic_inventory.bound_reservation_lines AS l \
           WHERE l.reservation_id = $1 AND l.item_key = ANY ($2) AND l.status <> 'active'",
    args: &[UUID, pg_sys::TEXTARRAYOID],
};

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

/// Give back held units $2 of rows $1, which the caller holds locked, $3
/// of them sold (a commit; 0: given back only). Reserved drops by what the
/// reservation held, not below 0 (see the module comment); a sale also
/// lowers quantity. Returns per row its key, new quantity, the units sold
/// and its tenant (for the ledger rows of a commit, written after it: kind
/// commit, reference = the reservation).
fn settle_sql(b: &Binding) -> String {
    let r = b.reserved.as_deref().unwrap_or_default();
    format!(
        "UPDATE {rel} AS t \
            SET {r} = GREATEST(COALESCE(t.{r}, 0) - d.qty, 0), \
                {q} = CASE WHEN d.sold <> 0 THEN t.{q} - d.sold ELSE t.{q} END \
           FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::numeric[]), \
                           pg_catalog.unnest($3::numeric[])) AS d(k, qty, sold) \
          WHERE t.{id} = d.k::{ty} \
         RETURNING d.k, t.{q}::numeric, d.sold, {tv}",
        rel = b.rel,
        q = b.qty,
        id = b.id,
        ty = b.id_type.sql(),
        tv = tenant_val(b),
    )
}

/// A bound table's reserved column, if new holds may go into it: refused
/// when it is narrower than the quantity column (binding::Capacity), which
/// bindings made before 0.3.0 may have.
fn holds_fit(b: &Binding) -> Result<()> {
    // A reservation line names one row by item key (bound_reservation_lines,
    // the commit and release statements below): a table keyed by item and
    // location would need the location in each of them. Refused until they
    // carry it, rather than hold units of a row the line cannot name again.
    if b.location.is_some() {
        return Err(Error::invalid_input(
            "p_source",
            format!(
                "{} is keyed by item and location (p_location_column); reservations on such a table are not supported yet",
                b.name
            ),
        ));
    }
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

/// Active lines of reservations `ids` (those keyed in `only`, if given).
fn active_lines(
    c: &mut SpiClient<'_>,
    ids: &[Uuid],
    only: Option<&[String]>,
) -> Result<Vec<HeldLine>> {
    let t = run(
        c,
        &ACTIVE_LINES,
        &[ids.to_vec().into(), only.map(|o| o.to_vec()).into()],
    )?;
    let mut out = Vec::new();
    for row in t {
        out.push(HeldLine {
            key: row.get::<String>(1)?.unwrap_or_default(),
            qty: row.get::<AnyNumeric>(2)?.unwrap_or_default(),
            tracked: row.get::<bool>(3)?.unwrap_or(true),
            location: None,
        });
    }
    Ok(out)
}

/// Tracked units per key (several expiring reservations may hold one row).
fn held_per_key(lines: &[HeldLine]) -> BTreeMap<String, AnyNumeric> {
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

/// Give back the `held` units of rows the caller holds locked, `sold` of
/// them sold (a commit, `commit`: those of a key it names, all of them
/// with `sold` None); `present`: the rows lock_rows found. Each must be
/// written; one the app deleted meanwhile has nothing to give back, but one
/// present and not written was skipped by the table's own trigger or rule,
/// and settling past it would leave its units held in the column. A
/// commit's ledger rows (kind commit, reference = the reservation) are
/// written after it.
fn give_back(
    c: &mut SpiClient<'_>,
    b: &Binding,
    held: BTreeMap<String, AnyNumeric>,
    sold: Option<&BTreeMap<String, AnyNumeric>>,
    present: &BTreeMap<String, AnyNumeric>,
    commit: Option<&LedgerNote<'_>>,
) -> Result<()> {
    if held.is_empty() {
        return Ok(());
    }
    let (keys, qtys): (Vec<String>, Vec<AnyNumeric>) = held.into_iter().unzip();
    let sales: Vec<AnyNumeric> = keys
        .iter()
        .zip(&qtys)
        .map(|(k, q)| match (commit, sold) {
            (None, _) => AnyNumeric::from(0),
            (Some(_), None) => q.clone(),
            (Some(_), Some(s)) => s.get(k).cloned().unwrap_or_default(),
        })
        .collect();
    let t = b.run_as_owner(
        c,
        "reservation_settle",
        settle_sql,
        &[TEXTS, NUMS, NUMS],
        &[keys.clone().into(), qtys.into(), sales.into()],
    )?;
    // ledger rows only for a commit with the ledger on; the keys written always
    let ledger = commit.is_some() && ledger_on();
    let mut rows = Vec::new();
    let mut written = std::collections::BTreeSet::new();
    for row in t {
        let key = row.get::<String>(1)?.unwrap_or_default();
        let sale = row.get::<AnyNumeric>(3)?.unwrap_or_default();
        if ledger && sale > AnyNumeric::from(0) {
            rows.push(LedgerRow {
                key: key.clone(),
                after: row.get::<AnyNumeric>(2)?.unwrap_or_default(),
                delta: AnyNumeric::from(0) - sale,
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
        return Err(skipped_write(b, &skipped));
    }
    if let (true, Some(note)) = (ledger, commit) {
        write_ledger(c, b, note, rows)?;
    }
    Ok(())
}

/// A commit of `sold` units per row from the locked `rows` (lock_rows):
/// NOT_FOUND for rows the app deleted meanwhile, INSUFFICIENT_INVENTORY for
/// rows whose quantity it lowered below the units (the hold stays).
fn can_sell(
    b: &Binding,
    rows: &BTreeMap<String, AnyNumeric>,
    sold: &BTreeMap<String, AnyNumeric>,
) -> Result<()> {
    crate::ops::stock::require_found(b, &sold.keys().cloned().collect::<Vec<_>>(), |k| {
        rows.contains_key(k)
    })?;
    let short: Vec<Shortfall> = sold
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
    Ok(())
}

/// Finish the active lines of reservations `ids` (those keyed in `only`)
/// as `status` and the reservations with them: one answer per reservation.
/// For a source whose table is gone too (its expiry: nothing to give back).
pub fn finish_lines(
    c: &mut SpiClient<'_>,
    source: &str,
    ids: &[Uuid],
    only: Option<Vec<String>>,
    status: &str,
) -> Result<Vec<String>> {
    let t = run(
        c,
        &FINISH,
        &[
            ids.to_vec().into(),
            only.into(),
            status.to_string().into(),
            source.to_string().into(),
        ],
    )?;
    let mut out = Vec::with_capacity(ids.len());
    for row in t {
        out.push(row.get::<String>(1)?.unwrap_or_default());
    }
    Ok(out)
}

impl HoldSource for Binding {
    fn can_hold(&self) -> Result<()> {
        holds_fit(self)
    }

    fn hold(
        &self,
        c: &mut SpiClient<'_>,
        lines: &Lines<String>,
        locked: &LockedLines<String>,
        new: &NewHold,
    ) -> Result<String> {
        let tracked = |k: &String| locked.rows.get(k).is_none_or(|f| f.tracked);
        let (tk, tq): (Vec<String>, Vec<AnyNumeric>) = lines
            .keys
            .iter()
            .zip(&lines.qtys)
            .filter(|(k, _)| tracked(k))
            .map(|(k, q)| (k.clone(), q.clone()))
            .unzip();
        if !tk.is_empty() {
            let held = self.run_as_owner(
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
                return Err(skipped_write(self, &skipped));
            }
        }
        let flags: Vec<bool> = lines.keys.iter().map(tracked).collect();
        let t = run(
            c,
            &RECORD,
            &[
                lines.keys.clone().into(),
                lines.qtys.clone().into(),
                new.ttl_seconds.into(),
                new.reference.clone().into(),
                new.tenant.clone().into(),
                self.name.clone().into(),
                flags.into(),
            ],
        )?;
        if t.is_empty() {
            // unbound between our lookup and the KEY SHARE lock: the error
            // rolls the hold back
            return Err(Error::NotFound {
                entity: "source",
                ids: vec![self.name.clone()],
            });
        }
        Ok(t.first().get::<String>(1)?.unwrap_or_default())
    }

    fn line_key_name(&self) -> &'static str {
        "item_id"
    }

    fn stored_keys(&self, wanted: Vec<String>, field: &str) -> Vec<String> {
        // The keys as bound_reserve stored them (item_key: a uuid in lower
        // case, an integer without padding), so the ids a client sent to
        // bound_reserve name its lines; one that doesn't parse stays as
        // written and is answered as not a line of this reservation.
        wanted
            .into_iter()
            .map(|w| item_key(self.id_type, Some(w.clone()), field).unwrap_or(w))
            .collect()
    }

    fn held_lines(
        &self,
        c: &mut SpiClient<'_>,
        id: Uuid,
        only: Option<&[String]>,
    ) -> Result<Vec<HeldLine>> {
        reserved_col(self)?;
        active_lines(c, &[id], only)
    }

    fn finished_lines(
        &self,
        c: &mut SpiClient<'_>,
        id: Uuid,
        keys: &[String],
    ) -> Result<Vec<(String, String)>> {
        let mut done = Vec::new();
        for row in run(c, &FINISHED_BOUND_LINES, &[id.into(), keys.to_vec().into()])? {
            done.push((
                row.get::<String>(1)?.unwrap_or_default(),
                row.get::<String>(2)?.unwrap_or_default(),
            ));
        }
        done.sort();
        Ok(done)
    }

    fn settle(
        &self,
        c: &mut SpiClient<'_>,
        id: Uuid,
        lines: &[HeldLine],
        partial: bool,
        how: Finish,
        note: &LedgerNote<'_>,
    ) -> Result<String> {
        let held = held_per_key(lines);
        if !held.is_empty() {
            let rows = lock_rows(c, self, &held)?;
            if how == Finish::Commit {
                can_sell(self, &rows, &held)?;
            }
            give_back(
                c,
                self,
                held,
                None,
                &rows,
                (how == Finish::Commit).then_some(note),
            )?;
        }
        let keys = partial.then(|| lines.iter().map(|l| l.key.clone()).collect());
        finish_lines(c, &self.name, &[id], keys, how.status())?
            .into_iter()
            .next()
            .ok_or_else(|| skipped_reservation(&id))
    }

    fn settle_parts(
        &self,
        c: &mut SpiClient<'_>,
        id: Uuid,
        parts: &[Part],
        rest: Rest,
        note: &LedgerNote<'_>,
    ) -> Result<String> {
        // the quantity column takes the units as they are (an integer
        // column no fractions), as for a sale
        for p in parts {
            self.fits(&p.take, "p_lines")?;
        }
        // per tracked row: the units its hold gives up (those sold, and
        // the rest too unless kept) and those sold
        let mut held: BTreeMap<String, AnyNumeric> = BTreeMap::new();
        let mut sold: BTreeMap<String, AnyNumeric> = BTreeMap::new();
        for p in parts.iter().filter(|p| p.line.tracked) {
            let gives_up = match rest {
                Rest::Release => p.line.qty.clone(),
                Rest::Keep => p.take.clone(),
            };
            held.insert(p.line.key.clone(), gives_up);
            sold.insert(p.line.key.clone(), p.take.clone());
        }
        if !held.is_empty() {
            let rows = lock_rows(c, self, &held)?;
            can_sell(self, &rows, &sold)?;
            give_back(c, self, held, Some(&sold), &rows, Some(note))?;
        }
        let (keys, takes): (Vec<String>, Vec<AnyNumeric>) = parts
            .iter()
            .map(|p| (p.line.key.clone(), p.take.clone()))
            .unzip();
        let t = run(
            c,
            &COMMIT_PARTS,
            &[
                id.into(),
                keys.into(),
                takes.into(),
                (rest == Rest::Keep).into(),
                self.name.clone().into(),
                rest.as_str().to_string().into(),
            ],
        )?;
        if t.is_empty() {
            return Err(skipped_reservation(&id));
        }
        let row = t.first();
        // every line was checked active and covering its units under the
        // reservation's lock: each must be written
        if row.get::<i32>(2)?.unwrap_or(0) as usize != parts.len() {
            return Err(skipped_lines(&id));
        }
        Ok(row.get::<String>(1)?.unwrap_or_default())
    }

    fn expire(&self, c: &mut SpiClient<'_>, ids: &[Uuid]) -> Result<i32> {
        if self.reserved.is_some() {
            let held = held_per_key(&active_lines(c, ids, None)?);
            if !held.is_empty() {
                let present = lock_rows(c, self, &held)?;
                give_back(c, self, held, None, &present, None)?;
            }
        }
        Ok(finish_lines(c, &self.name, ids, None, "expired")?.len() as i32)
    }
}
