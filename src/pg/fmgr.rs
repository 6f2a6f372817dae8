//! Raw V1 entry points for the SQL-callable functions.
//!
//! Every public function is declared by hand in `sql/functions.sql` (named `p_`
//! arguments, defaults, SECURITY DEFINER) and implemented by a Rust body
//! `fn(&Args) -> Result<impl Reply>` that returns a JSON text (or SQL NULL).
//! The body runs with the search path pinned (path::PinnedPath), in place of
//! a SET clause on the declaration.
//!
//! Each entry point declares the argument types its body reads, next to the
//! body (`entry_points!`): every read checks the type it expects against
//! that declaration, and a #[pg_test] checks the declarations against
//! `pg_proc`, so a reordered or retyped argument in functions.sql fails a
//! test instead of reading a datum as the wrong type.
//! `entry_point!` wraps the body in pgrx's guard (Postgres errors raised inside
//! keep their SQLSTATE, Rust panics become ERRORs) and raises our typed errors
//! afterwards, outside the guard, so their custom SQLSTATEs survive (error.rs).

use crate::error::{Error, Result};
use pgrx::datum::FromDatum;
use pgrx::pg_sys;
use pgrx::{AnyNumeric, Uuid};

/// A C function's symbol and the argument types its body reads (read by
/// the #[pg_test] that compares them with pg_proc).
#[cfg_attr(not(any(test, feature = "pg_test")), allow(dead_code))]
pub struct Declared {
    pub symbol: &'static str,
    pub args: &'static [pg_sys::Oid],
}

/// Read access to the call's arguments, by position, with clear errors.
pub struct Args {
    pub fcinfo: pg_sys::FunctionCallInfo,
    /// the types the entry point declares for its arguments
    pub declared: &'static [pg_sys::Oid],
}

impl Args {
    /// Argument `n` as a `T`, which must be of one of the types `want`.
    /// A read against the declaration is a bug in the body: it raises
    /// (as an INTERNAL error) before any datum is read as another type.
    fn get<T: FromDatum>(&self, n: usize, want: &[pg_sys::Oid]) -> Option<T> {
        self.check(n, want);
        // An argument the SQL declaration does not pass: the declaration of
        // an earlier release, before ALTER EXTENSION UPDATE (the call then
        // answers SCHEMA_OUTDATED, once it reaches SPI).
        // SAFETY: fcinfo comes from Postgres for this call.
        if n >= usize::try_from(unsafe { (*self.fcinfo).nargs }).unwrap_or(0) {
            return None;
        }
        // SAFETY: fcinfo comes from Postgres for this call; the declaration
        // (checked against pg_proc by a #[pg_test]) gives argument n a type
        // T reads, as checked above.
        unsafe { pgrx::fcinfo::pg_getarg::<T>(self.fcinfo, n) }
    }

    /// Argument `n` is declared as one of `want` (see `get`).
    fn check(&self, n: usize, want: &[pg_sys::Oid]) {
        let declared = self.declared.get(n).copied();
        assert!(
            declared.is_some_and(|d| want.contains(&d)),
            "argument {n} is declared as type {declared:?} but read as one of {want:?}"
        );
    }

    pub fn uuid(&self, n: usize, name: &str) -> Result<Uuid> {
        self.get::<Uuid>(n, &[pg_sys::UUIDOID])
            .ok_or_else(|| Error::invalid_input(name, "is required (got NULL)"))
    }

    pub fn get_uuid(&self, n: usize) -> Option<Uuid> {
        self.get::<Uuid>(n, &[pg_sys::UUIDOID])
    }

    pub fn numeric(&self, n: usize) -> Option<AnyNumeric> {
        self.get::<AnyNumeric>(n, &[pg_sys::NUMERICOID])
    }

    pub fn uuid_array(&self, n: usize) -> Option<Vec<Option<Uuid>>> {
        self.get::<Vec<Option<Uuid>>>(n, &[pg_sys::UUIDARRAYOID])
    }

    pub fn text_array(&self, n: usize) -> Option<Vec<Option<String>>> {
        self.get::<Vec<Option<String>>>(n, &[pg_sys::TEXTARRAYOID])
    }

    pub fn int(&self, n: usize) -> Option<i32> {
        self.get::<i32>(n, &[pg_sys::INT4OID])
    }

    pub fn oid(&self, n: usize) -> Option<pg_sys::Oid> {
        self.get::<pg_sys::Oid>(n, &[pg_sys::OIDOID, pg_sys::REGCLASSOID])
    }

    /// A `name` argument (a fixed 64-byte NameData, not a text varlena).
    pub fn name(&self, n: usize) -> Option<String> {
        self.check(n, &[pg_sys::NAMEOID]);
        // SAFETY: the declaration gives argument n the type name, whose
        // datum points to a NUL-terminated NameData owned by the call.
        unsafe {
            let d = pgrx::fcinfo::pg_getarg_datum(self.fcinfo, n)?;
            let p = d.cast_mut_ptr::<pg_sys::NameData>();
            Some(
                std::ffi::CStr::from_ptr((*p).data.as_ptr())
                    .to_string_lossy()
                    .into_owned(),
            )
        }
    }

    pub fn bool_or(&self, n: usize, default: bool) -> bool {
        self.get::<bool>(n, &[pg_sys::BOOLOID]).unwrap_or(default)
    }

    /// A jsonb argument read in place (jsonb.rs), None if NULL.
    pub fn jsonb_container(&self, n: usize) -> Option<crate::pg::jsonb::Container> {
        self.check(n, &[pg_sys::JSONBOID]);
        // not passed by an earlier release's declaration (see `get`)
        // SAFETY: fcinfo comes from Postgres for this call.
        if n >= usize::try_from(unsafe { (*self.fcinfo).nargs }).unwrap_or(0) {
            return None;
        }
        // SAFETY: fcinfo comes from Postgres for this call and the
        // declaration makes argument n a jsonb; a datum is only read if not NULL
        unsafe {
            pgrx::fcinfo::pg_getarg_datum(self.fcinfo, n)
                .map(|d| crate::pg::jsonb::Container::of_datum(d))
        }
    }

    /// Optional free text (reason, reference): at most 1024 characters.
    pub fn text(&self, n: usize, name: &str) -> Result<Option<String>> {
        match self.get::<String>(n, &[pg_sys::TEXTOID]) {
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
        match self.get::<String>(n, &[pg_sys::TEXTOID]) {
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
        match self.get::<String>(n, &[pg_sys::TEXTOID]) {
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
        match self.get::<i32>(n, &[pg_sys::INT4OID]) {
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

impl Reply for pgrx::JsonB {
    /// jsonb's binary form, built by jsonb_in from the value's text.
    fn into_datum(self, _fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
        pgrx::IntoDatum::into_datum(self).expect("a JsonB always converts to a jsonb datum")
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
/// `pg_finfo_` record, running `$body(&Args) -> Result<impl Reply>` with
/// arguments of the types `$declared`.
macro_rules! entry_point {
    ($symbol:ident, $finfo:ident, $body:path, $declared:expr) => {
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
            let outcome: ::std::result::Result<::pgrx::pg_sys::Datum, $crate::pg::raise::Raise> = unsafe {
                ::pgrx::pg_sys::submodules::panic::pgrx_extern_c_guard(|| {
                    // catch_unwind only to count errors PostgreSQL raised
                    // inside the call (deadlock, cancel, ...); they continue
                    // unchanged to pgrx's guard.
                    // The search path pinned for the whole call (path::PinnedPath).
                    let run = ::std::panic::AssertUnwindSafe(|| {
                        $crate::pg::path::pinned(|| {
                            $body(&$crate::pg::fmgr::Args { fcinfo, declared: $declared })
                        })
                    });
                    match ::std::panic::catch_unwind(run) {
                        Ok(Ok(reply)) => {
                            $crate::stats::record(SLOT, started, None);
                            Ok($crate::pg::fmgr::Reply::into_datum(reply, fcinfo))
                        }
                        Ok(Err(e)) => {
                            $crate::stats::record(SLOT, started, Some($crate::stats::code_index(e.code())));
                            Err($crate::pg::raise::Raise::from(e))
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

/// The entry points of a module, each with the argument types it reads:
///
/// ```ignore
/// entry_points! {
///     ai_decrement_inventory / pg_finfo_ai_decrement_inventory
///         (UUIDOID, NUMERICOID, TEXTOID, TEXTOID, TEXTOID, INT4OID) => decrement;
/// }
/// ```
///
/// and `DECLARED`, the list a #[pg_test] compares with pg_proc.
macro_rules! entry_points {
    ($($symbol:ident / $finfo:ident ( $($ty:ident),* ) => $body:path;)*) => {
        $(
            $crate::pg::fmgr::entry_point!(
                $symbol, $finfo, $body, &[$(::pgrx::pg_sys::$ty),*]
            );
        )*
        /// This module's C functions and the argument types each reads.
        #[cfg_attr(not(any(test, feature = "pg_test")), allow(dead_code))]
        pub const DECLARED: &[$crate::pg::fmgr::Declared] = &[
            $($crate::pg::fmgr::Declared {
                symbol: stringify!($symbol),
                args: &[$(::pgrx::pg_sys::$ty),*],
            },)*
        ];
    };
}
pub(crate) use entry_points;
