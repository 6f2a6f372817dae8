//! An adopted batch table as a batch source (bind_batch_source): the
//! statements of the own batches, generated per binding.
//!
//! Concurrency as for the own batches: a claim is one `UPDATE ... WHERE
//! status = available`; of N drivers racing for one batch, the first takes
//! the row lock and wins, the others wait, re-check the committed row
//! (EvalPlanQual), match nothing and get BATCH_UNAVAILABLE (PT409, the
//! delivery-batch claim route's 409). claim_next picks with `FOR UPDATE
//! SKIP LOCKED` so drivers never queue behind each other. No leases, limits
//! or in_progress/completed states here: a bound table has only the two
//! statuses it was bound with.

use super::binding::Binding;
use super::stock::{skipped_write, tenant_pred};
use crate::core::caller::Caller;
use crate::core::validate;
use crate::error::{Error, Result};
use crate::source::{BatchSource, BatchState, ClaimTerms, Transition};
use pgrx::pg_sys::{self, Oid};
use pgrx::spi::SpiClient;
use serde_json::json;

const TEXT: Oid = pg_sys::TEXTOID;
const BOOL: Oid = pg_sys::BOOLOID;

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

/// The driver, checked against the bound assignee column: no longer than a
/// varchar(n) holds, and a uuid (as canonical text, so `assignee::text =
/// driver` compares like with like) for a uuid column.
pub fn driver(b: &Binding, d: String) -> Result<String> {
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

impl BatchSource for Binding {
    type Key = String;

    fn key_text(&self, key: &String) -> String {
        key.clone()
    }

    fn skipped(&self, key: &String) -> Error {
        skipped_write(self, &[key.as_str()])
    }

    fn claim(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &String,
        driver: &str,
        _terms: &ClaimTerms,
    ) -> Result<Option<String>> {
        let t = self.run_as_owner(
            c,
            "batch_claim",
            claim_sql,
            CLAIM_ARGS,
            &[
                key.clone().into(),
                driver.to_string().into(),
                who.admin.into(),
                who.tenant.clone().into(),
                self.available.clone().into(),
                self.claimed.clone().into(),
            ],
        )?;
        Ok((!t.is_empty()).then(|| reply(self, key, &self.claimed, Some(driver))))
    }

    fn claim_next(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        driver: &str,
        _zone: Option<&str>,
        _terms: &ClaimTerms,
    ) -> Result<Option<String>> {
        let t = self.run_as_owner(
            c,
            "batch_claim_next",
            claim_next_sql,
            &[TEXT, BOOL, TEXT, TEXT, TEXT],
            &[
                driver.to_string().into(),
                who.admin.into(),
                who.tenant.clone().into(),
                self.available.clone().into(),
                self.claimed.clone().into(),
            ],
        )?;
        if t.is_empty() {
            return Ok(None); // none left
        }
        let row = t.first();
        let id = row.get::<String>(1)?.unwrap_or_default();
        // A batch was found and locked, but the app's own trigger (or a
        // rule) skipped its write: not "none left".
        if !row.get::<bool>(2)?.unwrap_or(false) {
            return Err(skipped_write(self, &[id.as_str()]));
        }
        Ok(Some(reply(self, &id, &self.claimed, Some(driver))))
    }

    fn transition(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &String,
        driver: &str,
        t: Transition,
    ) -> Result<Option<String>> {
        if !self.supports(t) {
            return Ok(None);
        }
        let done = self.run_as_owner(
            c,
            "batch_unclaim",
            unclaim_sql,
            CLAIM_ARGS,
            &[
                key.clone().into(),
                driver.to_string().into(),
                who.admin.into(),
                who.tenant.clone().into(),
                self.available.clone().into(),
                self.claimed.clone().into(),
            ],
        )?;
        Ok((!done.is_empty()).then(|| reply(self, key, &self.available, None)))
    }

    fn lock(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &String,
    ) -> Result<Option<BatchState>> {
        let t = self.run_as_owner(
            c,
            "batch_lock",
            lock_sql,
            &[TEXT, BOOL, TEXT],
            &[
                key.clone().into(),
                who.admin.into(),
                who.tenant.clone().into(),
            ],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        let row = t.first();
        let status = row.get::<String>(1)?.unwrap_or_default();
        let holder = row.get::<String>(2)?;
        Ok(Some(BatchState {
            claimable: status == self.available,
            lapsed_at: None, // bound batches have no leases
            reply: reply(self, key, &status, holder.as_deref()),
            status,
            holder,
        }))
    }

    /// A bound table has only the two statuses it was bound with.
    fn supports(&self, t: Transition) -> bool {
        t == Transition::Unclaim
    }

    fn allows(&self, b: &BatchState, _who: &Caller, driver: &str, t: Transition) -> bool {
        t == Transition::Unclaim && b.status == self.claimed && b.holder.as_deref() == Some(driver)
    }

    fn holds(&self, b: &BatchState, driver: &str) -> bool {
        b.status == self.claimed && b.holder.as_deref() == Some(driver)
    }
}
