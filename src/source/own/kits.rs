//! Kits on the extension's items: an item whose row holds no stock and
//! stands for units of its components (`kit_components`, define_kit). A
//! line of an order naming a kit is read as its components' lines before
//! anything is locked, so the order's rows are locked once each, in the
//! usual ascending order, and a kit beside loose units of one of its
//! components is checked against their combined need.

use crate::core::caller::Caller;
use crate::core::validate::Line;
use crate::error::Result;
use crate::pg::spi::{run, Stmt};
use pgrx::pg_sys::{self, Oid};
use pgrx::spi::SpiClient;
use pgrx::{AnyNumeric, Uuid};

const BOOL: Oid = pg_sys::BOOLOID;
const TEXT: Oid = pg_sys::TEXTOID;

/// What an order's items are: whether any has stock levels (the question
/// every multi-line sale asks, levels.rs), and the components of those that
/// are visible kits (none: one row of NULLs), kit by kit.
const ORDER_SHAPE: Stmt = Stmt {
    name: "kit_order_shape",
    sql: "SELECT e.any_levels, k.kit_id, k.component_id, k.quantity \
            FROM (SELECT EXISTS (SELECT FROM atomic_inventory.stock_levels AS l \
                                  WHERE l.item_id = ANY ($1)) AS any_levels) AS e \
            LEFT JOIN (atomic_inventory.kit_components AS k \
                       JOIN atomic_inventory.items AS i \
                         ON i.id = k.kit_id AND (i.tenant_id IS NULL OR $2 OR i.tenant_id = $3)) \
              ON k.kit_id = ANY ($1) \
           ORDER BY k.kit_id, k.component_id",
    args: &[pg_sys::UUIDARRAYOID, BOOL, TEXT],
};

/// A kit an order named: its id, units and location, as written.
pub struct KitUse {
    pub kit: Uuid,
    pub quantity: AnyNumeric,
    pub location_id: Option<Uuid>,
}

/// An order with its kits read as their components.
pub struct Expanded {
    /// the lines to sell or hold: loose lines as given, each kit line
    /// replaced by one line per component (units per kit x kits)
    pub lines: Vec<Line>,
    /// the kit lines replaced (empty: the order named no kit)
    pub kits: Vec<KitUse>,
    /// whether any item to sell has stock levels at other locations; None
    /// when the order named kits: not asked yet about their components
    /// (`levels::any_levels`), since the guarded first statement of a sale
    /// asks it itself (lines.rs, sell_plain)
    pub any_levels: Option<bool>,
}

/// Read an order's kit lines as their components' lines: one statement (for
/// an order without kits it answers the levels question too).
pub fn expand(c: &mut SpiClient<'_>, who: &Caller, lines: &[Line]) -> Result<Expanded> {
    let mut ids: Vec<Uuid> = lines.iter().map(|l| l.inventory_id).collect();
    ids.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    ids.dedup();
    let mut any_levels = false;
    let mut parts: Vec<(Uuid, Uuid, AnyNumeric)> = Vec::new();
    for row in run(
        c,
        &ORDER_SHAPE,
        &[ids.into(), who.admin.into(), who.tenant.clone().into()],
    )? {
        any_levels = row.get::<bool>(1)?.unwrap_or(false);
        if let (Some(kit), Some(part), Some(q)) = (
            row.get::<Uuid>(2)?,
            row.get::<Uuid>(3)?,
            row.get::<AnyNumeric>(4)?,
        ) {
            parts.push((kit, part, q));
        }
    }
    if parts.is_empty() {
        return Ok(Expanded {
            lines: lines
                .iter()
                .map(|l| Line {
                    inventory_id: l.inventory_id,
                    quantity: l.quantity.clone(),
                    location_id: l.location_id,
                })
                .collect(),
            kits: Vec::new(),
            any_levels: Some(any_levels),
        });
    }
    let mut out = Vec::with_capacity(lines.len() + parts.len());
    let mut kits = Vec::new();
    for l in lines {
        let of_kit: Vec<&(Uuid, Uuid, AnyNumeric)> = parts
            .iter()
            .filter(|(k, _, _)| *k == l.inventory_id)
            .collect();
        if of_kit.is_empty() {
            out.push(Line {
                inventory_id: l.inventory_id,
                quantity: l.quantity.clone(),
                location_id: l.location_id,
            });
            continue;
        }
        for (_, part, per_kit) in of_kit {
            out.push(Line {
                inventory_id: *part,
                quantity: per_kit.clone() * l.quantity.clone(),
                location_id: l.location_id,
            });
        }
        kits.push(KitUse {
            kit: l.inventory_id,
            quantity: l.quantity.clone(),
            location_id: l.location_id,
        });
    }
    Ok(Expanded {
        lines: out,
        kits,
        any_levels: None,
    })
}
