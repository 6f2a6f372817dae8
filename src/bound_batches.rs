//! Delivery batch claims on a bound app table (the delivery-batch claim route's batches): the
//! statements of batches.rs, generated per binding.
//!
//! Concurrency as in batches.rs: a claim is one `UPDATE ... WHERE status =
//! available`; of N drivers racing for one batch, the first takes the row
//! lock and wins, the others wait, re-check the committed row
//! (EvalPlanQual), match nothing and get BATCH_UNAVAILABLE (PT409, the claim route's
//! 409). claim_next picks with `FOR UPDATE SKIP LOCKED` so drivers never
//! queue behind each other. No leases, limits or in_progress/completed
//! states here: a bound table has only the two statuses it was bound with.

use crate::batches::driver_id;
use crate::bindings::{self, Binding};
use crate::bound::{self, item_key};
use crate::core::caller::Caller;
use crate::core::validate;
use crate::error::{Error, Result};
use crate::pg::fmgr::{entry_point, Args};
use crate::pg::spi::with_spi;
use pgrx::pg_sys::{self, Oid};
use pgrx::spi::SpiClient;
use serde_json::json;

const TEXT: Oid = pg_sys::TEXTOID;
const BOOL: Oid = pg_sys::BOOLOID;

fn tenant_pred(b: &Binding, admin: u8, tenant: u8) -> String {
    match &b.tenant {
        Some(c) => format!("(t.{c} IS NULL OR ${admin} OR t.{c}::text = ${tenant})"),
        None => "true".into(),
    }
}

/// $1 id, $2 driver, $3 admin, $4 tenant, $5 available, $6 claimed value.
const CLAIM_ARGS: &[Oid] = &[TEXT, TEXT, BOOL, TEXT, TEXT, TEXT];

fn claim_sql(b: &Binding) -> String {
    format!(
        "UPDATE {rel} AS t SET {st} = $6::{sty}, {asg} = $2::{aty} \
          WHERE t.{id} = $1::{ty} AND t.{st} = $5::{sty} AND {tenant} \
          RETURNING t.{st}::text",
        rel = b.rel,
        st = b.status,
        sty = b.status_type,
        asg = b.assignee,
        aty = b.assignee_type,
        id = b.id,
        ty = b.id_type.sql(),
        tenant = tenant_pred(b, 3, 4),
    )
}

/// Back to available, only from claimed and only by the holder.
fn unclaim_sql(b: &Binding) -> String {
    format!(
        "UPDATE {rel} AS t SET {st} = $5::{sty}, {asg} = NULL \
          WHERE t.{id} = $1::{ty} AND t.{st} = $6::{sty} AND t.{asg}::text = $2 AND {tenant} \
          RETURNING t.{st}::text",
        rel = b.rel,
        st = b.status,
        sty = b.status_type,
        asg = b.assignee,
        id = b.id,
        ty = b.id_type.sql(),
        tenant = tenant_pred(b, 3, 4),
    )
}

/// Lock a visible batch to say why a claim or unclaim matched nothing.
fn lock_sql(b: &Binding) -> String {
    format!(
        "SELECT t.{st}::text, t.{asg}::text FROM {rel} AS t \
          WHERE t.{id} = $1::{ty} AND {tenant} FOR UPDATE OF t",
        st = b.status,
        asg = b.assignee,
        rel = b.rel,
        id = b.id,
        ty = b.id_type.sql(),
        tenant = tenant_pred(b, 2, 3),
    )
}

/// $1 driver, $2 admin, $3 tenant, $4 available, $5 claimed value. The row
/// the CTE locked is the one updated: no one else can change it meanwhile.
fn claim_next_sql(b: &Binding) -> String {
    format!(
        "WITH next AS ( \
           SELECT t.{id} AS id FROM {rel} AS t \
            WHERE t.{st} = $4::{sty} AND {tenant} \
            ORDER BY t.{id} LIMIT 1 \
              FOR UPDATE SKIP LOCKED \
         ) \
         , upd AS ( \
           UPDATE {rel} AS t SET {st} = $5::{sty}, {asg} = $1::{aty} \
             FROM next WHERE t.{id} = next.id \
           RETURNING t.{id} AS id \
         ) \
         SELECT next.id::text, upd.id IS NOT NULL FROM next LEFT JOIN upd ON true",
        id = b.id,
        rel = b.rel,
        st = b.status,
        sty = b.status_type,
        asg = b.assignee,
        aty = b.assignee_type,
        tenant = tenant_pred(b, 2, 3),
    )
}

fn source(args: &Args) -> Result<String> {
    args.source(0)
}

/// The driver, checked against a uuid assignee column (canonical text, so
/// `assignee::text = driver` compares like with like).
fn driver(args: &Args, n: usize, caller: &Caller, b: &Binding) -> Result<String> {
    let d = driver_id(args, n, caller)?;
    if let Some(max) = b.assignee_max_chars {
        // stored by the claim's UPDATE, which would fail with 22001
        if d.chars().count() > max {
            return Err(Error::invalid_input(
                "p_driver_id",
                format!("is longer than the bound assignee column holds ({max} characters)"),
            ));
        }
    }
    if b.assignee_type == "uuid" {
        return validate::parse_uuid(d.trim())
            .map(|u| validate::uuid_text(&u))
            .ok_or_else(|| {
                Error::invalid_input(
                    "p_driver_id",
                    "is not a valid uuid (the bound assignee column is uuid)",
                )
            });
    }
    Ok(d)
}

fn reply(b: &Binding, id: &str, status: &str, driver: Option<&str>) -> String {
    json!({"success": true, "source": b.name, "batch_id": id, "status": status, "driver_id": driver}).to_string()
}

/// (status, holder) of a visible batch, locked; NOT_FOUND if none.
fn lock_batch(
    c: &mut SpiClient<'_>,
    b: &Binding,
    caller: &Caller,
    id: &str,
) -> Result<(String, Option<String>)> {
    let t = b.run_as_owner(
        c,
        "batch_lock",
        lock_sql,
        &[TEXT, BOOL, TEXT],
        &[
            id.to_string().into(),
            caller.admin.into(),
            caller.tenant.clone().into(),
        ],
    )?;
    if t.is_empty() {
        return Err(Error::NotFound {
            entity: "batch",
            ids: vec![id.to_string()],
        });
    }
    let row = t.first();
    Ok((
        row.get::<String>(1)?.unwrap_or_default(),
        row.get::<String>(2)?,
    ))
}

fn claim(args: &Args) -> Result<String> {
    let src = source(args)?;
    let raw_id = args.text(1, "p_batch_id")?;
    let caller = Caller::current()?;
    with_spi(None, |c| {
        let b = bindings::get(c, &src, false)?;
        let id = item_key(b.id_type, raw_id.clone(), "p_batch_id")?;
        let driver = driver(args, 2, &caller, &b)?;
        let attempt = |c: &mut SpiClient<'_>| -> Result<bool> {
            let t = b.run_as_owner(
                c,
                "batch_claim",
                claim_sql,
                CLAIM_ARGS,
                &[
                    id.clone().into(),
                    driver.clone().into(),
                    caller.admin.into(),
                    caller.tenant.clone().into(),
                    b.available.clone().into(),
                    b.claimed.clone().into(),
                ],
            )?;
            Ok(!t.is_empty())
        };
        if attempt(c)? {
            return Ok(reply(&b, &id, &b.claimed, Some(&driver)));
        }
        let (status, holder) = lock_batch(c, &b, &caller, &id)?;
        if status == b.claimed && holder.as_deref() == Some(driver.as_str()) {
            // Idempotent: the driver already holds it (a retried request).
            return Ok(reply(&b, &id, &status, Some(&driver)));
        }
        if status == b.available {
            if attempt(c)? {
                // Freed between our UPDATE and the lock: the row is ours now.
                return Ok(reply(&b, &id, &b.claimed, Some(&driver)));
            }
            // available, locked by us, and still not claimed
            return Err(bound::skipped_write(&b, &[id.as_str()]));
        }
        Err(Error::BatchUnavailable {
            batch_id: id.clone(),
            status,
        })
    })
}

fn claim_next(args: &Args) -> Result<Option<String>> {
    let src = source(args)?;
    let caller = Caller::current()?;
    with_spi(None, |c| {
        let b = bindings::get(c, &src, false)?;
        let driver = driver(args, 1, &caller, &b)?;
        let t = b.run_as_owner(
            c,
            "batch_claim_next",
            claim_next_sql,
            &[TEXT, BOOL, TEXT, TEXT, TEXT],
            &[
                driver.clone().into(),
                caller.admin.into(),
                caller.tenant.clone().into(),
                b.available.clone().into(),
                b.claimed.clone().into(),
            ],
        )?;
        if t.is_empty() {
            return Ok(None); // none left: SQL NULL, not an error
        }
        let row = t.first();
        let id = row.get::<String>(1)?.unwrap_or_default();
        // A batch was found and locked, but the app's own trigger (or a
        // rule) skipped its write: not "none left" (NULL), as it answered.
        if !row.get::<bool>(2)?.unwrap_or(false) {
            return Err(bound::skipped_write(&b, &[id.as_str()]));
        }
        Ok(Some(reply(&b, &id, &b.claimed, Some(&driver))))
    })
}

fn unclaim(args: &Args) -> Result<String> {
    let src = source(args)?;
    let raw_id = args.text(1, "p_batch_id")?;
    let caller = Caller::current()?;
    with_spi(None, |c| {
        let b = bindings::get(c, &src, false)?;
        let id = item_key(b.id_type, raw_id.clone(), "p_batch_id")?;
        let driver = driver(args, 2, &caller, &b)?;
        let t = b.run_as_owner(
            c,
            "batch_unclaim",
            unclaim_sql,
            CLAIM_ARGS,
            &[
                id.clone().into(),
                driver.clone().into(),
                caller.admin.into(),
                caller.tenant.clone().into(),
                b.available.clone().into(),
                b.claimed.clone().into(),
            ],
        )?;
        if !t.is_empty() {
            return Ok(reply(&b, &id, &b.available, None));
        }
        let (status, holder) = lock_batch(c, &b, &caller, &id)?;
        if status == b.claimed && holder.as_deref() == Some(driver.as_str()) {
            // held by the caller, locked by us, and still not given back
            return Err(bound::skipped_write(&b, &[id.as_str()]));
        }
        Err(Error::BatchNotHeld {
            batch_id: id.clone(),
            driver_id: driver.clone(),
            status,
            lease_lapsed_at: None, // bound batches have no leases
        })
    })
}

entry_point!(ai_bound_claim_batch, pg_finfo_ai_bound_claim_batch, claim);
entry_point!(
    ai_bound_claim_next_batch,
    pg_finfo_ai_bound_claim_next_batch,
    claim_next
);
entry_point!(
    ai_bound_unclaim_batch,
    pg_finfo_ai_bound_unclaim_batch,
    unclaim
);
