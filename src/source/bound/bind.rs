//! Binding and unbinding adopted tables (docs/adopting.md):
//! `bind_stock_source`, `bind_batch_source` and `unbind_source` check the
//! table and its columns, record the binding in `atomic_inventory.bindings`
//! and tell every backend to drop its cached bindings (binding.rs keeps
//! them, with their prepared statements, for the bound_* operations).
//!
//! SQL here is catalog queries with SPI parameters; identifiers that end up
//! in a bound operation's SQL are quoted by PostgreSQL (`quote_identifier`).

use super::binding::{self, quote, Capacity, IdType};
use crate::error::{Error, Result};
use crate::pg::fmgr::Args;
use crate::pg::spi::{run, with_spi, Stmt};
use crate::settings::ledger_on;
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::{self, Oid};
use pgrx::spi::SpiClient;
use serde_json::json;

/// Tell every backend (this one at its next command) that bindings changed.
fn invalidate(client: &mut SpiClient<'_>) -> Result<()> {
    let oid = run(client, &BINDINGS_OID_Q, &[])?
        .first()
        .get::<Oid>(1)?
        .unwrap_or(pg_sys::InvalidOid);
    crate::pg::catalog::invalidate(oid);
    Ok(())
}

const BINDINGS_OID_Q: Stmt = Stmt {
    name: "binding_table_oid",
    sql: "SELECT 'atomic_inventory.bindings'::pg_catalog.regclass::pg_catalog.oid",
    args: &[],
};

const REL_INFO: Stmt = Stmt {
    name: "binding_rel_info",
    sql: "SELECT c.relkind::text, n.nspname::text, c.relname::text, c.relpersistence::text, \
                 pg_catalog.pg_has_role($2, c.relowner, 'USAGE') \
            FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace \
           WHERE c.oid = $1",
    args: &[pg_sys::OIDOID, pg_sys::OIDOID],
};

const COLUMN_INFO: Stmt = Stmt {
    name: "binding_column_info",
    sql: "SELECT a.attnum, a.atttypid, a.attgenerated::text, t.typtype::text, \
                 pg_catalog.format_type(a.atttypid, a.atttypmod), a.atttypmod, a.attnotnull \
            FROM pg_catalog.pg_attribute AS a JOIN pg_catalog.pg_type AS t ON t.oid = a.atttypid \
           WHERE a.attrelid = $1 AND a.attname = $2::name AND a.attnum > 0 AND NOT a.attisdropped",
    args: &[pg_sys::OIDOID, pg_sys::TEXTOID],
};

/// The id column compares by a deterministic collation (or none): under a
/// nondeterministic one ('ABC' = 'abc') one row answers to keys we hold
/// apart (holds, ledger rows, lines merged per key).
const ID_DETERMINISTIC: Stmt = Stmt {
    name: "binding_id_deterministic",
    sql: "SELECT COALESCE((SELECT co.collisdeterministic \
                             FROM pg_catalog.pg_attribute AS a \
                             JOIN pg_catalog.pg_collation AS co ON co.oid = a.attcollation \
                            WHERE a.attrelid = $1 AND a.attnum = $2), true)",
    args: &[pg_sys::OIDOID, pg_sys::INT2OID],
};

/// A unique index on exactly the id column: valid, immediate (a deferred one
/// allows duplicates until commit), not partial, no expressions.
const ID_UNIQUE: Stmt = Stmt {
    name: "binding_id_unique",
    sql: "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index AS i \
                          WHERE i.indrelid = $1 AND i.indisunique AND i.indisvalid \
                            AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL \
                            AND i.indnkeyatts = 1 AND i.indkey[0] = $2)",
    args: &[pg_sys::OIDOID, pg_sys::INT2OID],
};

/// A validated CHECK on the quantity column alone saying it is >= 0, in the
/// spellings pg_get_expr gives `q >= 0` for numeric and integer columns
/// (parentheses and spaces removed on both sides before comparing).
const HAS_CHECK: Stmt = Stmt {
    name: "binding_has_check",
    sql: "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint AS c, \
                 LATERAL (SELECT pg_catalog.regexp_replace(pg_catalog.quote_ident($3), '[()[:space:]]', '', 'g') AS q) AS k, \
                 LATERAL (SELECT pg_catalog.regexp_replace(pg_catalog.pg_get_expr(c.conbin, c.conrelid), \
                                                           '[()[:space:]]', '', 'g') AS e) AS x \
           WHERE c.conrelid = $1 AND c.contype = 'c' AND c.convalidated \
             AND ((c.conkey = ARRAY[$2]::int2[] \
                   AND x.e IN (k.q || '>=0', k.q || '>=0::numeric', k.q || '>=0.0', k.q || '>=0::bigint', \
                               k.q || '>=0::smallint', '0<=' || k.q, '0::numeric<=' || k.q, \
                               k.q || '>=0::numericAND' || k.q || '<''Infinity''::numeric')) \
                  /* stock_valid(quantity, reserved-or-0) implies quantity >= 0, and is the \
                     cheaper CHECK on PostgreSQL 15 (see pg/check.rs) */ \
                  OR ($2 = ANY (c.conkey) \
                      AND (x.e LIKE 'atomic_inventory.stock_valid' || k.q || ',%' \
                           OR x.e LIKE 'stock_valid' || k.q || ',%'))))",
    args: &[pg_sys::OIDOID, pg_sys::INT2OID, pg_sys::TEXTOID],
};

const CONSTRAINT_EXISTS: Stmt = Stmt {
    name: "binding_constraint_exists",
    sql: "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint AS c WHERE c.conrelid = $1 AND c.conname = $2::name)",
    args: &[pg_sys::OIDOID, pg_sys::TEXTOID],
};

const ENUM_LABEL: Stmt = Stmt {
    name: "binding_enum_label",
    sql: "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_enum AS e WHERE e.enumtypid = $1 AND e.enumlabel = $2)",
    args: &[pg_sys::OIDOID, pg_sys::TEXTOID],
};

/// A unique index on exactly the id and location columns (in either
/// order), valid, immediate, not partial, no expressions: each (item,
/// location) names one row.
const PAIR_UNIQUE: Stmt = Stmt {
    name: "binding_pair_unique",
    sql: "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index AS i \
                          WHERE i.indrelid = $1 AND i.indisunique AND i.indisvalid \
                            AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL \
                            AND i.indnkeyatts = 2 \
                            AND ((i.indkey[0] = $2 AND i.indkey[1] = $3) \
                                 OR (i.indkey[0] = $3 AND i.indkey[1] = $2)))",
    args: &[pg_sys::OIDOID, pg_sys::INT2OID, pg_sys::INT2OID],
};

const NAME_TAKEN: Stmt = Stmt {
    name: "binding_name_taken",
    sql: "SELECT EXISTS (SELECT 1 FROM atomic_inventory.bindings AS b WHERE b.name = $1)",
    args: &[pg_sys::TEXTOID],
};

const INSERT: Stmt = Stmt {
    name: "binding_insert",
    sql: "INSERT INTO atomic_inventory.bindings (name, kind, relation, id_column, id_type, \
              quantity_column, quantity_type, reserved_column, track_column, tenant_column, \
              status_column, available_value, claimed_value, assignee_column, \
              location_column, location_type) \
          VALUES ($1, $2, $3::pg_catalog.regclass, $4::name, $5, $6::name, $7, $8::name, $9::name, \
                  $10::name, $11::name, $12, $13, $14::name, $15::name, $16) \
          ON CONFLICT (name) DO NOTHING \
          RETURNING true",
    args: &[
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
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
    ],
};

const REL_EXISTS: Stmt = Stmt {
    name: "binding_rel_exists",
    sql: "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class AS c WHERE c.oid = $1)",
    args: &[pg_sys::OIDOID],
};

const DELETE: Stmt = Stmt {
    name: "binding_delete",
    sql: "DELETE FROM atomic_inventory.bindings AS b WHERE b.name = $1 \
          RETURNING b.kind, b.relation::text, b.relation::oid",
    args: &[pg_sys::TEXTOID],
};

/// Active reservations holding units of a source (holds.rs).
const ACTIVE_RESERVATIONS: Stmt = Stmt {
    name: "binding_active_reservations",
    sql: "SELECT pg_catalog.count(*) FROM atomic_inventory.reservations AS r \
           WHERE r.source = $1 AND r.status = 'active'",
    args: &[pg_sys::TEXTOID],
};

/// A dropped table's holds went with it: its active reservations end as
/// released.
const RELEASE_ORPHANS: Stmt = Stmt {
    name: "binding_release_orphans",
    sql: "WITH r AS ( \
            UPDATE atomic_inventory.reservations AS r \
               SET status = 'released', updated_at = pg_catalog.now() \
             WHERE r.source = $1 AND r.status = 'active' \
            RETURNING r.id \
          ) \
          UPDATE atomic_inventory.bound_reservation_lines AS l \
             SET status = 'released', updated_at = pg_catalog.now() \
            FROM r WHERE l.reservation_id = r.id AND l.status = 'active'",
    args: &[pg_sys::TEXTOID],
};

/// One column named by the caller, looked up.
pub(super) struct Column {
    pub(super) name: String,
    pub(super) attnum: i16,
    pub(super) typ: Oid,
    pub(super) generated: bool,
    pub(super) is_enum: bool,
    pub(super) type_name: String,
    pub(super) typmod: i32,
    pub(super) not_null: bool,
}

/// The table named by p_relation, checked.
pub(super) struct Table {
    pub(super) oid: Oid,
    /// quoted and schema-qualified
    pub(super) rel: String,
    pub(super) relname: String,
}

pub(super) fn check_name(name: Option<String>) -> Result<String> {
    let name = name.ok_or_else(|| Error::invalid_input("p_name", "is required (got NULL)"))?;
    if name.chars().count() > 63 {
        return Err(Error::invalid_input(
            "p_name",
            "is longer than 63 characters (a source name has at most 63)",
        ));
    }
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_');
    if !ok {
        return Err(Error::invalid_input(
            "p_name",
            "must match ^[a-z][a-z0-9_]{0,62}$ (lower case letters, digits, underscores)",
        ));
    }
    Ok(name)
}

/// The relation: an ordinary or partitioned, permanent table outside the
/// system schemas and ours, owned by the caller (or a role they belong to;
/// superusers pass).
pub(super) fn check_table(c: &mut SpiClient<'_>, oid: Option<Oid>) -> Result<Table> {
    let oid = oid.ok_or_else(|| Error::invalid_input("p_relation", "is required (got NULL)"))?;
    let outer = crate::pg::backend::outer_user();
    let t = run(c, &REL_INFO, &[oid.into(), outer.into()])?;
    if t.is_empty() {
        return Err(Error::invalid_input("p_relation", "does not exist"));
    }
    let row = t.first();
    let kind = row.get::<String>(1)?.unwrap_or_default();
    let nsp = row.get::<String>(2)?.unwrap_or_default();
    let relname = row.get::<String>(3)?.unwrap_or_default();
    let persistence = row.get::<String>(4)?.unwrap_or_default();
    let owner = row.get::<bool>(5)?.unwrap_or(false);
    if kind != "r" && kind != "p" {
        return Err(Error::invalid_input(
            "p_relation",
            format!("{nsp}.{relname} is not an ordinary or partitioned table"),
        ));
    }
    if nsp == "atomic_inventory"
        || nsp == "pg_catalog"
        || nsp == "information_schema"
        || nsp.starts_with("pg_toast")
        || nsp.starts_with("pg_temp")
        || persistence == "t"
    {
        return Err(Error::invalid_input(
            "p_relation",
            format!("{nsp}.{relname} is in a system schema, atomic_inventory's own schema or is temporary"),
        ));
    }
    if !owner {
        return Err(Error::invalid_input(
            "p_relation",
            format!("you must own {nsp}.{relname} to bind it"),
        ));
    }
    Ok(Table {
        oid,
        rel: format!("{}.{}", quote(&nsp), quote(&relname)),
        relname,
    })
}

pub(super) fn column(
    c: &mut SpiClient<'_>,
    t: &Table,
    field: &str,
    name: Option<String>,
) -> Result<Option<Column>> {
    let Some(name) = name else { return Ok(None) };
    let r = run(c, &COLUMN_INFO, &[t.oid.into(), name.clone().into()])?;
    if r.is_empty() {
        return Err(Error::invalid_input(
            field,
            format!("column {name:?} does not exist in {}", t.rel),
        ));
    }
    let row = r.first();
    Ok(Some(Column {
        attnum: row.get::<i16>(1)?.unwrap_or(0),
        typ: row.get::<Oid>(2)?.unwrap_or(pg_sys::InvalidOid),
        generated: !row.get::<String>(3)?.unwrap_or_default().is_empty(),
        is_enum: row.get::<String>(4)?.as_deref() == Some("e"),
        type_name: row.get::<String>(5)?.unwrap_or_default(),
        typmod: row.get::<i32>(6)?.unwrap_or(-1),
        not_null: row.get::<bool>(7)?.unwrap_or(false),
        name,
    }))
}

pub(super) fn required(
    c: &mut SpiClient<'_>,
    t: &Table,
    field: &str,
    name: Option<String>,
) -> Result<Column> {
    if name.is_none() {
        return Err(Error::invalid_input(field, "is required (got NULL)"));
    }
    Ok(column(c, t, field, name)?.unwrap_or_else(|| unreachable!()))
}

pub(super) fn wrong_type(field: &str, col: &Column, want: &str) -> Error {
    Error::invalid_input(
        field,
        format!(
            "column {:?} is {}; it must be {want}",
            col.name, col.type_name
        ),
    )
}

/// The tenant column, of a built-in type: its values are cast to text by
/// our statements, and a type of the owner's could come with a cast of the
/// owner's (binding.rs checks it again whenever the table changes).
pub(super) fn tenant_column(
    c: &mut SpiClient<'_>,
    t: &Table,
    name: Option<String>,
) -> Result<Option<Column>> {
    let tenant = column(c, t, "p_tenant_column", name)?;
    if let Some(col) = &tenant {
        if col.typ.to_u32() >= pg_sys::FirstNormalObjectId {
            return Err(wrong_type(
                "p_tenant_column",
                col,
                "of a built-in type (text, uuid, an integer type…)",
            ));
        }
    }
    Ok(tenant)
}

pub(super) fn writable(field: &str, col: &Column) -> Result<()> {
    if col.generated {
        return Err(Error::invalid_input(
            field,
            format!("column {:?} is a generated column", col.name),
        ));
    }
    Ok(())
}

/// The one boolean `stmt` answers about column `col` of table `t` ($1 the
/// table, $2 the column number); `default` if it answers NULL.
fn column_flag(
    c: &mut SpiClient<'_>,
    stmt: &Stmt,
    t: &Table,
    col: &Column,
    default: bool,
) -> Result<bool> {
    Ok(run(c, stmt, &[t.oid.into(), col.attnum.into()])?
        .first()
        .get::<bool>(1)?
        .unwrap_or(default))
}

/// The id column: uuid, bigint, integer, text or varchar, unique on its own.
pub(super) fn id_column(
    c: &mut SpiClient<'_>,
    t: &Table,
    field: &str,
    name: Option<String>,
) -> Result<(Column, IdType)> {
    let (col, ty) = key_column(c, t, field, name)?;
    let unique = column_flag(c, &ID_UNIQUE, t, &col, false)?;
    if !unique {
        return Err(Error::invalid_input(
            field,
            format!(
                "column {:?} has no primary key or valid, immediate, non-partial unique index on exactly it",
                col.name
            ),
        ));
    }
    Ok((col, ty))
}

/// A column of a row's key (the id, or a stock table's location): uuid,
/// bigint, integer, text or varchar, under a deterministic collation.
/// Whether it is unique is for the caller (alone, or with the location).
fn key_column(
    c: &mut SpiClient<'_>,
    t: &Table,
    field: &str,
    name: Option<String>,
) -> Result<(Column, IdType)> {
    let col = required(c, t, field, name)?;
    let ty = match col.typ {
        pg_sys::UUIDOID => IdType::Uuid,
        pg_sys::INT8OID => IdType::Bigint,
        pg_sys::INT4OID => IdType::Integer,
        pg_sys::TEXTOID | pg_sys::VARCHAROID => IdType::Text,
        _ => {
            return Err(wrong_type(
                field,
                &col,
                "uuid, bigint, integer, text or varchar",
            ))
        }
    };
    let deterministic = column_flag(c, &ID_DETERMINISTIC, t, &col, true)?;
    if !deterministic {
        return Err(Error::invalid_input(
            field,
            format!(
                "column {:?} has a nondeterministic collation: ids that compare equal but differ in text would be one row and two keys",
                col.name
            ),
        ));
    }
    Ok((col, ty))
}

pub(super) fn distinct(cols: &[&Option<Column>]) -> Result<()> {
    let named: Vec<&Column> = cols.iter().filter_map(|c| c.as_ref()).collect();
    for (i, a) in named.iter().enumerate() {
        if named[i + 1..].iter().any(|b| b.attnum == a.attnum) {
            return Err(Error::invalid_input(
                "columns",
                format!("column {:?} is named for two roles", a.name),
            ));
        }
    }
    Ok(())
}

pub(super) fn register(c: &mut SpiClient<'_>, args: &[DatumWithOid<'_>]) -> Result<()> {
    // ON CONFLICT: a concurrent bind of the same name that committed first.
    if run(c, &INSERT, args)?.is_empty() {
        return Err(Error::invalid_input(
            "p_name",
            "is already bound (unbind_source it first)",
        ));
    }
    invalidate(c)
}

pub(super) fn name_free(c: &mut SpiClient<'_>, name: &str) -> Result<()> {
    let taken = run(c, &NAME_TAKEN, &[name.to_string().into()])?
        .first()
        .get::<bool>(1)?
        .unwrap_or(false);
    if taken {
        return Err(Error::invalid_input(
            "p_name",
            format!("{name} is already bound (unbind_source it first)"),
        ));
    }
    Ok(())
}

/// Writers are held off while binding (SHARE ROW EXCLUSIVE: readers go on),
/// so the initial ledger rows and the CHECK see one stable table.
pub(super) fn lock_table(c: &mut SpiClient<'_>, t: &Table) -> Result<()> {
    c.update(
        format!("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE", t.rel).as_str(),
        None,
        &[],
    )?;
    Ok(())
}

/// Make sure the quantity column has a validated CHECK (q >= 0): found, or
/// (with `add`) added NOT VALID, the rows counted, then validated. Returns
/// the name of the constraint added, if any.
fn ensure_check(c: &mut SpiClient<'_>, t: &Table, q: &Column, add: bool) -> Result<Option<String>> {
    let has = run(
        c,
        &HAS_CHECK,
        &[t.oid.into(), q.attnum.into(), q.name.clone().into()],
    )?
    .first()
    .get::<bool>(1)?
    .unwrap_or(false);
    if has {
        return Ok(None);
    }
    if !add {
        return Err(Error::invalid_input(
            "p_quantity_column",
            format!(
                "column {:?} has no validated CHECK ({} >= 0); add one or pass p_add_check => true",
                q.name,
                quote(&q.name)
            ),
        ));
    }
    let mut name = format!("{}_ai_quantity_nonnegative", t.relname);
    while name.len() > 63 {
        name = name.chars().skip(1).collect();
    }
    let exists = run(c, &CONSTRAINT_EXISTS, &[t.oid.into(), name.clone().into()])?
        .first()
        .get::<bool>(1)?
        .unwrap_or(false);
    if exists {
        return Err(Error::invalid_input(
            "p_quantity_column",
            format!("a constraint named {name:?} exists but is not a validated CHECK ({} >= 0); validate or drop it", quote(&q.name)),
        ));
    }
    let qcol = quote(&q.name);
    // A numeric column also holds NaN and Infinity, which pass `>= 0` (NaN
    // sorts above every number) and would then cover any sale: the CHECK
    // added to one keeps it finite too.
    let valid = if q.typ == pg_sys::NUMERICOID {
        format!("{qcol} >= 0 AND {qcol} < 'Infinity'::numeric")
    } else {
        format!("{qcol} >= 0")
    };
    c.update(
        format!(
            "ALTER TABLE {} ADD CONSTRAINT {} CHECK ({valid}) NOT VALID",
            t.rel,
            quote(&name)
        )
        .as_str(),
        None,
        &[],
    )?;
    // Counted first so the error says what to fix, instead of a bare 23514.
    let negative = c
        .update(
            format!(
                "SELECT pg_catalog.count(*) FROM {} AS t WHERE NOT ({valid})",
                t.rel
            )
            .as_str(),
            None,
            &[],
        )?
        .first()
        .get::<i64>(1)?
        .unwrap_or(0);
    if negative > 0 {
        return Err(Error::invalid_input(
            "p_quantity_column",
            format!(
                "{negative} rows of {} have {qcol} below 0 (or not a finite number); fix them before binding",
                t.rel
            ),
        ));
    }
    c.update(
        format!("ALTER TABLE {} VALIDATE CONSTRAINT {}", t.rel, quote(&name)).as_str(),
        None,
        &[],
    )?;
    Ok(Some(name))
}

/// One 'initial' ledger row per existing row, so reconcile_source starts at
/// zero drift. Its delta is the quantity minus what the ledger already holds
/// for the row under this name (an earlier binding of the same name), so the
/// sum matches either way.
fn initial_rows(
    c: &mut SpiClient<'_>,
    name: &str,
    t: &Table,
    id: &Column,
    location: Option<&Column>,
    q: &Column,
    tenant: &Option<Column>,
) -> Result<i64> {
    let tv = match tenant {
        Some(col) => format!("t.{}::text", quote(&col.name)),
        None => "NULL::text".into(),
    };
    // the row's key as the bound_* functions write it (stock::row_key)
    let key = match location {
        None => format!("t.{}::text", quote(&id.name)),
        Some(l) => format!(
            "pg_catalog.jsonb_build_array(t.{}::text, t.{}::text)::text",
            quote(&id.name),
            quote(&l.name)
        ),
    };
    let sql = format!(
        "WITH ins AS ( \
           INSERT INTO atomic_inventory.ledger (source, item_key, delta, quantity_after, kind, reason, tenant_id) \
           SELECT $1, r.k, r.q - COALESCE(l.total, 0), r.q, 'initial', 'bound', r.tenant \
             FROM (SELECT {key} AS k, t.{q}::numeric AS q, {tv} AS tenant FROM {rel} AS t) AS r \
             LEFT JOIN (SELECT g.item_key, pg_catalog.sum(g.delta) AS total FROM atomic_inventory.ledger AS g \
                         WHERE g.source = $1 GROUP BY g.item_key) AS l ON l.item_key = r.k \
            WHERE r.q IS NOT NULL \
           RETURNING 1) \
         SELECT pg_catalog.count(*) FROM ins",
        q = quote(&q.name),
        rel = t.rel,
    );
    let n = c
        .update(sql.as_str(), None, &[name.to_string().into()])?
        .first()
        .get::<i64>(1)?
        .unwrap_or(0);
    Ok(n)
}

/// A stock table keyed by (id, location) (p_location_column; None when not
/// given): the id and location columns, their types, and a primary key or
/// unique index over exactly the two, so each (item, location) names one
/// row. The location must be NOT NULL: a NULL location is a row no call can
/// name (NULL = NULL is not true), whose stock the ledger could never
/// account for.
type Located = (Column, IdType, Column, IdType);

fn located(
    c: &mut SpiClient<'_>,
    t: &Table,
    id: Option<String>,
    location: Option<String>,
) -> Result<Option<Located>> {
    let Some(location) = location else {
        return Ok(None);
    };
    let (id, id_type) = key_column(c, t, "p_id_column", id)?;
    let (loc, loc_type) = key_column(c, t, "p_location_column", Some(location))?;
    if id.attnum == loc.attnum {
        return Err(Error::invalid_input(
            "columns",
            format!("column {:?} is named for two roles", loc.name),
        ));
    }
    if !loc.not_null {
        return Err(Error::invalid_input(
            "p_location_column",
            format!(
                "column {:?} allows NULL; a row without a location cannot be named: \
                 ALTER TABLE {} ALTER COLUMN {} SET NOT NULL",
                loc.name,
                t.rel,
                quote(&loc.name)
            ),
        ));
    }
    let unique = run(
        c,
        &PAIR_UNIQUE,
        &[t.oid.into(), id.attnum.into(), loc.attnum.into()],
    )?
    .first()
    .get::<bool>(1)?
    .unwrap_or(false);
    if !unique {
        return Err(Error::invalid_input(
            "p_location_column",
            format!(
                "columns ({:?}, {:?}) have no primary key or valid, immediate, non-partial unique \
                 index on exactly them: each item and location must name one row",
                id.name, loc.name
            ),
        ));
    }
    Ok(Some((id, id_type, loc, loc_type)))
}

/// bind_stock_source(p_name, p_relation, p_id_column, p_quantity_column,
/// p_reserved_column, p_track_column, p_tenant_column, p_add_check,
/// p_location_column)
pub fn bind_stock(args: &Args) -> Result<String> {
    let name = check_name(args.text(0, "p_name")?)?;
    let add_check = args.bool_or(7, true);
    let ledger = ledger_on();
    with_spi(None, |c| {
        let t = check_table(c, args.oid(1))?;
        name_free(c, &name)?;
        lock_table(c, &t)?;
        let (id, id_type, location) = match located(c, &t, args.name(2), args.name(8))? {
            Some((id, ty, l, lt)) => (id, ty, Some((l, lt))),
            None => {
                let (id, ty) = id_column(c, &t, "p_id_column", args.name(2))?;
                (id, ty, None)
            }
        };
        let location_type = location.as_ref().map(|(_, ty)| *ty);
        let loc_col = location.map(|(l, _)| l);
        let q = required(c, &t, "p_quantity_column", args.name(3))?;
        let qty_type = match q.typ {
            pg_sys::NUMERICOID => "numeric",
            pg_sys::INT2OID => "smallint",
            pg_sys::INT4OID => "integer",
            pg_sys::INT8OID => "bigint",
            _ => {
                return Err(wrong_type(
                    "p_quantity_column",
                    &q,
                    "numeric, smallint, integer or bigint",
                ))
            }
        };
        writable("p_quantity_column", &q)?;
        if !q.not_null {
            // NULL + n is NULL: a restock of such a row changed nothing while
            // the ledger recorded it. A stock quantity must be known.
            return Err(Error::invalid_input(
                "p_quantity_column",
                format!(
                    "column {:?} allows NULL; a stock quantity must be known: \
                     ALTER TABLE {} ALTER COLUMN {} SET NOT NULL",
                    q.name,
                    t.rel,
                    quote(&q.name)
                ),
            ));
        }
        let reserved = column(c, &t, "p_reserved_column", args.name(4))?;
        if let Some(r) = &reserved {
            if ![
                pg_sys::NUMERICOID,
                pg_sys::INT2OID,
                pg_sys::INT4OID,
                pg_sys::INT8OID,
            ]
            .contains(&r.typ)
            {
                return Err(wrong_type(
                    "p_reserved_column",
                    r,
                    "numeric, smallint, integer or bigint",
                ));
            }
            if Capacity::of(r.typ, r.typmod).narrower_than(&Capacity::of(q.typ, q.typmod)) {
                return Err(wrong_type(
                    "p_reserved_column",
                    r,
                    &format!(
                        "as wide as the quantity column ({}) or wider, in range and in \
                         decimal places, to hold every reservation of its units",
                        q.type_name
                    ),
                ));
            }
        }
        let track = column(c, &t, "p_track_column", args.name(5))?;
        if let Some(k) = &track {
            if k.typ != pg_sys::BOOLOID {
                return Err(wrong_type("p_track_column", k, "boolean"));
            }
        }
        let tenant = tenant_column(c, &t, args.name(6))?;
        let (id, q) = (Some(id), Some(q));
        distinct(&[&id, &q, &reserved, &track, &tenant, &loc_col])?;
        let (id, q) = (
            id.unwrap_or_else(|| unreachable!()),
            q.unwrap_or_else(|| unreachable!()),
        );
        let added = ensure_check(c, &t, &q, add_check)?;
        let opt = |col: &Option<Column>| col.as_ref().map(|x| x.name.clone());
        register(
            c,
            &[
                name.clone().into(),
                "stock".to_string().into(),
                t.oid.into(),
                id.name.clone().into(),
                id_type.sql().to_string().into(),
                q.name.clone().into(),
                qty_type.to_string().into(),
                opt(&reserved).into(),
                opt(&track).into(),
                opt(&tenant).into(),
                None::<String>.into(),
                None::<String>.into(),
                None::<String>.into(),
                None::<String>.into(),
                opt(&loc_col).into(),
                location_type.map(|ty| ty.sql().to_string()).into(),
            ],
        )?;
        let initial = if ledger {
            initial_rows(c, &name, &t, &id, loc_col.as_ref(), &q, &tenant)?
        } else {
            0
        };
        Ok(
            json!({"success": true, "name": name, "kind": "stock", "relation": t.rel,
                  "id_column": id.name, "id_type": id_type.sql(), "quantity_column": q.name,
                  "quantity_type": qty_type, "reserved_column": opt(&reserved),
                  "track_column": opt(&track), "tenant_column": opt(&tenant),
                  "location_column": opt(&loc_col),
                  "location_type": location_type.map(|ty| ty.sql()),
                  "check_added": added, "initial_ledger_rows": initial})
            .to_string(),
        )
    })
}

pub(super) fn status_value(
    c: &mut SpiClient<'_>,
    field: &str,
    v: Option<String>,
    status: &Column,
) -> Result<String> {
    let v = v.ok_or_else(|| Error::invalid_input(field, "is required (got NULL)"))?;
    if v.is_empty() || v.chars().count() > 255 {
        return Err(Error::invalid_input(field, "must be 1 to 255 characters"));
    }
    if let Some(max) = binding::max_chars(status.typ, status.typmod) {
        // stored by the claim's UPDATE, which would fail with 22001
        if v.chars().count() > max {
            return Err(Error::invalid_input(
                field,
                format!(
                    "{v:?} is longer than the status column ({}) holds",
                    status.type_name
                ),
            ));
        }
    }
    if status.is_enum {
        let ok = run(c, &ENUM_LABEL, &[status.typ.into(), v.clone().into()])?
            .first()
            .get::<bool>(1)?
            .unwrap_or(false);
        if !ok {
            return Err(Error::invalid_input(
                field,
                format!("{v:?} is not a value of the enum type {}", status.type_name),
            ));
        }
    }
    Ok(v)
}

/// bind_batch_source(p_name, p_relation, p_id_column, p_status_column,
/// p_assignee_column, p_available_value, p_claimed_value, p_tenant_column)
pub fn bind_batch(args: &Args) -> Result<String> {
    let name = check_name(args.text(0, "p_name")?)?;
    with_spi(None, |c| {
        let t = check_table(c, args.oid(1))?;
        name_free(c, &name)?;
        lock_table(c, &t)?;
        let (id, id_type) = id_column(c, &t, "p_id_column", args.name(2))?;
        let status = required(c, &t, "p_status_column", args.name(3))?;
        if !(status.is_enum || [pg_sys::TEXTOID, pg_sys::VARCHAROID].contains(&status.typ)) {
            return Err(wrong_type(
                "p_status_column",
                &status,
                "text, varchar or an enum",
            ));
        }
        writable("p_status_column", &status)?;
        let assignee = required(c, &t, "p_assignee_column", args.name(4))?;
        if ![pg_sys::TEXTOID, pg_sys::VARCHAROID, pg_sys::UUIDOID].contains(&assignee.typ) {
            return Err(wrong_type(
                "p_assignee_column",
                &assignee,
                "text, varchar or uuid",
            ));
        }
        writable("p_assignee_column", &assignee)?;
        let available = status_value(
            c,
            "p_available_value",
            args.text(5, "p_available_value")?,
            &status,
        )?;
        let claimed = status_value(
            c,
            "p_claimed_value",
            args.text(6, "p_claimed_value")?,
            &status,
        )?;
        if available == claimed {
            return Err(Error::invalid_input(
                "p_claimed_value",
                "must differ from p_available_value",
            ));
        }
        let tenant = tenant_column(c, &t, args.name(7))?;
        let (id, status, assignee) = (Some(id), Some(status), Some(assignee));
        distinct(&[&id, &status, &assignee, &tenant])?;
        let name_of = |col: &Option<Column>| col.as_ref().map(|x| x.name.clone());
        register(
            c,
            &[
                name.clone().into(),
                "batch".to_string().into(),
                t.oid.into(),
                name_of(&id).into(),
                id_type.sql().to_string().into(),
                None::<String>.into(),
                None::<String>.into(),
                None::<String>.into(),
                None::<String>.into(),
                name_of(&tenant).into(),
                name_of(&status).into(),
                available.clone().into(),
                claimed.clone().into(),
                name_of(&assignee).into(),
                // no location column (stock tables only)
                None::<String>.into(),
                None::<String>.into(),
            ],
        )?;
        Ok(
            json!({"success": true, "name": name, "kind": "batch", "relation": t.rel,
                  "id_column": name_of(&id), "id_type": id_type.sql(),
                  "status_column": name_of(&status), "assignee_column": name_of(&assignee),
                  "available_value": available, "claimed_value": claimed,
                  "tenant_column": name_of(&tenant)})
            .to_string(),
        )
    })
}

/// unbind_source(p_name)
pub fn unbind(args: &Args) -> Result<String> {
    let name = args
        .text(0, "p_name")?
        .ok_or_else(|| Error::invalid_input("p_name", "is required (got NULL)"))?;
    if name.chars().count() > 63 {
        return Err(Error::invalid_input(
            "p_name",
            "is longer than 63 characters (a source name has at most 63)",
        ));
    }
    with_spi(None, |c| {
        let gone = run(c, &DELETE, &[name.clone().into()])?;
        if gone.is_empty() {
            return Err(Error::NotFound {
                entity: "source",
                ids: vec![name.clone()],
            });
        }
        let row = gone.first();
        let kind = row.get::<String>(1)?.unwrap_or_default();
        let relation = row.get::<String>(2)?.unwrap_or_default();
        let oid = row.get::<Oid>(3)?;
        // The owner check of binding applies to unbinding too, while the
        // table exists (a dropped table's binding can always be removed).
        let exists = match oid {
            Some(o) => run(c, &REL_EXISTS, &[o.into()])?
                .first()
                .get::<bool>(1)?
                .unwrap_or(false),
            None => false,
        };
        if exists {
            check_table(c, oid)?;
            // The DELETE above waited for any bound_reserve holding this row
            // KEY SHARE; this statement's snapshot sees what they recorded.
            let active = run(c, &ACTIVE_RESERVATIONS, &[name.clone().into()])?
                .first()
                .get::<i64>(1)?
                .unwrap_or(0);
            if active > 0 {
                return Err(Error::SourceInUse {
                    name: name.clone(),
                    active,
                });
            }
            // At REPEATABLE READ the count saw the transaction's snapshot: a
            // hold committed since (the DELETE waited for it) would be
            // stranded, its units held in the app's table with no binding
            // left to give them back.
            if crate::pg::spi::uses_xact_snapshot()
                && crate::pg::spi::count_at_latest_snapshot(
                    &ACTIVE_RESERVATIONS,
                    &[pgrx::IntoDatum::into_datum(name.clone())],
                )? > 0
            {
                crate::pg::spi::stale_snapshot(format!(
                    "source {name} got a reservation after this transaction's snapshot"
                ));
            }
        } else {
            run(c, &RELEASE_ORPHANS, &[name.clone().into()])?;
        }
        invalidate(c)?;
        Ok(json!({"success": true, "name": name, "kind": kind, "relation": relation}).to_string())
    })
}
