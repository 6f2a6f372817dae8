//! Settings changed for the span of a closure, as fmgr applies a function's
//! `SET` clause: a new GUC nesting level, the values saved in it, the
//! caller's values back when the level ends.
//!
//! Set in C, not with `set_config()` statements: two statements through SPI
//! (set, then restore) cost more than the statement they surround on a hot
//! path (a striped sale's first attempt).

use pgrx::pg_sys;
use std::ffi::CStr;

/// Open a GUC nesting level with `settings` (user-settable GUCs) saved
/// and set in it, as fmgr applies a function's SET clause; `close` ends it.
pub fn open(settings: &[(&CStr, &CStr)]) -> i32 {
    // SAFETY: inside a transaction (every caller runs in one); the settings
    // are user-settable GUCs, saved and set within the new nesting level.
    unsafe {
        let level = pg_sys::NewGUCNestLevel();
        for (name, value) in settings {
            pg_sys::set_config_option(
                name.as_ptr(),
                value.as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_SAVE,
                true,
                0,
                false,
            );
        }
        level
    }
}

/// End the nesting level `open` returned: the caller's values are back
/// (and any other setting changed with SET LOCAL inside it).
pub fn close(level: i32) {
    // SAFETY: ends a level opened by `open`; the work in between closed
    // every subtransaction it opened (else PostgreSQL raises an error, not
    // undefined behaviour).
    unsafe { pg_sys::AtEOXact_GUC(true, level) }
}

/// Run `f` with `settings` in effect. On success the level ends after `f`
/// and the previous values are back. An error unwinding through `f` leaves
/// the level to the abort of the transaction or subtransaction it runs in,
/// which ends every level opened inside it (as fmgr does for a function's
/// SET clause).
pub fn with_settings<T>(settings: &[(&CStr, &CStr)], f: impl FnOnce() -> T) -> T {
    let level = open(settings);
    let out = f();
    close(level);
    out
}
