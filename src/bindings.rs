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
//! binding and its plans when the generation moved. A relcache invalidation
//! of a bound table (ALTER TABLE; also VACUUM and ANALYZE, which rewrite its
//! pg_class row) drops them the same way, so what was read from its columns
//! (types, scale: Capacity) is read again. Other backends receive
//! the message at their next transaction start, so the hot path costs one
//! hash lookup and no catalog query.

use crate::error::{Error, Result};
use crate::pg::spi::{execute_kept, run, Stmt};
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::{self, Oid, PgOid};
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiTupleTable};
use pgrx::AnyNumeric;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
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
    /// What the quantity column holds exactly (its type and typmod).
    pub qty_cap: Capacity,
    /// The quantity column is numeric, which can hold NaN and Infinity.
    pub qty_numeric: bool,
    pub reserved: Option<String>,
    /// The reserved column cannot hold every quantity the quantity column
    /// holds (a binding made before bind_stock_source refused that, 0.3.0):
    /// reserving on it is refused (bound_reservations.rs).
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
    static GENERATION: Cell<u64> = const { Cell::new(0) };
    /// Oid of atomic_inventory.bindings once known (0: nothing cached yet).
    static BINDINGS_OID: Cell<u32> = const { Cell::new(0) };
    static CACHE: RefCell<(u64, HashMap<String, Rc<Binding>>)> = RefCell::new((0, HashMap::new()));
    /// Oids of the tables behind the cached bindings: a change to one (ALTER
    /// TABLE, say a quantity column given another type or scale) must reach
    /// the Capacity read from its columns, not only the kept plans, which
    /// PostgreSQL replans by itself.
    static BOUND_RELS: RefCell<HashSet<u32>> = RefCell::new(HashSet::new());
}

/// Relcache callback: relid 0 means "all relations" (cache reset). Only
/// reads and bumps counters: no allocation, no catalog access.
unsafe extern "C-unwind" fn on_relcache(_arg: pg_sys::Datum, relid: Oid) {
    let watched = BINDINGS_OID.get();
    let relid = relid.to_u32();
    let bound = BOUND_RELS.with(|r| r.try_borrow().map_or(true, |r| r.contains(&relid)));
    if relid == 0 || (watched != 0 && relid == watched) || bound {
        GENERATION.set(GENERATION.get().wrapping_add(1));
    }
}

pub fn init() {
    // SAFETY: registering a callback with a 'static function pointer, once per
    // backend (from _PG_init).
    unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache), pg_sys::Datum::from(0)) };
}

/// What a bound quantity or reserved column holds exactly: its largest
/// value and the decimal places it keeps (None: no limit, as a plain
/// numeric). PostgreSQL's assignment cast rounds a value to the column's
/// scale without a word and raises 22003 past its maximum, so every quantity
/// is checked against this first (bound.rs's fits), and a reserved column
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
                 aq.atttypid, aq.atttypmod, ar.atttypid, ar.atttypmod, b.relation, \
                 aa.atttypid, aa.atttypmod, c.relowner, \
                 CASE WHEN c.relkind NOT IN ('r', 'p') THEN 'is no longer an ordinary or partitioned table' \
                 ELSE (SELECT pg_catalog.format('column %I %s', x.col, \
                                CASE WHEN a.attname IS NULL THEN 'no longer exists' \
                                     ELSE 'is now of type ' || pg_catalog.format_type(a.atttypid, NULL) \
                                          || COALESCE(' COLLATE ' || (SELECT co.collname::text FROM pg_catalog.pg_collation AS co \
                                                        WHERE co.oid = a.attcollation AND NOT co.collisdeterministic), '') END) \
                         FROM (VALUES (b.id_column, 'id'), (b.quantity_column, 'qty'), \
                                      (b.reserved_column, 'qty'), (b.track_column, 'track'), \
                                      (b.tenant_column, 'tenant'), (b.status_column, 'status'), \
                                      (b.assignee_column, 'assignee')) AS x(col, k) \
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
                                WHEN 'qty' THEN a.atttypid::pg_catalog.regtype::text \
                                     IN ('numeric', 'smallint', 'integer', 'bigint') \
                                WHEN 'track' THEN a.atttypid::pg_catalog.regtype::text = 'boolean' \
                                WHEN 'status' THEN ty.typtype = 'e' \
                                     OR a.atttypid::pg_catalog.regtype::text IN ('text', 'character varying') \
                                WHEN 'assignee' THEN a.atttypid::pg_catalog.regtype::text \
                                     IN ('text', 'character varying', 'uuid') \
                                ELSE a.atttypid < 16384 END) \
                        LIMIT 1) END \
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

/// The binding named `name`, from this backend's cache or the table.
/// `stock` says which kind the caller needs (the other kind is INVALID_INPUT).
pub fn get(client: &mut SpiClient<'_>, name: &str, stock: bool) -> Result<Rc<Binding>> {
    let generation = GENERATION.get();
    let hit = CACHE.with_borrow_mut(|(g, m)| {
        if *g != generation {
            m.clear();
            BOUND_RELS.with_borrow_mut(|r| r.clear());
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
    if let Some(rel) = row.get::<Oid>(22)? {
        BOUND_RELS.with_borrow_mut(|r| r.insert(rel.to_u32()));
    }
    // What bind checked, checked again whenever the table changed (its
    // relcache invalidation reloads the binding): a column that left the
    // types bind accepts, or a table that became something else, is refused
    // before any statement runs. Beyond clear errors for a table altered
    // under its binding, this keeps the owner's own types, and the casts
    // they can define for them, out of our statements (a tenant column of
    // the owner's type, cast to text; docs/security.md).
    if let Some(problem) = s(26)? {
        return Err(Error::SourceChanged {
            reason: format!(
                "{name}: {}.{} {problem} since it was bound",
                quote(&nsp),
                quote(&rel)
            ),
        });
    }
    let q = |n: usize| -> Result<Option<String>> { Ok(s(n)?.map(|c| quote(&c))) };
    // column n: the type, n + 1: its typmod (-1: none)
    let cap = |n: usize| -> Result<Option<Capacity>> {
        let typmod = row.get::<i32>(n + 1)?.unwrap_or(-1);
        Ok(row.get::<Oid>(n)?.map(|typ| Capacity::of(typ, typmod)))
    };
    // A batch source has no quantity column: no limit.
    let qty_cap = cap(18)?.unwrap_or(Capacity {
        max: None,
        scale: None,
    });
    let reserved_narrow = cap(20)?.is_some_and(|r| r.narrower_than(&qty_cap));
    Ok(Binding {
        name: name.to_string(),
        stock: s(1)?.as_deref() == Some("stock"),
        rel: format!("{}.{}", quote(&nsp), quote(&rel)),
        id: q(4)?.unwrap_or_default(),
        id_type: IdType::parse(&s(5)?.unwrap_or_default()),
        qty: q(6)?.unwrap_or_default(),
        qty_cap,
        qty_numeric: row.get::<Oid>(18)? == Some(pg_sys::NUMERICOID),
        reserved: q(8)?,
        reserved_narrow,
        track: q(9)?,
        tenant: q(10)?,
        status: q(11)?.unwrap_or_default(),
        available: s(12)?.unwrap_or_default(),
        claimed: s(13)?.unwrap_or_default(),
        assignee: q(14)?.unwrap_or_default(),
        status_type: s(15)?.unwrap_or_else(|| "text".into()),
        assignee_type: s(16)?.unwrap_or_else(|| "text".into()),
        assignee_max_chars: match (row.get::<Oid>(23)?, row.get::<i32>(24)?) {
            (Some(typ), Some(typmod)) => max_chars(typ, typmod),
            _ => None,
        },
        owner: row.get::<Oid>(25)?.unwrap_or(Oid::INVALID),
        plans: RefCell::new(HashMap::new()),
    })
}

impl Binding {
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
        let _owner = AsOwner::enter(self.owner);
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

/// The current user switched to a bound table's owner until dropped (also
/// when an error unwinds through it; an error that ends the (sub)transaction
/// has PostgreSQL restore the user as well).
struct AsOwner {
    user: Oid,
    context: i32,
}

impl AsOwner {
    fn enter(owner: Oid) -> AsOwner {
        let mut user = Oid::INVALID;
        let mut context = 0;
        // SAFETY: plain reads and writes of the backend's current user and
        // security context; `owner` is the table's pg_class.relowner
        unsafe {
            pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
            pg_sys::SetUserIdAndSecContext(
                owner,
                context
                    | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                    | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
            );
        }
        AsOwner { user, context }
    }
}

impl Drop for AsOwner {
    fn drop(&mut self) {
        // SAFETY: restores what enter() read
        unsafe { pg_sys::SetUserIdAndSecContext(self.user, self.context) }
    }
}
