//! Raising our errors: their SQLSTATE (PostgREST's `PTxyz` among them),
//! message, detail and hint, with errcode() itself (error.rs says why not
//! through pgrx).

use crate::error::Error;
use pgrx::pg_sys;
use std::ffi::{c_char, c_int, CString};

/// PostgreSQL's MAKE_SQLSTATE: six bits per character.
fn make_sqlstate(s: &[u8; 5]) -> c_int {
    let six = |c: u8| ((c.wrapping_sub(b'0')) & 0x3F) as c_int;
    six(s[0]) | (six(s[1]) << 6) | (six(s[2]) << 12) | (six(s[3]) << 18) | (six(s[4]) << 24)
}

/// An error ready to raise: plain data in C strings, no destructors that matter
/// once `raise` starts (see its safety note).
pub struct Raise {
    sqlstate: c_int,
    message: CString,
    detail: CString,
    hint: CString,
}

impl From<Error> for Raise {
    fn from(e: Error) -> Self {
        let clean = |s: String| CString::new(s.replace('\0', "")).unwrap_or_default();
        Raise {
            sqlstate: make_sqlstate(e.sqlstate()),
            message: clean(e.to_string()),
            detail: clean(e.detail().to_string()),
            hint: clean(e.hint().to_string()),
        }
    }
}

#[allow(improper_ctypes)]
unsafe extern "C-unwind" {
    fn errstart(elevel: c_int, domain: *const c_char) -> bool;
    fn errcode(sqlerrcode: c_int) -> c_int;
    fn errmsg(fmt: *const c_char, ...) -> c_int;
    fn errdetail(fmt: *const c_char, ...) -> c_int;
    fn errhint(fmt: *const c_char, ...) -> c_int;
    fn errfinish(filename: *const c_char, lineno: c_int, funcname: *const c_char);
}

impl Raise {
    /// Raise at ERROR level; never returns.
    ///
    /// # Safety
    /// `errfinish` longjmps out. The caller must be the outermost Rust frame of a
    /// V1 function (outside pgrx's guard) with nothing left to drop, exactly as
    /// pgrx's own `do_ereport` does. We copy the strings into palloc'd memory
    /// (freed by the error machinery) and free the Rust allocations first.
    pub unsafe fn raise(self, funcname: &'static std::ffi::CStr) -> ! {
        let copy = |s: &CString| unsafe { pg_sys::pstrdup(s.as_ptr()) };
        let (msg, detail, hint) = (copy(&self.message), copy(&self.detail), copy(&self.hint));
        let sqlstate = self.sqlstate;
        drop(self);
        unsafe {
            if errstart(pgrx::PgLogLevel::ERROR as c_int, std::ptr::null()) {
                errcode(sqlstate);
                errmsg(c"%s".as_ptr(), msg);
                errdetail(c"%s".as_ptr(), detail);
                errhint(c"%s".as_ptr(), hint);
                errfinish(c"atomic_inventory".as_ptr(), 0, funcname.as_ptr());
            }
        }
        unreachable!("ereport(ERROR) returned")
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn sqlstate_packing_matches_postgres() {
        // ERRCODE_UNIQUE_VIOLATION is MAKE_SQLSTATE('2','3','5','0','5') = 0x00505082... check
        // against pgrx's own constant so the packing is known to be right.
        assert_eq!(
            make_sqlstate(b"23505"),
            pgrx::PgSqlErrorCode::ERRCODE_UNIQUE_VIOLATION as c_int
        );
    }
}
