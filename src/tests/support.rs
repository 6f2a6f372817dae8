//! Helpers shared by the `#[pg_test]` modules (they run inside the backend).

use pgrx::prelude::*;
use serde_json::Value;

pub const A: &str = "00000000-0000-0000-0000-00000000000a";
pub const B: &str = "00000000-0000-0000-0000-00000000000b";
pub const MISSING: &str = "00000000-0000-0000-0000-0000000000ff";

pub fn item(id: &str, qty: &str) {
    Spi::run(&format!(
        "INSERT INTO atomic_inventory.items (id, sku, quantity) VALUES ('{id}', 'sku-{id}', {qty})"
    ))
    .unwrap();
}

pub fn call(sql: &str) -> Value {
    let text = Spi::get_one::<String>(&format!("SELECT ({sql})::text"))
        .unwrap()
        .expect("function returned NULL");
    serde_json::from_str(&text).unwrap()
}

pub fn quantity(id: &str) -> String {
    Spi::get_one::<String>(&format!(
        "SELECT quantity::text FROM atomic_inventory.items WHERE id = '{id}'"
    ))
    .unwrap()
    .unwrap()
}

pub fn scalar(sql: &str) -> String {
    Spi::get_one::<String>(sql).unwrap().unwrap_or_default()
}

/// Run `sql` and return (SQLSTATE, message, detail JSON) of the error it
/// raises. PL/pgSQL catches it in a subtransaction, so the custom PTxyz
/// SQLSTATE is seen exactly as a client would see it.
pub fn err(sql: &str) -> (String, String, Value) {
    // Created once per session (as whoever runs first); later callers under
    // SET ROLE may execute it but not replace it.
    Spi::run(
        "DO $do$ BEGIN
           IF to_regprocedure('pg_temp.err_of(text)') IS NULL THEN
             CREATE FUNCTION pg_temp.err_of(p_sql text, OUT state text, OUT msg text, OUT detail text)
             LANGUAGE plpgsql AS $f$
             BEGIN
                 EXECUTE p_sql;
                 state := 'none';
             EXCEPTION WHEN OTHERS THEN
                 GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
             END $f$;
           END IF;
         END $do$",
    )
    .unwrap();
    let quoted = sql.replace('\'', "''");
    let row = Spi::get_three::<String, String, String>(&format!(
        "SELECT state, msg, detail FROM pg_temp.err_of('{quoted}')"
    ))
    .unwrap();
    let state = row.0.unwrap_or_default();
    assert_ne!(state, "none", "expected an error from: {sql}");
    let detail = row
        .2
        .and_then(|d| serde_json::from_str(&d).ok())
        .unwrap_or(Value::Null);
    (state, row.1.unwrap_or_default(), detail)
}

pub fn assert_err(sql: &str, state: &str, code: &str) -> (String, Value) {
    let (s, msg, detail) = err(sql);
    assert_eq!(s, state, "SQLSTATE of {sql}: {msg}");
    assert!(
        msg.starts_with(code),
        "message of {sql} should start with {code}: {msg}"
    );
    assert_eq!(detail["code"], code, "detail code of {sql}");
    (msg, detail)
}

/// A bind_* call refused with INVALID_INPUT on `field`.
pub fn bad_bind(sql: &str, field: &str) {
    let (_, d) = assert_err(sql, "22023", "INVALID_INPUT");
    assert_eq!(d["field"], field, "{sql}");
}

pub fn ledger_rows(id: &str) -> i64 {
    Spi::get_one::<i64>(&format!(
        "SELECT count(*) FROM atomic_inventory.ledger WHERE inventory_id = '{id}'"
    ))
    .unwrap()
    .unwrap()
}

pub fn as_app_user() {
    Spi::run(
        "DO $$ BEGIN
           IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ai_app') THEN
             CREATE ROLE ai_app NOLOGIN;
           END IF;
         END $$",
    )
    .unwrap();
    Spi::run("SELECT atomic_inventory.grant_usage('ai_app')").unwrap();
    Spi::run("SET ROLE ai_app").unwrap();
}

/// Take `function`'s SET clauses (all but search_path) for the rest of the
/// transaction, as a call of it runs with them: to plan its statements the
/// way it does.
pub fn settings_of(function: &str) {
    Spi::run(&format!(
        "SELECT pg_catalog.set_config(split_part(c, '=', 1), split_part(c, '=', 2), true) \
           FROM pg_catalog.pg_proc AS p, unnest(p.proconfig) AS c \
          WHERE p.oid = '{function}'::regprocedure AND c NOT LIKE 'search_path=%'"
    ))
    .unwrap();
}

/// The plan of `stmt` as PREPARE / EXPLAIN EXECUTE make it under the
/// settings in force, with every parameter NULL, and whether it was the
/// statement's generic plan (PostgreSQL's own count of the plans it made).
pub fn plan_of(stmt: &crate::pg::spi::Stmt) -> (Vec<String>, bool) {
    let types: Vec<String> = stmt
        .args
        .iter()
        .map(|o| {
            scalar(&format!(
                "SELECT pg_catalog.format_type({}, NULL)",
                o.to_u32()
            ))
        })
        .collect();
    Spi::run(&format!(
        "PREPARE {}({}) AS {}",
        stmt.name,
        types.join(", "),
        stmt.sql
    ))
    .unwrap();
    let nulls = vec!["NULL"; types.len()].join(", ");
    let plan = Spi::connect(|c| {
        c.select(
            &format!("EXPLAIN (COSTS OFF) EXECUTE {}({nulls})", stmt.name),
            None,
            &[],
        )
        .unwrap()
        .map(|row| row.get::<String>(1).unwrap().unwrap_or_default())
        .collect()
    });
    let generic = scalar(&format!(
        "SELECT (generic_plans = 1 AND custom_plans = 0)::text \
           FROM pg_catalog.pg_prepared_statements WHERE name = '{}'",
        stmt.name
    )) == "true";
    // prepared statements outlive the test's transaction
    Spi::run(&format!("DEALLOCATE {}", stmt.name)).unwrap();
    (plan, generic)
}

/// A BEFORE UPDATE trigger on `table` (a quoted, qualified name) that
/// returns NULL: the app's own code skipping every update of its rows.
pub fn veto_updates(table: &str) {
    veto(table, "UPDATE");
}

/// A BEFORE `event` trigger named veto on `table` that returns NULL.
pub fn veto(table: &str, event: &str) {
    Spi::run(
        "CREATE OR REPLACE FUNCTION public.veto() RETURNS trigger LANGUAGE plpgsql AS $f$
         BEGIN RETURN NULL; END $f$",
    )
    .unwrap();
    Spi::run(&format!(
        "CREATE TRIGGER veto BEFORE {event} ON {table} FOR EACH ROW EXECUTE FUNCTION public.veto()"
    ))
    .unwrap();
}
