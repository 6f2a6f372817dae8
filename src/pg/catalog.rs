//! Catalog glue for adopted tables: quoting identifiers, noticing that a
//! watched table changed (relcache invalidations), and running statements
//! as a table's owner.

use pgrx::pg_sys::{self, Oid};
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::ffi::{CStr, CString};

/// An identifier quoted by PostgreSQL's own rules.
pub fn quote(ident: &str) -> String {
    let c = CString::new(ident.replace('\0', "")).unwrap_or_default();
    // SAFETY: quote_identifier returns its argument or a palloc'd copy, both
    // valid until we copy it here.
    unsafe { CStr::from_ptr(pg_sys::quote_identifier(c.as_ptr())) }
        .to_string_lossy()
        .into_owned()
}

thread_local! {
    static GENERATION: Cell<u64> = const { Cell::new(0) };
    /// Relations whose change moves the generation.
    static WATCHED: RefCell<HashSet<u32>> = RefCell::new(HashSet::new());
}

/// Relcache callback: relid 0 means "all relations" (cache reset). Only
/// reads and bumps counters: no allocation, no catalog access.
unsafe extern "C-unwind" fn on_relcache(_arg: pg_sys::Datum, relid: Oid) {
    let relid = relid.to_u32();
    // (a borrow held elsewhere: count it as a change, to be safe)
    let watched = WATCHED.with(|r| r.try_borrow().map_or(true, |r| r.contains(&relid)));
    if relid == 0 || watched {
        GENERATION.set(GENERATION.get().wrapping_add(1));
    }
}

/// Start counting changes of watched relations (once per backend, from
/// `_PG_init`).
pub fn init() {
    // SAFETY: registering a callback with a 'static function pointer, once per
    // backend (from _PG_init).
    unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache), pg_sys::Datum::from(0)) };
}

/// How many times a watched relation changed (or every relcache entry was
/// reset) in this backend: what was read from them is stale once it moved.
pub fn generation() -> u64 {
    GENERATION.get()
}

/// Count changes of relation `oid` from now on.
pub fn watch(oid: Oid) {
    WATCHED.with_borrow_mut(|r| r.insert(oid.to_u32()));
}

/// Stop watching every relation.
pub fn unwatch_all() {
    WATCHED.with_borrow_mut(|r| r.clear());
}

/// Tell every backend (this one at its next command) that relation `oid`
/// changed: their cached reads of it go.
pub fn invalidate(oid: Oid) {
    // SAFETY: sends an invalidation message for an existing relation (the
    // caller looked it up in this transaction).
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(oid) };
}

/// The current user switched to a table's owner, in a security-restricted
/// operation, until dropped (also when an error unwinds through it; an
/// error that ends the (sub)transaction has PostgreSQL restore the user as
/// well).
pub struct AsOwner {
    user: Oid,
    context: i32,
}

impl AsOwner {
    pub fn enter(owner: Oid) -> AsOwner {
        let mut user = Oid::INVALID;
        let mut context = 0;
        // SAFETY: plain reads and writes of the backend's current user and
        // security context; `owner` is the table's pg_class.relowner
        unsafe {
            pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
            pg_sys::SetUserIdAndSecContext(
                owner,
                context
                    | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                    | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
            );
        }
        AsOwner { user, context }
    }
}

impl Drop for AsOwner {
    fn drop(&mut self) {
        // SAFETY: restores what enter() read
        unsafe { pg_sys::SetUserIdAndSecContext(self.user, self.context) }
    }
}
