//! Movements of stock and what they leave behind: the arguments every
//! movement shares, the kinds of ledger row, one ledger row, and the
//! numbers an answer reports.

use crate::error::Result;
use crate::pg::fmgr::Args;
use crate::settings::ledger_on;
use pgrx::datum::DatumWithOid;
use pgrx::AnyNumeric;
use serde_json::{json, Value};

/// Arguments common to every movement, of either source.
pub struct Movement {
    pub reason: Option<String>,
    pub reference: Option<String>,
    pub key: Option<String>,
    pub lock_timeout_ms: Option<i32>,
    /// `atomic_inventory.ledger`, read once per call.
    pub ledger: bool,
}

impl Movement {
    /// p_reason, p_reference, p_idempotency_key, p_lock_timeout_ms from
    /// position `first` on.
    pub fn read(args: &Args, first: usize) -> Result<Movement> {
        Ok(Movement {
            reason: args.text(first, "p_reason")?,
            reference: args.text(first + 1, "p_reference")?,
            key: args.idempotency_key(first + 2)?,
            lock_timeout_ms: args.lock_timeout_ms(first + 3)?,
            ledger: ledger_on(),
        })
    }

    /// The ledger's reason, reference and idempotency key, as statement
    /// parameters (in that order).
    pub fn ledger_params(&self) -> [DatumWithOid<'static>; 3] {
        [
            self.reason.clone().into(),
            self.reference.clone().into(),
            self.key.clone().into(),
        ]
    }

    /// What the ledger rows of this movement share.
    pub fn note(&self, kind: LedgerKind) -> LedgerNote<'_> {
        LedgerNote {
            kind,
            reason: self.reason.clone(),
            reference: self.reference.clone(),
            key: self.key.as_deref(),
        }
    }
}

/// The kind of a ledger row (`ledger.kind`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LedgerKind {
    Decrement,
    Increment,
    Adjust,
    /// a reservation's units turned into a sale (reference: the reservation)
    Commit,
}

impl LedgerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Decrement => "decrement",
            LedgerKind::Increment => "increment",
            LedgerKind::Adjust => "adjust",
            LedgerKind::Commit => "commit",
        }
    }
}

/// What every ledger row of one call shares.
pub struct LedgerNote<'a> {
    pub kind: LedgerKind,
    pub reason: Option<String>,
    pub reference: Option<String>,
    pub key: Option<&'a str>,
}

/// One ledger row: item key, delta, quantity after, tenant.
pub struct LedgerRow {
    pub key: String,
    pub delta: AnyNumeric,
    pub after: AnyNumeric,
    pub tenant: Option<String>,
}

/// A row's quantity before and after a movement, as numeric_out writes
/// them.
pub struct Moved {
    pub old: String,
    pub new: String,
    /// units of a sale past the stock on hand (backorders or preorders),
    /// if any
    pub backordered: Option<Owed>,
}

/// Units of a sale that went past the stock on hand, and under which
/// policy: an item on preorder (items.preorder_until set) answers them as
/// `preordered`, any other as `backordered`. Only a running preorder sells
/// past stock, so a set release date means the units were preordered.
pub struct Owed {
    pub units: String,
    pub preorder: bool,
}

impl Owed {
    /// The answer's key for these units.
    pub fn key(&self) -> &'static str {
        if self.preorder {
            "preordered"
        } else {
            "backordered"
        }
    }
}

/// One line of a many-line sale: its item, quantities before and after,
/// the units deducted (as written), whether the item tracks stock.
pub struct Sold<K> {
    pub key: K,
    pub old: String,
    pub new: String,
    pub deducted: String,
    pub tracked: bool,
    /// units of the line that went past the stock on hand (backorders or
    /// preorders), if any: answered per line, as the single sale answers them
    pub backordered: Option<Owed>,
}

/// A numeric's text as a JSON number (a string if it is not one: NaN,
/// Infinity).
pub fn num_json(text: &str) -> Value {
    text.parse::<serde_json::Number>()
        .map(Value::Number)
        .unwrap_or_else(|_| json!(text))
}

/// A numeric as a JSON number, normalized (`2.50` as 2.5).
pub fn num(n: &AnyNumeric) -> Value {
    num_json(n.normalize())
}

/// A numeric read back as text (numeric_out's), as AnyNumeric.
pub fn numeric(text: &str) -> Result<AnyNumeric> {
    AnyNumeric::try_from(text)
        .map_err(|e| crate::error::Error::Internal(format!("numeric {text:?}: {e}")))
}
