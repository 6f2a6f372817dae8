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

use crate::error::{Error, Result};
use crate::pg::backend::{self, setting};

pub struct Caller {
    pub tenant: Option<String>,
    /// The JWT `sub` (the end user, e.g. a driver), when PostgREST set claims.
    pub subject: Option<String>,
    /// `request.jwt.claims` is set: the call came with a token (PostgREST).
    pub jwt: bool,
    pub admin: bool,
}

/// Walk a dotted path (`app_metadata.tenant_id`) into the JWT claims.
fn claim(value: &serde_json::Value, path: &str) -> Option<String> {
    let mut cur = value;
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    match cur {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Caller {
    pub fn current() -> Result<Caller> {
        let claims: Option<serde_json::Value> = match setting(c"request.jwt.claims") {
            Some(text) => Some(serde_json::from_str(&text).map_err(|_| {
                Error::invalid_input("request.jwt.claims", "is set but is not valid JSON")
            })?),
            None => None,
        };
        let tenant = setting(c"atomic_inventory.tenant_id").or_else(|| {
            let claims = claims.as_ref()?;
            let path = setting(c"atomic_inventory.tenant_claim")
                .unwrap_or_else(|| "tenant_id".to_string());
            claim(claims, &path)
        });
        // A tenant is a key (items_sku_unique, the idempotency keys' scope):
        // at most 255 characters, as p_tenant_id of create_item.
        if tenant.as_ref().is_some_and(|t| t.chars().count() > 255) {
            let from = if setting(c"atomic_inventory.tenant_id").is_some() {
                "atomic_inventory.tenant_id"
            } else {
                "request.jwt.claims"
            };
            return Err(Error::invalid_input(
                from,
                "names a tenant longer than 255 characters",
            ));
        }
        let subject = claims.as_ref().and_then(|c| claim(c, "sub"));
        // The outer user is the role the client runs as (after PostgREST's
        // SET ROLE), not the SECURITY DEFINER owner we execute as.
        let admin = backend::outer_user_is_admin();
        Ok(Caller {
            tenant,
            subject,
            jwt: claims.is_some(),
            admin,
        })
    }

    /// The driver: `p_driver_id`, or the JWT `sub` when PostgREST set claims. A
    /// non-admin caller with a JWT can only act as themselves; one whose JWT
    /// has no `sub` (an anon key's token) as no driver at all: without the
    /// claims it could name any driver, since only trusted backends call
    /// without claims.
    pub fn driver(&self, given: Option<String>) -> Result<String> {
        match (given, &self.subject) {
            (Some(d), Some(sub)) if !self.admin && d != *sub => Err(Error::invalid_input(
                "p_driver_id",
                "must be your own id (the JWT sub) unless you are an admin",
            )),
            (_, None) if self.jwt && !self.admin => Err(Error::invalid_input(
                "p_driver_id",
                "can't be named with a JWT that has no sub (only an admin or a caller without a JWT names drivers)",
            )),
            (Some(d), _) if d.is_empty() || d.chars().count() > 255 => Err(Error::invalid_input(
                "p_driver_id",
                "must be 1 to 255 characters",
            )),
            (Some(d), _) => Ok(d),
            (None, Some(sub)) => Ok(sub.clone()),
            (None, None) => Err(Error::invalid_input(
                "p_driver_id",
                "is required (or call with a JWT whose sub is the driver)",
            )),
        }
    }

    /// Scope of idempotency keys: one namespace per tenant, so one tenant can
    /// never replay (read) another tenant's stored response. Admins without a
    /// tenant share '' with the other callers without one (as in 0.1.0 and
    /// 0.2.0: a scope of their own would let a retry spanning the update
    /// apply again).
    pub fn key_scope(&self) -> String {
        self.tenant.clone().unwrap_or_default()
    }

    /// The tenant of a record this caller creates over rows whose tenants
    /// (the distinct non-NULL ones) are `row_tenants`, e.g. a reservation:
    /// a tenant caller's records are its own (its rows are its own or
    /// shared). An admin acts for the rows' tenant, so that tenant's callers
    /// see the record and no other tenant does; with shared rows only, for
    /// its own tenant if set (else the record is shared, as the rows are).
    /// Rows of several tenants can't share one record (`field` is refused).
    pub fn record_tenant(&self, row_tenants: &[String], field: &str) -> Result<Option<String>> {
        if !self.admin {
            return Ok(self.tenant.clone());
        }
        match row_tenants {
            [] => Ok(self.tenant.clone()),
            [one] => Ok(Some(one.clone())),
            several => Err(Error::invalid_input(
                field,
                format!(
                    "names items of several tenants ({}); one reservation belongs to one tenant",
                    several.join(", ")
                ),
            )),
        }
    }
}
