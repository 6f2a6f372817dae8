//! `caller_tenant()` and `caller_is_admin()`: the caller as the PL/pgSQL
//! functions and views see it (core/caller.rs).

use crate::core::caller::Caller;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{PgLogLevel, PgSqlErrorCode};

/// Caller::current for the SQL helpers below, which the PL/pgSQL functions
/// and views use. Its error (unreadable claims) is raised as the C functions
/// raise it: treating it as "no tenant, not admin" let create_item make a
/// shared item for a caller with a tenant. Raised through pgrx, inside its
/// guard: INVALID_INPUT's SQLSTATE (22023) is a standard one pgrx can carry.
fn current_or_raise(function: &'static str) -> Caller {
    match Caller::current() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.sqlstate() == b"22023" {
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE
            } else {
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR
            };
            ErrorReport::new(code, e.to_string(), function)
                .set_detail(e.detail().to_string())
                .set_hint(e.hint())
                .report(PgLogLevel::ERROR);
            unreachable!("ereport(ERROR) returned")
        }
    }
}

#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
/// The tenant the current caller acts for (NULL if none).
fn caller_tenant() -> Option<String> {
    current_or_raise("caller_tenant").tenant
}

#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
/// Whether the current caller may act across tenants (superuser or BYPASSRLS).
fn caller_is_admin() -> bool {
    current_or_raise("caller_is_admin").admin
}
