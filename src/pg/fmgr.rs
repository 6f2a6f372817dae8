//! Raw V1 entry points for the SQL-callable functions.
//!
//! Every public function is declared by hand in `sql/functions.sql` (named `p_`
//! arguments, defaults, SECURITY DEFINER) and implemented by a Rust body
//! `fn(&Args) -> Result<impl Reply>` that returns a JSON text (or SQL NULL).
//! The body runs with the search path pinned (spi::PinnedPath), in place of
//! a SET clause on the declaration.
//! `entry_point!` wraps the body in pgrx's guard (Postgres errors raised inside
//! keep their SQLSTATE, Rust panics become ERRORs) and raises our typed errors
//! afterwards, outside the guard, so their custom SQLSTATEs survive (errors.rs).

use crate::error::{Error, Result};
use pgrx::datum::FromDatum;
use pgrx::pg_sys;
use pgrx::{AnyNumeric, Uuid};

/// Read access to the call's arguments, by position, with clear errors.
pub struct Args(pub pg_sys::FunctionCallInfo);

impl Args {
    fn get<T: FromDatum>(&self, n: usize) -> Option<T> {
        // SAFETY: fcinfo comes from Postgres for this call; the SQL declaration
        // (sql/functions.sql) fixes the argument types read here.
        unsafe { pgrx::fcinfo::pg_getarg::<T>(self.0, n) }
    }

    pub fn uuid(&self, n: usize, name: &str) -> Result<Uuid> {
        self.get::<Uuid>(n)
            .ok_or_else(|| Error::invalid_input(name, "is required (got NULL)"))
    }

    pub fn get_uuid(&self, n: usize) -> Option<Uuid> {
        self.get::<Uuid>(n)
    }

    pub fn numeric(&self, n: usize) -> Option<AnyNumeric> {
        self.get::<AnyNumeric>(n)
    }

    pub fn uuid_array(&self, n: usize) -> Option<Vec<Option<Uuid>>> {
        self.get::<Vec<Option<Uuid>>>(n)
    }

    pub fn text_array(&self, n: usize) -> Option<Vec<Option<String>>> {
        self.get::<Vec<Option<String>>>(n)
    }

    pub fn int(&self, n: usize) -> Option<i32> {
        self.get::<i32>(n)
    }

    pub fn oid(&self, n: usize) -> Option<pg_sys::Oid> {
        self.get::<pg_sys::Oid>(n)
    }

    /// A `name` argument (a fixed 64-byte NameData, not a text varlena).
    pub fn name(&self, n: usize) -> Option<String> {
        // SAFETY: the SQL declaration gives argument n the type name, whose
        // datum points to a NUL-terminated NameData owned by the call.
        unsafe {
            let d = pgrx::fcinfo::pg_getarg_datum(self.0, n)?;
            let p = d.cast_mut_ptr::<pg_sys::NameData>();
            Some(
                std::ffi::CStr::from_ptr((*p).data.as_ptr())
                    .to_string_lossy()
                    .into_owned(),
            )
        }
    }

    pub fn bool_or(&self, n: usize, default: bool) -> bool {
        self.get::<bool>(n).unwrap_or(default)
    }

    /// A jsonb argument read in place (jsonb.rs), None if NULL.
    pub fn jsonb_container(&self, n: usize) -> Option<crate::pg::jsonb::Container> {
        // SAFETY: fcinfo comes from Postgres for this call and the SQL
        // declaration makes argument n a jsonb; a datum is only read if not NULL
        unsafe {
            pgrx::fcinfo::pg_getarg_datum(self.0, n)
                .map(|d| crate::pg::jsonb::Container::of_datum(d))
        }
    }

    /// Optional free text (reason, reference): at most 1024 characters.
    pub fn text(&self, n: usize, name: &str) -> Result<Option<String>> {
        match self.get::<String>(n) {
            Some(s) if s.chars().count() > 1024 => {
                Err(Error::invalid_input(name, "is longer than 1024 characters"))
            }
            other => Ok(other),
        }
    }

    /// A source's name (`p_source` of the bound_* functions): required, at
    /// most 63 characters (what bind_stock_source accepts), so that a name
    /// no binding can have is refused before it is looked up or echoed.
    pub fn source(&self, n: usize) -> Result<String> {
        match self.get::<String>(n) {
            None => Err(Error::invalid_input("p_source", "is required (got NULL)")),
            Some(s) if s.chars().count() > 63 => Err(Error::invalid_input(
                "p_source",
                "is longer than 63 characters (a source name has at most 63)",
            )),
            Some(s) => Ok(s),
        }
    }

    /// Optional idempotency key: non-empty, at most 255 characters.
    pub fn idempotency_key(&self, n: usize) -> Result<Option<String>> {
        match self.get::<String>(n) {
            Some(s) if s.is_empty() => Err(Error::invalid_input(
                "p_idempotency_key",
                "must not be empty (pass NULL for no key)",
            )),
            Some(s) if s.chars().count() > 255 => Err(Error::invalid_input(
                "p_idempotency_key",
                "is longer than 255 characters",
            )),
            other => Ok(other),
        }
    }

    /// Optional lock wait limit in milliseconds: 1 ..= 600000.
    pub fn lock_timeout_ms(&self, n: usize) -> Result<Option<i32>> {
        match self.get::<i32>(n) {
            Some(ms) if !(1..=600_000).contains(&ms) => Err(Error::invalid_input(
                "p_lock_timeout_ms",
                format!("must be between 1 and 600000 (got {ms})"),
            )),
            other => Ok(other),
        }
    }
}

/// What a body returns: a JSON text, or (`None`) SQL NULL.
pub trait Reply {
    fn into_datum(self, fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum;
}

impl Reply for String {
    /// json's on-disk form is exactly a text varlena.
    fn into_datum(self, _fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
        pgrx::IntoDatum::into_datum(self).expect("a String always converts to a text datum")
    }
}

impl Reply for Option<String> {
    fn into_datum(self, fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
        match self {
            Some(json) => Reply::into_datum(json, fcinfo),
            // SAFETY: fcinfo is this call's, owned by fmgr.
            None => unsafe { pgrx::fcinfo::pg_return_null(fcinfo) },
        }
    }
}

/// Declares `#[no_mangle] extern "C-unwind" fn $symbol(fcinfo)` and its
/// `pg_finfo_` record, running `$body(&Args) -> Result<impl Reply>`.
macro_rules! entry_point {
    ($symbol:ident, $finfo:ident, $body:path) => {
        #[unsafe(no_mangle)]
        #[doc(hidden)]
        pub extern "C" fn $finfo() -> &'static ::pgrx::pg_sys::Pg_finfo_record {
            const V1: ::pgrx::pg_sys::Pg_finfo_record =
                ::pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }

        #[unsafe(no_mangle)]
        #[doc(hidden)]
        /// # Safety
        /// Called by Postgres' fmgr with a valid `fcinfo`.
        pub unsafe extern "C-unwind" fn $symbol(
            fcinfo: ::pgrx::pg_sys::FunctionCallInfo,
        ) -> ::pgrx::pg_sys::Datum {
            // The function's slot in the statistics (stats.rs), fixed at build time.
            const SLOT: Option<usize> = $crate::stats::slot(stringify!($symbol));
            let started = ::std::time::Instant::now();
            let outcome: ::std::result::Result<::pgrx::pg_sys::Datum, $crate::error::Raise> = unsafe {
                ::pgrx::pg_sys::submodules::panic::pgrx_extern_c_guard(|| {
                    // catch_unwind only to count errors PostgreSQL raised
                    // inside the call (deadlock, cancel, ...); they continue
                    // unchanged to pgrx's guard.
                    // The search path pinned for the whole call (spi::PinnedPath).
                    let run = ::std::panic::AssertUnwindSafe(|| {
                        $crate::pg::path::pinned(|| $body(&$crate::pg::fmgr::Args(fcinfo)))
                    });
                    match ::std::panic::catch_unwind(run) {
                        Ok(Ok(reply)) => {
                            $crate::stats::record(SLOT, started, None);
                            Ok($crate::pg::fmgr::Reply::into_datum(reply, fcinfo))
                        }
                        Ok(Err(e)) => {
                            $crate::stats::record(SLOT, started, Some($crate::stats::code_index(e.code())));
                            Err($crate::error::Raise::from(e))
                        }
                        Err(payload) => {
                            $crate::stats::record(SLOT, started, Some($crate::stats::panic_index(&*payload)));
                            ::std::panic::resume_unwind(payload)
                        }
                    }
                })
            };
            match outcome {
                Ok(datum) => datum,
                // SAFETY: outermost Rust frame, nothing else left to drop.
                Err(raise) => unsafe {
                    raise.raise(match ::std::ffi::CStr::from_bytes_with_nul(
                        concat!(stringify!($symbol), "\0").as_bytes(),
                    ) {
                        Ok(name) => name,
                        Err(_) => c"atomic_inventory",
                    })
                },
            }
        }
    };
}
pub(crate) use entry_point;
