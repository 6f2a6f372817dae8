//! Who is calling: their tenant and whether they may cross tenants.
//!
//! Tenant rule (docs/security.md): a row whose `tenant_id` is NULL is shared;
//! a row with a tenant is visible only to callers of that tenant, or to
//! "admin" callers (superuser or BYPASSRLS role, e.g. Supabase's
//! service_role), mirroring row-level security. Invisible rows answer
//! NOT_FOUND so other tenants' ids don't leak.
//!
//! The caller's tenant is the setting `atomic_inventory.tenant_id` if set
//! (app backends: `SET LOCAL atomic_inventory.tenant_id = '...'`), else the
//! JWT claim named by `atomic_inventory.tenant_claim` (default `tenant_id`,
//! dots walk into objects, e.g. `app_metadata.tenant_id`) in
//! `request.jwt.claims`, which PostgREST sets from the verified token.

use crate::errors::{Error, Result};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::ffi::CStr;

pub struct Caller {
    pub tenant: Option<String>,
    pub admin: bool,
}

fn setting(name: &CStr) -> Option<String> {
    // SAFETY: GetConfigOption with missing_ok returns NULL or a string owned by
    // the GUC machinery, which we copy at once.
    let p = unsafe { pg_sys::GetConfigOption(name.as_ptr(), true, false) };
    if p.is_null() {
        return None;
    }
    let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    (!s.is_empty()).then_some(s)
}

fn claim(claims: &str, path: &str) -> Result<Option<String>> {
    let value: serde_json::Value = serde_json::from_str(claims)
        .map_err(|_| Error::invalid_input("request.jwt.claims", "is set but is not valid JSON"))?;
    let mut cur = &value;
    for part in path.split('.') {
        match cur.get(part) {
            Some(v) => cur = v,
            None => return Ok(None),
        }
    }
    Ok(match cur {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

impl Caller {
    pub fn current() -> Result<Caller> {
        let tenant = match setting(c"atomic_inventory.tenant_id") {
            Some(t) => Some(t),
            None => match setting(c"request.jwt.claims") {
                Some(claims) => {
                    let path = setting(c"atomic_inventory.tenant_claim")
                        .unwrap_or_else(|| "tenant_id".to_string());
                    claim(&claims, &path)?
                }
                None => None,
            },
        };
        // The outer user is the role the client runs as (after PostgREST's
        // SET ROLE), not the SECURITY DEFINER owner we execute as.
        let admin = unsafe {
            let outer = pg_sys::GetOuterUserId();
            pg_sys::superuser_arg(outer) || pg_sys::has_bypassrls_privilege(outer)
        };
        Ok(Caller { tenant, admin })
    }

    /// Scope of idempotency keys: one namespace per tenant, so one tenant can
    /// never replay (read) another tenant's stored response.
    pub fn key_scope(&self) -> String {
        self.tenant.clone().unwrap_or_default()
    }
}

#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
/// The tenant the current caller acts for (NULL if none).
fn caller_tenant() -> Option<String> {
    Caller::current().ok().and_then(|c| c.tenant)
}

#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
/// Whether the current caller may act across tenants (superuser or BYPASSRLS).
fn caller_is_admin() -> bool {
    Caller::current().map(|c| c.admin).unwrap_or(false)
}
