//! The backend's state as the layers above read it: settings by name, the
//! session's user, its process id.

use pgrx::pg_sys::{self, Oid};
use std::ffi::CStr;

/// A setting's value (None if unset or empty).
pub fn setting(name: &CStr) -> Option<String> {
    // SAFETY: GetConfigOption with missing_ok returns NULL or a string owned by
    // the GUC machinery, which we copy at once.
    let p = unsafe { pg_sys::GetConfigOption(name.as_ptr(), true, false) };
    if p.is_null() {
        return None;
    }
    let s = unsafe { CStr::from_ptr(p) };
    // (most calls: unset or empty; no allocation for those)
    (!s.is_empty()).then(|| s.to_string_lossy().into_owned())
}

/// The role the client runs as (after PostgREST's SET ROLE), not the
/// SECURITY DEFINER owner a function executes as.
pub fn outer_user() -> Oid {
    // SAFETY: reads the session's outer user, set by SET ROLE / login.
    unsafe { pg_sys::GetOuterUserId() }
}

/// The outer user may cross tenants: a superuser, or a role with BYPASSRLS.
pub fn outer_user_is_admin() -> bool {
    let outer = outer_user();
    // SAFETY: catalog lookups of a role that exists (the session's own).
    unsafe { pg_sys::superuser_arg(outer) || pg_sys::has_bypassrls_privilege(outer) }
}

/// This backend's process id.
pub fn pid() -> i32 {
    // SAFETY: MyProcPid is set once at backend start.
    unsafe { pg_sys::MyProcPid }
}

/// A random (version 4) uuid from PostgreSQL's strong random source, as
/// gen_random_uuid() makes them.
pub fn random_uuid() -> pgrx::Uuid {
    let mut b = [0u8; 16];
    // SAFETY: pg_strong_random fills exactly the 16 bytes it is given.
    let ok = unsafe { pg_sys::pg_strong_random(b.as_mut_ptr().cast(), b.len()) };
    assert!(ok, "could not generate random values");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    pgrx::Uuid::from_bytes(b)
}
