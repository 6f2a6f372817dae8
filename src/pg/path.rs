//! The search path every call runs under, pinned in code (one shim per
//! major: PostgreSQL 15 has override search paths, 16 and later don't).

#[cfg(feature = "pg15")]
use pgrx::pg_sys;

/// The schemas every name in a call's statements resolves through:
/// pg_catalog, then the extension's own; nothing of the caller's (public,
/// pg_temp, their own schemas), so no object a caller creates can stand in
/// for an operator, function or table our SQL names.
///
/// Pinned here, for the whole call (the entry points of pg/fmgr.rs and the
/// sweeper's rounds), rather than by `SET search_path` on each function's
/// declaration: fmgr applies such a clause by parsing it and saving the
/// setting on entry, restoring it on exit, and PostgreSQL 15 recomputes the
/// namespace search path both times (schema lookups and ACL checks): about
/// 3 us of CPU per call, measured 2-5% of single-line sale throughput at 8+
/// clients (docs/benchmarks.md, "What the declaration costs"). On 15 the
/// pin is an override search path (pushed and popped, nothing parsed, the
/// setting untouched). From 16 on that API is gone; there the pin is what
/// fmgr does for a SET clause (17 caches parsed paths, so it is cheap
/// there), minus parsing the clause.
///
/// `unpin` ends it on the way out, on an answer or one of our own errors.
/// A PostgreSQL error unwinding through the call leaves it to the
/// transaction's or subtransaction's abort, which drops both kinds (as it
/// does fmgr's SET clause); no Drop, so nothing that can raise an error
/// runs during that unwinding.
#[must_use = "unpin() it when the call ends"]
pub struct PinnedPath {
    #[cfg(any(feature = "pg16", feature = "pg17", feature = "pg18"))]
    nest_level: i32,
}

/// The SET-clause form of the pin (PostgreSQL 16 and later), also the path
/// the plans are prepared under there.
#[cfg(any(feature = "pg16", feature = "pg17", feature = "pg18"))]
const PINNED_PATH: &std::ffi::CStr = c"pg_catalog, atomic_inventory, pg_temp";

impl PinnedPath {
    #[cfg(feature = "pg15")]
    pub fn pin() -> PinnedPath {
        // SAFETY: inside a transaction (every caller runs in one). The
        // OverrideSearchPath lives for this call only: PushOverrideSearchPath
        // copies its list into TopMemoryContext; ours is freed at once. A
        // missing schema (the extension dropped mid-session) leaves
        // pg_catalog alone, and check_schema answers the call.
        unsafe {
            let schema = pg_sys::get_namespace_oid(c"atomic_inventory".as_ptr(), true);
            let schemas = if schema == pg_sys::InvalidOid {
                std::ptr::null_mut()
            } else {
                pg_sys::lappend_oid(std::ptr::null_mut(), schema)
            };
            let mut path = pg_sys::OverrideSearchPath {
                schemas,
                addCatalog: true,
                addTemp: false,
                generation: 0,
            };
            pg_sys::PushOverrideSearchPath(&mut path);
            pg_sys::list_free(schemas);
        }
        PinnedPath {}
    }

    #[cfg(feature = "pg15")]
    pub fn unpin(self) {
        // SAFETY: pops the entry pin() pushed; the call closes every
        // subtransaction it opens before returning, so the nesting level
        // matches (else PostgreSQL raises an error, not undefined behaviour).
        unsafe { pg_sys::PopOverrideSearchPath() }
    }

    #[cfg(any(feature = "pg16", feature = "pg17", feature = "pg18"))]
    pub fn pin() -> PinnedPath {
        // as fmgr_security_definer applies a function's SET clause: a new
        // GUC nesting level, the setting saved and set within it
        PinnedPath {
            nest_level: super::guc::open(&[(c"search_path", PINNED_PATH)]),
        }
    }

    #[cfg(any(feature = "pg16", feature = "pg17", feature = "pg18"))]
    pub fn unpin(self) {
        // ends the nesting level pin() opened, restoring the caller's
        // setting, as fmgr does when a function with SET clauses returns
        super::guc::close(self.nest_level)
    }
}

/// Run `f` with the pinned search path (`PinnedPath`).
pub fn pinned<T>(f: impl FnOnce() -> T) -> T {
    let pin = PinnedPath::pin();
    let out = f();
    pin.unpin();
    out
}
