//! The reservation functions: reserve_inventory and bound_reserve (hold
//! units of the extension's items or of an adopted table), commit /
//! release (either kind; the bound_* twins name lines by item key),
//! extend_reservation and expire_reservations (ops/reservations.rs).

use crate::core::caller::Caller;
use crate::core::idempotency;
use crate::core::validate;
use crate::error::{Error, Result};
use crate::ops::allocate;
use crate::ops::batches;
use crate::ops::kits;
use crate::ops::reservations::{self, Parts, Settlement};
use crate::pg::fmgr::{entry_points, Args};
use crate::pg::spi::with_spi;
use crate::settings;
use crate::source::bound::binding::{self, Kind};
use crate::source::bound::stock::lines as bound_lines;
use crate::source::holds::{Sweep, DEFAULT_TTL_SECONDS};
use crate::source::own::Own;
use crate::source::{Finish, Rest};
use pgrx::AnyNumeric;
use serde_json::json;

/// p_ttl_seconds: 1 s to 30 days, 15 minutes by default.
fn ttl_seconds(args: &Args, n: usize) -> Result<i32> {
    match args.int(n) {
        None => Ok(DEFAULT_TTL_SECONDS),
        Some(s) if (1..=2_592_000).contains(&s) => Ok(s),
        Some(s) => Err(Error::invalid_input(
            "p_ttl_seconds",
            format!("must be between 1 and 2592000 (30 days) (got {s})"),
        )),
    }
}

/// reserve_inventory(p_lines, p_ttl_seconds, p_reference,
/// p_idempotency_key, p_lock_timeout_ms)
fn reserve(args: &Args) -> Result<String> {
    let lines = validate::lines(args.jsonb_container(0), "p_lines")?;
    // only an order naming a location takes the path that locks levels;
    // every other keeps the default location's statements
    let at_locations = lines.iter().any(|l| l.location_id.is_some());
    let ttl = ttl_seconds(args, 1)?;
    let reference = args.text(2, "p_reference")?;
    let key = args.idempotency_key(3)?;
    let lock_ms = args.lock_timeout_ms(4)?;
    let who = Caller::current()?;
    let request = || {
        json!({"lines": validate::canonical_lines(&lines), "ttl_seconds": ttl,
               "reference": reference})
        .to_string()
    };
    with_spi(lock_ms, |c| {
        idempotency::once(c, &who, key.as_deref(), "reserve_inventory", request, |c| {
            if at_locations {
                let (expanded, used) = kits::hold_lines_at(c, &who, &lines)?;
                let done = reservations::reserve_at(c, &who, &expanded, ttl, reference.clone())?;
                return kits::with_kits(done, &used);
            }
            // the common cart of one line: one statement, when it can; of
            // more, no statement asking about kits and levels of its own
            let plain = match lines.as_slice() {
                [one] => reservations::reserve_plain_one(c, &who, one, ttl, reference.clone())?,
                _ => reservations::reserve_plain(c, &who, &lines, ttl, reference.clone())?,
            };
            if let Some(done) = plain {
                return Ok(done);
            }
            // Kits read as their components, merged per item and sorted:
            // the order the rows are locked in. (The reservation's lines
            // merge them again, per item.)
            let (merged, used, any_levels) = kits::hold_lines(c, &who, &lines)?;
            // Items with stock at other locations: a line the default
            // location can't cover is held where the policy finds it
            // (ops/allocate.rs, hold_lines).
            if any_levels {
                if let Some(placed) = allocate::hold_lines(c, &who, &merged)? {
                    let done = reservations::reserve_at(c, &who, &placed, ttl, reference.clone())?;
                    return kits::with_kits(done, &used);
                }
            }
            let done = reservations::reserve(&Own, c, &who, &merged, ttl, reference.clone())?;
            kits::with_kits(done, &used)
        })
    })
}

/// bound_reserve(p_source, p_lines, p_ttl_seconds, p_reference,
/// p_idempotency_key, p_lock_timeout_ms)
fn bound_reserve(args: &Args) -> Result<String> {
    let src = args.source(0)?;
    let raw = args.jsonb_container(1);
    let ttl = ttl_seconds(args, 2)?;
    let reference = args.text(3, "p_reference")?;
    let key = args.idempotency_key(4)?;
    let lock_ms = args.lock_timeout_ms(5)?;
    let who = Caller::current()?;
    with_spi(lock_ms, |c| {
        let b = binding::get(c, &src, Kind::Stock)?;
        crate::source::HoldSource::can_hold(&*b)?;
        let merged = bound_lines(&b, raw)?;
        let request = || {
            let canon: Vec<(String, String)> = merged
                .keys
                .iter()
                .zip(&merged.qtys)
                .map(|(k, q)| (k.clone(), q.normalize().to_string()))
                .collect();
            json!({"source": src, "lines": canon, "ttl_seconds": ttl, "reference": reference})
                .to_string()
        };
        idempotency::once(c, &who, key.as_deref(), "bound_reserve", request, |c| {
            reservations::reserve(&*b, c, &who, &merged, ttl, reference.clone())
        })
    })
}

/// How a commit or release names the lines it finishes (argument 1).
#[derive(Clone, Copy)]
enum LineIds {
    /// `p_inventory_ids uuid[]` (commit_reservation, release_reservation)
    Uuids,
    /// `p_item_ids text[]` (bound_commit_reservation, bound_release_reservation)
    ItemKeys,
}

/// The optional line filter, argument `n`: its name and the ids as text (a
/// uuid as its canonical text, which is also a uuid-keyed bound row's item
/// key); None = all lines.
fn line_filter(args: &Args, n: usize, ids: LineIds) -> Result<(&'static str, Option<Vec<String>>)> {
    let (field, given): (&'static str, Option<Vec<Option<String>>>) = match ids {
        LineIds::ItemKeys => ("p_item_ids", args.text_array(n)),
        LineIds::Uuids => (
            "p_inventory_ids",
            args.uuid_array(n).map(|v| {
                v.into_iter()
                    .map(|u| u.map(|u| validate::uuid_text(&u)))
                    .collect()
            }),
        ),
    };
    match given {
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

/// The commits' p_rest (argument `n`): what a partial commit does with a
/// line's units it doesn't commit; NULL is the default, release. Checked
/// with or without p_lines.
fn rest(args: &Args, n: usize) -> Result<Rest> {
    match args.text(n, "p_rest")?.as_deref() {
        None | Some("release") => Ok(Rest::Release),
        Some("keep") => Ok(Rest::Keep),
        Some(other) => Err(Error::invalid_input(
            "p_rest",
            format!(
                "must be 'release' or 'keep' (got {:?})",
                other.chars().take(64).collect::<String>()
            ),
        )),
    }
}

/// The p_lines (argument `n`) and p_rest (`n + 1`) of commit_reservation
/// and bound_commit_reservation: units to commit per line and what becomes
/// of each line's rest. Lines as the reserve function took them,
/// [{inventory_id, quantity}] or [{item_id, quantity}], each quantity
/// finite and > 0, a line given twice adding up; sorted by key. None:
/// whole lines (the line filter, `only`, named `line_field`).
fn parts(
    args: &Args,
    n: usize,
    ids: LineIds,
    only: &Option<Vec<String>>,
    line_field: &str,
) -> Result<Option<Parts>> {
    let rest = rest(args, n + 1)?;
    let Some(raw) = args.jsonb_container(n) else {
        return Ok(None);
    };
    if only.is_some() {
        return Err(Error::invalid_input(
            "p_lines",
            format!(
                "cannot be combined with {line_field}: name the lines to commit in p_lines only"
            ),
        ));
    }
    let lines: Vec<(String, AnyNumeric)> = match ids {
        LineIds::Uuids => {
            let lines = validate::lines(Some(raw), "p_lines")?;
            // a reservation holds an item at one location: its line is
            // named by the item alone
            if lines.iter().any(|l| l.location_id.is_some()) {
                return Err(Error::invalid_input(
                    "p_lines",
                    "names a location: name a line by its inventory_id alone (it holds at the location it was reserved at)",
                ));
            }
            let (keys, qtys) = validate::merged_lines(&lines);
            keys.iter().map(validate::uuid_text).zip(qtys).collect()
        }
        LineIds::ItemKeys => {
            let mut merged: std::collections::BTreeMap<String, AnyNumeric> = Default::default();
            for (k, q) in validate::item_lines(Some(raw), "p_lines")? {
                let total = match merged.remove(&k) {
                    Some(prev) => prev + q,
                    None => q,
                };
                merged.insert(k, total);
            }
            merged.into_iter().collect()
        }
    };
    Ok(Some(Parts { lines, rest }))
}

/// commit_reservation / release_reservation and their bound_* twins:
/// (p_reservation_id, the line filter, p_reason, p_idempotency_key,
/// p_lock_timeout_ms), and the commits' p_lines and p_rest. Either
/// takes a reservation of either source.
fn finish(args: &Args, how: Finish, ids: LineIds) -> Result<String> {
    let id = args.uuid(0, "p_reservation_id")?;
    let (line_field, only) = line_filter(args, 1, ids)?;
    let parts = match how {
        Finish::Commit => parts(args, 5, ids, &only, line_field)?,
        Finish::Release => None,
    };
    let field = if parts.is_some() {
        "p_lines"
    } else {
        line_field
    };
    let reason = args.text(2, "p_reason")?;
    let key = args.idempotency_key(3)?;
    let lock_ms = args.lock_timeout_ms(4)?;
    let who = Caller::current()?;
    let function = match (how, ids) {
        (Finish::Commit, LineIds::Uuids) => "commit_reservation",
        (Finish::Release, LineIds::Uuids) => "release_reservation",
        (Finish::Commit, LineIds::ItemKeys) => "bound_commit_reservation",
        (Finish::Release, LineIds::ItemKeys) => "bound_release_reservation",
    };
    let request = || {
        let only_sorted: Option<Vec<String>> = only.as_ref().map(|v| {
            let mut ids = v.clone();
            ids.sort();
            ids.dedup();
            ids
        });
        let mut req = json!({"reservation_id": id.to_string(), "inventory_ids": only_sorted,
                             "reason": reason});
        // only with p_lines (p_rest means nothing without it), so that keys
        // of whole-line commits replay as before
        if let Some(p) = &parts {
            let canon: Vec<(String, String)> = p
                .lines
                .iter()
                .map(|(k, q)| (k.clone(), q.normalize().to_string()))
                .collect();
            req["lines"] = json!(canon);
            req["rest"] = json!(p.rest.as_str());
        }
        req.to_string()
    };
    with_spi(lock_ms, |client| {
        idempotency::once(client, &who, key.as_deref(), function, request, |c| {
            let st = Settlement {
                how,
                only: only.clone(),
                parts: parts.clone(),
                field,
                reason: reason.clone(),
                key: key.as_deref(),
            };
            reservations::finish(c, &who, id, st)
        })
    })
}

fn commit(args: &Args) -> Result<String> {
    finish(args, Finish::Commit, LineIds::Uuids)
}

fn release(args: &Args) -> Result<String> {
    finish(args, Finish::Release, LineIds::Uuids)
}

fn bound_commit(args: &Args) -> Result<String> {
    finish(args, Finish::Commit, LineIds::ItemKeys)
}

fn bound_release(args: &Args) -> Result<String> {
    finish(args, Finish::Release, LineIds::ItemKeys)
}

/// extend_reservation(p_reservation_id, p_ttl_seconds, p_lock_timeout_ms)
fn extend(args: &Args) -> Result<String> {
    let id = args.uuid(0, "p_reservation_id")?;
    let ttl = ttl_seconds(args, 1)?;
    let lock_ms = args.lock_timeout_ms(2)?;
    let who = Caller::current()?;
    with_spi(lock_ms, |c| reservations::extend(c, &who, id, ttl))
}

/// expire_reservations(p_limit)
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
    let (n, lapsed) = with_spi(settings::sweep_lock_timeout(), |c| {
        let n = reservations::sweep(c, limit, &Sweep::default())?;
        Ok((n, batches::lapse(c, limit)?))
    })?;
    Ok(json!({"success": true, "expired": n, "lapsed_batches": lapsed}).to_string())
}

entry_points! {
    ai_reserve_inventory / pg_finfo_ai_reserve_inventory
        (JSONBOID, INT4OID, TEXTOID, TEXTOID, INT4OID) => reserve;
    ai_bound_reserve / pg_finfo_ai_bound_reserve
        (TEXTOID, JSONBOID, INT4OID, TEXTOID, TEXTOID, INT4OID) => bound_reserve;
    ai_commit_reservation / pg_finfo_ai_commit_reservation
        (UUIDOID, UUIDARRAYOID, TEXTOID, TEXTOID, INT4OID, JSONBOID, TEXTOID) => commit;
    ai_release_reservation / pg_finfo_ai_release_reservation
        (UUIDOID, UUIDARRAYOID, TEXTOID, TEXTOID, INT4OID) => release;
    ai_bound_commit_reservation / pg_finfo_ai_bound_commit_reservation
        (UUIDOID, TEXTARRAYOID, TEXTOID, TEXTOID, INT4OID, JSONBOID, TEXTOID) => bound_commit;
    ai_bound_release_reservation / pg_finfo_ai_bound_release_reservation
        (UUIDOID, TEXTARRAYOID, TEXTOID, TEXTOID, INT4OID) => bound_release;
    ai_extend_reservation / pg_finfo_ai_extend_reservation
        (UUIDOID, INT4OID, INT4OID) => extend;
    ai_expire_reservations / pg_finfo_ai_expire_reservations (INT4OID) => expire;
}
