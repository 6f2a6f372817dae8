#!/usr/bin/env python3
"""Bad input, every function: each call must fail with its documented
SQLSTATE and code, the backend must survive it, and nothing may be written.

Prints one line per case that fails, then `bad_inputs: N passed, N failed`.
Uses the PG* environment (pg_test/lib.sh's start_cluster).
"""
import json
import sys
import uuid

import psycopg

S = "atomic_inventory"
MISSING = "00000000-0000-0000-0000-0000000000ff"

# (sql, sqlstate, code): code None = PostgreSQL's own error (e.g. 22P02 when
# an argument can't even be converted to its declared type).
CASES = [
    # decrement_inventory
    ("decrement_inventory(NULL, 1)", "22023", "INVALID_INPUT"),
    ("decrement_inventory('{item}', NULL)", "22023", "INVALID_QUANTITY"),
    ("decrement_inventory('{item}', 0)", "22023", "INVALID_QUANTITY"),
    ("decrement_inventory('{item}', -1)", "22023", "INVALID_QUANTITY"),
    ("decrement_inventory('{item}', 'NaN')", "22023", "INVALID_QUANTITY"),
    ("decrement_inventory('{item}', 'Infinity')", "22023", "INVALID_QUANTITY"),
    ("decrement_inventory('{item}', '-Infinity')", "22023", "INVALID_QUANTITY"),
    ("decrement_inventory('{item}', 1e13)", "22023", "INVALID_QUANTITY"),
    ("decrement_inventory('{item}', 1e300)", "22023", "INVALID_QUANTITY"),
    ("decrement_inventory('{item}', 11)", "PT409", "INSUFFICIENT_INVENTORY"),
    ("decrement_inventory('%s', 1)" % MISSING, "PT404", "NOT_FOUND"),
    ("decrement_inventory('not-a-uuid', 1)", "22P02", None),
    ("decrement_inventory('{item}', 'ten')", "22P02", None),
    ("decrement_inventory('{item}', 1, p_idempotency_key => '')", "22023", "INVALID_INPUT"),
    ("decrement_inventory('{item}', 1, p_idempotency_key => repeat('k', 256))", "22023", "INVALID_INPUT"),
    ("decrement_inventory('{item}', 1, p_reason => repeat('r', 1025))", "22023", "INVALID_INPUT"),
    ("decrement_inventory('{item}', 1, p_reference => repeat('é', 100000))", "22023", "INVALID_INPUT"),
    ("decrement_inventory('{item}', 1, p_lock_timeout_ms => 0)", "22023", "INVALID_INPUT"),
    ("decrement_inventory('{item}', 1, p_lock_timeout_ms => -1)", "22023", "INVALID_INPUT"),
    ("decrement_inventory('{item}', 1, p_lock_timeout_ms => 600001)", "22023", "INVALID_INPUT"),
    # decrement_inventory_many
    ("decrement_inventory_many(NULL)", "22023", "INVALID_INPUT"),
    ("decrement_inventory_many('[]')", "22023", "INVALID_INPUT"),
    ("decrement_inventory_many('{{}}')", "22023", "INVALID_INPUT"),
    ("decrement_inventory_many('\"lines\"')", "22023", "INVALID_INPUT"),
    ("decrement_inventory_many('[1]')", "22023", "INVALID_INPUT"),
    ("decrement_inventory_many('[{{}}]')", "22023", "INVALID_INPUT"),
    ("decrement_inventory_many('[{{\"inventory_id\":\"{item}\"}}]')", "22023", "INVALID_QUANTITY"),
    ("decrement_inventory_many('[{{\"inventory_id\":\"{item}\",\"quantity\":\"NaN\"}}]')", "22023", "INVALID_QUANTITY"),
    ("decrement_inventory_many('[{{\"inventory_id\":\"{item}\",\"quantity\":\"Infinity\"}}]')", "22023", "INVALID_QUANTITY"),
    ("decrement_inventory_many('[{{\"inventory_id\":\"{item}\",\"quantity\":true}}]')", "22023", "INVALID_QUANTITY"),
    ("decrement_inventory_many('[{{\"inventory_id\":\"{item}\",\"quantity\":-3}}]')", "22023", "INVALID_QUANTITY"),
    ("decrement_inventory_many('[{{\"inventory_id\":\"{item}\",\"quantity\":1e99}}]')", "22023", "INVALID_QUANTITY"),
    ("decrement_inventory_many('[{{\"inventory_id\":\"{item}\",\"quantity\":\"1; DROP TABLE x\"}}]')", "22023", "INVALID_QUANTITY"),
    ("decrement_inventory_many('[{{\"inventory_id\":\"nope\",\"quantity\":1}}]')", "22023", "INVALID_INPUT"),
    ("decrement_inventory_many('[{{\"inventory_id\":42,\"quantity\":1}}]')", "22023", "INVALID_INPUT"),
    # read as PostgreSQL reads a uuid: a hyphen only after a group of four digits
    ("decrement_inventory_many('[{{\"inventory_id\":\"----a0eebc999c0b4ef8bb6d6bb9bd380a11\",\"quantity\":1}}]')", "22023", "INVALID_INPUT"),
    ("decrement_inventory_many((SELECT jsonb_agg(jsonb_build_object('inventory_id', gen_random_uuid(), 'quantity', 1)) FROM generate_series(1, 1001)))", "22023", "INVALID_INPUT"),
    ("decrement_inventory_many('[{{\"inventory_id\":\"{item}\",\"quantity\":6}},{{\"inventory_id\":\"{item}\",\"quantity\":5}}]')", "PT409", "INSUFFICIENT_INVENTORY"),
    ("decrement_inventory_many('[{{\"inventory_id\":\"{item}\",\"quantity\":1}},{{\"inventory_id\":\"%s\",\"quantity\":1}}]')" % MISSING, "PT404", "NOT_FOUND"),
    ("decrement_inventory_many('[{{')", "22P02", None),
    # increment / adjust / create / get
    ("increment_inventory('{item}', 0)", "22023", "INVALID_QUANTITY"),
    ("increment_inventory('{item}', 'NaN')", "22023", "INVALID_QUANTITY"),
    ("increment_inventory('%s', 1)" % MISSING, "PT404", "NOT_FOUND"),
    ("adjust_inventory('{item}', -1, 10)", "22023", "INVALID_QUANTITY"),
    ("adjust_inventory('{item}', 5)", "22023", "INVALID_INPUT"),
    ("adjust_inventory('{item}', 5, 'NaN')", "22023", "INVALID_QUANTITY"),
    ("adjust_inventory('{item}', 5, 9)", "PT409", "QUANTITY_MISMATCH"),
    ("adjust_inventory('{item}', 1, 10)", "PT409", "BELOW_RESERVED"),
    ("adjust_inventory('%s', 1, 1)" % MISSING, "PT404", "NOT_FOUND"),
    ("create_item(p_quantity => -1)", "22023", "INVALID_QUANTITY"),
    ("create_item(p_quantity => 'NaN')", "22023", "INVALID_QUANTITY"),
    # an id that exists, with other attributes (the same call again would be answered)
    ("create_item(p_quantity => 1, p_id => '{item}')", "PT409", "ITEM_EXISTS"),
    ("create_batch(p_id => '{batch}', p_zone => 'elsewhere')", "PT409", "BATCH_EXISTS"),
    ("create_batch(p_zone => repeat('z', 1025))", "22023", "INVALID_INPUT"),
    ("get_inventory('%s')" % MISSING, "PT404", "NOT_FOUND"),
    # reservations
    ("reserve_inventory('[]')", "22023", "INVALID_INPUT"),
    ("reserve_inventory('[{{\"inventory_id\":\"{item}\",\"quantity\":1}}]', p_ttl_seconds => 0)", "22023", "INVALID_INPUT"),
    ("reserve_inventory('[{{\"inventory_id\":\"{item}\",\"quantity\":1}}]', p_ttl_seconds => 2592001)", "22023", "INVALID_INPUT"),
    ("reserve_inventory('[{{\"inventory_id\":\"{item}\",\"quantity\":99}}]')", "PT409", "INSUFFICIENT_INVENTORY"),
    ("reserve_inventory('[{{\"inventory_id\":\"%s\",\"quantity\":1}}]')" % MISSING, "PT404", "NOT_FOUND"),
    ("commit_reservation(NULL)", "22023", "INVALID_INPUT"),
    ("commit_reservation('%s')" % MISSING, "PT404", "NOT_FOUND"),
    ("commit_reservation('{res}', p_inventory_ids => ARRAY[]::uuid[])", "22023", "INVALID_INPUT"),
    ("commit_reservation('{res}', p_inventory_ids => ARRAY[NULL]::uuid[])", "22023", "INVALID_INPUT"),
    ("commit_reservation('{res}', p_inventory_ids => ARRAY['%s']::uuid[])" % MISSING, "22023", "INVALID_INPUT"),
    ("release_reservation('%s')" % MISSING, "PT404", "NOT_FOUND"),
    ("extend_reservation('{res}', p_ttl_seconds => -5)", "22023", "INVALID_INPUT"),
    ("expire_reservations(0)", "22023", "INVALID_INPUT"),
    ("get_reservation('%s')" % MISSING, "PT404", "NOT_FOUND"),
    # batches
    ("claim_batch(NULL, 'd')", "22023", "INVALID_INPUT"),
    ("claim_batch('{batch}', NULL)", "22023", "INVALID_INPUT"),
    ("claim_batch('{batch}', '')", "22023", "INVALID_INPUT"),
    ("claim_batch('{batch}', repeat('d', 256))", "22023", "INVALID_INPUT"),
    ("claim_batch('{batch}', 'd', p_lease_seconds => 0)", "22023", "INVALID_INPUT"),
    ("claim_batch('{batch}', 'd', p_max_active => 0)", "22023", "INVALID_INPUT"),
    ("claim_batch('%s', 'd')" % MISSING, "PT404", "NOT_FOUND"),
    ("claim_next_batch(NULL)", "22023", "INVALID_INPUT"),
    ("claim_next_batch('d', p_lease_seconds => 604801)", "22023", "INVALID_INPUT"),
    ("complete_batch('%s', 'd')" % MISSING, "PT404", "NOT_FOUND"),
    ("unclaim_batch('{batch}', 'nobody')", "PT403", "BATCH_NOT_HELD"),
    # packing
    ("increment_packing_quantity('{line}')", "22023", "INVALID_INPUT"),
    ("increment_packing_quantity('%s', p_session_id => '{session}')" % MISSING, "PT404", "PROGRESS_NOT_FOUND"),
    ("increment_packing_quantity('{line}', p_session_id => '%s')" % MISSING, "PT404", "SESSION_NOT_FOUND"),
    ("increment_packing_quantity('{line}', p_session_id => '{session}', p_quantity => 0)", "22023", "INVALID_QUANTITY"),
    ("increment_packing_quantity('{line}', p_session_id => '{session}', p_quantity => 10001)", "22023", "INVALID_QUANTITY"),
    ("increment_packing_quantity('{line}', p_session_id => '{session}', p_quantity => 3)", "PT409", "ALREADY_FULLY_PACKED"),
    ("decrement_packing_quantity(NULL, '{session}')", "22023", "INVALID_INPUT"),
    ("decrement_packing_quantity('{line}', '{session}')", "PT409", "NOTHING_TO_UNPACK"),
    # stripe_item, and striped items refusing (nothing gathered stays gathered)
    ("stripe_item(NULL, 2)", "22023", "INVALID_INPUT"),
    ("stripe_item('{item}', NULL)", "22023", "INVALID_INPUT"),
    ("stripe_item('{item}', 1)", "22023", "INVALID_INPUT"),
    ("stripe_item('{item}', -2)", "22023", "INVALID_INPUT"),
    ("stripe_item('{item}', 257)", "22023", "INVALID_INPUT"),
    ("stripe_item('{item}', 2, p_lock_timeout_ms => 0)", "22023", "INVALID_INPUT"),
    ("stripe_item('%s', 2)" % MISSING, "PT404", "NOT_FOUND"),
    ("decrement_inventory('{striped}', 11)", "PT409", "INSUFFICIENT_INVENTORY"),
    ("decrement_inventory_many('[{{\"inventory_id\":\"{striped}\",\"quantity\":11}}]')", "PT409", "INSUFFICIENT_INVENTORY"),
    ("reserve_inventory('[{{\"inventory_id\":\"{striped}\",\"quantity\":11}}]')", "PT409", "INSUFFICIENT_INVENTORY"),
    ("adjust_inventory('{striped}', 5, p_expected_quantity => 1)", "PT409", "QUANTITY_MISMATCH"),
    ("adjust_inventory('{striped}', 5, p_expected_quantity => -1)", "22023", "INVALID_QUANTITY"),
    # reservations on a bound table ({src}: text ids, integer quantity and reserved)
    ("bound_reserve(NULL, '[{{\"item_id\":\"k1\",\"quantity\":1}}]')", "22023", "INVALID_INPUT"),
    ("bound_reserve('no_such_source', '[{{\"item_id\":\"k1\",\"quantity\":1}}]')", "PT404", "NOT_FOUND"),
    ("bound_reserve('{plain}', '[{{\"item_id\":\"k1\",\"quantity\":1}}]')", "22023", "INVALID_INPUT"),
    ("bound_reserve('{src}', NULL)", "22023", "INVALID_INPUT"),
    ("bound_reserve('{src}', '[]')", "22023", "INVALID_INPUT"),
    ("bound_reserve('{src}', '{{\"item_id\":\"k1\"}}')", "22023", "INVALID_INPUT"),
    ("bound_reserve('{src}', '[{{\"item_id\":\"\",\"quantity\":1}}]')", "22023", "INVALID_INPUT"),
    ("bound_reserve('{src}', '[{{\"item_id\":\"k1\",\"quantity\":1.5}}]')", "22023", "INVALID_QUANTITY"),
    # more than the integer column holds on top of its stock (was 22003)
    ("bound_increment('{src}', 'k1', 2147483647)", "22023", "INVALID_QUANTITY"),
    ("bound_reserve('{src}', '[{{\"item_id\":\"k1\",\"quantity\":3000000000}}]')", "22023", "INVALID_QUANTITY"),
    ("bound_reserve('{src}', '[{{\"item_id\":\"k1\",\"quantity\":-1}}]')", "22023", "INVALID_QUANTITY"),
    ("bound_reserve('{src}', '[{{\"item_id\":\"k1\",\"quantity\":1}}]', p_ttl_seconds => 0)", "22023", "INVALID_INPUT"),
    ("bound_reserve('{src}', '[{{\"item_id\":\"k1\",\"quantity\":1}}]', p_lock_timeout_ms => 0)", "22023", "INVALID_INPUT"),
    ("bound_reserve('{src}', '[{{\"item_id\":\"k1\",\"quantity\":1}},{{\"item_id\":\"k1\",\"quantity\":9}}]')", "PT409", "INSUFFICIENT_INVENTORY"),
    ("bound_reserve('{src}', '[{{\"item_id\":\"k1\",\"quantity\":1}},{{\"item_id\":\"zz\",\"quantity\":1}}]')", "PT404", "NOT_FOUND"),
    # a NULL id is bad input, as in the C functions (was NOT_FOUND, PT404)
    ("get_inventory(NULL)", "22023", "INVALID_INPUT"),
    ("reconcile_source(NULL)", "22023", "INVALID_INPUT"),
    ("get_reservation(NULL)", "22023", "INVALID_INPUT"),
    # nested deeper than serde_json's 128 levels (was a Rust panic, XX000)
    ("bound_reserve('{src}', '[" + "[" * 200 + "]" * 200 + "]')", "22023", "INVALID_INPUT"),
    ("bound_decrement_many('{src}', '[" + "[" * 200 + "]" * 200 + "]')", "22023", "INVALID_INPUT"),
    ("bound_commit_reservation(NULL)", "22023", "INVALID_INPUT"),
    ("bound_commit_reservation('{bres}', ARRAY[]::text[])", "22023", "INVALID_INPUT"),
    ("bound_commit_reservation('{bres}', ARRAY[NULL]::text[])", "22023", "INVALID_INPUT"),
    ("bound_commit_reservation('{bres}', ARRAY['zz'])", "22023", "INVALID_INPUT"),
    ("commit_reservation('{bres}', p_inventory_ids => ARRAY['%s']::uuid[])" % MISSING, "22023", "INVALID_INPUT"),
    ("bound_release_reservation('%s')" % MISSING, "PT404", "NOT_FOUND"),
    ("bound_release_reservation('{res}', ARRAY['not-a-line'])", "22023", "INVALID_INPUT"),
    ("unbind_source('{src}')", "PT409", "SOURCE_IN_USE"),
]


def state(conn):
    """Everything a bad call could have touched."""
    return conn.execute(f"""
        SELECT (SELECT count(*) FROM {S}.ledger), (SELECT sum(quantity) FROM {S}.items),
               (SELECT count(*) FROM {S}.items), (SELECT count(*) FROM {S}.batches),
               (SELECT sum(reserved) FROM {S}.items), (SELECT count(*) FROM {S}.reservations),
               -- (not those that may expire during the run: the background
               -- sweeper finishes them, which is not a bad call's doing)
               (SELECT count(*) FROM {S}.reservations
                 WHERE status = 'active' AND expires_at > now() + interval '1 minute'),
               (SELECT count(*) FROM {S}.batches WHERE status <> 'available'),
               (SELECT sum(quantity_packed) FROM {S}.packing_progress),
               (SELECT count(*) FROM {S}.idempotency_keys),
               (SELECT string_agg(quantity::text, ',' ORDER BY item_id, stripe) FROM {S}.item_stripes),
               (SELECT sum(stripes) FROM {S}.items),
               (SELECT string_agg(id || ':' || qty || '/' || held, ',' ORDER BY id) FROM public.bad_inputs_inv),
               (SELECT count(*) FROM {S}.bound_reservation_lines), (SELECT count(*) FROM {S}.bindings)""").fetchone()


def main():
    conn = psycopg.connect("", autocommit=True)
    item = conn.execute(f"SELECT {S}.create_item(p_quantity => 10, p_sku => 'bad-' || gen_random_uuid())->>'inventory_id'").fetchone()[0]
    res = conn.execute(f"SELECT {S}.reserve_inventory(jsonb_build_array(jsonb_build_object('inventory_id', %s::text, 'quantity', 2)))->>'reservation_id'", (item,)).fetchone()[0]
    batch = conn.execute(f"SELECT {S}.create_batch()->>'batch_id'").fetchone()[0]
    striped = conn.execute(f"SELECT {S}.create_item(p_quantity => 10, p_sku => 'bad-' || gen_random_uuid())->>'inventory_id'").fetchone()[0]
    conn.execute(f"SELECT {S}.stripe_item(%s, 4)", (striped,))
    session, line, order = (str(uuid.uuid4()) for _ in range(3))
    conn.execute(f"INSERT INTO {S}.picking_sessions (id, status) VALUES (%s, 'packing')", (session,))
    conn.execute(f"INSERT INTO {S}.picking_session_items VALUES (%s, %s, 5)", (session, item))
    conn.execute(f"INSERT INTO {S}.orders (id) VALUES (%s)", (order,))
    conn.execute(f"INSERT INTO {S}.packing_progress (id, picking_session_id, order_id, product_id, quantity_needed) "
                 "VALUES (%s, %s, %s, %s, 2)", (line, session, order, item))
    conn.execute("DROP TABLE IF EXISTS public.bad_inputs_inv, public.bad_inputs_plain")
    conn.execute("CREATE TABLE public.bad_inputs_inv (id text PRIMARY KEY, qty integer NOT NULL CHECK (qty >= 0), "
                 "held integer NOT NULL DEFAULT 0)")
    conn.execute("INSERT INTO public.bad_inputs_inv VALUES ('k1', 5, 0), ('k2', 5, 0)")
    conn.execute("CREATE TABLE public.bad_inputs_plain (id text PRIMARY KEY, qty integer NOT NULL CHECK (qty >= 0))")
    src, plain = (f"bad_{uuid.uuid4().hex[:8]}" for _ in range(2))
    conn.execute(f"SELECT {S}.bind_stock_source(%s, 'public.bad_inputs_inv', 'id', 'qty', p_reserved_column => 'held')", (src,))
    conn.execute(f"SELECT {S}.bind_stock_source(%s, 'public.bad_inputs_plain', 'id', 'qty')", (plain,))
    bres = conn.execute(f"""SELECT {S}.bound_reserve(%s, '[{{"item_id": "k1", "quantity": 2}}]')->>'reservation_id'""",
                        (src,)).fetchone()[0]
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    # Holds left by earlier stages (TTLs of seconds) are swept now, not while
    # the bad calls run (the background sweeper would change the state).
    while int(conn.execute(f"SELECT {S}.expire_reservations()->>'expired'").fetchone()[0]):
        pass
    before = state(conn)
    passed = failed = 0
    for sql, want_state, want_code in CASES:
        text = "SELECT " + S + "." + sql.format(item=item, res=res, batch=batch, session=session, line=line, striped=striped,
                                           src=src, plain=plain, bres=bres)
        try:
            conn.execute(text)
            got = ("none", None, "")
        except psycopg.Error as e:
            try:
                code = json.loads(e.diag.message_detail or "{}").get("code")
            except ValueError:
                code = None
            got = (e.sqlstate, code, e.diag.message_primary or "")
        ok = got[0] == want_state and (want_code is None or (got[1] == want_code and got[2].startswith(want_code)))
        alive = conn.execute("SELECT pg_backend_pid()").fetchone()[0] == pid
        if ok and alive:
            passed += 1
        else:
            failed += 1
            print(f"FAIL {sql}: got {got[0]} {got[1]} ({got[2][:80]}), want {want_state} {want_code}, backend alive {alive}")
    after = state(conn)
    if before == after:
        passed += 1
    else:
        failed += 1
        print(f"FAIL partial write: state before {before}, after {after}")
    print(f"bad_inputs: {len(CASES)} distinct bad inputs tried, state unchanged: {before == after}")
    print(f"bad_inputs: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
