//! An adopted warehouse's packing tables as a packing source
//! (bind_packing_source): its sessions (the binding's relation), progress
//! lines, orders and picked baskets, with their own column names, id types
//! and status vocabulary. The statements of the own packing tables,
//! generated per binding and run as the tables' owner (one owner for all
//! four, checked at bind time: a statement reads several of them).
//!
//! Ids arrive as text, checked against each column's type (a session,
//! line, order or product id: uuid, bigint, integer or text) and cast in
//! SQL. Statuses compare as text, so an enum column takes the vocabulary's
//! labels.

use super::binding::{Binding, IdType, PackingSpec};
use super::stock::{item_key, tenant_pred};
use crate::core::caller::Caller;
use crate::error::{Error, Result};
use crate::source::{OrderState, PackLine, PackOrder, PackingSource};
use pgrx::pg_sys::{self, Oid};
use pgrx::spi::{SpiClient, SpiTupleTable};
use serde_json::json;

const TEXT: Oid = pg_sys::TEXTOID;
const BOOL: Oid = pg_sys::BOOLOID;
const INT: Oid = pg_sys::INT4OID;

impl Binding {
    /// The packing tables (every packing binding has them).
    fn spec(&self) -> Result<&PackingSpec> {
        self.packing
            .as_ref()
            .ok_or_else(|| Error::Internal(format!("{} is not a packing source", self.name)))
    }

    /// A session, line, order or product id as text, checked against its
    /// column's type: the text PostgreSQL's `id::text` gives.
    pub fn packing_key(&self, ty: IdType, v: Option<String>, field: &str) -> Result<String> {
        item_key(ty, v, field)
    }
}

/// Lock a visible session: its status. $1 id, $2 admin, $3 tenant.
fn lock_session_sql(b: &Binding) -> String {
    format!(
        "SELECT t.{st}::text FROM {rel} AS t \
          WHERE t.{id} = $1::{ty} AND {tenant} FOR NO KEY UPDATE OF t",
        st = b.status,
        rel = b.rel,
        id = b.id,
        ty = b.id_type.sql(),
        tenant = tenant_pred(b, 2, 3),
    )
}

/// Lock the line if it is the session's: order, product, needed, packed.
/// $1 line, $2 session.
fn lock_line_sql(b: &Binding) -> String {
    let p = b.packing.as_ref().expect("a packing binding");
    format!(
        "SELECT l.{o}::text, l.{pr}::text, l.{n}::int8, l.{pk}::int8 FROM {lines} AS l \
          WHERE l.{id} = $1::{lty} AND l.{s} = $2::{sty} FOR UPDATE OF l",
        o = p.line_order,
        pr = p.line_product,
        n = p.line_needed,
        pk = p.line_packed,
        lines = p.lines,
        id = p.line_id,
        lty = p.line_id_type.sql(),
        s = p.line_session,
        sty = b.id_type.sql(),
    )
}

/// The line in a session the caller may see? $1 line, $2 admin, $3 tenant.
fn line_elsewhere_sql(b: &Binding) -> String {
    let p = b.packing.as_ref().expect("a packing binding");
    format!(
        "SELECT 1 FROM {lines} AS l JOIN {rel} AS t ON t.{sid} = l.{s} \
          WHERE l.{id} = $1::{lty} AND {tenant}",
        lines = p.lines,
        rel = b.rel,
        sid = b.id,
        s = p.line_session,
        id = p.line_id,
        lty = p.line_id_type.sql(),
        tenant = tenant_pred(b, 2, 3),
    )
}

/// Share-lock the order; the session's basket of the product: units
/// picked, units packed. $1 order, $2 session, $3 product.
fn lock_order_sql(b: &Binding) -> String {
    let p = b.packing.as_ref().expect("a packing binding");
    let number = match &p.order_number {
        Some(n) => format!("COALESCE(o.{n}::text, o.{id}::text)", id = p.order_id),
        None => format!("o.{id}::text", id = p.order_id),
    };
    format!(
        "SELECT o.{st}::text, {number}, \
                (SELECT COALESCE(pg_catalog.sum(k.{kq}), 0)::int8 FROM {picked} AS k \
                  WHERE k.{ks} = $2::{sty} AND k.{kp} = $3::{pty}), \
                (SELECT COALESCE(pg_catalog.sum(x.{pk}), 0)::int8 FROM {lines} AS x \
                  WHERE x.{ls} = $2::{sty} AND x.{lp} = $3::{pty}) \
           FROM {orders} AS o WHERE o.{id} = $1::{oty} \
            FOR SHARE OF o",
        st = p.order_status,
        kq = p.picked_quantity,
        picked = p.picked,
        ks = p.picked_session,
        kp = p.picked_product,
        sty = b.id_type.sql(),
        pk = p.line_packed,
        lines = p.lines,
        ls = p.line_session,
        lp = p.line_product,
        orders = p.orders,
        id = p.order_id,
        pty = p.product_id_type.sql(),
        oty = p.order_id_type.sql(),
    )
}

/// lock_line_sql and lock_order_sql in one statement ($1 line, $2
/// session): the line, locked by the CTE that the join must read before it
/// returns the order row it share-locks (so the line is locked first, as
/// ops/packing.rs orders them), then the order and the basket of the
/// line's product, the line's own packed units from its locked version.
fn line_and_order_sql(b: &Binding) -> String {
    let p = b.packing.as_ref().expect("a packing binding");
    let number = match &p.order_number {
        Some(n) => format!("COALESCE(o.{n}::text, o.{id}::text)", id = p.order_id),
        None => format!("o.{id}::text", id = p.order_id),
    };
    format!(
        "WITH l AS MATERIALIZED ( \
           SELECT l.{lid} AS id, l.{o} AS ord, l.{pr} AS product, l.{n}::int8 AS needed, \
                  l.{pk}::int8 AS packed \
             FROM {lines} AS l \
            WHERE l.{lid} = $1::{lty} AND l.{s} = $2::{sty} FOR UPDATE OF l \
         ) \
         SELECT l.ord::text, l.product::text, l.needed, l.packed, o.{st}::text, {number}, \
                (SELECT COALESCE(pg_catalog.sum(k.{kq}), 0)::int8 FROM {picked} AS k \
                  WHERE k.{ks} = $2::{sty} AND k.{kp} = l.product::text::{pty}), \
                l.packed + (SELECT COALESCE(pg_catalog.sum(x.{pk}), 0)::int8 FROM {lines} AS x \
                             WHERE x.{s} = $2::{sty} AND x.{pr} = l.product::text::{pty} AND x.{lid} <> l.id) \
           FROM l JOIN {orders} AS o ON o.{oid} = l.ord::text::{oty} \
            FOR SHARE OF o",
        lid = p.line_id,
        o = p.line_order,
        pr = p.line_product,
        n = p.line_needed,
        pk = p.line_packed,
        lines = p.lines,
        lty = p.line_id_type.sql(),
        s = p.line_session,
        sty = b.id_type.sql(),
        st = p.order_status,
        kq = p.picked_quantity,
        picked = p.picked,
        ks = p.picked_session,
        kp = p.picked_product,
        orders = p.orders,
        oid = p.order_id,
        pty = p.product_id_type.sql(),
        oty = p.order_id_type.sql(),
    )
}

/// Add $2 packed units to line $1 (which the caller holds locked) and touch
/// session $3: the line's ids and quantities, and whether the session's
/// activity was written (true without an activity column).
fn pack_sql(b: &Binding) -> String {
    let p = b.packing.as_ref().expect("a packing binding");
    let (touch, touched) = match &p.activity {
        Some(a) => (
            format!(
                "WITH s AS (UPDATE {rel} AS t SET {a} = pg_catalog.now() \
                   WHERE t.{id} = $3::{ty} RETURNING 1) ",
                rel = b.rel,
                id = b.id,
                ty = b.id_type.sql(),
            ),
            "EXISTS (SELECT 1 FROM s)".to_string(),
        ),
        None => (String::new(), "true".to_string()),
    };
    let updated = match &p.line_updated {
        Some(u) => format!(", {u} = pg_catalog.now()"),
        None => String::new(),
    };
    format!(
        "{touch}UPDATE {lines} AS l SET {pk} = l.{pk} + $2{updated} \
          WHERE l.{id} = $1::{lty} \
         RETURNING l.{id}::text, l.{s}::text, l.{o}::text, l.{pr}::text, l.{n}::int8, \
                   l.{pk}::int8, {touched}",
        lines = p.lines,
        pk = p.line_packed,
        id = p.line_id,
        lty = p.line_id_type.sql(),
        s = p.line_session,
        o = p.line_order,
        pr = p.line_product,
        n = p.line_needed,
    )
}

/// The write of a line (or its session's activity) the caller holds
/// locked and checked was skipped by the table's own trigger or rule.
fn skipped(b: &Binding, what: &str) -> Error {
    Error::invalid_input(
        "p_source",
        format!(
            "{}: the table's own trigger or rule skipped the write of {what}; nothing changed",
            b.name
        ),
    )
}

/// A line from columns 1-4 of a row (order, product, needed, packed).
fn line_at(row: &SpiTupleTable<'_>) -> Result<PackLine<String>> {
    Ok(PackLine {
        order: row.get::<String>(1)?,
        product: row.get::<String>(2)?,
        needed: row.get::<i64>(3)?.unwrap_or(0),
        packed: row.get::<i64>(4)?.unwrap_or(0),
    })
}

impl Binding {
    /// Where an order with `status` is in the workflow, by the binding's
    /// vocabulary.
    fn state_of(&self, status: &str) -> OrderState {
        match self.packing.as_ref() {
            Some(p) if p.completed.iter().any(|c| c == status) => OrderState::Completed,
            Some(p) if p.closed.iter().any(|c| c == status) => OrderState::Closed,
            _ => OrderState::Open,
        }
    }
}

impl PackingSource for Binding {
    type Key = String;

    fn lock_session(
        &self,
        c: &mut SpiClient<'_>,
        who: &Caller,
        session: &String,
    ) -> Result<Option<String>> {
        let t = self.run_as_owner(
            c,
            "packing_lock_session",
            lock_session_sql,
            &[TEXT, BOOL, TEXT],
            &[
                session.clone().into(),
                who.admin.into(),
                who.tenant.clone().into(),
            ],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        Ok(Some(t.first().get::<String>(1)?.unwrap_or_default()))
    }

    fn is_packing(&self, status: &str) -> bool {
        self.spec().is_ok_and(|p| p.packing_value == status)
    }

    fn lock_line(
        &self,
        c: &mut SpiClient<'_>,
        line: &String,
        session: &String,
    ) -> Result<Option<PackLine<String>>> {
        let t = self.run_as_owner(
            c,
            "packing_lock_line",
            lock_line_sql,
            &[TEXT, TEXT],
            &[line.clone().into(), session.clone().into()],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        Ok(Some(line_at(&t.first())?))
    }

    fn line_elsewhere(&self, c: &mut SpiClient<'_>, who: &Caller, line: &String) -> Result<bool> {
        let t = self.run_as_owner(
            c,
            "packing_line_elsewhere",
            line_elsewhere_sql,
            &[TEXT, BOOL, TEXT],
            &[
                line.clone().into(),
                who.admin.into(),
                who.tenant.clone().into(),
            ],
        )?;
        Ok(!t.is_empty())
    }

    fn lock_order(
        &self,
        c: &mut SpiClient<'_>,
        order: Option<&String>,
        session: &String,
        product: &String,
    ) -> Result<Option<PackOrder>> {
        let Some(order) = order else {
            return Ok(None);
        };
        let t = self.run_as_owner(
            c,
            "packing_lock_order",
            lock_order_sql,
            &[TEXT, TEXT, TEXT],
            &[
                order.clone().into(),
                session.clone().into(),
                product.clone().into(),
            ],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        self.spec()?;
        Ok(Some(PackOrder::from_row(&t.first(), 1, |st| {
            self.state_of(st)
        })?))
    }

    fn lock_line_and_order(
        &self,
        c: &mut SpiClient<'_>,
        line: &String,
        session: &String,
    ) -> Result<Option<(PackLine<String>, PackOrder)>> {
        let t = self.run_as_owner(
            c,
            "packing_line_and_order",
            line_and_order_sql,
            &[TEXT, TEXT],
            &[line.clone().into(), session.clone().into()],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        let row = t.first();
        Ok(Some((
            line_at(&row)?,
            PackOrder::from_row(&row, 5, |st| self.state_of(st))?,
        )))
    }

    fn pack(
        &self,
        c: &mut SpiClient<'_>,
        line: &String,
        delta: i32,
        session: &String,
    ) -> Result<String> {
        let t = self.run_as_owner(
            c,
            "packing_pack",
            pack_sql,
            &[TEXT, INT, TEXT],
            &[line.clone().into(), delta.into(), session.clone().into()],
        )?;
        if t.is_empty() {
            return Err(skipped(self, &format!("line {line}")));
        }
        let row = t.first();
        if !row.get::<bool>(7)?.unwrap_or(false) {
            return Err(skipped(self, &format!("session {session}")));
        }
        let needed = row.get::<i64>(5)?.unwrap_or(0);
        let packed = row.get::<i64>(6)?.unwrap_or(0);
        Ok(json!({"success": true, "source": self.name,
                  "id": row.get::<String>(1)?, "picking_session_id": row.get::<String>(2)?,
                  "order_id": row.get::<String>(3)?, "product_id": row.get::<String>(4)?,
                  "quantity_needed": needed, "quantity_packed": packed,
                  "remaining": needed - packed})
        .to_string())
    }
}
