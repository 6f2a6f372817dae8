//! Every setting (GUC) of the extension, with its accessor. Registered in
//! `_PG_init`; the server-start setting `sweep_database` only while the
//! library is preloaded (PostgreSQL allows defining it only then).

use pgrx::pg_sys;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;

/// Seconds between sweeps; 0 turns the worker's sweeping off.
pub static SWEEP_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(30);
/// Database the worker sweeps (one worker, one database).
pub static SWEEP_DATABASE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"postgres"));
/// Reservations expired per sweep transaction (keeps each one short).
pub static SWEEP_BATCH: GucSetting<i32> = GucSetting::<i32>::new(1000);
/// Longest wait of a sweep for one row lock, in ms; 0: no limit of ours.
pub static SWEEP_LOCK_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(1000);
/// JWT claim path holding the caller's tenant (core/caller.rs). Superuser-
/// only, so a caller can't point it at a claim they control.
pub static TENANT_CLAIM: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"tenant_id"));
/// The caller's tenant for app backends (`SET LOCAL atomic_inventory.tenant_id`).
pub static TENANT_ID: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// Whether stock movements write ledger rows. Superuser-only (or granted
/// with `GRANT SET ON PARAMETER`): the ledger is an audit trail, so a caller
/// must not be able to switch it off for their own calls.
pub static LEDGER: GucSetting<bool> = GucSetting::<bool>::new(true);
/// Whether stock events are written (read in SQL by the event triggers,
/// `events_on()`). Superuser-only like the ledger: consumers count on
/// every crossing being there.
pub static EVENTS: GucSetting<bool> = GucSetting::<bool>::new(true);
/// Whether every ledger row is also written as a `movement` event (read in
/// SQL by the trigger `ledger_movement_events`).
pub static MOVEMENT_EVENTS: GucSetting<bool> = GucSetting::<bool>::new(false);

/// The lock wait limit for a sweep in this session: sweep_lock_timeout,
/// unless the session's own lock_timeout is shorter (None: leave it).
pub fn sweep_lock_timeout() -> Option<i32> {
    let ms = SWEEP_LOCK_TIMEOUT.get();
    // SAFETY: reading the backend's lock_timeout setting (an int, in ms).
    let session = unsafe { pg_sys::LockTimeout };
    if ms <= 0 || (session > 0 && session <= ms) {
        None
    } else {
        Some(ms)
    }
}

/// Is the movement ledger on for this call?
pub fn ledger_on() -> bool {
    LEDGER.get()
}

/// Seconds between the worker's sweeps (0: off).
pub fn sweep_interval() -> i32 {
    SWEEP_INTERVAL.get()
}

/// Reservations the worker expires per transaction.
pub fn sweep_batch() -> i32 {
    SWEEP_BATCH.get()
}

/// The database the worker sweeps.
pub fn sweep_database() -> String {
    SWEEP_DATABASE
        .get()
        .and_then(|c| c.into_string().ok())
        .unwrap_or_else(|| "postgres".into())
}

/// The configured lock limit of a sweep, in ms, as set (for messages).
pub fn sweep_lock_timeout_setting() -> i32 {
    SWEEP_LOCK_TIMEOUT.get()
}

pub fn init() {
    GucRegistry::define_int_guc(
        c"atomic_inventory.sweep_interval",
        c"Seconds between reservation expiry sweeps by the background worker; 0 = off.",
        c"Needs shared_preload_libraries = 'atomic_inventory'. Reload to apply.",
        &SWEEP_INTERVAL,
        0,
        86_400,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"atomic_inventory.sweep_batch",
        c"Most reservations expired per sweep transaction.",
        c"",
        &SWEEP_BATCH,
        1,
        100_000,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"atomic_inventory.sweep_lock_timeout",
        c"Longest wait of a reservation sweep for one row lock; 0 = no limit of its own.",
        c"The worker then expires the other due holds one by one and tries the busy one again later; expire_reservations() fails with LOCK_TIMEOUT.",
        &SWEEP_LOCK_TIMEOUT,
        0,
        600_000,
        GucContext::Suset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_string_guc(
        c"atomic_inventory.tenant_claim",
        c"JWT claim (dot path) in request.jwt.claims that names the caller's tenant.",
        c"Default tenant_id; e.g. app_metadata.tenant_id.",
        &TENANT_CLAIM,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"atomic_inventory.ledger",
        c"Write a ledger row for every stock movement (the audit trail).",
        c"off: movements change stock only, as a bare UPDATE would; reconcile() then reports drift for items moved meanwhile.",
        &LEDGER,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"atomic_inventory.events",
        c"Write stock events (low_stock, out_of_stock, back_in_stock, reservation_expired, batch_lease_lapsed).",
        c"off: no events rows, deliveries or notifications (docs/events.md).",
        &EVENTS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"atomic_inventory.movement_events",
        c"Also write every ledger row as a movement event.",
        c"Needs atomic_inventory.events = on and the ledger on.",
        &MOVEMENT_EVENTS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"atomic_inventory.tenant_id",
        c"The caller's tenant, set by trusted app backends per transaction.",
        c"Takes precedence over the JWT claim.",
        &TENANT_ID,
        GucContext::Userset,
        GucFlags::default(),
    );

    // SAFETY: reading a postmaster-set flag during _PG_init.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        // A server-start setting can only be defined while preloading; it
        // only matters to the worker, which exists only then.
        GucRegistry::define_string_guc(
            c"atomic_inventory.sweep_database",
            c"Database whose reservations the background worker expires.",
            c"Restart the server to change it.",
            &SWEEP_DATABASE,
            GucContext::Postmaster,
            GucFlags::default(),
        );
    }
}
