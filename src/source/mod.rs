//! Where stock, holds and batches live: the extension's own tables (`own`)
//! or an app's tables adopted under a name (`bound`). Each source
//! implements the row-level primitives below; the operations of `ops` are
//! written once over them.
//!
//! What a primitive promises, for every source:
//! - a write of one row checks its condition in the statement's WHERE
//!   clause (a waiting caller re-checks the row's newest version after the
//!   holder commits: EvalPlanQual), and answers None when it matched no row;
//! - a lock of one row (`lock`) or of many (`lock_lines`, in ascending key
//!   order, so calls naming the same rows queue instead of deadlocking)
//!   answers the row's state as of the lock;
//! - a write of rows the caller holds locked and found ready that matches
//!   fewer rows than it should was skipped by the table's own trigger or
//!   rule: `skipped` says so, never a shortage or a success;
//! - every write goes through an SQL statement the executor runs.

use crate::core::caller::Caller;
use crate::core::movement::{LedgerNote, Moved, Movement, Sold};
use crate::error::{Error, Result};
use pgrx::spi::{SpiClient, SpiTupleTable};
use pgrx::{AnyNumeric, Uuid};
use std::collections::BTreeMap;

pub mod bound;
pub mod holds;
pub mod own;

/// One stock row, locked: why a guarded write refused, or what a
/// compare-and-set compares. Quantities as numeric_out writes them.
pub struct RowState {
    pub quantity: String,
    pub reserved: String,
    pub available: String,
    pub tracked: bool,
    /// available covers the quantity asked about
    pub enough: bool,
    /// its free stock is spread over stripes (own items only)
    pub striped: bool,
}

/// The lines of a many-line call, merged per item (quantities of a
/// repeated item added) and sorted by key: the order rows are locked in.
pub struct Lines<K> {
    pub keys: Vec<K>,
    pub qtys: Vec<AnyNumeric>,
}

impl<K: Ord> Lines<K> {
    /// The quantity of `key`'s line.
    pub fn qty(&self, key: &K) -> Option<&AnyNumeric> {
        self.keys.binary_search(key).ok().map(|at| &self.qtys[at])
    }
}

/// A row `lock_lines` holds.
pub struct LockedLine {
    /// its quantity, as numeric_out writes it
    pub quantity: String,
    pub tracked: bool,
    /// its tenant (None: shared, or a source without tenants)
    pub tenant: Option<String>,
}

/// The rows `lock_lines` holds, every line's, each found and covering its
/// line.
pub struct LockedLines<K> {
    pub rows: BTreeMap<K, LockedLine>,
    /// the striped items among them, gathered: to respread once done
    pub striped: Vec<K>,
}

impl<K> LockedLines<K> {
    /// The distinct tenants of the rows (shared rows have none), sorted.
    pub fn tenants(&self) -> Vec<String> {
        let mut t: Vec<String> = self
            .rows
            .values()
            .filter_map(|r| r.tenant.clone())
            .collect();
        t.sort();
        t.dedup();
        t
    }
}

/// Stock rows: sell, restock, set, and many lines at once.
pub trait StockSource {
    /// An item's key: a uuid (own items) or the id column's value as the
    /// canonical text PostgreSQL's `id::text` gives (adopted tables).
    type Key: Clone + Ord;

    /// The key as text (in answers, errors and ledger rows).
    fn key_text(&self, key: &Self::Key) -> String;
    /// NOT_FOUND for items that don't exist or aren't visible.
    fn not_found(&self, keys: Vec<String>) -> Error;
    /// The write of rows the caller holds locked and found ready was
    /// skipped by the table's own trigger or rule.
    fn skipped(&self, keys: &[&Self::Key]) -> Error;
    /// Why the write of one row the caller holds locked, found ready, wrote
    /// nothing: a change committed since the lock that the source finds
    /// now (a location made inactive or unsellable: movements don't lock
    /// their location, docs/locations.md), or None: nothing found, so the
    /// table's own trigger or rule skipped it, or the change was undone
    /// before this look (ops::stock::written tries the write again).
    /// `inactive_ok`: the write allowed an inactive location (a transfer's
    /// source).
    fn why_skipped(
        &self,
        _c: &mut SpiClient<'_>,
        _who: &Caller,
        _key: &Self::Key,
        _inactive_ok: bool,
    ) -> Result<Option<Error>> {
        Ok(None)
    }

    /// A quantity the source stores as it is (a column's scale and
    /// maximum); Ok for columns without limits.
    fn fits(&self, _qty: &AnyNumeric, _field: &str) -> Result<()> {
        Ok(())
    }

    /// Take `qty` if available (quantity - reserved) covers it, with its
    /// ledger row if the ledger is on. `gathered`: the item is striped and
    /// its stripes are gathered into the (locked) row, which may then be
    /// sold from.
    fn take(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &Self::Key,
        qty: &AnyNumeric,
        mv: &Movement,
        gathered: bool,
    ) -> Result<Option<Moved>>;
    /// Add `qty` (a restock), with its ledger row.
    fn add(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &Self::Key,
        qty: &AnyNumeric,
        mv: &Movement,
        gathered: bool,
    ) -> Result<Option<Moved>>;
    /// Set the quantity of a row the caller holds locked (its quantity was
    /// `old`), with its ledger row.
    fn set(
        &self,
        c: &mut SpiClient<'_>,
        key: &Self::Key,
        qty: &AnyNumeric,
        old: &AnyNumeric,
        mv: &Movement,
    ) -> Result<Option<Moved>>;
    /// Lock one visible row (None: none, or another tenant's); `need` is
    /// the quantity `enough` is about.
    fn lock(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &Self::Key,
        need: &AnyNumeric,
    ) -> Result<Option<RowState>>;
    /// Why an `add` to a row the caller holds locked wrote nothing.
    fn add_refused(&self, key: &Self::Key, _row: &RowState, _qty: &AnyNumeric) -> Error {
        self.skipped(&[key])
    }

    /// A sale from one stripe of a striped item, without its item row
    /// (the answer); None when the source has no stripes or none covers it.
    fn take_striped(
        &self,
        _c: &mut SpiClient<'_>,
        _who: &Caller,
        _key: &Self::Key,
        _qty: &AnyNumeric,
        _mv: &Movement,
    ) -> Result<Option<String>> {
        Ok(None)
    }
    /// Move the stripes of these (locked) items into their rows.
    fn gather(&self, _c: &mut SpiClient<'_>, _keys: &[Self::Key]) -> Result<()> {
        Ok(())
    }
    /// Spread these striped items' free stock over their stripes again.
    fn respread(&self, _c: &mut SpiClient<'_>, _keys: &[Self::Key]) -> Result<()> {
        Ok(())
    }

    /// Sell every line or none: NOT_FOUND for every missing item, else
    /// INSUFFICIENT_INVENTORY for every short line; rows locked in
    /// ascending key order. Each source in its own way (the extension's
    /// items: one statement for every line; an adopted table: lock_lines,
    /// then a statement applying them).
    fn sell_lines(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        lines: &Lines<Self::Key>,
        mv: &Movement,
    ) -> Result<Vec<Sold<Self::Key>>>;
    /// Lock every line's row in ascending key order; NOT_FOUND for every
    /// missing one, else INSUFFICIENT_INVENTORY for every short one.
    /// Striped items are gathered into their rows (`striped`).
    fn lock_lines(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        lines: &Lines<Self::Key>,
    ) -> Result<LockedLines<Self::Key>>;

    /// The answers.
    fn sold(&self, key: &Self::Key, m: &Moved, qty: &AnyNumeric) -> String;
    fn untracked(&self, key: &Self::Key, row: &RowState) -> String;
    fn added(&self, key: &Self::Key, m: &Moved, qty: &AnyNumeric) -> String;
    fn adjusted(&self, key: &Self::Key, m: &Moved, delta: &AnyNumeric) -> String;
    fn lines_sold(&self, sold: Vec<Sold<Self::Key>>) -> String;
}

/// What a commit or release does to a reservation's lines.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Finish {
    /// the held units are sold (quantity and reserved lowered, ledger rows)
    Commit,
    /// the held units are given back (reserved lowered)
    Release,
}

impl Finish {
    /// The status its lines and reservation get.
    pub fn status(self) -> &'static str {
        match self {
            Finish::Commit => "committed",
            Finish::Release => "released",
        }
    }
}

/// A reservation to record with the units `hold` takes.
pub struct NewHold {
    pub ttl_seconds: i32,
    pub reference: Option<String>,
    /// whose reservation it is (Caller::record_tenant)
    pub tenant: Option<String>,
}

/// An active line of a reservation: its item's key as stored, the units it
/// holds, whether the item tracks stock, and the location it holds at
/// (None: the default location; always None on an adopted table).
pub struct HeldLine {
    pub key: String,
    pub qty: AnyNumeric,
    pub tracked: bool,
    pub location: Option<Uuid>,
}

/// What a partial commit (commit_reservation's p_lines) does with the units
/// of a line it doesn't commit (p_rest).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Rest {
    /// give them back: the line is finished (committed)
    Release,
    /// keep them held: the line stays active with the rest
    Keep,
}

impl Rest {
    /// As p_rest spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Rest::Release => "release",
            Rest::Keep => "keep",
        }
    }
}

/// A line of a partial commit: the active line and the units to commit
/// from it (greater than 0, at most what it holds; all of them commits it
/// whole).
pub struct Part {
    pub line: HeldLine,
    pub take: AnyNumeric,
}

/// Stock rows that hold units for reservations (`reserved`).
pub trait HoldSource: StockSource {
    /// Refuse before anything is locked if this source cannot hold units.
    fn can_hold(&self) -> Result<()> {
        Ok(())
    }
    /// Hold the lines' units on the rows `lock_lines` holds and record the
    /// reservation with its lines: the answer.
    fn hold(
        &self,
        c: &mut SpiClient<'_>,
        lines: &Lines<Self::Key>,
        locked: &LockedLines<Self::Key>,
        new: &NewHold,
    ) -> Result<String>;
    /// The name a reservation line gives its item ("inventory_id", "item_id").
    fn line_key_name(&self) -> &'static str;
    /// Line keys as the caller wrote them, as the lines store them (those
    /// that can't be one stay as written: they name no line).
    fn stored_keys(&self, wanted: Vec<String>, field: &str) -> Vec<String>;
    /// The active lines of reservation `id` (those in `only`, if given);
    /// the caller holds the reservation row locked.
    fn held_lines(
        &self,
        c: &mut SpiClient<'_>,
        id: Uuid,
        only: Option<&[String]>,
    ) -> Result<Vec<HeldLine>>;
    /// Those of `keys` that are lines of reservation `id` but no longer
    /// active: (key, status), sorted.
    fn finished_lines(
        &self,
        c: &mut SpiClient<'_>,
        id: Uuid,
        keys: &[String],
    ) -> Result<Vec<(String, String)>>;
    /// Commit or release every active line of reservation `id` (locked by
    /// the caller) in one statement when the source can do it without
    /// locking rows first (a reservation of one line): the answer, or None
    /// to take held_lines and settle (nothing written then).
    fn settle_at_once(
        &self,
        _c: &mut SpiClient<'_>,
        _id: Uuid,
        _how: Finish,
        _note: &LedgerNote<'_>,
    ) -> Result<Option<String>> {
        Ok(None)
    }
    /// Commit or release the active `lines` of reservation `id` (all of
    /// its active lines unless `partial`): the answer.
    fn settle(
        &self,
        c: &mut SpiClient<'_>,
        id: Uuid,
        lines: &[HeldLine],
        partial: bool,
        how: Finish,
        note: &LedgerNote<'_>,
    ) -> Result<String>;
    /// Commit `take` units of each line of `parts` (active lines of
    /// reservation `id`, their items locked by held_lines) and give back
    /// (Rest::Release) or keep holding (Rest::Keep) the rest of each: one
    /// ledger row per line for the units committed. The answer lists per
    /// line what was committed and what was released or kept.
    fn settle_parts(
        &self,
        c: &mut SpiClient<'_>,
        id: Uuid,
        parts: &[Part],
        rest: Rest,
        note: &LedgerNote<'_>,
    ) -> Result<String>;
    /// Expire every active line of the due reservations `ids` (locked)
    /// and give their units back: how many reservations expired.
    fn expire(&self, c: &mut SpiClient<'_>, ids: &[Uuid]) -> Result<i32>;
}

/// A batch row, locked: why a guarded write refused.
pub struct BatchState {
    pub status: String,
    pub holder: Option<String>,
    /// available, or claimed with a lapsed lease
    pub claimable: bool,
    /// claimed with a lapsed lease: when it lapsed
    pub lapsed_at: Option<String>,
    /// the batch as the functions answer it
    pub reply: String,
}

/// A holder's change of a batch.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Transition {
    /// back to available
    Unclaim,
    /// claimed -> in_progress
    Start,
    /// claimed or in_progress -> completed
    Complete,
}

/// What a claim asks for beyond the batch and the driver.
pub struct ClaimTerms {
    /// the claim lapses after this many seconds (None: never)
    pub lease_seconds: Option<i32>,
    /// the driver may hold at most this many active batches
    pub max_active: Option<i32>,
}

/// Delivery batches: claimed by exactly one driver.
pub trait BatchSource {
    type Key: Clone;

    fn key_text(&self, key: &Self::Key) -> String;
    fn skipped(&self, key: &Self::Key) -> Error;

    /// The driver's limit of active batches (`except`: one they may be
    /// claiming again), checked under a lock on the driver.
    fn check_limit(
        &self,
        _c: &mut SpiClient<'_>,
        _who: &Caller,
        _driver: &str,
        _except: Option<&Self::Key>,
        _terms: &ClaimTerms,
    ) -> Result<()> {
        Ok(())
    }
    /// Claim the batch if it is claimable: the answer.
    fn claim(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &Self::Key,
        driver: &str,
        terms: &ClaimTerms,
    ) -> Result<Option<String>>;
    /// Claim the next claimable batch nobody else is claiming (SKIP
    /// LOCKED): the answer, None if none is left.
    fn claim_next(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        driver: &str,
        zone: Option<&str>,
        terms: &ClaimTerms,
    ) -> Result<Option<String>>;
    /// The holder's change, if the batch is in a state it applies to.
    fn transition(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &Self::Key,
        driver: &str,
        t: Transition,
    ) -> Result<Option<String>>;
    /// Lock one visible batch (None: none, or another tenant's).
    fn lock(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &Self::Key,
    ) -> Result<Option<BatchState>>;
    /// The transitions this source has.
    fn supports(&self, t: Transition) -> bool;
    /// The locked batch is held by `driver` (a claim of it is answered as
    /// a success: a retried request).
    fn holds(&self, b: &BatchState, driver: &str) -> bool;
    /// A retry of `t` finds it done (answered as a success).
    fn done_already(&self, _b: &BatchState, _t: Transition) -> bool {
        false
    }
    /// Whether `t` by `driver` applies to the locked batch `b` (then a
    /// transition that wrote nothing was skipped).
    fn allows(&self, b: &BatchState, who: &Caller, driver: &str, t: Transition) -> bool;
    /// The answer for a batch the driver already holds, or a transition a
    /// retry finds done: `b.reply` unless the source answers otherwise.
    fn held(&self, _key: &Self::Key, b: &BatchState, _driver: &str) -> String {
        b.reply.clone()
    }
}

/// A packing progress line, locked: its order and product (keys of the
/// source's type), units needed and packed.
pub struct PackLine<K> {
    pub order: Option<K>,
    pub product: Option<K>,
    pub needed: i64,
    pub packed: i64,
}

/// Where an order is in the warehouse workflow.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OrderState {
    /// packing may change it
    Open,
    /// it left the warehouse (ready to ship, shipped, delivered)
    Completed,
    /// it won't ship (cancelled, rejected, returned)
    Closed,
}

/// An order, share-locked, with its session's basket for one product.
pub struct PackOrder {
    pub status: String,
    pub state: OrderState,
    /// its number (or id) as the errors name it
    pub number: String,
    /// units of the product picked into the session's basket
    pub picked: i64,
    /// units of the product packed from that basket, into any order
    pub packed_total: i64,
}

impl PackOrder {
    /// An order from four columns of a row from `at`: status, number (text),
    /// units picked and units packed from the basket (int8); its state as
    /// the source's vocabulary (`state`) reads the status.
    pub fn from_row(
        row: &SpiTupleTable<'_>,
        at: usize,
        state: impl Fn(&str) -> OrderState,
    ) -> Result<PackOrder> {
        let status = row.get::<String>(at)?.unwrap_or_default();
        Ok(PackOrder {
            state: state(&status),
            status,
            number: row.get::<String>(at + 1)?.unwrap_or_default(),
            picked: row.get::<i64>(at + 2)?.unwrap_or(0),
            packed_total: row.get::<i64>(at + 3)?.unwrap_or(0),
        })
    }
}

/// Picking sessions, their progress lines, orders and picked baskets.
/// Lock order, always: the session, then the line, then the order.
pub trait PackingSource {
    /// The ids of sessions, lines, orders and products: a uuid (the
    /// extension's tables) or a column's value as text (adopted tables).
    type Key: Clone + PartialEq + std::fmt::Display;

    /// Lock a visible session (FOR NO KEY UPDATE): its status.
    fn lock_session(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        session: &Self::Key,
    ) -> Result<Option<String>>;
    /// The session status that allows packing.
    fn is_packing(&self, status: &str) -> bool;
    /// Lock the progress line if it is this session's.
    fn lock_line(
        &self,
        c: &mut SpiClient<'_>,
        line: &Self::Key,
        session: &Self::Key,
    ) -> Result<Option<PackLine<Self::Key>>>;
    /// The line exists in a session the caller may see (read unlocked).
    fn line_elsewhere(&self, c: &mut SpiClient<'_>, who: &Caller, line: &Self::Key)
        -> Result<bool>;
    /// Share-lock the line's order and sum the basket of its product.
    fn lock_order(
        &self,
        c: &mut SpiClient<'_>,
        order: Option<&Self::Key>,
        session: &Self::Key,
        product: &Self::Key,
    ) -> Result<Option<PackOrder>>;
    /// lock_line and lock_order in one statement, in their order (the line,
    /// then its order): None when either finds nothing (nothing locked but
    /// maybe the line; the caller then takes the two steps, which say why).
    fn lock_line_and_order(
        &self,
        c: &mut SpiClient<'_>,
        line: &Self::Key,
        session: &Self::Key,
    ) -> Result<Option<(PackLine<Self::Key>, PackOrder)>>;
    /// Add `delta` packed units to the line, touch the session's activity:
    /// the line as the functions answer it.
    fn pack(
        &self,
        c: &mut SpiClient<'_>,
        line: &Self::Key,
        delta: i32,
        session: &Self::Key,
    ) -> Result<String>;
}
