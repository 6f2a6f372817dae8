//! `bind_packing_source`: adopt a warehouse's own packing tables (picking
//! sessions, progress lines, orders, picked baskets) under a name, checked
//! as the stock and batch bindings are (bind.rs): tables the caller owns,
//! unique ids of the id types the bound functions cast, integer quantities,
//! status columns of text or an enum whose labels include the vocabulary.
//! All four tables must have one owner: the statements of a packing call
//! read several of them and run as that owner (binding.rs).

use super::bind::{
    check_name, check_table, column, distinct, id_column, lock_table, name_free, register,
    required, status_value, tenant_column, writable, wrong_type, Column, Table,
};
use super::binding::IdType;
use crate::error::{Error, Result};
use crate::pg::fmgr::Args;
use crate::pg::spi::{run, with_spi, Stmt};
use pgrx::pg_sys::{self, Oid};
use pgrx::spi::SpiClient;
use serde_json::json;

const OWNER: Stmt = Stmt {
    name: "binding_owner",
    sql: "SELECT c.relowner FROM pg_catalog.pg_class AS c WHERE c.oid = $1",
    args: &[pg_sys::OIDOID],
};

const INSERT_PACKING: Stmt = Stmt {
    name: "binding_insert_packing",
    sql: "INSERT INTO atomic_inventory.packing_bindings (name, activity_column, packing_value, \
              lines, line_id_column, line_id_type, line_session_column, line_order_column, \
              line_product_column, product_id_type, line_needed_column, line_packed_column, \
              line_updated_column, orders, order_id_column, order_id_type, order_status_column, \
              order_number_column, completed_values, closed_values, picked, \
              picked_session_column, picked_product_column, picked_quantity_column) \
          VALUES ($1, $2::name, $3, $4::pg_catalog.regclass, $5::name, $6, $7::name, $8::name, \
                  $9::name, $10, $11::name, $12::name, $13::name, $14::pg_catalog.regclass, \
                  $15::name, $16, $17::name, $18::name, $19, $20, $21::pg_catalog.regclass, \
                  $22::name, $23::name, $24::name)",
    args: &[
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::OIDOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::OIDOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTARRAYOID,
        pg_sys::TEXTARRAYOID,
        pg_sys::OIDOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
    ],
};

/// The id type a column of another table must have to be compared with
/// an id column of `ty` (the same type: an index on it answers).
fn same_type(field: &str, col: &Column, ty: IdType, of: &str) -> Result<()> {
    let ok = match ty {
        IdType::Uuid => col.typ == pg_sys::UUIDOID,
        IdType::Bigint => col.typ == pg_sys::INT8OID,
        IdType::Integer => col.typ == pg_sys::INT4OID,
        IdType::Text => [pg_sys::TEXTOID, pg_sys::VARCHAROID].contains(&col.typ),
    };
    if ok {
        Ok(())
    } else {
        Err(wrong_type(
            field,
            col,
            &format!("of the type of {of} ({})", ty.sql()),
        ))
    }
}

/// An id type for a column that is not a key of its table (a product).
fn key_type(field: &str, col: &Column) -> Result<IdType> {
    Ok(match col.typ {
        pg_sys::UUIDOID => IdType::Uuid,
        pg_sys::INT8OID => IdType::Bigint,
        pg_sys::INT4OID => IdType::Integer,
        pg_sys::TEXTOID | pg_sys::VARCHAROID => IdType::Text,
        _ => {
            return Err(wrong_type(
                field,
                col,
                "uuid, bigint, integer, text or varchar",
            ))
        }
    })
}

/// A quantity column: smallint, integer or bigint.
fn whole(field: &str, col: &Column) -> Result<()> {
    if [pg_sys::INT2OID, pg_sys::INT4OID, pg_sys::INT8OID].contains(&col.typ) {
        Ok(())
    } else {
        Err(wrong_type(field, col, "smallint, integer or bigint"))
    }
}

/// A column set to now(): timestamptz or timestamp.
fn timestamp(field: &str, col: &Option<Column>) -> Result<()> {
    match col {
        Some(c) if ![pg_sys::TIMESTAMPTZOID, pg_sys::TIMESTAMPOID].contains(&c.typ) => {
            Err(wrong_type(field, c, "timestamptz or timestamp"))
        }
        Some(c) => writable(field, c),
        None => Ok(()),
    }
}

/// A status column: text, varchar or an enum.
fn status_column(field: &str, col: &Column) -> Result<()> {
    if col.is_enum || [pg_sys::TEXTOID, pg_sys::VARCHAROID].contains(&col.typ) {
        Ok(())
    } else {
        Err(wrong_type(field, col, "text, varchar or an enum"))
    }
}

/// A list of status values, each one the status column can hold.
fn status_values(
    c: &mut SpiClient<'_>,
    field: &str,
    v: Option<Vec<Option<String>>>,
    status: &Column,
) -> Result<Vec<String>> {
    let v = v.ok_or_else(|| Error::invalid_input(field, "is required (got NULL)"))?;
    if v.len() > 100 {
        return Err(Error::invalid_input(field, "has more than 100 values"));
    }
    let mut out = Vec::with_capacity(v.len());
    for value in v {
        let value = value.ok_or_else(|| Error::invalid_input(field, "must not contain NULL"))?;
        out.push(status_value(c, field, Some(value), status)?);
    }
    Ok(out)
}

fn owner(c: &mut SpiClient<'_>, t: &Table) -> Result<Option<Oid>> {
    Ok(run(c, &OWNER, &[t.oid.into()])?.first().get::<Oid>(1)?)
}

/// bind_packing_source(p_name, p_sessions, p_lines, p_orders, p_picked,
/// the columns of each (p_session_id_column ... p_picked_quantity_column),
/// p_packing_value, p_completed_values, p_closed_values, p_tenant_column)
pub fn bind_packing(args: &Args) -> Result<String> {
    let name = check_name(args.text(0, "p_name")?)?;
    with_spi(None, |c| {
        let sessions = check_table(c, args.oid(1))?;
        let lines = check_table(c, args.oid(2))?;
        let orders = check_table(c, args.oid(3))?;
        let picked = check_table(c, args.oid(4))?;
        name_free(c, &name)?;
        let tables = [&sessions, &lines, &orders, &picked];
        for (i, t) in tables.iter().enumerate() {
            if tables[..i].iter().any(|u| u.oid == t.oid) {
                return Err(Error::invalid_input(
                    "p_sessions",
                    format!("{} is named for two of the four tables", t.rel),
                ));
            }
        }
        // one owner: a packing call's statements read several tables as it
        let first = owner(c, &sessions)?;
        for t in &tables[1..] {
            if owner(c, t)? != first {
                return Err(Error::invalid_input(
                    "p_lines",
                    format!(
                        "{} has another owner than {}; the four tables must have one owner",
                        t.rel, sessions.rel
                    ),
                ));
            }
        }
        for t in tables {
            lock_table(c, t)?;
        }
        // the sessions
        let (sid, sid_type) = id_column(c, &sessions, "p_session_id_column", args.name(5))?;
        let sstatus = required(c, &sessions, "p_session_status_column", args.name(6))?;
        status_column("p_session_status_column", &sstatus)?;
        let activity = column(c, &sessions, "p_session_activity_column", args.name(7))?;
        timestamp("p_session_activity_column", &activity)?;
        let tenant = tenant_column(c, &sessions, args.name(24))?;
        let (sid, sstatus) = (Some(sid), Some(sstatus));
        distinct(&[&sid, &sstatus, &activity, &tenant])?;
        // the progress lines
        let (lid, lid_type) = id_column(c, &lines, "p_line_id_column", args.name(8))?;
        let lsession = required(c, &lines, "p_line_session_column", args.name(9))?;
        same_type(
            "p_line_session_column",
            &lsession,
            sid_type,
            "the session id",
        )?;
        let lorder = required(c, &lines, "p_line_order_column", args.name(10))?;
        let lproduct = required(c, &lines, "p_line_product_column", args.name(11))?;
        let product_type = key_type("p_line_product_column", &lproduct)?;
        let needed = required(c, &lines, "p_line_needed_column", args.name(12))?;
        whole("p_line_needed_column", &needed)?;
        let packed = required(c, &lines, "p_line_packed_column", args.name(13))?;
        whole("p_line_packed_column", &packed)?;
        writable("p_line_packed_column", &packed)?;
        let lupdated = column(c, &lines, "p_line_updated_column", args.name(14))?;
        timestamp("p_line_updated_column", &lupdated)?;
        let (lid, lsession, lorder, lproduct, needed, packed) = (
            Some(lid),
            Some(lsession),
            Some(lorder),
            Some(lproduct),
            Some(needed),
            Some(packed),
        );
        distinct(&[
            &lid, &lsession, &lorder, &lproduct, &needed, &packed, &lupdated,
        ])?;
        // the orders
        let (oid, oid_type) = id_column(c, &orders, "p_order_id_column", args.name(15))?;
        if let Some(lo) = &lorder {
            same_type("p_line_order_column", lo, oid_type, "the order id")?;
        }
        let ostatus = required(c, &orders, "p_order_status_column", args.name(16))?;
        status_column("p_order_status_column", &ostatus)?;
        let onumber = column(c, &orders, "p_order_number_column", args.name(17))?;
        if let Some(n) = &onumber {
            if n.typ.to_u32() >= pg_sys::FirstNormalObjectId {
                return Err(wrong_type(
                    "p_order_number_column",
                    n,
                    "of a built-in type (text, an integer type…)",
                ));
            }
        }
        let (oid, ostatus) = (Some(oid), Some(ostatus));
        distinct(&[&oid, &ostatus, &onumber])?;
        // the picked baskets
        let ksession = required(c, &picked, "p_picked_session_column", args.name(18))?;
        same_type(
            "p_picked_session_column",
            &ksession,
            sid_type,
            "the session id",
        )?;
        let kproduct = required(c, &picked, "p_picked_product_column", args.name(19))?;
        same_type(
            "p_picked_product_column",
            &kproduct,
            product_type,
            "the line's product",
        )?;
        let kquantity = required(c, &picked, "p_picked_quantity_column", args.name(20))?;
        whole("p_picked_quantity_column", &kquantity)?;
        let (ksession, kproduct, kquantity) = (Some(ksession), Some(kproduct), Some(kquantity));
        distinct(&[&ksession, &kproduct, &kquantity])?;
        // the vocabulary
        let sstatus_col = sstatus.as_ref().expect("required");
        let ostatus_col = ostatus.as_ref().expect("required");
        let packing_value = status_value(
            c,
            "p_packing_value",
            args.text(21, "p_packing_value")?,
            sstatus_col,
        )?;
        let completed = status_values(c, "p_completed_values", args.text_array(22), ostatus_col)?;
        let closed = status_values(c, "p_closed_values", args.text_array(23), ostatus_col)?;
        if let Some(both) = completed.iter().find(|v| closed.contains(v)) {
            return Err(Error::invalid_input(
                "p_closed_values",
                format!("{both:?} is both a completed and a closed status"),
            ));
        }
        let name_of = |col: &Option<Column>| col.as_ref().map(|x| x.name.clone());
        register(
            c,
            &[
                name.clone().into(),
                "packing".to_string().into(),
                sessions.oid.into(),
                name_of(&sid).into(),
                sid_type.sql().to_string().into(),
                None::<String>.into(),
                None::<String>.into(),
                None::<String>.into(),
                None::<String>.into(),
                name_of(&tenant).into(),
                name_of(&sstatus).into(),
                None::<String>.into(),
                None::<String>.into(),
                None::<String>.into(),
                // no location column (stock tables only)
                None::<String>.into(),
                None::<String>.into(),
            ],
        )?;
        run(
            c,
            &INSERT_PACKING,
            &[
                name.clone().into(),
                name_of(&activity).into(),
                packing_value.clone().into(),
                lines.oid.into(),
                name_of(&lid).into(),
                lid_type.sql().to_string().into(),
                name_of(&lsession).into(),
                name_of(&lorder).into(),
                name_of(&lproduct).into(),
                product_type.sql().to_string().into(),
                name_of(&needed).into(),
                name_of(&packed).into(),
                name_of(&lupdated).into(),
                orders.oid.into(),
                name_of(&oid).into(),
                oid_type.sql().to_string().into(),
                name_of(&ostatus).into(),
                name_of(&onumber).into(),
                completed.clone().into(),
                closed.clone().into(),
                picked.oid.into(),
                name_of(&ksession).into(),
                name_of(&kproduct).into(),
                name_of(&kquantity).into(),
            ],
        )?;
        Ok(json!({"success": true, "name": name, "kind": "packing",
                  "sessions": sessions.rel, "lines": lines.rel, "orders": orders.rel,
                  "picked": picked.rel, "session_id_type": sid_type.sql(),
                  "line_id_type": lid_type.sql(), "order_id_type": oid_type.sql(),
                  "product_id_type": product_type.sql(), "packing_value": packing_value,
                  "completed_values": completed, "closed_values": closed,
                  "activity_column": name_of(&activity), "tenant_column": name_of(&tenant)})
        .to_string())
    })
}
