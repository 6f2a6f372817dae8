//! Stock states of the extension's own items (move_stock_state,
//! docs/stock-states.md): units on hand that are not for sale (damaged,
//! quality_control, safety_stock), units expected (incoming), and the two
//! ends a move may name: ordered (units that enter incoming from a
//! supplier's order) and written_off (units that leave the books).
//!
//! The per-state units live in `stock_states`; their on-hand sum is also
//! kept in `items.unsellable`, the one column every sale's and hold's
//! guarded statement subtracts (a join there would cost every sale). The
//! item's CHECK keeps `reserved + unsellable <= quantity + backorder_limit`.
//!
//! Only the default location (the item's own row): striped items, kits and
//! untracked items are refused here, and stripe_item refuses an item with
//! units in a state (stripes.rs).

use crate::core::caller::Caller;
use crate::core::movement::Movement;
use crate::error::{Error, Result, Shortfall};
use crate::pg::spi::{run, Stmt};
use pgrx::pg_sys::{self, Oid};
use pgrx::spi::SpiClient;
use pgrx::{AnyNumeric, Uuid};

const UUID: Oid = pg_sys::UUIDOID;
const NUM: Oid = pg_sys::NUMERICOID;
const TEXT: Oid = pg_sys::TEXTOID;
const BOOL: Oid = pg_sys::BOOLOID;
const INT: Oid = pg_sys::INT4OID;

/// A state a move names.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    Available,
    Damaged,
    QualityControl,
    SafetyStock,
    Incoming,
    /// only as a source: units ordered from a supplier, becoming incoming
    Ordered,
    /// only as a target: units leaving the books
    WrittenOff,
}

const FROM_STATES: &str =
    "one of available, damaged, quality_control, safety_stock, incoming, ordered";
const TO_STATES: &str =
    "one of available, damaged, quality_control, safety_stock, incoming, written_off";

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Available => "available",
            State::Damaged => "damaged",
            State::QualityControl => "quality_control",
            State::SafetyStock => "safety_stock",
            State::Incoming => "incoming",
            State::Ordered => "ordered",
            State::WrittenOff => "written_off",
        }
    }

    fn named(name: &str) -> Option<State> {
        Some(match name {
            "available" => State::Available,
            "damaged" => State::Damaged,
            "quality_control" => State::QualityControl,
            "safety_stock" => State::SafetyStock,
            "incoming" => State::Incoming,
            "ordered" => State::Ordered,
            "written_off" => State::WrittenOff,
            _ => return None,
        })
    }

    /// Units in this state are on hand (counted in quantity) but not for sale.
    fn on_hand_bucket(self) -> bool {
        matches!(
            self,
            State::Damaged | State::QualityControl | State::SafetyStock
        )
    }

    /// It has a row in stock_states.
    fn bucket(self) -> bool {
        self.on_hand_bucket() || self == State::Incoming
    }
}

/// p_from: a state units may leave (not written_off).
pub fn parse_from(v: Option<String>) -> Result<State> {
    parse(v, "p_from", FROM_STATES, State::WrittenOff)
}

/// p_to: a state units may enter (not ordered).
pub fn parse_to(v: Option<String>) -> Result<State> {
    parse(v, "p_to", TO_STATES, State::Ordered)
}

fn parse(
    v: Option<String>,
    field: &'static str,
    allowed: &'static str,
    never: State,
) -> Result<State> {
    let Some(name) = v else {
        return Err(Error::invalid_input(field, "is required (got NULL)"));
    };
    match State::named(&name) {
        Some(s) if s != never => Ok(s),
        _ => Err(Error::UnknownStockState {
            field,
            state: name,
            allowed,
        }),
    }
}

/// What a move does to the item row: signs of its change of quantity and
/// of unsellable (times the units moved), whether it needs free stock
/// (units leaving available), and its ledger kind.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    pub quantity_sign: i32,
    pub unsellable_sign: i32,
    pub needs_free: bool,
    pub kind: &'static str,
}

/// The plan of a move from `from` to `to`, or why it can't be.
pub fn plan(from: State, to: State) -> Result<Plan> {
    use State::*;
    if from == to {
        return Err(Error::invalid_input(
            "p_to",
            format!("is the same state as p_from ({})", from.as_str()),
        ));
    }
    let p = |q, u, free, kind| {
        Ok(Plan {
            quantity_sign: q,
            unsellable_sign: u,
            needs_free: free,
            kind,
        })
    };
    match (from, to) {
        (Ordered, Incoming) => p(0, 0, false, "state_move"),
        (Ordered, _) => Err(Error::invalid_input(
            "p_to",
            "must be incoming when p_from is ordered (units arrive through incoming; a plain restock is increment_inventory)",
        )),
        (_, Incoming) => Err(Error::invalid_input(
            "p_to",
            "is incoming, which only ordered units enter (units on hand are not expected)",
        )),
        (Available, WrittenOff) => p(-1, 0, true, "write_off"),
        (Available, _) => p(0, 1, true, "state_move"),
        (Incoming, Available) => p(1, 0, false, "receive"),
        (Incoming, WrittenOff) => p(0, 0, false, "state_move"),
        (Incoming, _) => p(1, 1, false, "receive"),
        (_, Available) => p(0, -1, false, "state_move"),
        (_, WrittenOff) => p(-1, -1, false, "write_off"),
        _ => p(0, 0, false, "state_move"),
    }
}

/// Lock the item row, as every movement of it does (FOR NO KEY UPDATE):
/// every later statement of the move reads the states after any other
/// move of this item committed. Tracked? kit? striped?
const LOCK: Stmt = Stmt {
    name: "states_lock",
    sql: "SELECT i.track_inventory, i.kit, i.stripes > 0 \
            FROM atomic_inventory.items AS i \
           WHERE i.id = $1 AND (i.tenant_id IS NULL OR $2 OR i.tenant_id = $3) \
             FOR NO KEY UPDATE",
    args: &[UUID, BOOL, TEXT],
};

/// The move, in one statement: the source state's row loses the units if
/// it holds them (guarded UPDATE), the item row takes its change if the
/// source gave them (or, from available, if its free stock covers them:
/// the same guard a sale has, without the backorder room: units set aside
/// must be on hand), the target state's row gains them, and the ledger
/// row records it. Returns how many item rows moved (0: refused).
///
/// $1 item, $2 units, $3 from, $4 to, $5/$6 signs of the change of
/// quantity / unsellable, $7 needs free stock, $8 ledger kind, $9-$11
/// reason, reference, key, $12 ledger on, $13 from is a state row, $14 to
/// is a state row.
const MOVE: Stmt = Stmt {
    name: "states_move",
    sql: "WITH src AS ( \
            UPDATE atomic_inventory.stock_states AS s \
               SET quantity = s.quantity - $2, updated_at = pg_catalog.now() \
             WHERE s.item_id = $1 AND s.state = $3 AND $13 AND s.quantity >= $2 \
            RETURNING s.item_id \
          ), upd AS ( \
            UPDATE atomic_inventory.items AS i \
               SET quantity = i.quantity + $5 * $2, unsellable = i.unsellable + $6 * $2, \
                   updated_at = pg_catalog.now() \
             WHERE i.id = $1 \
               AND (NOT $13 OR EXISTS (SELECT FROM src)) \
               AND (NOT $7 OR i.quantity - i.reserved - i.unsellable >= $2) \
            RETURNING i.id, i.quantity, i.tenant_id \
          ), dst AS ( \
            INSERT INTO atomic_inventory.stock_states AS s (item_id, state, quantity) \
            SELECT u.id, $4, $2 FROM upd AS u WHERE $14 \
            ON CONFLICT (item_id, state) \
            DO UPDATE SET quantity = s.quantity + excluded.quantity, updated_at = pg_catalog.now() \
          ), led AS ( \
            INSERT INTO atomic_inventory.ledger \
              (inventory_id, delta, quantity_after, kind, reason, reference, idempotency_key, \
               tenant_id, from_state, to_state) \
            SELECT u.id, $5 * $2, u.quantity, $8, $9, $10, $11, u.tenant_id, $3, $4 \
              FROM upd AS u WHERE $12 \
          ) \
          SELECT pg_catalog.count(*)::int4 FROM upd",
    args: &[
        UUID, NUM, TEXT, TEXT, INT, INT, BOOL, TEXT, TEXT, TEXT, TEXT, BOOL, BOOL, BOOL,
    ],
};

/// The item's states now (a statement of its own: it must see the move's
/// writes): the answer, the units in state $2 and the free units.
const READ: Stmt = Stmt {
    name: "states_read",
    sql: "SELECT pg_catalog.jsonb_build_object( \
                   'success', true, 'inventory_id', i.id, \
                   'quantity', i.quantity, 'reserved', i.reserved, 'unsellable', i.unsellable, \
                   'available', i.quantity - i.reserved - i.unsellable, \
                   'states', (SELECT pg_catalog.jsonb_object_agg(n.state, COALESCE(s.quantity, 0)) \
                                FROM pg_catalog.unnest(ARRAY['damaged', 'quality_control', \
                                                             'safety_stock', 'incoming']) AS n(state) \
                                LEFT JOIN atomic_inventory.stock_states AS s \
                                       ON s.item_id = i.id AND s.state = n.state))::text, \
                 COALESCE((SELECT s.quantity FROM atomic_inventory.stock_states AS s \
                            WHERE s.item_id = i.id AND s.state = $2), 0)::text, \
                 (i.quantity - i.reserved - i.unsellable)::text \
            FROM atomic_inventory.items AS i WHERE i.id = $1",
    args: &[UUID, TEXT],
};

/// A move's arguments.
pub struct Move {
    pub item: Uuid,
    pub from: State,
    pub to: State,
    pub quantity: AnyNumeric,
}

/// Move the units, all or nothing: the item's states after it, as JSON
/// (with from, to and moved added).
pub fn move_units(c: &mut SpiClient<'_>, who: &Caller, m: &Move, mv: &Movement) -> Result<String> {
    let plan = plan(m.from, m.to)?;
    let id = crate::core::validate::uuid_text(&m.item);
    let found = run(
        c,
        &LOCK,
        &[m.item.into(), who.admin.into(), who.tenant.clone().into()],
    )?;
    if found.is_empty() {
        return Err(Error::NotFound {
            entity: "inventory item",
            ids: vec![id],
        });
    }
    let row = found.first();
    let (tracked, kit, striped) = (
        row.get::<bool>(1)?.unwrap_or(true),
        row.get::<bool>(2)?.unwrap_or(false),
        row.get::<bool>(3)?.unwrap_or(false),
    );
    let why = if kit {
        Some("a kit (its components hold its stock: move theirs)")
    } else if striped {
        Some("striped (stripe_item(p_stripes => 0) first)")
    } else if !tracked {
        Some("untracked (it keeps no stock)")
    } else {
        None
    };
    if let Some(why) = why {
        return Err(Error::invalid_input(
            "p_inventory_id",
            format!("names an item that is {why}; stock states are for tracked items' own stock"),
        ));
    }
    let [reason, reference, key] = mv.ledger_params();
    let moved = run(
        c,
        &MOVE,
        &[
            m.item.into(),
            m.quantity.clone().into(),
            m.from.as_str().into(),
            m.to.as_str().into(),
            plan.quantity_sign.into(),
            plan.unsellable_sign.into(),
            plan.needs_free.into(),
            plan.kind.into(),
            reason,
            reference,
            key,
            mv.ledger.into(),
            m.from.bucket().into(),
            m.to.bucket().into(),
        ],
    )?
    .first()
    .get::<i32>(1)?
    .unwrap_or(0);
    let read = run(c, &READ, &[m.item.into(), m.from.as_str().into()])?;
    let row = read.first();
    let answer = row.get::<String>(1)?.unwrap_or_default();
    if moved == 0 {
        let requested = m.quantity.normalize().to_string();
        return Err(if m.from.bucket() {
            Error::InsufficientState {
                inventory_id: id,
                state: m.from.as_str().to_string(),
                held: row.get::<String>(2)?.unwrap_or_default(),
                requested,
            }
        } else if plan.needs_free {
            Error::Insufficient {
                lines: vec![Shortfall {
                    inventory_id: id,
                    available: row.get::<String>(3)?.unwrap_or_default(),
                    requested,
                }],
            }
        } else {
            Error::invalid_input(
                "p_inventory_id",
                format!("a trigger or rule on atomic_inventory.items skipped the write of item {id}; nothing changed"),
            )
        });
    }
    let mut out: serde_json::Value = serde_json::from_str(&answer)
        .map_err(|e| Error::Internal(format!("the states' answer is not JSON: {e}")))?;
    out["from"] = m.from.as_str().into();
    out["to"] = m.to.as_str().into();
    out["moved"] = serde_json::from_str(m.quantity.normalize())
        .map_err(|e| Error::Internal(format!("a quantity is not a JSON number: {e}")))?;
    Ok(out.to_string())
}
