//! The one error type of the extension and its mapping to SQLSTATE, stable code,
//! message, detail and hint.
//!
//! Why not `pgrx::ErrorReport`: pgrx's `PgSqlErrorCode` is a closed enum, and any
//! SQLSTATE it does not know (such as PostgREST's `PTxyz` "respond with HTTP xyz"
//! codes) becomes `XX000`. So typed errors travel as `Err(Error)` up to the raw
//! entry point (see `pg/fmgr.rs`), which raises them (pg/raise.rs) with `errcode()` itself *after*
//! pgrx's guard has returned and every Rust value has been dropped.
//!
//! SQLSTATE choices (docs/errors.md has the table):
//! - caller mistakes use the standard `22023 invalid_parameter_value`, which
//!   PostgREST answers with 400 and every driver knows;
//! - business outcomes use `PTxyz` so PostgREST answers with HTTP xyz:
//!   PT404 not found, PT409 conflicts with current stock, PT422 idempotency key
//!   reused with other arguments, PT503 lock wait limit reached (retryable).

use serde_json::{json, Map, Value};

/// The end of BATCH_NOT_HELD's message for a claim whose lease lapsed.
fn lapse_note(at: &Option<String>) -> String {
    at.as_ref()
        .map(|t| format!(", but its lease lapsed at {t}"))
        .unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("INVALID_QUANTITY: {field} {reason}")]
    InvalidQuantity {
        field: String,
        reason: String,
        value: Option<String>,
    },

    #[error("INVALID_INPUT: {field} {reason}")]
    InvalidInput { field: String, reason: String },

    /// A bound table changed under its binding (a column dropped or of
    /// another type, the table made something else): INVALID_INPUT on
    /// p_source for the caller, but the sweep must tell it from a table
    /// that is gone (ops::reservations): its holds are kept.
    #[error("INVALID_INPUT: p_source {reason}")]
    SourceChanged { reason: String },

    /// A source whose table was dropped after it was bound: INVALID_INPUT
    /// on p_source for the caller; the sweep expires its holds' lines
    /// (nothing can be given back).
    #[error("INVALID_INPUT: p_source {name} is bound to a table that no longer exists; unbind_source it")]
    SourceGone { name: String },

    #[error("NOT_FOUND: {}", not_found_message(.entity, .ids))]
    NotFound {
        entity: &'static str,
        ids: Vec<String>,
    },

    #[error("INSUFFICIENT_INVENTORY: {}", insufficient_message(.lines))]
    Insufficient { lines: Vec<Shortfall> },

    /// move_stock_state: a state name that is not one of the item states
    /// (or not one the argument may name: written_off is only a target,
    /// ordered only a source).
    #[error("UNKNOWN_STOCK_STATE: {field} {state:?} is not {allowed}")]
    UnknownStockState {
        field: &'static str,
        state: String,
        allowed: &'static str,
    },

    /// move_stock_state: the state the units come from holds fewer than
    /// asked for (a concurrent move may have taken them): a conflict with
    /// the current stock, as INSUFFICIENT_INVENTORY is for available.
    #[error("INSUFFICIENT_STOCK_STATE: item {inventory_id} has {held} units {state}, {requested} requested")]
    InsufficientState {
        inventory_id: String,
        state: String,
        held: String,
        requested: String,
    },

    #[error("QUANTITY_MISMATCH: item {inventory_id} has quantity {actual}, expected {expected}")]
    QuantityMismatch {
        inventory_id: String,
        expected: String,
        actual: String,
    },

    #[error("BELOW_RESERVED: item {inventory_id} cannot be set to {requested}: {reserved} units are reserved")]
    BelowReserved {
        inventory_id: String,
        requested: String,
        reserved: String,
    },

    #[error(
        "IDEMPOTENCY_CONFLICT: idempotency key {key:?} was already used with different arguments"
    )]
    IdempotencyConflict { key: String, first_function: String },

    #[error("BATCH_UNAVAILABLE: batch {batch_id} is {status} and cannot be claimed")]
    BatchUnavailable { batch_id: String, status: String },

    #[error(
        "BATCH_NOT_HELD: batch {batch_id} is not held by driver {driver_id} (it is {status}{})",
        lapse_note(lease_lapsed_at)
    )]
    BatchNotHeld {
        batch_id: String,
        driver_id: String,
        status: String,
        /// a claim whose lease lapsed (no longer held): when it lapsed
        lease_lapsed_at: Option<String>,
    },

    #[error("DRIVER_LIMIT_REACHED: driver {driver_id} already holds {limit} active batches")]
    DriverLimit { driver_id: String, limit: i32 },

    #[error("RESERVATION_NOT_ACTIVE: reservation {reservation_id} is {status}")]
    ReservationNotActive {
        reservation_id: String,
        status: String,
    },

    /// Lines named by commit/release that are lines of the reservation but
    /// already finished, typically by a concurrent request: a conflict (409),
    /// not bad input (ids that were never lines stay INVALID_INPUT).
    #[error("LINE_NOT_ACTIVE: lines of reservation {reservation_id} already finished: {}", .lines.iter().map(|(k, st)| format!("{k} ({st})")).collect::<Vec<_>>().join(", "))]
    LineNotActive {
        reservation_id: String,
        /// "inventory_id" (managed items) or "item_id" (bound sources)
        key_name: &'static str,
        /// (line key, its status), sorted by key
        lines: Vec<(String, String)>,
    },

    #[error("RESERVATION_EXPIRED: reservation {reservation_id} expired at {expires_at}")]
    ReservationExpired {
        reservation_id: String,
        expires_at: String,
    },

    /// The item has no stock level at a location other than the default
    /// one (never restocked or transferred there): a clear 404, not a
    /// silent zero.
    #[error("LEVEL_NOT_FOUND: item {inventory_id} has no stock level at location {location_id}")]
    LevelNotFound {
        inventory_id: String,
        location_id: String,
    },

    /// A location that exists for the caller but can't do this: inactive,
    /// or not sellable for a sale.
    #[error("LOCATION_UNAVAILABLE: location {location_id} is {why}")]
    LocationUnavailable { location_id: String, why: String },

    /// A transfer shipped in transit (transfer_inventory with p_receive =>
    /// false) that was already received or cancelled: a conflict with its
    /// state (409), as for a reservation that is no longer active.
    #[error("TRANSFER_NOT_IN_TRANSIT: transfer {transfer_id} is {status}")]
    TransferNotInTransit { transfer_id: String, status: String },

    #[error("SOURCE_IN_USE: source {name} has {active} active reservations")]
    SourceInUse { name: String, active: i64 },

    #[error("SESSION_NOT_FOUND: picking session {session_id} not found")]
    SessionNotFound { session_id: String },

    #[error("SESSION_NOT_PACKING: picking session {session_id} is not in packing status (it is {status})")]
    SessionNotPacking { session_id: String, status: String },

    #[error("PROGRESS_NOT_FOUND: packing progress record {progress_id} not found")]
    ProgressNotFound { progress_id: String },

    #[error("PROGRESS_SESSION_MISMATCH: packing progress {progress_id} does not belong to session {session_id}")]
    ProgressSessionMismatch {
        progress_id: String,
        session_id: String,
    },

    #[error("ORDER_NOT_FOUND: order {order_id} not found")]
    OrderNotFound { order_id: String },

    #[error("ORDER_COMPLETED: order {order_number} has already been completed ({status})")]
    OrderCompleted {
        order_number: String,
        status: String,
    },

    #[error("ORDER_CLOSED: order {order_number} has been {status} and cannot be packed")]
    OrderClosed {
        order_number: String,
        status: String,
    },

    #[error("ALREADY_FULLY_PACKED: this item is already fully packed ({packed} of {needed} packed, {requested} more requested)")]
    AlreadyFullyPacked {
        progress_id: String,
        needed: i64,
        packed: i64,
        requested: i32,
    },

    #[error("BASKET_EXHAUSTED: no more units available to pack ({packed_total} of {picked} picked units already packed, {requested} more requested)")]
    BasketExhausted {
        product_id: String,
        picked: i64,
        packed_total: i64,
        requested: i32,
    },

    #[error("NOTHING_TO_UNPACK: only {packed} units are packed, {requested} to unpack")]
    NothingToUnpack {
        progress_id: String,
        packed: i64,
        requested: i32,
    },

    /// A lock wait ran out, or (`busy` not empty) rows that could only be
    /// taken without waiting were held by another call: nothing changed
    /// either way, and a retry is safe. Not INSUFFICIENT_INVENTORY for the
    /// busy rows: their stock covers the line.
    #[error("LOCK_TIMEOUT: {}", lock_wait_text(*.timeout_ms, .busy))]
    LockTimeout {
        timeout_ms: Option<i32>,
        busy: Vec<String>,
    },

    #[error("SCHEMA_OUTDATED: the atomic_inventory library is {library} but the database has the extension's SQL at {installed}")]
    SchemaOutdated { installed: String, library: String },

    #[error("INTERNAL: {0}")]
    Internal(String),
}

/// One line that could not be covered by available stock.
#[derive(Debug, Clone)]
pub struct Shortfall {
    pub inventory_id: String,
    pub available: String,
    pub requested: String,
}

fn not_found_message(entity: &str, ids: &[String]) -> String {
    match ids {
        [one] => format!("{entity} {one} does not exist or is not visible to this tenant"),
        many => format!(
            "{} {entity}s do not exist or are not visible to this tenant: {}",
            many.len(),
            many.join(", ")
        ),
    }
}

fn insufficient_message(lines: &[Shortfall]) -> String {
    let parts: Vec<String> = lines
        .iter()
        .map(|l| {
            format!(
                "item {} has {} available, {} requested",
                l.inventory_id, l.available, l.requested
            )
        })
        .collect();
    parts.join("; ")
}

fn lock_wait_text(ms: Option<i32>, busy: &[String]) -> String {
    if !busy.is_empty() {
        return format!(
            "item {} changed while this call ran and is locked by another call now (waiting for it here could deadlock)",
            busy.join(", ")
        );
    }
    let within = match ms {
        Some(ms) => format!("{ms} ms"),
        None => "the session's lock_timeout".to_string(),
    };
    format!("could not lock the inventory rows within {within}")
}

impl Error {
    pub fn invalid_quantity(field: &str, reason: &str, value: Option<String>) -> Self {
        Error::InvalidQuantity {
            field: field.to_string(),
            reason: reason.to_string(),
            value,
        }
    }

    pub fn invalid_input(field: &str, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    /// The stable machine code clients switch on (also the message prefix).
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidQuantity { .. } => "INVALID_QUANTITY",
            Error::InvalidInput { .. } | Error::SourceChanged { .. } | Error::SourceGone { .. } => {
                "INVALID_INPUT"
            }
            Error::NotFound { .. } => "NOT_FOUND",
            Error::Insufficient { .. } => "INSUFFICIENT_INVENTORY",
            Error::UnknownStockState { .. } => "UNKNOWN_STOCK_STATE",
            Error::InsufficientState { .. } => "INSUFFICIENT_STOCK_STATE",
            Error::QuantityMismatch { .. } => "QUANTITY_MISMATCH",
            Error::BelowReserved { .. } => "BELOW_RESERVED",
            Error::IdempotencyConflict { .. } => "IDEMPOTENCY_CONFLICT",
            Error::BatchUnavailable { .. } => "BATCH_UNAVAILABLE",
            Error::BatchNotHeld { .. } => "BATCH_NOT_HELD",
            Error::DriverLimit { .. } => "DRIVER_LIMIT_REACHED",
            Error::ReservationNotActive { .. } => "RESERVATION_NOT_ACTIVE",
            Error::LineNotActive { .. } => "LINE_NOT_ACTIVE",
            Error::ReservationExpired { .. } => "RESERVATION_EXPIRED",
            Error::SourceInUse { .. } => "SOURCE_IN_USE",
            Error::LevelNotFound { .. } => "LEVEL_NOT_FOUND",
            Error::LocationUnavailable { .. } => "LOCATION_UNAVAILABLE",
            Error::TransferNotInTransit { .. } => "TRANSFER_NOT_IN_TRANSIT",
            Error::SessionNotFound { .. } => "SESSION_NOT_FOUND",
            Error::SessionNotPacking { .. } => "SESSION_NOT_PACKING",
            Error::ProgressNotFound { .. } => "PROGRESS_NOT_FOUND",
            Error::ProgressSessionMismatch { .. } => "PROGRESS_SESSION_MISMATCH",
            Error::OrderNotFound { .. } => "ORDER_NOT_FOUND",
            Error::OrderCompleted { .. } => "ORDER_COMPLETED",
            Error::OrderClosed { .. } => "ORDER_CLOSED",
            Error::AlreadyFullyPacked { .. } => "ALREADY_FULLY_PACKED",
            Error::BasketExhausted { .. } => "BASKET_EXHAUSTED",
            Error::NothingToUnpack { .. } => "NOTHING_TO_UNPACK",
            Error::LockTimeout { .. } => "LOCK_TIMEOUT",
            Error::SchemaOutdated { .. } => "SCHEMA_OUTDATED",
            Error::Internal(_) => "INTERNAL",
        }
    }

    /// The SQLSTATE, five characters.
    pub fn sqlstate(&self) -> &'static [u8; 5] {
        match self {
            Error::InvalidQuantity { .. }
            | Error::InvalidInput { .. }
            | Error::UnknownStockState { .. }
            | Error::SourceChanged { .. }
            | Error::SourceGone { .. } => b"22023",
            Error::NotFound { .. }
            | Error::LevelNotFound { .. }
            | Error::SessionNotFound { .. }
            | Error::ProgressNotFound { .. }
            | Error::OrderNotFound { .. } => b"PT404",
            // someone else's progress record: forbidden, like the packing RPC's "security violation"
            Error::ProgressSessionMismatch { .. } => b"PT403",
            Error::SessionNotPacking { .. }
            | Error::OrderCompleted { .. }
            | Error::OrderClosed { .. }
            | Error::AlreadyFullyPacked { .. }
            | Error::BasketExhausted { .. }
            | Error::NothingToUnpack { .. } => b"PT409",
            Error::Insufficient { .. }
            | Error::InsufficientState { .. }
            | Error::QuantityMismatch { .. }
            | Error::BelowReserved { .. }
            | Error::BatchUnavailable { .. }
            | Error::DriverLimit { .. }
            | Error::ReservationNotActive { .. }
            | Error::LineNotActive { .. }
            // unbinding would strand units held in the app's reserved column
            | Error::SourceInUse { .. }
            // the location exists but is closed (or not for sale) now
            | Error::LocationUnavailable { .. }
            | Error::TransferNotInTransit { .. } => b"PT409",
            Error::ReservationExpired { .. } => b"PT410",
            Error::BatchNotHeld { .. } => b"PT403",
            Error::IdempotencyConflict { .. } => b"PT422",
            Error::LockTimeout { .. } => b"PT503",
            // object_not_in_prerequisite_state: an operator's step is missing
            Error::SchemaOutdated { .. } => b"55000",
            Error::Internal(_) => b"XX000",
        }
    }

    /// A JSON object for machines: always has "code", plus the facts of the case.
    pub fn detail(&self) -> Value {
        let mut m = Map::new();
        m.insert("code".into(), json!(self.code()));
        match self {
            Error::InvalidQuantity { field, value, .. } => {
                m.insert("field".into(), json!(field));
                if let Some(v) = value {
                    m.insert("value".into(), json!(v));
                }
            }
            Error::InvalidInput { field, .. } => {
                m.insert("field".into(), json!(field));
            }
            Error::LevelNotFound {
                inventory_id,
                location_id,
            } => {
                m.insert("inventory_id".into(), json!(inventory_id));
                m.insert("location_id".into(), json!(location_id));
            }
            Error::LocationUnavailable { location_id, why } => {
                m.insert("location_id".into(), json!(location_id));
                m.insert("reason".into(), json!(why));
            }
            Error::TransferNotInTransit {
                transfer_id,
                status,
            } => {
                m.insert("transfer_id".into(), json!(transfer_id));
                m.insert("status".into(), json!(status));
            }
            Error::SourceChanged { .. } | Error::SourceGone { .. } => {
                m.insert("field".into(), json!("p_source"));
            }
            Error::NotFound { entity, ids } => {
                m.insert("entity".into(), json!(entity));
                m.insert("ids".into(), json!(ids));
            }
            Error::Insufficient { lines } => {
                let lines: Vec<Value> = lines
                    .iter()
                    .map(|l| {
                        json!({"inventory_id": l.inventory_id, "available": l.available, "requested": l.requested})
                    })
                    .collect();
                m.insert("lines".into(), Value::Array(lines));
            }
            Error::UnknownStockState {
                field,
                state,
                allowed,
            } => {
                m.insert("field".into(), json!(field));
                m.insert("value".into(), json!(state));
                m.insert("allowed".into(), json!(allowed));
            }
            Error::InsufficientState {
                inventory_id,
                state,
                held,
                requested,
            } => {
                m.insert("inventory_id".into(), json!(inventory_id));
                m.insert("state".into(), json!(state));
                m.insert("held".into(), json!(held));
                m.insert("requested".into(), json!(requested));
            }
            Error::QuantityMismatch {
                inventory_id,
                expected,
                actual,
            } => {
                m.insert("inventory_id".into(), json!(inventory_id));
                m.insert("expected".into(), json!(expected));
                m.insert("actual".into(), json!(actual));
            }
            Error::BelowReserved {
                inventory_id,
                requested,
                reserved,
            } => {
                m.insert("inventory_id".into(), json!(inventory_id));
                m.insert("requested".into(), json!(requested));
                m.insert("reserved".into(), json!(reserved));
            }
            Error::IdempotencyConflict {
                key,
                first_function,
            } => {
                m.insert("idempotency_key".into(), json!(key));
                m.insert("first_function".into(), json!(first_function));
            }
            Error::BatchUnavailable { batch_id, status } => {
                m.insert("batch_id".into(), json!(batch_id));
                m.insert("status".into(), json!(status));
            }
            Error::BatchNotHeld {
                batch_id,
                driver_id,
                status,
                lease_lapsed_at,
            } => {
                m.insert("batch_id".into(), json!(batch_id));
                m.insert("driver_id".into(), json!(driver_id));
                m.insert("status".into(), json!(status));
                if let Some(at) = lease_lapsed_at {
                    m.insert("lease_expires_at".into(), json!(at));
                }
            }
            Error::DriverLimit { driver_id, limit } => {
                m.insert("driver_id".into(), json!(driver_id));
                m.insert("limit".into(), json!(limit));
            }
            Error::ReservationNotActive {
                reservation_id,
                status,
            } => {
                m.insert("reservation_id".into(), json!(reservation_id));
                m.insert("status".into(), json!(status));
            }
            Error::ReservationExpired {
                reservation_id,
                expires_at,
            } => {
                m.insert("reservation_id".into(), json!(reservation_id));
                m.insert("expires_at".into(), json!(expires_at));
            }
            Error::SessionNotFound { session_id } => {
                m.insert("session_id".into(), json!(session_id));
            }
            Error::SessionNotPacking { session_id, status } => {
                m.insert("session_id".into(), json!(session_id));
                m.insert("status".into(), json!(status));
            }
            Error::ProgressNotFound { progress_id } => {
                m.insert("progress_id".into(), json!(progress_id));
            }
            Error::ProgressSessionMismatch {
                progress_id,
                session_id,
            } => {
                m.insert("progress_id".into(), json!(progress_id));
                m.insert("session_id".into(), json!(session_id));
            }
            Error::OrderNotFound { order_id } => {
                m.insert("order_id".into(), json!(order_id));
            }
            Error::OrderCompleted {
                order_number,
                status,
            }
            | Error::OrderClosed {
                order_number,
                status,
            } => {
                m.insert("order_number".into(), json!(order_number));
                m.insert("status".into(), json!(status));
            }
            Error::AlreadyFullyPacked {
                progress_id,
                needed,
                packed,
                requested,
            } => {
                m.insert("progress_id".into(), json!(progress_id));
                m.insert("quantity_needed".into(), json!(needed));
                m.insert("quantity_packed".into(), json!(packed));
                m.insert("requested".into(), json!(requested));
            }
            Error::BasketExhausted {
                product_id,
                picked,
                packed_total,
                requested,
            } => {
                m.insert("product_id".into(), json!(product_id));
                m.insert("quantity_picked".into(), json!(picked));
                m.insert("total_packed".into(), json!(packed_total));
                m.insert("requested".into(), json!(requested));
            }
            Error::NothingToUnpack {
                progress_id,
                packed,
                requested,
            } => {
                m.insert("progress_id".into(), json!(progress_id));
                m.insert("quantity_packed".into(), json!(packed));
                m.insert("requested".into(), json!(requested));
            }
            Error::LineNotActive {
                reservation_id,
                key_name,
                lines,
            } => {
                m.insert("reservation_id".into(), json!(reservation_id));
                m.insert(
                    "lines".into(),
                    json!(lines
                        .iter()
                        .map(|(k, st)| json!({ *key_name: k, "status": st }))
                        .collect::<Vec<_>>()),
                );
            }
            Error::SourceInUse { name, active } => {
                m.insert("source".into(), json!(name));
                m.insert("active_reservations".into(), json!(active));
            }
            Error::LockTimeout { timeout_ms, busy } => {
                m.insert("lock_timeout_ms".into(), json!(timeout_ms));
                if !busy.is_empty() {
                    m.insert("inventory_ids".into(), json!(busy));
                }
            }
            Error::SchemaOutdated { installed, library } => {
                m.insert("installed".into(), json!(installed));
                m.insert("library".into(), json!(library));
            }
            Error::Internal(_) => {}
        }
        Value::Object(m)
    }

    pub fn hint(&self) -> &'static str {
        match self {
            Error::InvalidQuantity { .. } => {
                "Quantities must be finite numbers greater than 0 and at most 1000000000000."
            }
            Error::InvalidInput { .. } => "Check the argument named in the detail.",
            Error::SourceChanged { .. } => {
                "Change the table back, or unbind_source it and bind it again (docs/adopting.md)."
            }
            Error::SourceGone { .. } => "Check the argument named in the detail.",
            Error::NotFound { .. } => {
                "Check the id; rows of another tenant are reported as not found."
            }
            Error::Insufficient { .. } => {
                "Nothing was changed. Offer less, restock, or release reservations; available = quantity - reserved - unsellable (units damaged, in quality control or safety stock)."
            }
            Error::UnknownStockState { .. } => {
                "States are available, damaged, quality_control, safety_stock and incoming; written_off is only a p_to, ordered only a p_from (docs/stock-states.md)."
            }
            Error::InsufficientState { .. } => {
                "Nothing was changed. Read the item's states (get_inventory) and move at most what the state holds."
            }
            Error::QuantityMismatch { .. } => {
                "Someone changed the quantity since you read it. Read it again and retry with the new expected quantity."
            }
            Error::BelowReserved { .. } => {
                "Release or commit reservations first, or set a quantity at least equal to reserved."
            }
            Error::IdempotencyConflict { .. } => {
                "Use a new idempotency key for a different request."
            }
            Error::BatchUnavailable { .. } => {
                "Another driver holds this batch (or it is finished). Pick another one, e.g. with claim_next_batch."
            }
            Error::BatchNotHeld {
                lease_lapsed_at: Some(_),
                ..
            } => {
                "The claim's lease lapsed, so it is no longer held: claim it again (claim_batch), then start or complete it."
            }
            Error::BatchNotHeld { .. } => {
                "Only the driver holding a batch can unclaim, start or complete it (an admin too, on the extension's own batches; an adopted batch table's only by its holder)."
            }
            Error::DriverLimit { .. } => {
                "Complete or unclaim a batch first."
            }
            Error::ReservationNotActive { .. } => {
                "It was already committed, released or expired; nothing was changed. Reserve again if needed."
            }
            Error::ReservationExpired { .. } => {
                "The hold lapsed and its units are (or will be) released. Reserve again, or extend before expiry."
            }
            Error::LineNotActive { .. } => {
                "Another request committed, released or expired those lines first; nothing was changed. Read the reservation (get_reservation) and name only its active lines."
            }
            Error::SourceInUse { .. } => {
                "Nothing was changed. Commit or release its reservations (or let them expire), then unbind."
            }
            Error::LevelNotFound { .. } => {
                "Nothing was changed. Restock (increment_inventory) or transfer stock to that location first."
            }
            Error::TransferNotInTransit { .. } => {
                "It was already received or cancelled (by another request, or an earlier call); nothing was changed."
            }
            Error::LocationUnavailable { .. } => {
                "Nothing was changed. Activate it (update_location), or use another location; stock at a location that is not sellable can still be transferred."
            }
            Error::SessionNotFound { .. } => "Check p_session_id.",
            Error::SessionNotPacking { .. } => {
                "Finish picking first (status packing); completed or cancelled sessions can't change."
            }
            Error::ProgressNotFound { .. } => "Check p_progress_id.",
            Error::ProgressSessionMismatch { .. } => {
                "Use a progress record of your own session."
            }
            Error::OrderNotFound { .. } => "The progress record points to a missing order.",
            Error::OrderCompleted { .. } => {
                "The order left the warehouse workflow; its packing is frozen."
            }
            Error::OrderClosed { .. } => "Cancelled, rejected or returned orders are not packed.",
            Error::AlreadyFullyPacked { .. } => "Nothing was changed; the line is complete.",
            Error::BasketExhausted { .. } => {
                "Every picked unit is packed; pick more units before packing more."
            }
            Error::NothingToUnpack { .. } => "Nothing was changed.",
            Error::LockTimeout { .. } => {
                "Nothing was changed. A row it needs is held by another transaction; retry shortly (with the same idempotency key, if the call took one)."
            }
            Error::SchemaOutdated { .. } => {
                "Run ALTER EXTENSION atomic_inventory UPDATE (docs/operations.md); nothing was changed."
            }
            Error::Internal(_) => "This is a bug in atomic_inventory; please report it.",
        }
    }
}

impl From<pgrx::spi::SpiError> for Error {
    fn from(e: pgrx::spi::SpiError) -> Self {
        Error::Internal(format!("SPI: {e}"))
    }
}

pub type Result<T> = std::result::Result<T, Error>;
