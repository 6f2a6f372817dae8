//! The reservation records, whatever source holds their units: a
//! reservation's row in `atomic_inventory.reservations` (its status, expiry
//! and, for an adopted table, the source's name). Its lines and the units
//! they hold are the source's (HoldSource).

use crate::core::caller::Caller;
use crate::core::validate;
use crate::error::{Error, Result};
use crate::pg::spi::{run, Stmt};
use pgrx::pg_sys::{self, Oid};
use pgrx::spi::SpiClient;
use pgrx::Uuid;

const UUID: Oid = pg_sys::UUIDOID;
const UUIDS: Oid = pg_sys::UUIDARRAYOID;
const TEXT: Oid = pg_sys::TEXTOID;
const BOOL: Oid = pg_sys::BOOLOID;
const INT: Oid = pg_sys::INT4OID;

/// Default hold: 15 minutes, like most checkout timers.
pub const DEFAULT_TTL_SECONDS: i32 = 900;

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

/// A reservation whose row a trigger or rule of the operator's skipped
/// writing: refused (the error undoes the rest of the call), never an
/// INTERNAL error or a success the row does not record.
pub fn skipped(id: &Uuid) -> Error {
    Error::invalid_input(
        "p_reservation_id",
        format!(
            "a trigger or rule on atomic_inventory.reservations skipped the write of reservation {id}; nothing changed"
        ),
    )
}

/// A partial commit whose write of a line (checked active and covering,
/// under the reservation's lock) a trigger or rule of the operator's
/// skipped: refused, nothing changed.
pub fn skipped_lines(id: &Uuid) -> Error {
    Error::invalid_input(
        "p_lines",
        format!(
            "a trigger or rule on the reservation lines' table skipped the write of a line of reservation {id}; nothing changed"
        ),
    )
}

/// A hold whose items took it while a trigger or rule skipped its record
/// (the reservation's row or a line's): refused, so that no reserved unit
/// goes without the line that holds it (the error undoes the hold).
pub fn skipped_record<'a>(items: impl Iterator<Item = &'a Uuid>) -> Error {
    let ids: Vec<String> = items.map(validate::uuid_text).collect();
    Error::invalid_input(
        "p_lines",
        format!(
            "a trigger or rule on atomic_inventory.reservations or reservation_lines skipped the record of a hold of item {}; nothing changed",
            ids.join(", ")
        ),
    )
}

/// Where a reservation's units are held: the extension's own items, or an
/// adopted table (its source's name).
pub enum Holder {
    Own,
    Bound(String),
}

/// Lock a visible reservation and check it can still change; a commit
/// (`must_be_unexpired`) also needs it unexpired. Answers where its units
/// are held.
pub fn lock_active(
    c: &mut SpiClient<'_>,
    who: &Caller,
    id: Uuid,
    must_be_unexpired: bool,
) -> Result<Holder> {
    let state = run(
        c,
        &LOCK_RESERVATION,
        &[id.into(), who.admin.into(), who.tenant.clone().into()],
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
    Ok(match row.get::<String>(4)? {
        Some(source) => Holder::Bound(source),
        None => Holder::Own,
    })
}

/// Move the expiry of a reservation the caller holds locked: the answer.
pub fn extend(c: &mut SpiClient<'_>, id: Uuid, ttl_seconds: i32) -> Result<String> {
    let done = run(c, &EXTEND, &[id.into(), ttl_seconds.into()])?;
    Ok(done.first().get::<String>(1)?.unwrap_or_default())
}

/// Which due reservations a sweep takes: all but `except`, or just `only`.
#[derive(Default)]
pub struct Sweep {
    pub except: Vec<Uuid>,
    pub only: Option<Uuid>,
}

/// Due reservations' ids: those on the extension's own items, and per
/// bound source, its own.
pub type Due = (Vec<Uuid>, std::collections::BTreeMap<String, Vec<Uuid>>);

/// Up to `limit` due reservations nobody is working on (SKIP LOCKED),
/// locked, lowest id first, leaving out the sources `skip`: per holder,
/// their ids.
pub fn due(c: &mut SpiClient<'_>, limit: i32, skip: &[String], which: &Sweep) -> Result<Due> {
    let rows = run(
        c,
        &DUE,
        &[
            limit.into(),
            skip.to_vec().into(),
            which.except.clone().into(),
            which.only.into(),
        ],
    )?;
    let mut own = Vec::new();
    let mut bound: std::collections::BTreeMap<String, Vec<Uuid>> = Default::default();
    for row in rows {
        let Some(u) = row.get::<Uuid>(1)? else {
            continue;
        };
        match row.get::<String>(2)? {
            Some(source) => bound.entry(source).or_default().push(u),
            None => own.push(u),
        }
    }
    Ok((own, bound))
}

/// Up to `limit` due reservations' ids on the extension's own items,
/// lowest first, leaving out `except` (not locked).
pub fn due_ids(c: &mut SpiClient<'_>, limit: i32, except: &[Uuid]) -> Result<Vec<Uuid>> {
    let mut ids = Vec::new();
    for row in run(c, &DUE_IDS, &[limit.into(), except.to_vec().into()])? {
        if let Some(u) = row.get::<Uuid>(1)? {
            ids.push(u);
        }
    }
    Ok(ids)
}
