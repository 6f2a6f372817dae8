//! A binding as the operations use it, and, per backend, each binding with
//! its prepared statements (docs/adopting.md: an app keeps its own stock or
//! batch table and binds it under a name; bind.rs checks and records it).
//!
//! SQL built from a binding: identifiers are quoted by PostgreSQL
//! (`quote_identifier`), the relation is always schema-qualified (the
//! functions run with a pinned search_path without app schemas), and values
//! are always SPI parameters, never formatted into the text.
//!
//! Cache invalidation: bind/unbind send a relcache invalidation for the
//! bindings table (pg::catalog::invalidate); the callback (pg/catalog.rs)
//! registered in `_PG_init` only bumps a generation number (no freeing or
//! catalog access inside a callback), and the next lookup drops every cached
//! binding and its plans when the generation moved. A relcache invalidation
//! of a bound table (ALTER TABLE; also VACUUM and ANALYZE, which rewrite its
//! pg_class row) drops them the same way, so what was read from its columns
//! (types, scale: Capacity) is read again. Other backends receive
//! the message at their next transaction start, so the hot path costs one
//! hash lookup and no catalog query.

use crate::error::{Error, Result};
use crate::pg::catalog;
use crate::pg::spi::{execute_kept, run, Stmt};
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::{self, Oid, PgOid};
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiTupleTable};
use pgrx::AnyNumeric;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// How item ids, which arrive as text, are checked and cast in SQL.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum IdType {
    Uuid,
    Bigint,
    Integer,
    Text,
}

impl IdType {
    pub fn parse(s: &str) -> IdType {
        match s {
            "uuid" => IdType::Uuid,
            "bigint" => IdType::Bigint,
            "integer" => IdType::Integer,
            _ => IdType::Text,
        }
    }

    pub fn sql(self) -> &'static str {
        match self {
            IdType::Uuid => "uuid",
            IdType::Bigint => "bigint",
            IdType::Integer => "integer",
            IdType::Text => "text",
        }
    }
}

/// What a binding adopts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// a stock table (bind_stock_source)
    Stock,
    /// a delivery batch table (bind_batch_source)
    Batch,
    /// picking sessions, progress lines, orders and picked baskets
    /// (bind_packing_source)
    Packing,
}

impl Kind {
    fn parse(s: &str) -> Kind {
        match s {
            "stock" => Kind::Stock,
            "batch" => Kind::Batch,
            _ => Kind::Packing,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Stock => "stock",
            Kind::Batch => "batch",
            Kind::Packing => "packing",
        }
    }
}

/// A packing source's tables besides its sessions (`Binding::rel`), quoted.
pub struct PackingSpec {
    /// the session column set to now() by a pack (None: none)
    pub activity: Option<String>,
    /// the session status that allows packing
    pub packing_value: String,
    pub lines: String,
    pub line_id: String,
    pub line_id_type: IdType,
    pub line_session: String,
    pub line_order: String,
    pub line_product: String,
    pub product_id_type: IdType,
    pub line_needed: String,
    pub line_packed: String,
    pub line_updated: Option<String>,
    pub orders: String,
    pub order_id: String,
    pub order_id_type: IdType,
    pub order_status: String,
    pub order_number: Option<String>,
    pub completed: Vec<String>,
    pub closed: Vec<String>,
    pub picked: String,
    pub picked_session: String,
    pub picked_product: String,
    pub picked_quantity: String,
}

/// A binding as the operations use it: quoted identifiers, ready to splice.
pub struct Binding {
    pub name: String,
    pub kind: Kind,
    /// a packing source's other tables
    pub packing: Option<PackingSpec>,
    /// `"schema"."table"`, quoted
    pub rel: String,
    pub id: String,
    pub id_type: IdType,
    /// The location column of a stock table keyed by (id, location)
    /// (bind_stock_source's p_location_column), quoted; None: one row per id.
    pub location: Option<String>,
    pub location_type: IdType,
    pub qty: String,
    /// What the quantity column holds exactly (its type and typmod).
    pub qty_cap: Capacity,
    /// The quantity column is numeric, which can hold NaN and Infinity.
    pub qty_numeric: bool,
    pub reserved: Option<String>,
    /// The reserved column cannot hold every quantity the quantity column
    /// holds (a binding made before bind_stock_source refused that, 0.3.0):
    /// reserving on it is refused (holds.rs).
    pub reserved_narrow: bool,
    pub track: Option<String>,
    pub tenant: Option<String>,
    pub status: String,
    /// The status column's type as format_type spells it (a cast target).
    pub status_type: String,
    pub assignee: String,
    pub assignee_type: String,
    /// The most characters the assignee column holds (varchar(n)).
    pub assignee_max_chars: Option<usize>,
    pub available: String,
    pub claimed: String,
    /// The bound table's owner: its statements that write the table run as
    /// this role (run_as_owner).
    pub owner: Oid,
    plans: RefCell<HashMap<&'static str, Rc<OwnedPreparedStatement>>>,
}

thread_local! {
    /// The cached bindings, valid while catalog::generation() is the
    /// first number.
    static CACHE: RefCell<(u64, HashMap<String, Rc<Binding>>)> = RefCell::new((0, HashMap::new()));
}

/// What a bound quantity or reserved column holds exactly: its largest
/// value and the decimal places it keeps (None: no limit, as a plain
/// numeric). PostgreSQL's assignment cast rounds a value to the column's
/// scale without a word and raises 22003 past its maximum, so every quantity
/// is checked against this first (stock.rs's fits), and a reserved column
/// must hold whatever the quantity column holds: a row's reserved units never
/// exceed its quantity (a hold needs available = quantity - reserved).
pub struct Capacity {
    pub max: Option<AnyNumeric>,
    pub scale: Option<i32>,
}

impl Capacity {
    /// From a column's type and typmod (pg_attribute).
    pub fn of(typ: Oid, typmod: i32) -> Capacity {
        let whole = |max: i64| Capacity {
            max: Some(AnyNumeric::from(max)),
            scale: Some(0),
        };
        let header = pg_sys::VARHDRSZ as i32;
        match typ {
            pg_sys::INT2OID => whole(i16::MAX.into()),
            pg_sys::INT4OID => whole(i32::MAX.into()),
            pg_sys::INT8OID => whole(i64::MAX),
            // numeric(p, s): typmod = ((p << 16) | (s & 0x7ff)) + VARHDRSZ,
            // s a signed 11-bit number (negative scales since PostgreSQL 15)
            pg_sys::NUMERICOID if typmod >= header => {
                let t = typmod - header;
                let (p, s) = ((t >> 16) & 0xffff, ((t & 0x7ff) ^ 1024) - 1024);
                Capacity {
                    max: AnyNumeric::try_from(numeric_max(p, s).as_str()).ok(),
                    scale: Some(s),
                }
            }
            _ => Capacity {
                max: None,
                scale: None,
            },
        }
    }

    /// Some value of `other` would not fit here.
    pub fn narrower_than(&self, other: &Capacity) -> bool {
        let max = match (&self.max, &other.max) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(a), Some(b)) => a < b,
        };
        let scale = match (self.scale, other.scale) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(a), Some(b)) => a < b,
        };
        max || scale
    }

    /// Whether the quantity `n` (>= 0) is stored as it is; else why not.
    pub fn holds(&self, n: &AnyNumeric) -> std::result::Result<(), String> {
        if let Some(s) = self.scale {
            let text = n.normalize();
            let (int, frac) = text.split_once('.').unwrap_or((text, ""));
            let tens = (-s).max(0) as usize;
            let kept = frac.len() <= s.max(0) as usize
                && (int == "0" || int.len() > tens && int.ends_with(&"0".repeat(tens)));
            if !kept {
                return Err(match s {
                    0 => "must be a whole number (the bound quantity column holds whole numbers)"
                        .to_string(),
                    s if s > 0 => format!(
                        "has more than {s} decimal places, which the bound quantity column would round away"
                    ),
                    s => format!(
                        "must be a multiple of 1{} (the bound quantity column's scale is {s})",
                        "0".repeat(tens)
                    ),
                });
            }
        }
        match &self.max {
            Some(max) if n > max => Err(format!(
                "exceeds the bound quantity column's maximum of {max}"
            )),
            _ => Ok(()),
        }
    }
}

/// The most characters a varchar(n) column holds (None: no limit).
pub fn max_chars(typ: Oid, typmod: i32) -> Option<usize> {
    let header = pg_sys::VARHDRSZ as i32;
    (typ == pg_sys::VARCHAROID && typmod >= header).then(|| (typmod - header) as usize)
}

/// The largest value of numeric(p, s): p nines, the point s places from the
/// right (numeric(6,2): 9999.99; numeric(3,5): 0.00999; numeric(2,-1): 990).
fn numeric_max(p: i32, s: i32) -> String {
    let nines = "9".repeat(p.max(1) as usize);
    if s <= 0 {
        format!("{nines}{}", "0".repeat((-s) as usize))
    } else if s >= p {
        format!("0.{}{nines}", "0".repeat((s - p) as usize))
    } else {
        let (int, frac) = nines.split_at((p - s) as usize);
        format!("{int}.{frac}")
    }
}

pub use crate::pg::catalog::quote;

/// `["<item>", "<location>"]` as jsonb's text output spells it (a space
/// after the comma; serde_json escapes as jsonb does: `"`, `\\`, and
/// control characters as \b \f \n \r \t or lower-case \u00xx).
pub fn composite_key(item: &str, location: &str) -> String {
    let s = |v: &str| serde_json::to_string(v).unwrap_or_default();
    format!("[{}, {}]", s(item), s(location))
}

const LOAD: Stmt = Stmt {
    name: "binding_load",
    sql: "SELECT b.kind, n.nspname::text AS nsp, c.relname::text AS rel, b.id_column::text AS id, \
                 b.id_type, b.quantity_column::text AS qty, b.reserved_column::text AS reserved, \
                 b.track_column::text AS track, b.tenant_column::text AS tenant, \
                 b.status_column::text AS status, b.available_value, b.claimed_value, \
                 b.assignee_column::text AS assignee, \
                 b.location_column::text AS location, b.location_type, \
                 (SELECT pg_catalog.format_type(a.atttypid, NULL) FROM pg_catalog.pg_attribute AS a \
                   WHERE a.attrelid = b.relation AND a.attname = b.status_column AND NOT a.attisdropped) \
                   AS status_type, \
                 (SELECT pg_catalog.format_type(a.atttypid, NULL) FROM pg_catalog.pg_attribute AS a \
                   WHERE a.attrelid = b.relation AND a.attname = b.assignee_column AND NOT a.attisdropped) \
                   AS assignee_type, \
                 'atomic_inventory.bindings'::pg_catalog.regclass::pg_catalog.oid AS bindings_oid, \
                 aq.atttypid AS qty_typ, aq.atttypmod AS qty_typmod, \
                 ar.atttypid AS reserved_typ, ar.atttypmod AS reserved_typmod, b.relation::pg_catalog.oid AS relation, \
                 aa.atttypid AS assignee_typ, aa.atttypmod AS assignee_typmod, c.relowner AS owner, \
                 CASE WHEN c.relkind NOT IN ('r', 'p') THEN 'is no longer an ordinary or partitioned table' \
                 ELSE (SELECT pg_catalog.format('column %I %s', x.col, \
                                CASE WHEN a.attname IS NULL THEN 'no longer exists' \
                                     ELSE 'is now of type ' || pg_catalog.format_type(a.atttypid, NULL) \
                                          || COALESCE(' COLLATE ' || (SELECT co.collname::text FROM pg_catalog.pg_collation AS co \
                                                        WHERE co.oid = a.attcollation AND NOT co.collisdeterministic), '') END) \
                         FROM (VALUES (b.id_column, 'id'), (b.quantity_column, 'qty'), \
                                      (b.reserved_column, 'qty'), (b.track_column, 'track'), \
                                      (b.tenant_column, 'tenant'), (b.status_column, 'status'), \
                                      (b.assignee_column, 'assignee'), \
                                      (b.location_column, 'location')) AS x(col, k) \
                         LEFT JOIN pg_catalog.pg_attribute AS a \
                                ON a.attrelid = b.relation AND a.attname = x.col AND NOT a.attisdropped \
                         LEFT JOIN pg_catalog.pg_type AS ty ON ty.oid = a.atttypid \
                        WHERE x.col IS NOT NULL \
                          AND (a.attname IS NULL OR NOT CASE x.k \
                                WHEN 'id' THEN a.atttypid::pg_catalog.regtype::text = ANY (CASE b.id_type \
                                     WHEN 'uuid' THEN '{uuid}'::text[] WHEN 'bigint' THEN '{bigint}'::text[] \
                                     WHEN 'integer' THEN '{integer}'::text[] \
                                     ELSE '{text,\"character varying\"}'::text[] END) \
                                     AND COALESCE((SELECT co.collisdeterministic FROM pg_catalog.pg_collation AS co \
                                                    WHERE co.oid = a.attcollation), true) \
                                WHEN 'location' THEN a.atttypid::pg_catalog.regtype::text = ANY (CASE b.location_type \
                                     WHEN 'uuid' THEN '{uuid}'::text[] WHEN 'bigint' THEN '{bigint}'::text[] \
                                     WHEN 'integer' THEN '{integer}'::text[] \
                                     ELSE '{text,\"character varying\"}'::text[] END) \
                                     AND COALESCE((SELECT co.collisdeterministic FROM pg_catalog.pg_collation AS co \
                                                    WHERE co.oid = a.attcollation), true) \
                                WHEN 'qty' THEN a.atttypid::pg_catalog.regtype::text \
                                     IN ('numeric', 'smallint', 'integer', 'bigint') \
                                WHEN 'track' THEN a.atttypid::pg_catalog.regtype::text = 'boolean' \
                                WHEN 'status' THEN ty.typtype = 'e' \
                                     OR a.atttypid::pg_catalog.regtype::text IN ('text', 'character varying') \
                                WHEN 'assignee' THEN a.atttypid::pg_catalog.regtype::text \
                                     IN ('text', 'character varying', 'uuid') \
                                ELSE a.atttypid < 16384 END) \
                        LIMIT 1) END AS problem \
            FROM atomic_inventory.bindings AS b \
            LEFT JOIN pg_catalog.pg_class AS c ON c.oid = b.relation \
            LEFT JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace \
            LEFT JOIN pg_catalog.pg_attribute AS aq \
                   ON aq.attrelid = b.relation AND aq.attname = b.quantity_column AND NOT aq.attisdropped \
            LEFT JOIN pg_catalog.pg_attribute AS ar \
                   ON ar.attrelid = b.relation AND ar.attname = b.reserved_column AND NOT ar.attisdropped \
            LEFT JOIN pg_catalog.pg_attribute AS aa \
                   ON aa.attrelid = b.relation AND aa.attname = b.assignee_column AND NOT aa.attisdropped \
           WHERE b.name = $1",
    args: &[pg_sys::TEXTOID],
};

/// What a name is bound to now.
enum Loaded {
    Bound(Rc<Binding>),
    /// no binding of that name
    Unbound,
    /// bound to a table that was dropped since
    Gone,
}

/// The binding named `name`, from this backend's cache or the table:
/// NOT_FOUND if there is none, SOURCE_GONE (INVALID_INPUT on p_source) if
/// its table was dropped, INVALID_INPUT if it is not of the `kind` the
/// caller needs, SourceChanged if a table changed under it.
pub fn get(client: &mut SpiClient<'_>, name: &str, kind: Kind) -> Result<Rc<Binding>> {
    let b = match find(client, name)? {
        Loaded::Bound(b) => b,
        Loaded::Unbound => {
            return Err(Error::NotFound {
                entity: "source",
                ids: vec![name.to_string()],
            })
        }
        Loaded::Gone => {
            return Err(Error::SourceGone {
                name: name.to_string(),
            })
        }
    };
    if b.kind != kind {
        return Err(Error::invalid_input(
            "p_source",
            format!(
                "{name} is a {} source; this function needs a {} source",
                b.kind.as_str(),
                kind.as_str()
            ),
        ));
    }
    Ok(b)
}

/// The binding named `name` if it is bound to a table that exists (None:
/// unbound, or its table dropped); SourceChanged if the table changed.
pub fn lookup(client: &mut SpiClient<'_>, name: &str) -> Result<Option<Rc<Binding>>> {
    Ok(match find(client, name)? {
        Loaded::Bound(b) => Some(b),
        Loaded::Unbound | Loaded::Gone => None,
    })
}

fn find(client: &mut SpiClient<'_>, name: &str) -> Result<Loaded> {
    let generation = catalog::generation();
    let hit = CACHE.with_borrow_mut(|(g, m)| {
        if *g != generation {
            m.clear();
            catalog::unwatch_all();
            *g = generation;
        }
        m.get(name).cloned()
    });
    if let Some(b) = hit {
        return Ok(Loaded::Bound(b));
    }
    let loaded = load(client, name)?;
    if let Loaded::Bound(b) = &loaded {
        CACHE.with_borrow_mut(|(_, m)| m.insert(name.to_string(), b.clone()));
    }
    Ok(loaded)
}

fn load(client: &mut SpiClient<'_>, name: &str) -> Result<Loaded> {
    let t = run(client, &LOAD, &[name.to_string().into()])?;
    if t.is_empty() {
        return Ok(Loaded::Unbound);
    }
    let row = t.first();
    let s = |col: &str| -> Result<Option<String>> { Ok(row.get_by_name::<String, _>(col)?) };
    let oid = |col: &str| -> Result<Option<Oid>> { Ok(row.get_by_name::<Oid, _>(col)?) };
    let int = |col: &str| -> Result<Option<i32>> { Ok(row.get_by_name::<i32, _>(col)?) };
    let (Some(nsp), Some(rel)) = (s("nsp")?, s("rel")?) else {
        return Ok(Loaded::Gone);
    };
    // A change to the bindings table (bind, unbind) or to a bound table
    // (ALTER TABLE, say a quantity column given another type or scale) must
    // reach what was read from them, not only the kept plans, which
    // PostgreSQL replans by itself.
    if let Some(bindings) = oid("bindings_oid")? {
        catalog::watch(bindings);
    }
    if let Some(rel) = oid("relation")? {
        catalog::watch(rel);
    }
    // What bind checked, checked again whenever the table changed (its
    // relcache invalidation reloads the binding): a column that left the
    // types bind accepts, or a table that became something else, is refused
    // before any statement runs. Beyond clear errors for a table altered
    // under its binding, this keeps the owner's own types, and the casts
    // they can define for them, out of our statements (a tenant column of
    // the owner's type, cast to text; docs/security.md).
    if let Some(problem) = s("problem")? {
        return Err(Error::SourceChanged {
            reason: format!(
                "{name}: {}.{} {problem} since it was bound",
                quote(&nsp),
                quote(&rel)
            ),
        });
    }
    let q = |col: &str| -> Result<Option<String>> { Ok(s(col)?.map(|c| quote(&c))) };
    // a column's type and typmod (-1: none)
    let cap = |typ: &str, typmod: &str| -> Result<Option<Capacity>> {
        let typmod = int(typmod)?.unwrap_or(-1);
        Ok(oid(typ)?.map(|t| Capacity::of(t, typmod)))
    };
    // A batch source has no quantity column: no limit.
    let qty_cap = cap("qty_typ", "qty_typmod")?.unwrap_or(Capacity {
        max: None,
        scale: None,
    });
    let reserved_narrow =
        cap("reserved_typ", "reserved_typmod")?.is_some_and(|r| r.narrower_than(&qty_cap));
    let kind = Kind::parse(&s("kind")?.unwrap_or_default());
    let packing = match kind {
        Kind::Packing => Some(load_packing(client, name)?),
        _ => None,
    };
    Ok(Loaded::Bound(Rc::new(Binding {
        name: name.to_string(),
        kind,
        packing,
        rel: format!("{}.{}", quote(&nsp), quote(&rel)),
        id: q("id")?.unwrap_or_default(),
        id_type: IdType::parse(&s("id_type")?.unwrap_or_default()),
        location: q("location")?,
        location_type: IdType::parse(&s("location_type")?.unwrap_or_default()),
        qty: q("qty")?.unwrap_or_default(),
        qty_cap,
        qty_numeric: oid("qty_typ")? == Some(pg_sys::NUMERICOID),
        reserved: q("reserved")?,
        reserved_narrow,
        track: q("track")?,
        tenant: q("tenant")?,
        status: q("status")?.unwrap_or_default(),
        available: s("available_value")?.unwrap_or_default(),
        claimed: s("claimed_value")?.unwrap_or_default(),
        assignee: q("assignee")?.unwrap_or_default(),
        status_type: s("status_type")?.unwrap_or_else(|| "text".into()),
        assignee_type: s("assignee_type")?.unwrap_or_else(|| "text".into()),
        assignee_max_chars: match (oid("assignee_typ")?, int("assignee_typmod")?) {
            (Some(typ), Some(typmod)) => max_chars(typ, typmod),
            _ => None,
        },
        owner: oid("owner")?.unwrap_or(Oid::INVALID),
        plans: RefCell::new(HashMap::new()),
    })))
}

/// A packing source's other tables: their names and columns, and (problem)
/// the first column that left the types bind_packing_source accepted or
/// no longer exists (the tables' owners are checked at bind time).
const PACKING_LOAD: Stmt = Stmt {
    name: "binding_packing_load",
    sql: "SELECT p.activity_column::text AS activity, p.packing_value, \
                 nl.nspname::text AS lines_nsp, cl.relname::text AS lines_rel, \
                 p.line_id_column::text AS line_id, p.line_id_type, \
                 p.line_session_column::text AS line_session, p.line_order_column::text AS line_order, \
                 p.line_product_column::text AS line_product, p.product_id_type, \
                 p.line_needed_column::text AS line_needed, p.line_packed_column::text AS line_packed, \
                 p.line_updated_column::text AS line_updated, \
                 no.nspname::text AS orders_nsp, co.relname::text AS orders_rel, \
                 p.order_id_column::text AS order_id, p.order_id_type, \
                 p.order_status_column::text AS order_status, \
                 p.order_number_column::text AS order_number, \
                 p.completed_values, p.closed_values, \
                 np.nspname::text AS picked_nsp, cp.relname::text AS picked_rel, \
                 p.picked_session_column::text AS picked_session, \
                 p.picked_product_column::text AS picked_product, \
                 p.picked_quantity_column::text AS picked_quantity, \
                 p.lines::pg_catalog.oid AS lines_oid, p.orders::pg_catalog.oid AS orders_oid, \
                 p.picked::pg_catalog.oid AS picked_oid, \
                 (SELECT pg_catalog.format('%s column %I %s', x.rel::pg_catalog.regclass, x.col, \
                         CASE WHEN a.attname IS NULL THEN 'no longer exists' \
                              ELSE 'is now of type ' || pg_catalog.format_type(a.atttypid, NULL) END) \
                    FROM (VALUES (p.lines, p.line_id_column, 'id'), (p.lines, p.line_session_column, 'any'), \
                                 (p.lines, p.line_order_column, 'any'), (p.lines, p.line_product_column, 'any'), \
                                 (p.lines, p.line_needed_column, 'int'), (p.lines, p.line_packed_column, 'int'), \
                                 (p.lines, p.line_updated_column, 'time'), \
                                 (p.orders, p.order_id_column, 'id'), (p.orders, p.order_status_column, 'status'), \
                                 (p.orders, p.order_number_column, 'any'), \
                                 (p.picked, p.picked_session_column, 'any'), \
                                 (p.picked, p.picked_product_column, 'any'), \
                                 (p.picked, p.picked_quantity_column, 'int')) AS x(rel, col, k) \
                    LEFT JOIN pg_catalog.pg_attribute AS a \
                           ON a.attrelid = x.rel AND a.attname = x.col AND NOT a.attisdropped \
                    LEFT JOIN pg_catalog.pg_type AS ty ON ty.oid = a.atttypid \
                   WHERE x.col IS NOT NULL \
                     AND (a.attname IS NULL OR NOT CASE x.k \
                           WHEN 'id' THEN a.atttypid::pg_catalog.regtype::text \
                                IN ('uuid', 'bigint', 'integer', 'text', 'character varying') \
                           WHEN 'int' THEN a.atttypid::pg_catalog.regtype::text \
                                IN ('smallint', 'integer', 'bigint') \
                           WHEN 'time' THEN a.atttypid::pg_catalog.regtype::text \
                                IN ('timestamp with time zone', 'timestamp without time zone') \
                           WHEN 'status' THEN ty.typtype = 'e' \
                                OR a.atttypid::pg_catalog.regtype::text IN ('text', 'character varying') \
                           ELSE a.atttypid < 16384 END) \
                   LIMIT 1) AS problem \
            FROM atomic_inventory.packing_bindings AS p \
            LEFT JOIN pg_catalog.pg_class AS cl ON cl.oid = p.lines \
            LEFT JOIN pg_catalog.pg_namespace AS nl ON nl.oid = cl.relnamespace \
            LEFT JOIN pg_catalog.pg_class AS co ON co.oid = p.orders \
            LEFT JOIN pg_catalog.pg_namespace AS no ON no.oid = co.relnamespace \
            LEFT JOIN pg_catalog.pg_class AS cp ON cp.oid = p.picked \
            LEFT JOIN pg_catalog.pg_namespace AS np ON np.oid = cp.relnamespace \
           WHERE p.name = $1",
    args: &[pg_sys::TEXTOID],
};

/// A packing binding's other tables; SourceGone if one was dropped,
/// SourceChanged if a column changed.
fn load_packing(client: &mut SpiClient<'_>, name: &str) -> Result<PackingSpec> {
    let t = run(client, &PACKING_LOAD, &[name.to_string().into()])?;
    if t.is_empty() {
        return Err(Error::Internal(format!(
            "packing binding {name} has no packing_bindings row"
        )));
    }
    let row = t.first();
    let s = |col: &str| -> Result<Option<String>> { Ok(row.get_by_name::<String, _>(col)?) };
    let q = |col: &str| -> Result<Option<String>> { Ok(s(col)?.map(|c| quote(&c))) };
    let req = |col: &str| -> Result<String> { Ok(q(col)?.unwrap_or_default()) };
    let table = |nsp: &str, rel: &str| -> Result<Option<String>> {
        Ok(match (s(nsp)?, s(rel)?) {
            (Some(n), Some(r)) => Some(format!("{}.{}", quote(&n), quote(&r))),
            _ => None,
        })
    };
    let (Some(lines), Some(orders), Some(picked)) = (
        table("lines_nsp", "lines_rel")?,
        table("orders_nsp", "orders_rel")?,
        table("picked_nsp", "picked_rel")?,
    ) else {
        return Err(Error::SourceGone {
            name: name.to_string(),
        });
    };
    for oid in ["lines_oid", "orders_oid", "picked_oid"] {
        if let Some(o) = row.get_by_name::<Oid, _>(oid)? {
            catalog::watch(o);
        }
    }
    if let Some(problem) = s("problem")? {
        return Err(Error::SourceChanged {
            reason: format!("{name}: {problem} since it was bound"),
        });
    }
    let values = |col: &str| -> Result<Vec<String>> {
        Ok(row
            .get_by_name::<Vec<Option<String>>, _>(col)?
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .collect())
    };
    Ok(PackingSpec {
        activity: q("activity")?,
        packing_value: s("packing_value")?.unwrap_or_default(),
        lines,
        line_id: req("line_id")?,
        line_id_type: IdType::parse(&s("line_id_type")?.unwrap_or_default()),
        line_session: req("line_session")?,
        line_order: req("line_order")?,
        line_product: req("line_product")?,
        product_id_type: IdType::parse(&s("product_id_type")?.unwrap_or_default()),
        line_needed: req("line_needed")?,
        line_packed: req("line_packed")?,
        line_updated: q("line_updated")?,
        orders,
        order_id: req("order_id")?,
        order_id_type: IdType::parse(&s("order_id_type")?.unwrap_or_default()),
        order_status: req("order_status")?,
        order_number: q("order_number")?,
        completed: values("completed_values")?,
        closed: values("closed_values")?,
        picked,
        picked_session: req("picked_session")?,
        picked_product: req("picked_product")?,
        picked_quantity: req("picked_quantity")?,
    })
}

impl Binding {
    /// A row key's item id and location (None without a location column).
    pub fn split_key(&self, key: &str) -> (String, Option<String>) {
        if self.location.is_none() {
            return (key.to_string(), None);
        }
        match serde_json::from_str::<(String, String)>(key) {
            Ok((item, loc)) => (item, Some(loc)),
            Err(_) => (key.to_string(), None),
        }
    }

    /// Run the statement `kind` of this binding through its kept plan
    /// (its SQL built with `sql` the first time, per backend and binding
    /// generation) as the table's owner, in a security-restricted
    /// operation, as PostgreSQL runs REFRESH MATERIALIZED VIEW. Every
    /// statement on a bound table runs this way, reads included:
    /// - writing the table runs the code its owner attached to it
    ///   (triggers, rules, CHECK expressions, generated columns, index
    ///   expressions) as the current user;
    /// - reading it evaluates casts and comparisons of its columns, and the
    ///   owner can give a column a type of their own with a cast of their own
    ///   (a batch source's status can be the owner's enum; load() refuses
    ///   other columns that left the built-in types);
    /// - its row-level security policies apply to the owner when forced, and
    ///   a read that saw rows the write then cannot would answer for rows
    ///   it never changed.
    ///
    /// Run as the extension owner (a superuser, since our functions are
    /// SECURITY DEFINER), whoever owns a bound table could make that code do
    /// anything. As its owner, it can do no more than the owner could anyway.
    /// Such a statement must not touch our own tables (the owner has no
    /// rights there): the ledger rows are written after it, by
    /// `bound::write_ledger`.
    pub fn run_as_owner<'conn>(
        &self,
        client: &mut SpiClient<'conn>,
        kind: &'static str,
        sql: impl FnOnce(&Binding) -> String,
        oids: &[Oid],
        args: &[DatumWithOid<'_>],
    ) -> Result<SpiTupleTable<'conn>> {
        let plan = self.plan(client, kind, sql, oids)?;
        let _owner = catalog::AsOwner::enter(self.owner);
        execute_kept(client, &plan, args)
    }

    fn plan(
        &self,
        client: &mut SpiClient<'_>,
        kind: &'static str,
        sql: impl FnOnce(&Binding) -> String,
        oids: &[Oid],
    ) -> Result<Rc<OwnedPreparedStatement>> {
        if let Some(p) = self.plans.borrow().get(kind) {
            return Ok(p.clone());
        }
        let text = sql(self);
        let oids: Vec<PgOid> = oids.iter().map(|o| PgOid::from_untagged(*o)).collect();
        let p = Rc::new(client.prepare_mut(text.as_str(), &oids)?.keep());
        self.plans.borrow_mut().insert(kind, p.clone());
        Ok(p)
    }
}
