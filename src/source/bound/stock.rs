//! An adopted stock table as a stock source (bind_stock_source): the
//! statements of the own items, generated per binding with its quoted
//! identifiers (binding.rs), prepared once per backend and kept, and run as
//! the table's owner (Binding::run_as_owner). Ledger rows are written after
//! the change, by the extension's owner (write_ledger).
//!
//! Item ids arrive as text; they are checked in Rust against the bound id
//! type and passed as parameters cast in SQL (`$1::uuid`). The canonical
//! text (what PostgreSQL's `id::text` gives) is the ledger's item_key.
//!
//! What the app's table may hold that the extension's items can't: NULL
//! quantities (counted as 0), NaN and Infinity in numeric columns (nothing
//! to sell or hold, no restock), columns with a scale and a maximum (a
//! quantity must fit: `fits`).

use super::binding::{composite_key, Binding, IdType};
use crate::core::caller::Caller;
use crate::core::movement::{
    num, num_json, LedgerKind, LedgerNote, LedgerRow, Moved, Movement, Sold,
};
use crate::core::validate;
use crate::error::{Error, Result, Shortfall};
use crate::pg::spi::{run, Stmt};
use crate::source::{Lines, LockedLine, LockedLines, RowState, StockSource};
use pgrx::pg_sys::{self, Oid};
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const TEXT: Oid = pg_sys::TEXTOID;
const NUM: Oid = pg_sys::NUMERICOID;
const BOOL: Oid = pg_sys::BOOLOID;

// SQL fragments of a binding (alias t). Identifiers come quoted from the binding.

/// The tenant rule on a bound row (alias t): shared rows (NULL tenant),
/// admins ($admin) and the caller's tenant ($tenant) see it.
pub(super) fn tenant_pred(b: &Binding, admin: u8, tenant: u8) -> String {
    match &b.tenant {
        Some(c) => format!("(t.{c} IS NULL OR ${admin} OR t.{c}::text = ${tenant})"),
        None => "true".into(),
    }
}

pub fn tenant_val(b: &Binding) -> String {
    match &b.tenant {
        Some(c) => format!("t.{c}::text"),
        None => "NULL::text".into(),
    }
}

fn available(b: &Binding) -> String {
    let avail = match &b.reserved {
        Some(r) => format!("({} - COALESCE(t.{r}, 0))", quantity(b)),
        None => quantity(b),
    };
    // A numeric column can hold NaN and Infinity (a `>= 0` CHECK lets both
    // through): such a row has nothing to sell or hold, instead of covering
    // any quantity and staying as it was. (NaN sorts above Infinity.)
    if b.qty_numeric {
        format!("(CASE WHEN {} THEN {avail} ELSE 0 END)", finite(b))
    } else {
        avail
    }
}

/// The row's numeric quantity is a number: not NaN or Infinity (NaN sorts
/// above Infinity). Only for numeric columns (`Binding::qty_numeric`).
fn finite(b: &Binding) -> String {
    format!("{} < 'Infinity'::numeric", quantity(b))
}

/// The row's quantity; NULL counts as 0, as a NULL reserved does. Tables
/// bound before 0.3.0 may allow NULL (bind_stock_source now requires NOT
/// NULL): there NULL + n stayed NULL while the ledger recorded n, and a
/// NULL read back broke adjust (INTERNAL).
fn quantity(b: &Binding) -> String {
    format!("COALESCE(t.{}, 0)", b.qty)
}

fn reserved(b: &Binding) -> String {
    match &b.reserved {
        Some(r) => format!("COALESCE(t.{r}, 0)"),
        None => "0".into(),
    }
}

/// A NULL track value counts as tracked.
fn tracked(b: &Binding) -> String {
    match &b.track {
        Some(k) => format!("(t.{k} IS NOT FALSE)"),
        None => "true".into(),
    }
}

fn id_eq(b: &Binding, p: u8) -> String {
    key_match(b, &format!("${p}"))
}

/// The row (alias t) whose key is the text `expr`: its id, or with a
/// location column its id and location, both taken from the composite key
/// (row_key) and cast to the columns' types, so the primary key or unique
/// index over them finds the row.
pub(super) fn key_match(b: &Binding, expr: &str) -> String {
    match &b.location {
        None => format!("t.{} = {expr}::{}", b.id, b.id_type.sql()),
        Some(l) => format!(
            "t.{id} = ({expr}::jsonb ->> 0)::{ty} AND t.{l} = ({expr}::jsonb ->> 1)::{lty}",
            id = b.id,
            ty = b.id_type.sql(),
            lty = b.location_type.sql(),
        ),
    }
}

/// The rows' lock order: by id, then by location. Every call locking
/// several rows of one table locks them in this one order, so two orders
/// naming the same (item, location) rows never wait on each other in a
/// cycle (no deadlock).
fn key_order(b: &Binding) -> String {
    match &b.location {
        None => format!("t.{}", b.id),
        Some(l) => format!("t.{}, t.{l}", b.id),
    }
}

/// Ledger rows of movements on bound tables, in the order given: written
/// as the extension owner, in a statement after the one that changed the
/// app's table, which ran as the table's owner (Binding::run_as_owner).
/// $1 source, $2 keys, $3 deltas, $4 quantities after, $5 kind, $6 reason,
/// $7 reference, $8 idempotency key, $9 tenants.
const LEDGER_ROWS: Stmt = Stmt {
    name: "bound_ledger_rows",
    sql: "INSERT INTO atomic_inventory.ledger \
            (source, item_key, delta, quantity_after, kind, reason, reference, idempotency_key, tenant_id) \
          SELECT $1, r.k, r.d, r.q, $5, $6, $7, $8, r.t \
            FROM ROWS FROM (pg_catalog.unnest($2::text[]), pg_catalog.unnest($3::numeric[]), \
                            pg_catalog.unnest($4::numeric[]), pg_catalog.unnest($9::text[])) AS r(k, d, q, t)",
    args: &[
        TEXT,
        pg_sys::TEXTARRAYOID,
        pg_sys::NUMERICARRAYOID,
        pg_sys::NUMERICARRAYOID,
        TEXT,
        TEXT,
        TEXT,
        TEXT,
        pg_sys::TEXTARRAYOID,
    ],
};

/// LEDGER_ROWS for one row (the single-row movements): no arrays to build
/// and unnest.
const LEDGER_ONE: Stmt = Stmt {
    name: "bound_ledger_one",
    sql: "INSERT INTO atomic_inventory.ledger \
            (source, item_key, delta, quantity_after, kind, reason, reference, idempotency_key, tenant_id) \
          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    args: &[TEXT, TEXT, NUM, NUM, TEXT, TEXT, TEXT, TEXT, TEXT],
};

/// Write the ledger rows of a movement on bound table `b` (nothing if
/// `rows` is empty).
pub fn write_ledger(
    c: &mut SpiClient<'_>,
    b: &Binding,
    note: &LedgerNote<'_>,
    rows: Vec<LedgerRow>,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    if rows.len() == 1 {
        let r = rows.into_iter().next().expect("one row");
        run(
            c,
            &LEDGER_ONE,
            &[
                b.name.clone().into(),
                r.key.into(),
                r.delta.into(),
                r.after.into(),
                note.kind.as_str().to_string().into(),
                note.reason.clone().into(),
                note.reference.clone().into(),
                note.key.map(str::to_string).into(),
                r.tenant.into(),
            ],
        )?;
        return Ok(());
    }
    let mut keys = Vec::with_capacity(rows.len());
    let mut deltas = Vec::with_capacity(rows.len());
    let mut afters = Vec::with_capacity(rows.len());
    let mut tenants = Vec::with_capacity(rows.len());
    for r in rows {
        keys.push(r.key);
        deltas.push(r.delta);
        afters.push(r.after);
        tenants.push(r.tenant);
    }
    run(
        c,
        &LEDGER_ROWS,
        &[
            b.name.clone().into(),
            keys.into(),
            deltas.into(),
            afters.into(),
            note.kind.as_str().to_string().into(),
            note.reason.clone().into(),
            note.reference.clone().into(),
            note.key.map(str::to_string).into(),
            tenants.into(),
        ],
    )?;
    Ok(())
}

/// $1 id, $2 qty, $3 admin, $4 tenant. Answers old and new quantity as
/// text, the new one as numeric, the row's tenant.
const MOVE_ARGS: &[Oid] = &[TEXT, NUM, BOOL, TEXT];

fn decrement_sql(b: &Binding) -> String {
    format!(
        "UPDATE {rel} AS t SET {q} = t.{q} - $2 \
          WHERE {id} AND {tracked} AND {tenant} AND {avail} >= $2 \
         RETURNING (t.{q} + $2)::text, t.{q}::text, t.{q}::numeric, {tv}",
        rel = b.rel,
        q = b.qty,
        id = id_eq(b, 1),
        tracked = tracked(b),
        tenant = tenant_pred(b, 3, 4),
        avail = available(b),
        tv = tenant_val(b),
    )
}

fn increment_sql(b: &Binding) -> String {
    // A column with a maximum (integer types, numeric(p, s)) takes the sum
    // only if it fits: otherwise the row is left alone (the caller reports
    // why) instead of the assignment raising 22003 half-way through the
    // call. The maximum comes from the column's type, not from a caller.
    let fits = match &b.qty_cap.max {
        Some(max) => format!("AND {} <= '{max}'::numeric - $2", quantity(b)),
        None => String::new(),
    };
    // NaN or Infinity in a numeric column stays what it is whatever is
    // added, while the ledger would record the units: such a row is left
    // alone, and the caller says why. (NaN sorts above Infinity.)
    let finite = if b.qty_numeric {
        format!("AND {}", finite(b))
    } else {
        String::new()
    };
    format!(
        "UPDATE {rel} AS t SET {q} = {qv} + $2 WHERE {id} AND {tenant} {fits} {finite} \
         RETURNING (t.{q} - $2)::text, t.{q}::text, t.{q}::numeric, {tv}",
        rel = b.rel,
        q = b.qty,
        qv = quantity(b),
        id = id_eq(b, 1),
        tenant = tenant_pred(b, 3, 4),
        tv = tenant_val(b),
    )
}

/// Lock one visible row: quantity, reserved, available, tracked, enough ($4).
fn lock_sql(b: &Binding) -> String {
    format!(
        "SELECT {q}::text, {res}::text, {avail}::text, {tracked}, {avail} >= $4 \
           FROM {rel} AS t WHERE {id} AND {tenant} FOR UPDATE OF t",
        q = quantity(b),
        res = reserved(b),
        avail = available(b),
        tracked = tracked(b),
        rel = b.rel,
        id = id_eq(b, 1),
        tenant = tenant_pred(b, 2, 3),
    )
}

fn get_sql(b: &Binding) -> String {
    format!(
        "SELECT {q}::text, {res}::text, {avail}::text, {tracked}, {tv} \
           FROM {rel} AS t WHERE {id} AND {tenant}",
        q = quantity(b),
        res = reserved(b),
        avail = available(b),
        tracked = tracked(b),
        tv = tenant_val(b),
        rel = b.rel,
        id = id_eq(b, 1),
        tenant = tenant_pred(b, 2, 3),
    )
}

/// Set the quantity of a row the caller holds locked: the new quantity as
/// text and as numeric, the row's tenant.
fn adjust_sql(b: &Binding) -> String {
    format!(
        "UPDATE {rel} AS t SET {q} = $2 WHERE {id} \
         RETURNING t.{q}::text, t.{q}::numeric, {tv}",
        rel = b.rel,
        q = b.qty,
        id = id_eq(b, 1),
        tv = tenant_val(b),
    )
}

/// Lock every line's row in id order (then location order: key_order):
/// key, available, quantity, short,
/// tracked, tenant.
fn lock_lines_sql(b: &Binding) -> String {
    format!(
        "SELECT r.k, {avail}::text, t.{q}::numeric, ({tracked} AND {avail} < r.qty), {tracked}, {tv} \
           FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::numeric[])) AS r(k, qty) \
           JOIN {rel} AS t ON {on} \
          WHERE {tenant} \
          ORDER BY {order} \
            FOR UPDATE OF t",
        avail = available(b),
        q = b.qty,
        tracked = tracked(b),
        tv = tenant_val(b),
        rel = b.rel,
        on = key_match(b, "r.k"),
        order = key_order(b),
        tenant = tenant_pred(b, 3, 4),
    )
}

/// Apply the tracked lines whose rows lock_lines holds and found covered:
/// per row updated, its key, old and new quantity as text, the new one as
/// numeric, the units taken, its tenant.
fn apply_lines_sql(b: &Binding) -> String {
    format!(
        "UPDATE {rel} AS t SET {q} = t.{q} - r.qty \
           FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::numeric[])) AS r(k, qty) \
          WHERE {on} \
         RETURNING r.k, (t.{q} + r.qty)::text, t.{q}::text, t.{q}::numeric, r.qty, {tv}",
        rel = b.rel,
        q = b.qty,
        on = key_match(b, "r.k"),
        tv = tenant_val(b),
    )
}

/// An item id as text, checked against the bound type; returns the text
/// PostgreSQL's `id::text` gives for it.
pub fn item_key(ty: IdType, v: Option<String>, field: &str) -> Result<String> {
    let v = v.ok_or_else(|| Error::invalid_input(field, "is required (got NULL)"))?;
    let bad = |what: &str| Error::invalid_input(field, format!("is not a valid {what}"));
    match ty {
        IdType::Uuid => validate::parse_uuid(v.trim())
            .map(|u| validate::uuid_text(&u))
            .ok_or_else(|| bad("uuid")),
        IdType::Bigint => v
            .trim()
            .parse::<i64>()
            .map(|n| n.to_string())
            .map_err(|_| bad("bigint")),
        IdType::Integer => v
            .trim()
            .parse::<i32>()
            .map(|n| n.to_string())
            .map_err(|_| bad("integer")),
        IdType::Text if v.is_empty() || v.chars().count() > 255 => {
            Err(Error::invalid_input(field, "must be 1 to 255 characters"))
        }
        IdType::Text => Ok(v),
    }
}

/// The key of the row an item id and a location name, both as text,
/// checked against the bound types. Without a location column it is the
/// item's key (PostgreSQL's `id::text`), as before; with one it is
/// `["<item>", "<location>"]`, the text `jsonb_build_array(id::text,
/// location::text)::text` gives (reconcile_source and the initial ledger
/// rows build it so in SQL). One text key per row keeps the statements'
/// parameters, the ledger's item_key, idempotency requests and
/// per-key merging as they are, and a JSON array stays unambiguous for
/// text ids holding any character. A call naming a location on a table
/// without one, or none on a table keyed by one, is refused: which row
/// it means is not known.
pub fn row_key(
    b: &Binding,
    item: Option<String>,
    location: Option<String>,
    item_field: &str,
    location_field: &str,
) -> Result<String> {
    let key = item_key(b.id_type, item, item_field)?;
    match (&b.location, location) {
        (None, None) => Ok(key),
        (None, Some(_)) => Err(Error::invalid_input(
            location_field,
            format!(
                "{} has no location column (bound without p_location_column): leave it NULL",
                b.name
            ),
        )),
        (Some(_), None) => Err(Error::invalid_input(
            location_field,
            format!(
                "is required: {} is keyed by item and location, so an item id alone names no one row",
                b.name
            ),
        )),
        (Some(_), Some(l)) => {
            let loc = item_key(b.location_type, Some(l), location_field)?;
            Ok(composite_key(&key, &loc))
        }
    }
}

/// A quantity the bound quantity column stores as it is: PostgreSQL's
/// assignment cast would round away decimals beyond the column's scale
/// (whole numbers for integer columns) without a word, and raise 22003 past
/// its maximum (binding::Capacity).
fn fits_column(b: &Binding, n: &AnyNumeric, field: &str) -> Result<()> {
    b.qty_cap
        .holds(n)
        .map_err(|reason| Error::invalid_quantity(field, &reason, Some(n.normalize().to_string())))
}

/// Run one row's decrement or increment statement; the old and new
/// quantity if a row changed, and its ledger row (if the ledger is on)
/// written after it.
#[allow(clippy::too_many_arguments)]
fn move_row(
    b: &Binding,
    c: &mut SpiClient<'_>,
    kind: LedgerKind,
    sql: fn(&Binding) -> String,
    who: &Caller,
    key: &str,
    qty: &AnyNumeric,
    mv: &Movement,
) -> Result<Option<Moved>> {
    let t = b.run_as_owner(
        c,
        kind.as_str(),
        sql,
        MOVE_ARGS,
        &[
            key.to_string().into(),
            qty.clone().into(),
            who.admin.into(),
            who.tenant.clone().into(),
        ],
    )?;
    if t.is_empty() {
        return Ok(None);
    }
    let row = t.first();
    let moved = Moved {
        old: row.get::<String>(1)?.unwrap_or_default(),
        new: row.get::<String>(2)?.unwrap_or_default(),
        backordered: None,
    };
    if mv.ledger {
        let delta = match kind {
            LedgerKind::Decrement => AnyNumeric::from(0) - qty.clone(),
            _ => qty.clone(),
        };
        let after = row.get::<AnyNumeric>(3)?.unwrap_or_default();
        let tenant = row.get::<String>(4)?;
        write_ledger(
            c,
            b,
            &mv.note(kind),
            vec![LedgerRow {
                key: key.to_string(),
                delta,
                after,
                tenant,
            }],
        )?;
    }
    Ok(Some(moved))
}

/// An answer of this source: `{"success": true, "source": .., "item_id": ..}`
/// and `rest`.
fn reply(b: &Binding, key: &str, rest: Value) -> String {
    let mut m = serde_json::Map::new();
    m.insert("success".into(), json!(true));
    m.insert("source".into(), json!(b.name));
    let (item, location) = b.split_key(key);
    m.insert("item_id".into(), json!(item));
    if let Some(l) = location {
        m.insert("location".into(), json!(l));
    }
    if let Value::Object(rest) = rest {
        m.extend(rest);
    }
    Value::Object(m).to_string()
}

impl StockSource for Binding {
    type Key = String;

    fn key_text(&self, key: &String) -> String {
        key.clone()
    }

    fn not_found(&self, ids: Vec<String>) -> Error {
        Error::NotFound {
            entity: "item",
            ids,
        }
    }

    fn skipped(&self, keys: &[&String]) -> Error {
        let keys: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
        skipped_write(self, &keys)
    }

    fn fits(&self, qty: &AnyNumeric, field: &str) -> Result<()> {
        fits_column(self, qty, field)
    }

    fn take(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &String,
        qty: &AnyNumeric,
        mv: &Movement,
        _gathered: bool,
    ) -> Result<Option<Moved>> {
        move_row(
            self,
            c,
            LedgerKind::Decrement,
            decrement_sql,
            who,
            key,
            qty,
            mv,
        )
    }

    fn add(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &String,
        qty: &AnyNumeric,
        mv: &Movement,
        _gathered: bool,
    ) -> Result<Option<Moved>> {
        move_row(
            self,
            c,
            LedgerKind::Increment,
            increment_sql,
            who,
            key,
            qty,
            mv,
        )
    }

    fn set(
        &self,
        c: &mut SpiClient<'_>,
        key: &String,
        qty: &AnyNumeric,
        old: &AnyNumeric,
        mv: &Movement,
    ) -> Result<Option<Moved>> {
        let t = self.run_as_owner(
            c,
            "adjust",
            adjust_sql,
            &[TEXT, NUM],
            &[key.clone().into(), qty.clone().into()],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        let set = t.first();
        let new = set.get::<String>(1)?.unwrap_or_default();
        if mv.ledger {
            let after = set.get::<AnyNumeric>(2)?.unwrap_or_default();
            let tenant = set.get::<String>(3)?;
            write_ledger(
                c,
                self,
                &mv.note(LedgerKind::Adjust),
                vec![LedgerRow {
                    key: key.clone(),
                    delta: after.clone() - old.clone(),
                    after,
                    tenant,
                }],
            )?;
        }
        Ok(Some(Moved {
            old: old.to_string(),
            new,
            backordered: None,
        }))
    }

    fn lock(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        key: &String,
        need: &AnyNumeric,
    ) -> Result<Option<RowState>> {
        let t = self.run_as_owner(
            c,
            "lock",
            lock_sql,
            &[TEXT, BOOL, TEXT, NUM],
            &[
                key.clone().into(),
                who.admin.into(),
                who.tenant.clone().into(),
                need.clone().into(),
            ],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        let row = t.first();
        Ok(Some(RowState {
            quantity: row.get::<String>(1)?.unwrap_or_default(),
            reserved: row.get::<String>(2)?.unwrap_or_default(),
            available: row.get::<String>(3)?.unwrap_or_default(),
            tracked: row.get::<bool>(4)?.unwrap_or(true),
            enough: row.get::<bool>(5)?.unwrap_or(false),
            striped: false,
        }))
    }

    fn add_refused(&self, key: &String, row: &RowState, qty: &AnyNumeric) -> Error {
        if self.qty_numeric && matches!(row.quantity.as_str(), "NaN" | "Infinity") {
            return Error::invalid_input(
                "p_item_id",
                format!(
                    "item {key} has a quantity of {} (not a finite number) that no restock changes; set it with bound_adjust first",
                    row.quantity
                ),
            );
        }
        let fits = match &self.qty_cap.max {
            None => true,
            Some(max) => AnyNumeric::try_from(row.quantity.as_str())
                .is_ok_and(|q| q + qty.clone() <= max.clone()),
        };
        if fits {
            return skipped_write(self, &[key.as_str()]);
        }
        Error::invalid_quantity(
            "p_quantity",
            &format!(
                "would take item {key} from {} past the bound quantity column's maximum of {}",
                row.quantity,
                self.qty_cap
                    .max
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default()
            ),
            Some(qty.normalize().to_string()),
        )
    }

    fn sell_lines(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        lines: &Lines<String>,
        mv: &Movement,
    ) -> Result<Vec<Sold<String>>> {
        // Statement 1: lock every row in id order (no deadlock between
        // orders naming the same items), refuse if any is missing or short.
        let locked = self.lock_lines(c, who, lines)?;
        // Statement 2, with a fresh snapshot taken after the locks: apply
        // the tracked lines and write their ledger rows.
        apply_lines(self, c, lines, &locked, mv)
    }

    fn lock_lines(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        lines: &Lines<String>,
    ) -> Result<LockedLines<String>> {
        let locked = self.run_as_owner(
            c,
            "lock_lines",
            lock_lines_sql,
            &[pg_sys::TEXTARRAYOID, pg_sys::NUMERICARRAYOID, BOOL, TEXT],
            &[
                lines.keys.clone().into(),
                lines.qtys.clone().into(),
                who.admin.into(),
                who.tenant.clone().into(),
            ],
        )?;
        let mut rows: BTreeMap<String, LockedLine> = BTreeMap::new();
        let mut short = Vec::new();
        for row in locked {
            let k = row.get::<String>(1)?.unwrap_or_default();
            let avail = row.get::<String>(2)?.unwrap_or_default();
            let qty = row
                .get::<AnyNumeric>(3)?
                .map(|n| n.normalize().to_string())
                .unwrap_or_default();
            if row.get::<bool>(4)?.unwrap_or(true) {
                short.push(Shortfall {
                    inventory_id: k.clone(),
                    available: avail,
                    requested: lines
                        .qty(&k)
                        .map(|q| q.normalize().to_string())
                        .unwrap_or_default(),
                });
            }
            rows.insert(
                k,
                LockedLine {
                    quantity: qty,
                    tracked: row.get::<bool>(5)?.unwrap_or(true),
                    tenant: row.get::<String>(6)?,
                },
            );
        }
        crate::ops::stock::require_found(self, &lines.keys, |k| rows.contains_key(k))?;
        if !short.is_empty() {
            return Err(Error::Insufficient { lines: short });
        }
        Ok(LockedLines {
            rows,
            striped: Vec::new(),
        })
    }

    fn sold(&self, key: &String, m: &Moved, qty: &AnyNumeric) -> String {
        reply(
            self,
            key,
            json!({"old_quantity": num_json(&m.old), "new_quantity": num_json(&m.new),
                   "deducted": num(qty)}),
        )
    }

    fn untracked(&self, key: &String, row: &RowState) -> String {
        reply(
            self,
            key,
            json!({"old_quantity": num_json(&row.quantity), "new_quantity": num_json(&row.quantity),
                   "deducted": 0, "tracked": false}),
        )
    }

    fn added(&self, key: &String, m: &Moved, qty: &AnyNumeric) -> String {
        reply(
            self,
            key,
            json!({"old_quantity": num_json(&m.old), "new_quantity": num_json(&m.new),
                   "added": num(qty)}),
        )
    }

    fn adjusted(&self, key: &String, m: &Moved, delta: &AnyNumeric) -> String {
        reply(
            self,
            key,
            json!({"old_quantity": num_json(&m.old), "new_quantity": num_json(&m.new),
                   "delta": num(delta)}),
        )
    }

    fn lines_sold(&self, sold: Vec<Sold<String>>) -> String {
        let out: Vec<Value> = sold
            .iter()
            .map(|l| {
                let mut line = if l.tracked {
                    json!({"item_id": l.key, "old_quantity": num_json(&l.old),
                           "new_quantity": num_json(&l.new), "deducted": num_json(&l.deducted)})
                } else {
                    json!({"item_id": l.key, "old_quantity": num_json(&l.old),
                           "new_quantity": num_json(&l.new), "deducted": 0, "tracked": false})
                };
                if let (item, Some(loc)) = self.split_key(&l.key) {
                    line["item_id"] = json!(item);
                    line["location"] = json!(loc);
                }
                line
            })
            .collect();
        json!({"success": true, "source": self.name, "lines": out}).to_string()
    }
}

/// Apply the tracked lines whose rows `lock_lines` holds (each found and
/// covering its line), with their ledger rows; every line answered in key
/// order, untracked ones with their quantity unchanged.
fn apply_lines(
    b: &Binding,
    c: &mut SpiClient<'_>,
    lines: &Lines<String>,
    locked: &LockedLines<String>,
    mv: &Movement,
) -> Result<Vec<Sold<String>>> {
    let tracked = |k: &String| locked.rows.get(k).is_some_and(|f| f.tracked);
    let (tk, tq): (Vec<String>, Vec<AnyNumeric>) = lines
        .keys
        .iter()
        .zip(&lines.qtys)
        .filter(|(k, _)| tracked(k))
        .map(|(k, q)| (k.clone(), q.clone()))
        .unzip();
    let mut applied: BTreeMap<String, (String, String)> = BTreeMap::new();
    if !tk.is_empty() {
        let t = b.run_as_owner(
            c,
            "apply_lines",
            apply_lines_sql,
            &[pg_sys::TEXTARRAYOID, pg_sys::NUMERICARRAYOID],
            &[tk.into(), tq.into()],
        )?;
        let mut ledger = Vec::new();
        for row in t {
            let k = row.get::<String>(1)?.unwrap_or_default();
            if mv.ledger {
                ledger.push(LedgerRow {
                    key: k.clone(),
                    delta: AnyNumeric::from(0) - row.get::<AnyNumeric>(5)?.unwrap_or_default(),
                    after: row.get::<AnyNumeric>(4)?.unwrap_or_default(),
                    tenant: row.get::<String>(6)?,
                });
            }
            applied.insert(
                k,
                (
                    row.get::<String>(2)?.unwrap_or_default(),
                    row.get::<String>(3)?.unwrap_or_default(),
                ),
            );
        }
        write_ledger(c, b, &mv.note(LedgerKind::Decrement), ledger)?;
    }
    // every tracked line's row was locked and covered: each must have been
    // written
    let skipped: Vec<&str> = lines
        .keys
        .iter()
        .filter(|k| tracked(k) && !applied.contains_key(*k))
        .map(|k| k.as_str())
        .collect();
    if !skipped.is_empty() {
        return Err(skipped_write(b, &skipped));
    }
    Ok(lines
        .keys
        .iter()
        .zip(&lines.qtys)
        .map(|(k, q)| match applied.remove(k) {
            Some((old, new)) => Sold {
                key: k.clone(),
                old,
                new,
                deducted: q.normalize().to_string(),
                tracked: true,
                backordered: None,
            },
            None => {
                let cur = locked
                    .rows
                    .get(k)
                    .map(|f| f.quantity.clone())
                    .unwrap_or_default();
                Sold {
                    key: k.clone(),
                    old: cur.clone(),
                    new: cur,
                    deducted: "0".into(),
                    tracked: false,
                    backordered: None,
                }
            }
        })
        .collect())
}

/// A write of rows we hold locked and found ready matched fewer rows than
/// it should: the table's own BEFORE trigger (returning NULL) or a rule
/// skipped them. Answered as such, never as a shortage, a success or
/// INTERNAL; the error rolls back whatever the call wrote.
pub fn skipped_write(b: &Binding, keys: &[&str]) -> Error {
    Error::invalid_input(
        "p_source",
        format!(
            "{}: the table's own trigger or rule skipped the write of item {}; nothing changed",
            b.name,
            keys.join(", ")
        ),
    )
}

/// `bound_get`: a visible row's quantity, reserved, available, whether it
/// tracks stock and its tenant.
pub fn describe(b: &Binding, c: &mut SpiClient<'_>, who: &Caller, key: &str) -> Result<String> {
    let t = b.run_as_owner(
        c,
        "get",
        get_sql,
        &[TEXT, BOOL, TEXT],
        &[
            key.to_string().into(),
            who.admin.into(),
            who.tenant.clone().into(),
        ],
    )?;
    if t.is_empty() {
        return Err(b.not_found(vec![key.to_string()]));
    }
    let row = t.first();
    let n = |v: Option<String>| v.map(|s| num_json(&s)).unwrap_or(Value::Null);
    let (item, location) = b.split_key(key);
    let mut out = json!({"source": b.name, "item_id": item,
              "quantity": n(row.get::<String>(1)?), "reserved": n(row.get::<String>(2)?),
              "available": n(row.get::<String>(3)?), "tracked": row.get::<bool>(4)?.unwrap_or(true),
              "tenant_id": row.get::<String>(5)?});
    if let Some(l) = location {
        out["location"] = json!(l);
    }
    Ok(out.to_string())
}

/// Lines `[{"item_id": "...", "quantity": n}]` (with a location column
/// `[{"item_id": "...", "location": "...", "quantity": n}]`), checked against the bound id
/// type and merged per item (quantities of repeated ids added). Read in
/// place from the jsonb (jsonb.rs), as validate::lines does: pgrx's `JsonB`
/// parses the value's text with serde_json, which panics (INTERNAL) on
/// nesting deeper than 128 levels, where jsonb allows far more.
pub fn lines(b: &Binding, v: Option<crate::pg::jsonb::Container>) -> Result<Lines<String>> {
    use crate::pg::jsonb::Item;
    let field = "p_lines";
    let v = v.ok_or_else(|| Error::invalid_input(field, "is required (got NULL)"))?;
    let n = v.array_len().ok_or_else(|| {
        Error::invalid_input(
            field,
            "must be a JSON array of {\"item_id\": text, \"quantity\": number} objects",
        )
    })?;
    if n == 0 || n > validate::MAX_LINES {
        return Err(Error::invalid_input(
            field,
            format!("must have 1 to {} lines (got {n})", validate::MAX_LINES),
        ));
    }
    let mut out: BTreeMap<String, AnyNumeric> = BTreeMap::new();
    for i in 0..n {
        let at = format!("{field}[{i}]");
        let Item::Object(obj) = v.element(i) else {
            return Err(Error::invalid_input(&at, "must be an object"));
        };
        let id = match obj.get("item_id") {
            Some(Item::String(s)) => Some(String::from_utf8_lossy(s).into_owned()),
            Some(Item::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        // location_id names the extension's own locations (uuids of
        // atomic_inventory.locations), which an adopted table does not have:
        // a line naming one would otherwise be sold or held from the row as
        // if it named none. A table's own location column is named by
        // "location" (row_key).
        if !matches!(obj.get("location_id"), Some(Item::Null) | None) {
            return Err(Error::invalid_input(
                &format!("{at}.location_id"),
                "is not supported on an adopted table (its locations, if bound with p_location_column, are named by \"location\"; docs/adopting.md)",
            ));
        }
        let location = match obj.get("location") {
            Some(Item::String(s)) => Some(String::from_utf8_lossy(s).into_owned()),
            Some(Item::Number(n)) => Some(n.to_string()),
            Some(Item::Null) | None => None,
            Some(_) => {
                return Err(Error::invalid_input(
                    &format!("{at}.location"),
                    "must be a string or a number",
                ))
            }
        };
        let key = row_key(
            b,
            id,
            location,
            &format!("{at}.item_id"),
            &format!("{at}.location"),
        )?;
        let qfield = format!("{at}.quantity");
        let n = match obj.get("quantity") {
            Some(Item::Number(n)) => n,
            Some(Item::String(s)) => {
                let s = String::from_utf8_lossy(s);
                let text = s.trim();
                if !validate::is_decimal(text) {
                    return Err(Error::invalid_quantity(
                        &qfield,
                        "must be a finite decimal number",
                        None,
                    ));
                }
                AnyNumeric::try_from(text).map_err(|_| {
                    Error::invalid_quantity(
                        &qfield,
                        "must be a finite decimal number",
                        Some(text.to_string()),
                    )
                })?
            }
            Some(Item::Null) | None => {
                return Err(Error::invalid_quantity(&qfield, "is required", None))
            }
            Some(_) => {
                return Err(Error::invalid_quantity(
                    &qfield,
                    "must be a finite decimal number",
                    None,
                ))
            }
        };
        let n = validate::positive_quantity(Some(n), &qfield)?;
        let total = match out.remove(&key) {
            Some(prev) => prev + n,
            None => n,
        };
        b.fits(&total, &qfield)?;
        out.insert(key, total);
    }
    let (keys, qtys) = out.into_iter().unzip();
    Ok(Lines { keys, qtys })
}
