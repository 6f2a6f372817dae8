//! Adopted tables (issue 8, docs/adopting.md): an app keeps its own stock or
//! batch table and binds it under a name (bind.rs checks and records it);
//! `bound.rs` then runs the managed operations' statements on it. This
//! module keeps, per backend, each binding with its prepared statements.
//!
//! SQL built from a binding: identifiers are quoted by PostgreSQL
//! (`quote_identifier`), the relation is always schema-qualified (the
//! functions run with a pinned search_path without app schemas), and values
//! are always SPI parameters, never formatted into the text.
//!
//! Cache invalidation: bind/unbind send a relcache invalidation for the
//! bindings table (`CacheInvalidateRelcacheByRelid`); the callback
//! registered in `_PG_init` only bumps a generation number (no freeing or
//! catalog access inside a callback), and the next lookup drops every cached
//! binding and its plans when the generation moved. Other backends receive
//! the message at their next transaction start, so the hot path costs one
//! hash lookup and no catalog query.

use crate::errors::{Error, Result};
use crate::spi::{run, Stmt};
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::{self, Oid, PgOid};
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiTupleTable};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::{CStr, CString};
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
    fn parse(s: &str) -> IdType {
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

/// A binding as the operations use it: quoted identifiers, ready to splice.
pub struct Binding {
    pub name: String,
    pub stock: bool,
    /// `"schema"."table"`, quoted
    pub rel: String,
    pub id: String,
    pub id_type: IdType,
    pub qty: String,
    /// Largest whole quantity the column holds; None = numeric (fractions ok).
    pub qty_max: Option<i64>,
    pub reserved: Option<String>,
    /// The reserved column's type cannot hold every quantity of the
    /// quantity column's (a binding made before bind_stock_source refused
    /// that, 0.3.0): reserving on it is refused (bound_reservations.rs).
    pub reserved_narrow: bool,
    pub track: Option<String>,
    pub tenant: Option<String>,
    pub status: String,
    /// The status column's type as format_type spells it (a cast target).
    pub status_type: String,
    pub assignee: String,
    pub assignee_type: String,
    pub available: String,
    pub claimed: String,
    plans: RefCell<HashMap<&'static str, Rc<OwnedPreparedStatement>>>,
}

thread_local! {
    static GENERATION: Cell<u64> = const { Cell::new(0) };
    /// Oid of atomic_inventory.bindings once known (0: nothing cached yet).
    static BINDINGS_OID: Cell<u32> = const { Cell::new(0) };
    static CACHE: RefCell<(u64, HashMap<String, Rc<Binding>>)> = RefCell::new((0, HashMap::new()));
}

/// Relcache callback: relid 0 means "all relations" (cache reset).
unsafe extern "C-unwind" fn on_relcache(_arg: pg_sys::Datum, relid: Oid) {
    let watched = BINDINGS_OID.get();
    if relid == pg_sys::InvalidOid || (watched != 0 && relid.to_u32() == watched) {
        GENERATION.set(GENERATION.get().wrapping_add(1));
    }
}

pub fn init() {
    // SAFETY: registering a callback with a 'static function pointer, once per
    // backend (from _PG_init).
    unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache), pg_sys::Datum::from(0)) };
}

/// Whether a reserved column of type `reserved` is narrower than a quantity
/// column of type `quantity` (as bindings.quantity_type spells it). The
/// reserved units of a row never exceed its quantity (a hold needs
/// available = quantity - reserved), so a column as wide as the quantity
/// column always holds them; a narrower one overflows (SQLSTATE 22003), and
/// an integer one beside a numeric quantity silently rounds a fractional
/// hold away.
pub fn narrower(reserved: Oid, quantity: &str) -> bool {
    let width = match reserved {
        pg_sys::INT2OID => 1,
        pg_sys::INT4OID => 2,
        pg_sys::INT8OID => 3,
        _ => 4, // numeric
    };
    let needed = match quantity {
        "smallint" => 1,
        "integer" => 2,
        "bigint" => 3,
        _ => 4,
    };
    width < needed
}

/// An identifier quoted by PostgreSQL's own rules.
pub fn quote(ident: &str) -> String {
    let c = CString::new(ident.replace('\0', "")).unwrap_or_default();
    // SAFETY: quote_identifier returns its argument or a palloc'd copy, both
    // valid until we copy it here.
    unsafe { CStr::from_ptr(pg_sys::quote_identifier(c.as_ptr())) }
        .to_string_lossy()
        .into_owned()
}

const LOAD: Stmt = Stmt {
    name: "binding_load",
    sql: "SELECT b.kind, n.nspname::text, c.relname::text, b.id_column::text, b.id_type, \
                 b.quantity_column::text, b.quantity_type, b.reserved_column::text, \
                 b.track_column::text, b.tenant_column::text, b.status_column::text, \
                 b.available_value, b.claimed_value, b.assignee_column::text, \
                 (SELECT pg_catalog.format_type(a.atttypid, NULL) FROM pg_catalog.pg_attribute AS a \
                   WHERE a.attrelid = b.relation AND a.attname = b.status_column AND NOT a.attisdropped), \
                 (SELECT pg_catalog.format_type(a.atttypid, NULL) FROM pg_catalog.pg_attribute AS a \
                   WHERE a.attrelid = b.relation AND a.attname = b.assignee_column AND NOT a.attisdropped), \
                 'atomic_inventory.bindings'::pg_catalog.regclass::pg_catalog.oid, \
                 (SELECT a.atttypid FROM pg_catalog.pg_attribute AS a \
                   WHERE a.attrelid = b.relation AND a.attname = b.reserved_column AND NOT a.attisdropped) \
            FROM atomic_inventory.bindings AS b \
            LEFT JOIN pg_catalog.pg_class AS c ON c.oid = b.relation \
            LEFT JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace \
           WHERE b.name = $1",
    args: &[pg_sys::TEXTOID],
};

/// The binding named `name`, from this backend's cache or the table.
/// `stock` says which kind the caller needs (the other kind is INVALID_INPUT).
pub fn get(client: &mut SpiClient<'_>, name: &str, stock: bool) -> Result<Rc<Binding>> {
    let generation = GENERATION.get();
    let hit = CACHE.with_borrow_mut(|(g, m)| {
        if *g != generation {
            m.clear();
            *g = generation;
        }
        m.get(name).cloned()
    });
    let b = match hit {
        Some(b) => b,
        None => {
            let b = Rc::new(load(client, name)?);
            CACHE.with_borrow_mut(|(_, m)| m.insert(name.to_string(), b.clone()));
            b
        }
    };
    if b.stock != stock {
        let (is, want) = if b.stock {
            ("stock", "batch")
        } else {
            ("batch", "stock")
        };
        return Err(Error::invalid_input(
            "p_source",
            format!("{name} is a {is} source; this function needs a {want} source"),
        ));
    }
    Ok(b)
}

fn load(client: &mut SpiClient<'_>, name: &str) -> Result<Binding> {
    let t = run(client, &LOAD, &[name.to_string().into()])?;
    if t.is_empty() {
        return Err(Error::NotFound {
            entity: "source",
            ids: vec![name.to_string()],
        });
    }
    let row = t.first();
    let s = |n: usize| -> Result<Option<String>> { Ok(row.get::<String>(n)?) };
    let (Some(nsp), Some(rel)) = (s(2)?, s(3)?) else {
        return Err(Error::invalid_input(
            "p_source",
            format!("{name} is bound to a table that no longer exists; unbind_source it"),
        ));
    };
    BINDINGS_OID.set(row.get::<Oid>(17)?.map(|o| o.to_u32()).unwrap_or(0));
    let q = |n: usize| -> Result<Option<String>> { Ok(s(n)?.map(|c| quote(&c))) };
    Ok(Binding {
        name: name.to_string(),
        stock: s(1)?.as_deref() == Some("stock"),
        rel: format!("{}.{}", quote(&nsp), quote(&rel)),
        id: q(4)?.unwrap_or_default(),
        id_type: IdType::parse(&s(5)?.unwrap_or_default()),
        qty: q(6)?.unwrap_or_default(),
        qty_max: match s(7)?.as_deref() {
            Some("smallint") => Some(i16::MAX as i64),
            Some("integer") => Some(i32::MAX as i64),
            Some("bigint") => Some(i64::MAX),
            _ => None,
        },
        reserved: q(8)?,
        reserved_narrow: match (row.get::<Oid>(18)?, s(7)?.as_deref()) {
            (Some(r), Some(qty)) => narrower(r, qty),
            _ => false,
        },
        track: q(9)?,
        tenant: q(10)?,
        status: q(11)?.unwrap_or_default(),
        available: s(12)?.unwrap_or_default(),
        claimed: s(13)?.unwrap_or_default(),
        assignee: q(14)?.unwrap_or_default(),
        status_type: s(15)?.unwrap_or_else(|| "text".into()),
        assignee_type: s(16)?.unwrap_or_else(|| "text".into()),
        plans: RefCell::new(HashMap::new()),
    })
}

impl Binding {
    /// Run the statement `kind` of this binding through its kept plan,
    /// building its SQL with `sql` the first time (per backend and binding
    /// generation).
    pub fn run<'conn>(
        &self,
        client: &mut SpiClient<'conn>,
        kind: &'static str,
        sql: impl FnOnce(&Binding) -> String,
        oids: &[Oid],
        args: &[DatumWithOid<'_>],
    ) -> Result<SpiTupleTable<'conn>> {
        let cached = self.plans.borrow().get(kind).cloned();
        let plan = match cached {
            Some(p) => p,
            None => {
                let text = sql(self);
                let oids: Vec<PgOid> = oids.iter().map(|o| PgOid::from_untagged(*o)).collect();
                let p = Rc::new(client.prepare_mut(text.as_str(), &oids)?.keep());
                self.plans.borrow_mut().insert(kind, p.clone());
                p
            }
        };
        Ok(client.update(&*plan, None, args)?)
    }
}
