//! Reservations, written once over any source that holds units: hold stock
//! for a cart or a pending order, then commit it into a sale or give it
//! back, by hand or by expiry.
//!
//! Unlike the checkout reservation's bare `reserved` counter (docs/
//! background.md), every hold is a row with lines, so a release returns
//! exactly what that reservation held (never clamped, never twice), and a
//! row's reserved units always equal the sum of its active tracked lines.
//!
//! Lock order, everywhere: the reservation row first, then the stock rows
//! in ascending key order. `reserve` locks the rows (sorted) and then
//! inserts a reservation nobody else can see yet, so no path waits in the
//! other order. The sweep takes due reservations with SKIP LOCKED, so it
//! never waits on one being committed or released, and re-checks that a
//! reservation is active after locking it: a reservation can't be both
//! committed and expired.
//!
//! A commit may also take some units of a line (commit_parts, p_lines):
//! the rest is given back or stays held in the still-active line, so the
//! sum above holds and a later commit, release or expiry settles the rest.

use crate::core::caller::Caller;
use crate::core::movement::{LedgerKind, LedgerNote};
use crate::core::validate::{self, Line};
use crate::error::{Error, Result};
use crate::pg::spi;
use crate::source::bound::{
    self,
    binding::{self, Kind},
};
use crate::source::holds::{self, Holder, Sweep};
use crate::source::own::level_holds;
use crate::source::own::levels::{Level, LevelKey};
use crate::source::own::Own;
use crate::source::{Finish, HoldSource, Lines, LockedLines, NewHold, Part, Rest, StockSource};
use pgrx::spi::SpiClient;
use pgrx::{AnyNumeric, Uuid};
use std::collections::BTreeMap;

/// Hold the lines' units and record the reservation: the answer.
pub fn reserve<S: HoldSource>(
    s: &S,
    c: &mut SpiClient<'_>,
    who: &Caller,
    lines: &Lines<S::Key>,
    ttl_seconds: i32,
    reference: Option<String>,
) -> Result<String> {
    s.can_hold()?;
    // Lock every row in key order and refuse if any is missing or short
    // (available = quantity - reserved, as for a sale).
    let locked = s.lock_lines(c, who, lines)?;
    hold_locked(s, c, who, lines, locked, ttl_seconds, reference)
}

/// `reserve` once the lines' rows are locked (and found covering them).
fn hold_locked<S: HoldSource>(
    s: &S,
    c: &mut SpiClient<'_>,
    who: &Caller,
    lines: &Lines<S::Key>,
    locked: LockedLines<S::Key>,
    ttl_seconds: i32,
    reference: Option<String>,
) -> Result<String> {
    // whose reservation it is (an admin's: the rows' tenant's)
    let tenant = who.record_tenant(&locked.tenants(), "p_lines")?;
    let new = NewHold {
        ttl_seconds,
        reference,
        tenant,
    };
    let out = s.hold(c, lines, &locked, &new)?;
    // reserved units stay in the item row; the rest goes back out
    s.respread(c, &locked.striped)?;
    Ok(out)
}

/// A cart of lines at the default location whose items are no kits and
/// have no stock at other locations, held as `reserve` holds the lines
/// of the extension's items, its first statement (Own::lock_lines_plain)
/// asking that as well: the answer, or None when the cart needs the full
/// path (nothing locked then).
pub fn reserve_plain(
    c: &mut SpiClient<'_>,
    who: &Caller,
    lines: &[Line],
    ttl_seconds: i32,
    reference: Option<String>,
) -> Result<Option<String>> {
    if lines.iter().any(|l| l.location_id.is_some()) {
        return Ok(None);
    }
    let (keys, qtys) = validate::merged_lines(lines);
    let merged = Lines { keys, qtys };
    let Some(locked) = Own.lock_lines_plain(c, who, &merged)? else {
        return Ok(None);
    };
    hold_locked(&Own, c, who, &merged, locked, ttl_seconds, reference).map(Some)
}

/// A cart of one line at the default location held in one statement
/// (Own::hold_plain_one): the answer, or None when the line needs `reserve`'s
/// full path (a kit, an item with stock at other locations, a striped or
/// untracked item, a short or missing one; nothing is written then).
pub fn reserve_plain_one(
    c: &mut SpiClient<'_>,
    who: &Caller,
    line: &Line,
    ttl_seconds: i32,
    reference: Option<String>,
) -> Result<Option<String>> {
    if line.location_id.is_some() {
        return Ok(None);
    }
    Own.hold_plain_one(
        c,
        who,
        &line.inventory_id,
        &line.quantity,
        ttl_seconds,
        reference,
    )
}

/// Hold lines of the extension's own items of which some name a location
/// (reserve_inventory's path for them; lines naming none are held as
/// `reserve` holds them). Each line holds at its location: the default
/// one's units in the item's row, another's in its level. One item is held
/// at one location per reservation (its line is named by the item alone
/// when committed or released), so an item named at two is bad input.
///
/// Locks the default rows first (Own::lock_lines: the items' own rows by
/// id, stripes gathered), then the levels by (item, location): the order
/// of every caller locking rows of several locations (levels.rs). Every
/// short line, at either kind of location, is reported at once.
pub fn reserve_at(
    c: &mut SpiClient<'_>,
    who: &Caller,
    lines: &[Line],
    ttl_seconds: i32,
    reference: Option<String>,
) -> Result<String> {
    // per item: its location (None: the default one) and units
    let mut per_item: BTreeMap<Uuid, (Option<Uuid>, AnyNumeric)> = BTreeMap::new();
    let mut twice: Vec<String> = Vec::new();
    for l in lines {
        match per_item.get_mut(&l.inventory_id) {
            Some((loc, q)) if *loc == l.location_id => *q = q.clone() + l.quantity.clone(),
            Some(_) => twice.push(validate::uuid_text(&l.inventory_id)),
            None => {
                per_item.insert(l.inventory_id, (l.location_id, l.quantity.clone()));
            }
        }
    }
    if !twice.is_empty() {
        twice.sort();
        twice.dedup();
        return Err(Error::invalid_input(
            "p_lines",
            format!(
                "names items at two locations: {} (a reservation holds an item at one location; reserve the rest separately)",
                twice.join(", ")
            ),
        ));
    }
    // a BTreeMap of uuids iterates bytewise, PostgreSQL's uuid order: the
    // order the rows are locked in
    let mut defaults = Lines {
        keys: Vec::new(),
        qtys: Vec::new(),
    };
    let mut at: BTreeMap<LevelKey, AnyNumeric> = BTreeMap::new();
    let mut all: Vec<(Uuid, Option<Uuid>, AnyNumeric)> = Vec::with_capacity(per_item.len());
    for (item, (loc, q)) in &per_item {
        match loc {
            None => {
                defaults.keys.push(*item);
                defaults.qtys.push(q.clone());
            }
            Some(location) => {
                at.insert(
                    LevelKey {
                        item: *item,
                        location: *location,
                    },
                    q.clone(),
                );
            }
        }
        all.push((*item, *loc, q.clone()));
    }

    let mut short = Vec::new();
    let mut tenants = Vec::new();
    let mut tracked = 0;
    let mut striped = Vec::new();
    if !defaults.keys.is_empty() {
        match Own.lock_lines(c, who, &defaults) {
            Ok(locked) => {
                tenants.extend(locked.tenants());
                tracked += locked.rows.values().filter(|r| r.tracked).count();
                striped = locked.striped;
            }
            // the default rows are locked; go on to list the levels' too
            Err(Error::Insufficient { lines }) => short.extend(lines),
            Err(e) => return Err(e),
        }
    }
    let levels = level_holds::lock_for_hold(c, who, &at)?;
    short.extend(levels.short);
    if !short.is_empty() {
        return Err(Error::Insufficient { lines: short });
    }
    tenants.extend(levels.tenants);
    tenants.sort();
    tenants.dedup();
    tracked += levels.tracked.len();
    let tenant = who.record_tenant(&tenants, "p_lines")?;
    let (out, held) = level_holds::apply_hold(c, &all, ttl_seconds, reference, tenant)?;
    // every tracked line's row (locked, covering it) must take its hold,
    // or the reservation would hold units no reserved counts
    if held != tracked {
        let ids: Vec<&Uuid> = per_item.keys().collect();
        return Err(Own.skipped(&ids));
    }
    Own.respread(c, &striped)?;
    // striped levels (gathered by lock_for_hold): spread again
    Level { sale: true }.respread(c, &levels.striped)?;
    Ok(out)
}

/// A commit or release of a reservation's active lines (all, or those
/// `only` names, as the caller wrote them; `field` is that argument's name),
/// or a commit of some units of named lines (`parts`, then `only` is None
/// and `field` names the parts' argument).
pub struct Settlement<'a> {
    pub how: Finish,
    pub only: Option<Vec<String>>,
    pub parts: Option<Parts>,
    pub field: &'a str,
    pub reason: Option<String>,
    pub key: Option<&'a str>,
}

/// A partial commit: units to commit per line (keys as the caller wrote
/// them; a key given twice adds up) and what becomes of each line's rest.
#[derive(Clone)]
pub struct Parts {
    pub lines: Vec<(String, AnyNumeric)>,
    pub rest: Rest,
}

/// Commit or release reservation `id`, whichever source holds its units.
pub fn finish(c: &mut SpiClient<'_>, who: &Caller, id: Uuid, st: Settlement<'_>) -> Result<String> {
    match holds::lock_active(c, who, id, st.how == Finish::Commit)? {
        Holder::Own => finish_on(&Own, c, id, st),
        Holder::Bound(source) => {
            let b = binding::get(c, &source, Kind::Stock)?;
            finish_on(&*b, c, id, st)
        }
    }
}

fn finish_on<S: HoldSource>(
    s: &S,
    c: &mut SpiClient<'_>,
    id: Uuid,
    st: Settlement<'_>,
) -> Result<String> {
    let note = LedgerNote {
        kind: LedgerKind::Commit,
        reason: st.reason,
        reference: Some(id.to_string()),
        key: st.key,
    };
    if let Some(parts) = st.parts {
        return commit_parts(s, c, id, parts, st.field, &note);
    }
    if st.only.is_none() {
        if let Some(done) = s.settle_at_once(c, id, st.how, &note)? {
            return Ok(done);
        }
    }
    let only = st.only.map(|v| s.stored_keys(v, st.field));
    let lines = s.held_lines(c, id, only.as_deref())?;
    if let Some(named) = &only {
        only_active_lines(s, c, id, st.field, named, |w| {
            lines.iter().any(|l| l.key == w)
        })?;
    }
    s.settle(c, id, &lines, only.is_some(), st.how, &note)
}

/// Commit some units of named lines (`field`: the argument naming them):
/// every named line must be an active line of the reservation holding at
/// least the units asked for, or nothing changes. The reservation row is
/// locked (lock_active) and held_lines locks the lines' items, ascending.
fn commit_parts<S: HoldSource>(
    s: &S,
    c: &mut SpiClient<'_>,
    id: Uuid,
    parts: Parts,
    field: &str,
    note: &LedgerNote<'_>,
) -> Result<String> {
    // per line as stored: two spellings of one id are one line
    let mut want: BTreeMap<String, AnyNumeric> = BTreeMap::new();
    let (keys, qtys): (Vec<String>, Vec<AnyNumeric>) = parts.lines.into_iter().unzip();
    for (k, q) in s.stored_keys(keys, field).into_iter().zip(qtys) {
        let total = match want.remove(&k) {
            Some(prev) => prev + q,
            None => q,
        };
        want.insert(k, total);
    }
    let named: Vec<String> = want.keys().cloned().collect();
    let lines = s.held_lines(c, id, Some(&named))?;
    only_active_lines(s, c, id, field, &named, |w| {
        lines.iter().any(|l| l.key == w)
    })?;
    let mut over = Vec::new();
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        let take = want.remove(&line.key).unwrap_or_default();
        if take > line.qty {
            over.push(format!(
                "{} (asked {}, holds {})",
                line.key,
                take.normalize(),
                line.qty.normalize()
            ));
        }
        out.push(Part { line, take });
    }
    if !over.is_empty() {
        return Err(Error::invalid_input(
            field,
            format!(
                "commits more units than these lines hold: {}",
                over.join(", ")
            ),
        ));
    }
    s.settle_parts(c, id, &out, parts.rest, note)
}

/// Which lines a partial commit/release (`field`) names that it can't
/// finish: ids that were never lines of the reservation are bad input
/// (INVALID_INPUT, all of them named); lines it had that are already
/// committed, released or expired, typically by a concurrent request, are a
/// conflict (LINE_NOT_ACTIVE, PT409) as a finished reservation is.
fn only_active_lines<S: HoldSource>(
    s: &S,
    c: &mut SpiClient<'_>,
    id: Uuid,
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
    let done = s.finished_lines(c, id, &absent)?;
    let never: Vec<String> = absent
        .iter()
        .filter(|w| !done.iter().any(|(d, _)| d == *w))
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
    Err(Error::LineNotActive {
        reservation_id: id.to_string(),
        key_name: s.line_key_name(),
        lines: done,
    })
}

/// Move the expiry of an active, unexpired reservation.
pub fn extend(c: &mut SpiClient<'_>, who: &Caller, id: Uuid, ttl_seconds: i32) -> Result<String> {
    holds::lock_active(c, who, id, true)?;
    holds::extend(c, id, ttl_seconds)
}

/// Expire due reservations, at most `limit`; returns how many. Used by
/// `expire_reservations()` and by the background worker. Own items first
/// (ascending id), then each bound source's holds (sources in name order,
/// holds in id order).
///
/// A source whose expiry fails is skipped for the rest of the sweep, and
/// the sweep looks again for due holds without it: its holds stay due, and
/// since the sweep takes the lowest ids first, a broken source with `limit`
/// due holds would otherwise fill every round and no other reservation
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

/// One pass of the sweep: (how many expired, the sources that failed).
fn sweep_once(
    c: &mut SpiClient<'_>,
    limit: i32,
    skip: &[String],
    which: &Sweep,
) -> Result<(i32, Vec<String>)> {
    let (own, bound) = holds::due(c, limit, skip, which)?;
    let mut n = Own.expire(c, &own)?;
    // Each bound source on its own: one whose table broke under its binding
    // (the reserved column renamed, a trigger that fails) must not stop the
    // expiry of everything else, nor end the background worker every round.
    // Its reservations stay active (their units held) until it is fixed.
    let mut failures = Vec::new();
    for (source, ids) in bound {
        match spi::isolated(|| expire_bound(c, &source, &ids)) {
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

/// The sweep's part for one bound source: its due holds `ids` (locked)
/// expire and give their units back. A source that is no longer bound, or
/// whose table is gone, has nothing to give back: the lines just expire.
fn expire_bound(c: &mut SpiClient<'_>, source: &str, ids: &[Uuid]) -> Result<i32> {
    match binding::lookup(c, source)? {
        Some(b) if b.kind == Kind::Stock => b.expire(c, ids),
        _ => Ok(bound::holds::finish_lines(c, source, ids, None, "expired")?.len() as i32),
    }
}
