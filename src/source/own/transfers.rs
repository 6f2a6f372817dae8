//! Transfers in transit (`atomic_inventory.transfers`): the record of units
//! that left a source level (transfer_inventory with p_receive => false)
//! and are in no level until received or cancelled.
//!
//! Concurrency: a receipt and a cancellation lock the transfer's row first
//! (FOR UPDATE), then the one level they change, so two of them on one
//! transfer queue and the second sees the first's status: exactly one
//! moves the units. Nothing locks a level and then a transfer row, so this
//! order can't deadlock with sales, holds or other transfers.

use crate::core::caller::Caller;
use crate::core::validate;
use crate::error::{Error, Result};
use crate::pg::spi::{run, Stmt};
use pgrx::pg_sys::{self, Oid};
use pgrx::spi::SpiClient;
use pgrx::{AnyNumeric, Uuid};

const UUID: Oid = pg_sys::UUIDOID;
const NUM: Oid = pg_sys::NUMERICOID;
const TEXT: Oid = pg_sys::TEXTOID;
const BOOL: Oid = pg_sys::BOOLOID;

/// Record a shipment of $5 units of item $2 from $3 to $4 (its source's
/// units already taken), with the item's tenant.
const SHIP: Stmt = Stmt {
    name: "transfer_ship",
    sql: "INSERT INTO atomic_inventory.transfers \
            (id, item_id, from_location_id, to_location_id, quantity, tenant_id, reason, reference) \
          SELECT $1, i.id, $3, $4, $5, i.tenant_id, $6, $7 \
            FROM atomic_inventory.items AS i WHERE i.id = $2",
    args: &[UUID, UUID, UUID, UUID, NUM, TEXT, TEXT],
};

/// Lock a transfer the caller may see (its item's tenant and both
/// locations visible): item, from, to, quantity, status.
pub(crate) const LOCK: Stmt = Stmt {
    name: "transfer_lock",
    sql: "SELECT t.item_id, t.from_location_id, t.to_location_id, t.quantity::text, t.status \
            FROM atomic_inventory.transfers AS t \
            JOIN atomic_inventory.locations AS f ON f.id = t.from_location_id \
            JOIN atomic_inventory.locations AS d ON d.id = t.to_location_id \
           WHERE t.id = $1 \
             AND (t.tenant_id IS NULL OR $2 OR t.tenant_id = $3) \
             AND (f.tenant_id IS NULL OR $2 OR f.tenant_id = $3) \
             AND (d.tenant_id IS NULL OR $2 OR d.tenant_id = $3) \
             FOR UPDATE OF t",
    args: &[UUID, BOOL, TEXT],
};

/// Finish a (locked) transfer in transit: received ($2) or cancelled. By
/// its id alone: LOCK found it in transit and holds its row, and a status
/// condition would let the planner scan the partial indexes of transfers
/// in transit instead of the key.
pub(crate) const FINISH: Stmt = Stmt {
    name: "transfer_finish",
    sql: "UPDATE atomic_inventory.transfers AS t \
             SET status = CASE WHEN $2 THEN 'received' ELSE 'cancelled' END, \
                 received_at = CASE WHEN $2 THEN pg_catalog.now() END, \
                 cancelled_at = CASE WHEN $2 THEN NULL ELSE pg_catalog.now() END \
           WHERE t.id = $1",
    args: &[UUID, BOOL],
};

/// A transfer in transit, locked.
pub struct InTransit {
    pub id: Uuid,
    pub item: Uuid,
    pub from: Uuid,
    pub to: Uuid,
    pub quantity: AnyNumeric,
}

/// Record the shipment `id` (see SHIP).
#[allow(clippy::too_many_arguments)]
pub fn ship(
    c: &mut SpiClient<'_>,
    id: Uuid,
    item: Uuid,
    from: Uuid,
    to: Uuid,
    qty: &AnyNumeric,
    reason: Option<String>,
    reference: Option<String>,
) -> Result<()> {
    run(
        c,
        &SHIP,
        &[
            id.into(),
            item.into(),
            from.into(),
            to.into(),
            qty.clone().into(),
            reason.into(),
            reference.into(),
        ],
    )?;
    Ok(())
}

/// Lock transfer `id`: NOT_FOUND if the caller can't see it,
/// TRANSFER_NOT_IN_TRANSIT if it was received or cancelled already.
pub fn lock(c: &mut SpiClient<'_>, who: &Caller, id: Uuid) -> Result<InTransit> {
    let t = run(
        c,
        &LOCK,
        &[id.into(), who.admin.into(), who.tenant.clone().into()],
    )?;
    if t.is_empty() {
        return Err(Error::NotFound {
            entity: "transfer",
            ids: vec![validate::uuid_text(&id)],
        });
    }
    let row = t.first();
    let status = row.get::<String>(5)?.unwrap_or_default();
    if status != "shipped" {
        return Err(Error::TransferNotInTransit {
            transfer_id: validate::uuid_text(&id),
            status,
        });
    }
    let (Some(item), Some(from), Some(to)) = (
        row.get::<Uuid>(1)?,
        row.get::<Uuid>(2)?,
        row.get::<Uuid>(3)?,
    ) else {
        return Err(Error::Internal("a transfer row without its keys".into()));
    };
    let quantity = crate::core::movement::numeric(&row.get::<String>(4)?.unwrap_or_default())?;
    Ok(InTransit {
        id,
        item,
        from,
        to,
        quantity,
    })
}

/// Mark the locked transfer `id` received (`received`) or cancelled.
pub fn finish(c: &mut SpiClient<'_>, id: Uuid, received: bool) -> Result<()> {
    run(c, &FINISH, &[id.into(), received.into()])?;
    Ok(())
}
