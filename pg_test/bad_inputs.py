#!/usr/bin/env python3
"""Bad input, every function: each call must fail with its documented
SQLSTATE and code, the backend must survive it, and nothing may be written.

Prints one line per case that fails, then `bad_inputs: N passed, N failed`.
Uses the PG* environment (pg_test/lib.sh's start_cluster).
"""
import json
import uuid

from checks import S, Checks, attempt, call, connect

MISSING = "00000000-0000-0000-0000-0000000000ff"
DEFAULT = "00000000-0000-0000-0000-000000000000"  # the default location

# (sql, sqlstate, code[, text]): code None = PostgreSQL's own error (e.g.
# 22P02 when an argument can't even be converted to its declared type); text,
# when given, must appear in the error's message.
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
    # partial commits: p_lines (units per line) and p_rest ({res} holds 2 of {item})
    ("commit_reservation('{res}', p_lines => '[]')", "22023", "INVALID_INPUT"),
    ("commit_reservation('{res}', p_lines => '{{}}')", "22023", "INVALID_INPUT"),
    ("commit_reservation('{res}', p_lines => '[1]')", "22023", "INVALID_INPUT"),
    ("commit_reservation('{res}', p_lines => '[{{\"inventory_id\":\"{item}\"}}]')", "22023", "INVALID_QUANTITY"),
    ("commit_reservation('{res}', p_lines => '[{{\"inventory_id\":\"{item}\",\"quantity\":0}}]')", "22023", "INVALID_QUANTITY"),
    ("commit_reservation('{res}', p_lines => '[{{\"inventory_id\":\"{item}\",\"quantity\":-1}}]')", "22023", "INVALID_QUANTITY"),
    ("commit_reservation('{res}', p_lines => '[{{\"inventory_id\":\"{item}\",\"quantity\":\"NaN\"}}]')", "22023", "INVALID_QUANTITY"),
    ("commit_reservation('{res}', p_lines => '[{{\"inventory_id\":\"{item}\",\"quantity\":\"Infinity\"}}]')", "22023", "INVALID_QUANTITY"),
    ("commit_reservation('{res}', p_lines => '[{{\"inventory_id\":\"{item}\",\"quantity\":1e99}}]')", "22023", "INVALID_QUANTITY"),
    ("commit_reservation('{res}', p_lines => '[{{\"inventory_id\":\"{item}\",\"quantity\":true}}]')", "22023", "INVALID_QUANTITY"),
    # more than the line holds, also as two lines naming it
    ("commit_reservation('{res}', p_lines => '[{{\"inventory_id\":\"{item}\",\"quantity\":3}}]')", "22023", "INVALID_INPUT", "more units than"),
    ("commit_reservation('{res}', p_lines => '[{{\"inventory_id\":\"{item}\",\"quantity\":2}},{{\"inventory_id\":\"{item}\",\"quantity\":1}}]')", "22023", "INVALID_INPUT"),
    ("commit_reservation('{res}', p_lines => '[{{\"inventory_id\":\"%s\",\"quantity\":1}}]')" % MISSING, "22023", "INVALID_INPUT", "not lines of this reservation"),
    ("commit_reservation('{res}', p_lines => '[{{\"inventory_id\":\"nope\",\"quantity\":1}}]')", "22023", "INVALID_INPUT"),
    ("commit_reservation('{res}', p_lines => '[{{\"inventory_id\":\"{item}\",\"quantity\":1,\"location_id\":\"%s\"}}]')" % MISSING, "22023", "INVALID_INPUT"),
    ("commit_reservation('{res}', p_inventory_ids => ARRAY['{item}']::uuid[], p_lines => '[{{\"inventory_id\":\"{item}\",\"quantity\":1}}]')", "22023", "INVALID_INPUT", "p_inventory_ids"),
    ("commit_reservation('{res}', p_lines => '[{{\"inventory_id\":\"{item}\",\"quantity\":1}}]', p_rest => 'hold')", "22023", "INVALID_INPUT", "p_rest"),
    ("commit_reservation('{res}', p_rest => '')", "22023", "INVALID_INPUT", "p_rest"),
    ("commit_reservation('%s', p_lines => '[{{\"inventory_id\":\"{item}\",\"quantity\":1}}]')" % MISSING, "PT404", "NOT_FOUND"),
    ("commit_reservation('{res}', p_lines => '[" + "[" * 200 + "]" * 200 + "]')", "22023", "INVALID_INPUT"),
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
    # stripe_item at a location: the errors of a sale there ({litem} has
    # no level at {loc2}; {off} is inactive)
    ("stripe_item('{litem}', 2, p_location_id => '%s')" % MISSING, "PT404", "NOT_FOUND", "location"),
    ("stripe_item('%s', 2, p_location_id => '{loc}')" % MISSING, "PT404", "NOT_FOUND", "inventory item"),
    ("stripe_item('{litem}', 2, p_location_id => '{loc2}')", "PT404", "LEVEL_NOT_FOUND"),
    ("stripe_item('{litem}', 2, p_location_id => '{off}')", "PT409", "LOCATION_UNAVAILABLE", "inactive"),
    ("stripe_item('{litem}', 1, p_location_id => '{loc}')", "22023", "INVALID_INPUT", "p_stripes"),
    ("stripe_item('{litem}', 2, p_location_id => 'not-a-uuid')", "22P02", None),
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
    # partial commits on a bound source ({bres} holds 2 of k1; an integer column)
    ("bound_commit_reservation('{bres}', p_lines => '[]')", "22023", "INVALID_INPUT"),
    ("bound_commit_reservation('{bres}', p_lines => '[{{\"quantity\":1}}]')", "22023", "INVALID_INPUT"),
    ("bound_commit_reservation('{bres}', p_lines => '[{{\"item_id\":true,\"quantity\":1}}]')", "22023", "INVALID_INPUT"),
    ("bound_commit_reservation('{bres}', p_lines => '[{{\"item_id\":\"k1\",\"quantity\":0}}]')", "22023", "INVALID_QUANTITY"),
    ("bound_commit_reservation('{bres}', p_lines => '[{{\"item_id\":\"k1\",\"quantity\":\"NaN\"}}]')", "22023", "INVALID_QUANTITY"),
    ("bound_commit_reservation('{bres}', p_lines => '[{{\"item_id\":\"k1\",\"quantity\":0.5}}]')", "22023", "INVALID_QUANTITY"),
    ("bound_commit_reservation('{bres}', p_lines => '[{{\"item_id\":\"k1\",\"quantity\":3}}]')", "22023", "INVALID_INPUT", "more units than"),
    ("bound_commit_reservation('{bres}', p_lines => '[{{\"item_id\":\"zz\",\"quantity\":1}}]')", "22023", "INVALID_INPUT"),
    ("bound_commit_reservation('{bres}', ARRAY['k1'], p_lines => '[{{\"item_id\":\"k1\",\"quantity\":1}}]')", "22023", "INVALID_INPUT", "p_item_ids"),
    ("bound_commit_reservation('{bres}', p_lines => '[{{\"item_id\":\"k1\",\"quantity\":1}}]', p_rest => 'KEEP')", "22023", "INVALID_INPUT", "p_rest"),
    ("bound_release_reservation('%s')" % MISSING, "PT404", "NOT_FOUND"),
    ("bound_release_reservation('{res}', ARRAY['not-a-line'])", "22023", "INVALID_INPUT"),
    ("unbind_source('{src}')", "PT409", "SOURCE_IN_USE"),
    # a table keyed by (item, location) ({lsrc}: text ids and locations; k1
    # at w1): which row a call means must be known
    ("bound_decrement('{lsrc}', 'k1', 1)", "22023", "INVALID_INPUT", "p_location"),
    ("bound_increment('{lsrc}', 'k1', 1)", "22023", "INVALID_INPUT", "p_location"),
    ("bound_adjust('{lsrc}', 'k1', 1, p_force => true)", "22023", "INVALID_INPUT", "p_location"),
    ("bound_get('{lsrc}', 'k1')", "22023", "INVALID_INPUT", "p_location"),
    ("bound_decrement('{lsrc}', 'k1', 1, p_location => '')", "22023", "INVALID_INPUT", "p_location"),
    ("bound_decrement('{lsrc}', 'k1', 1, p_location => 'w9')", "PT404", "NOT_FOUND"),
    ("bound_decrement('{lsrc}', 'k1', 9, p_location => 'w1')", "PT409", "INSUFFICIENT_INVENTORY"),
    ("bound_decrement('{plain}', 'k1', 1, p_location => 'w1')", "22023", "INVALID_INPUT", "p_location"),
    ("bound_decrement_many('{lsrc}', '[{{\"item_id\":\"k1\",\"quantity\":1}}]')", "22023", "INVALID_INPUT", "location"),
    ("bound_decrement_many('{lsrc}', '[{{\"item_id\":\"k1\",\"location\":true,\"quantity\":1}}]')", "22023", "INVALID_INPUT", "location"),
    ("bound_decrement_many('{lsrc}', '[{{\"item_id\":\"k1\",\"location\":\"w1\",\"quantity\":1}},{{\"item_id\":\"k1\",\"location\":\"w2\",\"quantity\":1}}]')", "PT404", "NOT_FOUND"),
    ("bound_decrement_many('{plain}', '[{{\"item_id\":\"k1\",\"location\":\"w1\",\"quantity\":1}}]')", "22023", "INVALID_INPUT", "location"),
    ("bound_reserve('{lsrc}', '[{{\"item_id\":\"k1\",\"location\":\"w1\",\"quantity\":1}}]')", "22023", "INVALID_INPUT", "p_source"),
    # a binding whose table was dropped: bound_get's answer (was 42601 with
    # the generated SQL in the error's context)
    ("reconcile_source('{gone}')", "22023", "INVALID_INPUT"),
    ("bound_get('{gone}', '1')", "22023", "INVALID_INPUT"),
    # free text past its limit (was 54000 for a SKU past a btree entry, and a
    # 10 MB name was stored)
    ("create_item(p_sku => repeat('x', 3000))", "22023", "INVALID_INPUT"),
    ("create_item(p_sku => repeat(md5('x'), 327680))", "22023", "INVALID_INPUT"),
    ("create_item(p_name => repeat(md5('x'), 327680))", "22023", "INVALID_INPUT"),
    # packing on a warehouse's own tables ({psrc}: text ids)
    ("bound_increment_packing_quantity('no_such_source', 'l1', 's1')", "PT404", "NOT_FOUND"),
    ("bound_increment_packing_quantity('{src}', 'l1', 's1')", "22023", "INVALID_INPUT"),
    ("bound_increment_packing_quantity('{psrc}', 'l1', 'nope')", "PT404", "SESSION_NOT_FOUND"),
    ("bound_increment_packing_quantity('{psrc}', 'nope', 's1')", "PT404", "PROGRESS_NOT_FOUND"),
    ("bound_increment_packing_quantity('{psrc}', 'l1', 's1', 'p2')", "PT403", "PROGRESS_SESSION_MISMATCH"),
    ("bound_increment_packing_quantity('{psrc}', 'l1', 's1', p_quantity => 2)", "PT409", "ALREADY_FULLY_PACKED"),
    ("bound_increment_packing_quantity('{psrc}', 'l1', 's1', p_quantity => 0)", "22023", "INVALID_QUANTITY"),
    ("bound_decrement_packing_quantity('{psrc}', 'l1', 's1')", "PT409", "NOTHING_TO_UNPACK"),
    ("bound_increment_packing_quantity('{psrc}', 'l1', NULL)", "22023", "INVALID_INPUT"),
    # statuses outside the bound vocabulary: an enum status column's labels
    ("bind_packing_source('bad_p3', 'bad_wh.sessions', 'bad_wh.lines', 'bad_wh.orders', 'bad_wh.picked', p_completed_values => ARRAY['']::text[])", "22023", "INVALID_INPUT"),
    ("bind_packing_source('bad_p3', 'bad_wh.sessions', 'bad_wh.lines', 'bad_wh.orders', 'bad_wh.picked', p_closed_values => ARRAY['new', 'shipped'], p_completed_values => ARRAY['shipped'])", "22023", "INVALID_INPUT"),
    # stock events
    ("set_reorder_point(NULL, 1)", "22023", "INVALID_INPUT"),
    ("set_reorder_point('{item}', -1)", "22023", "INVALID_QUANTITY"),
    ("set_reorder_point('{item}', 'NaN')", "22023", "INVALID_QUANTITY"),
    ("set_reorder_point('{item}', 'Infinity')", "22023", "INVALID_QUANTITY"),
    ("set_reorder_point('{item}', 1e13)", "22023", "INVALID_QUANTITY"),
    ("set_reorder_point('%s', 1)" % MISSING, "PT404", "NOT_FOUND"),
    ("low_stock_items(0)", "22023", "INVALID_INPUT"),
    ("low_stock_items(NULL)", "22023", "INVALID_INPUT"),
    ("low_stock_items(100001)", "22023", "INVALID_INPUT"),
    ("create_event_consumer(NULL)", "22023", "INVALID_INPUT"),
    ("create_event_consumer('')", "22023", "INVALID_INPUT"),
    ("read_events('no-such-consumer')", "PT404", "NOT_FOUND"),
    ("read_events('bad-inputs', 0)", "22023", "INVALID_INPUT"),
    ("read_events('bad-inputs', -1)", "22023", "INVALID_INPUT"),
    ("read_events('bad-inputs', 1001)", "22023", "INVALID_INPUT"),
    ("read_events('bad-inputs', 10, 0)", "22023", "INVALID_INPUT"),
    ("read_events('bad-inputs', 10, 86401)", "22023", "INVALID_INPUT"),
    ("ack_events('bad-inputs', NULL)", "22023", "INVALID_INPUT"),
    ("ack_events('bad-inputs', ARRAY[]::bigint[])", "22023", "INVALID_INPUT"),
    ("ack_events('bad-inputs', ARRAY[NULL]::bigint[])", "22023", "INVALID_INPUT"),
    ("ack_events('bad-inputs', ARRAY[-1])", "PT404", "NOT_FOUND"),
    ("ack_events('no-such-consumer', ARRAY[1])", "PT404", "NOT_FOUND"),
    ("drop_event_consumer('no-such-consumer')", "PT404", "NOT_FOUND"),
    ("purge_events(NULL)", "22023", "INVALID_INPUT"),
    ("purge_events('-1 day')", "22023", "INVALID_INPUT"),
    # locations: {litem} has 10 units at the default location, 5 at {loc},
    # none at {loc2} nor at {off} (inactive), 3 at {unsell} (not sellable)
    ("create_location(NULL)", "22023", "INVALID_INPUT", "p_code"),
    ("create_location('')", "22023", "INVALID_INPUT", "p_code"),
    ("create_location('bad-new', p_priority => NULL)", "22023", "INVALID_INPUT", "p_priority"),
    ("create_location('{loc_code}')", "PT409", "LOCATION_EXISTS", "code"),
    ("create_location('bad-new', p_id => '{loc}')", "PT409", "LOCATION_EXISTS", "id"),
    ("create_location('bad-new', p_id => '%s')" % DEFAULT, "PT409", "LOCATION_EXISTS", "id"),
    ("create_location('default')", "PT409", "LOCATION_EXISTS", "code"),
    ("update_location(NULL)", "22023", "INVALID_INPUT", "p_location_id"),
    ("update_location('%s', p_name => 'x')" % MISSING, "PT404", "NOT_FOUND", "location"),
    ("update_location('not-a-uuid')", "22P02", None),
    ("update_location('{loc}', p_active => false)", "PT409", "LOCATION_IN_USE"),
    ("update_location('{unsell}', p_active => false)", "PT409", "LOCATION_IN_USE"),
    ("update_location('%s', p_active => false)" % DEFAULT, "22023", "INVALID_INPUT", "default location"),
    ("update_location('%s', p_sellable => false)" % DEFAULT, "22023", "INVALID_INPUT", "default location"),
    ("transfer_inventory(NULL, '{loc}', '{loc2}', 1)", "22023", "INVALID_INPUT", "p_inventory_id"),
    ("transfer_inventory('{litem}', NULL, '{loc2}', 1)", "22023", "INVALID_INPUT", "p_from_location_id"),
    ("transfer_inventory('{litem}', '{loc}', NULL, 1)", "22023", "INVALID_INPUT", "p_to_location_id"),
    ("transfer_inventory('{litem}', '{loc}', '{loc}', 1)", "22023", "INVALID_INPUT", "same location"),
    ("transfer_inventory('{litem}', '%s', '%s', 1)" % (DEFAULT, DEFAULT), "22023", "INVALID_INPUT", "same location"),
    ("transfer_inventory('{litem}', '{loc}', '{loc2}', NULL)", "22023", "INVALID_QUANTITY"),
    ("transfer_inventory('{litem}', '{loc}', '{loc2}', 0)", "22023", "INVALID_QUANTITY"),
    ("transfer_inventory('{litem}', '{loc}', '{loc2}', -1)", "22023", "INVALID_QUANTITY"),
    ("transfer_inventory('{litem}', '{loc}', '{loc2}', 'NaN')", "22023", "INVALID_QUANTITY"),
    ("transfer_inventory('{litem}', '{loc}', '{loc2}', 'Infinity')", "22023", "INVALID_QUANTITY"),
    ("transfer_inventory('{litem}', '{loc}', '{loc2}', 1e13)", "22023", "INVALID_QUANTITY"),
    ("transfer_inventory('{litem}', '{loc}', '{loc2}', 1, p_lock_timeout_ms => 0)", "22023", "INVALID_INPUT"),
    ("transfer_inventory('{litem}', '{loc}', '{loc2}', 6)", "PT409", "INSUFFICIENT_INVENTORY", "5 available"),
    ("transfer_inventory('{litem}', '%s', '{loc}', 11)" % DEFAULT, "PT409", "INSUFFICIENT_INVENTORY", "10 available"),
    ("transfer_inventory('{striped}', '%s', '{loc}', 11)" % DEFAULT, "PT409", "INSUFFICIENT_INVENTORY"),
    ("transfer_inventory('{litem}', '{loc2}', '{loc}', 1)", "PT404", "LEVEL_NOT_FOUND"),
    ("transfer_inventory('{litem}', '{off}', '{loc}', 1)", "PT404", "LEVEL_NOT_FOUND"),
    ("transfer_inventory('{litem}', '{loc}', '{off}', 1)", "PT409", "LOCATION_UNAVAILABLE", "inactive"),
    ("transfer_inventory('{litem}', '%s', '{loc}', 1)" % MISSING, "PT404", "NOT_FOUND", "location"),
    ("transfer_inventory('{litem}', '{loc}', '%s', 1)" % MISSING, "PT404", "NOT_FOUND", "location"),
    ("transfer_inventory('%s', '{loc}', '{loc2}', 1)" % MISSING, "PT404", "NOT_FOUND", "inventory item"),
    ("transfer_inventory('{litem}', 'not-a-uuid', '{loc2}', 1)", "22P02", None),
    # transfers in transit: {titem} has 2 units in transit to {loc2}
    # ({transit}), and a cancelled shipment ({landed})
    ("transfer_inventory('{litem}', '{loc}', '{loc2}', 6, p_receive => false)", "PT409", "INSUFFICIENT_INVENTORY", "5 available"),
    ("transfer_inventory('{litem}', '{loc}', '{off}', 1, p_receive => false)", "PT409", "LOCATION_UNAVAILABLE", "inactive"),
    ("transfer_inventory('{litem}', '{loc}', '%s', 1, p_receive => false)" % MISSING, "PT404", "NOT_FOUND", "location"),
    ("transfer_inventory('{litem}', '{loc}', '{loc}', 1, p_receive => false)", "22023", "INVALID_INPUT", "same location"),
    ("transfer_inventory('{litem}', '{loc2}', '{loc}', 1, p_receive => false)", "PT404", "LEVEL_NOT_FOUND"),
    ("transfer_inventory('{litem}', '{loc}', '{loc2}', 0, p_receive => false)", "22023", "INVALID_QUANTITY"),
    ("receive_transfer(NULL)", "22023", "INVALID_INPUT", "p_transfer_id"),
    ("receive_transfer('not-a-uuid')", "22P02", None),
    ("receive_transfer('{transit}', 0)", "22023", "INVALID_QUANTITY"),
    ("receive_transfer('{transit}', -1)", "22023", "INVALID_QUANTITY"),
    ("receive_transfer('{transit}', 'NaN')", "22023", "INVALID_QUANTITY"),
    ("receive_transfer('{transit}', 'Infinity')", "22023", "INVALID_QUANTITY"),
    ("receive_transfer('{transit}', 1e13)", "22023", "INVALID_QUANTITY"),
    ("receive_transfer('{transit}', 1)", "22023", "INVALID_INPUT", "p_quantity", "shipped quantity 2"),
    ("receive_transfer('{transit}', p_lock_timeout_ms => 0)", "22023", "INVALID_INPUT"),
    ("receive_transfer('%s')" % MISSING, "PT404", "NOT_FOUND", "transfer"),
    ("receive_transfer('{landed}')", "PT409", "TRANSFER_NOT_IN_TRANSIT", "cancelled"),
    ("cancel_transfer(NULL)", "22023", "INVALID_INPUT", "p_transfer_id"),
    ("cancel_transfer('%s')" % MISSING, "PT404", "NOT_FOUND", "transfer"),
    ("cancel_transfer('{landed}')", "PT409", "TRANSFER_NOT_IN_TRANSIT", "cancelled"),
    ("cancel_transfer('{transit}', p_lock_timeout_ms => 700000)", "22023", "INVALID_INPUT"),
    ("update_location('{loc2}', p_active => false)", "PT409", "LOCATION_IN_USE", "in transit"),
    # p_location_id on the stock functions
    ("decrement_inventory('{litem}', 1, p_location_id => '{loc2}')", "PT404", "LEVEL_NOT_FOUND"),
    ("decrement_inventory('{litem}', 6, p_location_id => '{loc}')", "PT409", "INSUFFICIENT_INVENTORY", "5 available"),
    ("decrement_inventory('{litem}', 0, p_location_id => '{loc}')", "22023", "INVALID_QUANTITY"),
    ("decrement_inventory('{litem}', -1, p_location_id => '{loc}')", "22023", "INVALID_QUANTITY"),
    ("decrement_inventory('{litem}', 'NaN', p_location_id => '{loc}')", "22023", "INVALID_QUANTITY"),
    ("decrement_inventory('{litem}', 1, p_location_id => '%s')" % MISSING, "PT404", "NOT_FOUND", "location"),
    ("decrement_inventory('{litem}', 1, p_location_id => '{off}')", "PT409", "LOCATION_UNAVAILABLE", "inactive"),
    ("decrement_inventory('{litem}', 1, p_location_id => '{unsell}')", "PT409", "LOCATION_UNAVAILABLE", "not sellable"),
    ("decrement_inventory('%s', 1, p_location_id => '{loc}')" % MISSING, "PT404", "NOT_FOUND", "inventory item"),
    ("decrement_inventory('{litem}', 1, p_location_id => 'not-a-uuid')", "22P02", None),
    ("increment_inventory('{litem}', 1, p_location_id => '{off}')", "PT409", "LOCATION_UNAVAILABLE", "inactive"),
    ("increment_inventory('{litem}', 1, p_location_id => '%s')" % MISSING, "PT404", "NOT_FOUND", "location"),
    ("increment_inventory('{litem}', 0, p_location_id => '{loc}')", "22023", "INVALID_QUANTITY"),
    ("increment_inventory('{litem}', 'NaN', p_location_id => '{loc}')", "22023", "INVALID_QUANTITY"),
    ("increment_inventory('%s', 1, p_location_id => '{loc}')" % MISSING, "PT404", "NOT_FOUND", "inventory item"),
    ("adjust_inventory('{litem}', 5, 0, p_location_id => '{loc2}')", "PT404", "LEVEL_NOT_FOUND"),
    ("adjust_inventory('{litem}', 5, 9, p_location_id => '{loc}')", "PT409", "QUANTITY_MISMATCH"),
    ("adjust_inventory('{litem}', -1, 5, p_location_id => '{loc}')", "22023", "INVALID_QUANTITY"),
    ("adjust_inventory('{litem}', 'NaN', 5, p_location_id => '{loc}')", "22023", "INVALID_QUANTITY"),
    ("adjust_inventory('{litem}', 5, 0, p_location_id => '{off}')", "PT409", "LOCATION_UNAVAILABLE", "inactive"),
    ("adjust_inventory('{litem}', 5, 5, p_location_id => '%s')" % MISSING, "PT404", "NOT_FOUND", "location"),
    ("get_inventory('{litem}', '{loc2}')", "PT404", "LEVEL_NOT_FOUND"),
    ("get_inventory('%s', '{loc}')" % MISSING, "PT404", "NOT_FOUND"),
    ("set_reorder_point('{litem}', 1, '{loc2}')", "PT404", "LEVEL_NOT_FOUND"),
    ("set_reorder_point('{litem}', -1, '{loc}')", "22023", "INVALID_QUANTITY"),
    ("decrement_inventory_many('[{{\"inventory_id\":\"{litem}\",\"quantity\":1,\"location_id\":\"{loc2}\"}}]')", "PT404", "LEVEL_NOT_FOUND"),
    ("decrement_inventory_many('[{{\"inventory_id\":\"{litem}\",\"quantity\":1,\"location_id\":\"{unsell}\"}}]')", "PT409", "LOCATION_UNAVAILABLE", "not sellable"),
    ("decrement_inventory_many('[{{\"inventory_id\":\"{litem}\",\"quantity\":6,\"location_id\":\"{loc}\"}}]')", "PT409", "INSUFFICIENT_INVENTORY"),
    ("decrement_inventory_many('[{{\"inventory_id\":\"{litem}\",\"quantity\":1,\"location_id\":\"nope\"}}]')", "22023", "INVALID_INPUT"),
    ("decrement_inventory_many('[{{\"inventory_id\":\"{litem}\",\"quantity\":1,\"location_id\":7}}]')", "22023", "INVALID_INPUT"),
    # holds at a location: refused as sales there are; nothing held anywhere
    ("reserve_inventory('[{{\"inventory_id\":\"{litem}\",\"quantity\":1,\"location_id\":\"{loc2}\"}}]')", "PT404", "LEVEL_NOT_FOUND"),
    ("reserve_inventory('[{{\"inventory_id\":\"{litem}\",\"quantity\":6,\"location_id\":\"{loc}\"}}]')", "PT409", "INSUFFICIENT_INVENTORY", "5 available"),
    ("reserve_inventory('[{{\"inventory_id\":\"{litem}\",\"quantity\":1,\"location_id\":\"{unsell}\"}}]')", "PT409", "LOCATION_UNAVAILABLE", "not sellable"),
    ("reserve_inventory('[{{\"inventory_id\":\"{litem}\",\"quantity\":1,\"location_id\":\"{off}\"}}]')", "PT409", "LOCATION_UNAVAILABLE", "inactive"),
    ("reserve_inventory('[{{\"inventory_id\":\"{litem}\",\"quantity\":1,\"location_id\":\"%s\"}}]')" % MISSING, "PT404", "NOT_FOUND", "location"),
    ("reserve_inventory('[{{\"inventory_id\":\"%s\",\"quantity\":1,\"location_id\":\"{loc}\"}}]')" % MISSING, "PT404", "NOT_FOUND", "inventory item"),
    ("reserve_inventory('[{{\"inventory_id\":\"{litem}\",\"quantity\":1,\"location_id\":\"nope\"}}]')", "22023", "INVALID_INPUT"),
    ("reserve_inventory('[{{\"inventory_id\":\"{litem}\",\"quantity\":0,\"location_id\":\"{loc}\"}}]')", "22023", "INVALID_QUANTITY"),
    ("reserve_inventory('[{{\"inventory_id\":\"{litem}\",\"quantity\":1}},{{\"inventory_id\":\"{litem}\",\"quantity\":1,\"location_id\":\"{loc}\"}}]')", "22023", "INVALID_INPUT", "two locations"),
    ("reserve_inventory('[{{\"inventory_id\":\"{litem}\",\"quantity\":11}},{{\"inventory_id\":\"{item}\",\"quantity\":1,\"location_id\":\"{loc}\"}}]')", "PT404", "LEVEL_NOT_FOUND"),
    ("bound_reserve('{src}', '[{{\"item_id\":\"k1\",\"quantity\":1,\"location_id\":\"{loc}\"}}]')", "22023", "INVALID_INPUT", "adopted table"),
    # kits: the components are checked before anything is locked; {item}
    # holds units, so a valid definition of it is KIT_HAS_STOCK
    ("define_kit(NULL, '[{{\"inventory_id\":\"{litem}\",\"quantity\":1}}]')", "22023", "INVALID_INPUT"),
    ("define_kit('{item}', NULL)", "22023", "INVALID_INPUT"),
    ("define_kit('{item}', '[]')", "22023", "INVALID_INPUT"),
    ("define_kit('{item}', '{{}}')", "22023", "INVALID_INPUT"),
    ("define_kit('{item}', '[{{\"inventory_id\":\"{item}\",\"quantity\":1}}]')", "22023", "INVALID_INPUT", "the kit itself"),
    ("define_kit('{item}', '[{{\"inventory_id\":\"nope\",\"quantity\":1}}]')", "22023", "INVALID_INPUT"),
    ("define_kit('{item}', '[{{\"quantity\":1}}]')", "22023", "INVALID_INPUT"),
    ("define_kit('{item}', '[7]')", "22023", "INVALID_INPUT"),
    ("define_kit('{item}', '[{{\"inventory_id\":\"{litem}\",\"quantity\":0}}]')", "22023", "INVALID_QUANTITY"),
    ("define_kit('{item}', '[{{\"inventory_id\":\"{litem}\",\"quantity\":-1}}]')", "22023", "INVALID_QUANTITY"),
    ("define_kit('{item}', '[{{\"inventory_id\":\"{litem}\",\"quantity\":\"x\"}}]')", "22023", "INVALID_QUANTITY"),
    ("define_kit('{item}', '[{{\"inventory_id\":\"{litem}\",\"quantity\":1e13}}]')", "22023", "INVALID_QUANTITY"),
    ("define_kit('{item}', '[{{\"inventory_id\":\"{litem}\",\"quantity\":null}}]')", "22023", "INVALID_QUANTITY"),
    ("define_kit('{item}', '[{{\"inventory_id\":\"{litem}\"}}]')", "22023", "INVALID_QUANTITY"),
    ("define_kit('{item}', (SELECT jsonb_agg(jsonb_build_object('inventory_id', '{litem}', 'quantity', 1)) FROM generate_series(1, 101)))", "22023", "INVALID_INPUT", "at most 100"),
    ("define_kit('{item}', '[{{\"inventory_id\":\"%s\",\"quantity\":1}}]')" % MISSING, "PT404", "NOT_FOUND"),
    ("define_kit('%s', '[{{\"inventory_id\":\"{litem}\",\"quantity\":1}}]')" % MISSING, "PT404", "NOT_FOUND"),
    ("define_kit('{item}', '[{{\"inventory_id\":\"{litem}\",\"quantity\":1}}]')", "PT409", "KIT_HAS_STOCK"),
    # backorders
    ("set_backorder_limit(NULL, 1)", "22023", "INVALID_INPUT"),
    ("set_backorder_limit('{item}', -1)", "22023", "INVALID_QUANTITY"),
    ("set_backorder_limit('{item}', NULL)", "22023", "INVALID_QUANTITY"),
    ("set_backorder_limit('{item}', 'NaN')", "22023", "INVALID_QUANTITY"),
    ("set_backorder_limit('{item}', 'Infinity')", "22023", "INVALID_QUANTITY"),
    ("set_backorder_limit('{item}', 1e13)", "22023", "INVALID_QUANTITY"),
    ("set_backorder_limit('%s', 1)" % MISSING, "PT404", "NOT_FOUND"),
    ("set_backorder_limit('{striped}', 1)", "22023", "INVALID_INPUT", "striped"),
    # preorders
    ("set_preorder(NULL, 1, now() + interval '1 day')", "22023", "INVALID_INPUT"),
    ("set_preorder('{item}', -1, now() + interval '1 day')", "22023", "INVALID_QUANTITY"),
    ("set_preorder('{item}', 'NaN', now() + interval '1 day')", "22023", "INVALID_QUANTITY"),
    ("set_preorder('{item}', 'Infinity', now() + interval '1 day')", "22023", "INVALID_QUANTITY"),
    ("set_preorder('{item}', 1e13, now() + interval '1 day')", "22023", "INVALID_QUANTITY"),
    ("set_preorder('{item}', 1, now() - interval '1 day')", "22023", "INVALID_INPUT", "p_release_at"),
    ("set_preorder('{item}', 1, 'infinity')", "22023", "INVALID_INPUT", "p_release_at"),
    ("set_preorder('{item}', 1)", "22023", "INVALID_INPUT", "p_release_at"),
    ("set_preorder('%s', 1, now() + interval '1 day')" % MISSING, "PT404", "NOT_FOUND"),
    ("set_preorder('{striped}', 1, now() + interval '1 day')", "22023", "INVALID_INPUT", "striped"),
    ("remove_kit(NULL)", "22023", "INVALID_INPUT"),
    ("remove_kit('%s')" % MISSING, "PT404", "NOT_FOUND"),
    # stock states ({item} has no units in any state)
    ("move_stock_state(NULL, 'available', 'damaged', 1)", "22023", "INVALID_INPUT"),
    ("move_stock_state('{item}', NULL, 'damaged', 1)", "22023", "INVALID_INPUT", "p_from"),
    ("move_stock_state('{item}', 'available', NULL, 1)", "22023", "INVALID_INPUT", "p_to"),
    ("move_stock_state('{item}', 'broken', 'damaged', 1)", "22023", "UNKNOWN_STOCK_STATE", "p_from"),
    ("move_stock_state('{item}', 'available', 'sold', 1)", "22023", "UNKNOWN_STOCK_STATE", "p_to"),
    ("move_stock_state('{item}', 'DAMAGED', 'available', 1)", "22023", "UNKNOWN_STOCK_STATE"),
    ("move_stock_state('{item}', 'written_off', 'available', 1)", "22023", "UNKNOWN_STOCK_STATE"),
    ("move_stock_state('{item}', 'available', 'ordered', 1)", "22023", "UNKNOWN_STOCK_STATE"),
    ("move_stock_state('{item}', 'damaged', 'damaged', 1)", "22023", "INVALID_INPUT", "same state"),
    ("move_stock_state('{item}', 'available', 'incoming', 1)", "22023", "INVALID_INPUT", "incoming"),
    ("move_stock_state('{item}', 'ordered', 'available', 1)", "22023", "INVALID_INPUT", "incoming"),
    ("move_stock_state('{item}', 'available', 'damaged', 0)", "22023", "INVALID_QUANTITY"),
    ("move_stock_state('{item}', 'available', 'damaged', -1)", "22023", "INVALID_QUANTITY"),
    ("move_stock_state('{item}', 'available', 'damaged', NULL)", "22023", "INVALID_QUANTITY"),
    ("move_stock_state('{item}', 'available', 'damaged', 'NaN')", "22023", "INVALID_QUANTITY"),
    ("move_stock_state('{item}', 'available', 'damaged', 'Infinity')", "22023", "INVALID_QUANTITY"),
    ("move_stock_state('{item}', 'available', 'damaged', 1e13)", "22023", "INVALID_QUANTITY"),
    ("move_stock_state('{item}', 'available', 'damaged', 'ten')", "22P02", None),
    ("move_stock_state('{item}', 'available', 'damaged', 100000)", "PT409", "INSUFFICIENT_INVENTORY"),
    ("move_stock_state('{item}', 'available', 'written_off', 100000)", "PT409", "INSUFFICIENT_INVENTORY"),
    ("move_stock_state('{item}', 'damaged', 'available', 1)", "PT409", "INSUFFICIENT_STOCK_STATE", "damaged"),
    ("move_stock_state('{item}', 'incoming', 'available', 1)", "PT409", "INSUFFICIENT_STOCK_STATE", "incoming"),
    ("move_stock_state('%s', 'available', 'damaged', 1)" % MISSING, "PT404", "NOT_FOUND"),
    ("move_stock_state('not-a-uuid', 'available', 'damaged', 1)", "22P02", None),
    ("move_stock_state('{striped}', 'available', 'damaged', 1)", "22023", "INVALID_INPUT", "striped"),
    ("move_stock_state('{item}', 'available', 'damaged', 1, p_idempotency_key => '')", "22023", "INVALID_INPUT"),
    ("move_stock_state('{item}', 'available', 'damaged', 1, p_reason => repeat('r', 1025))", "22023", "INVALID_INPUT"),
    ("move_stock_state('{item}', 'available', 'damaged', 1, p_lock_timeout_ms => 0)", "22023", "INVALID_INPUT"),
]

# Location calls by a caller who is not an admin (a role without superuser
# or BYPASSRLS, tenant bad-tenant-a): another tenant's location ({other_loc},
# tenant bad-tenant-b; the shared {litem} has 2 units there) is NOT_FOUND, as
# if it did not exist; a shared location is changed by admins only.
TENANT_CASES = [
    ("transfer_inventory('{litem}', '{other_loc}', '{loc}', 1)", "PT404", "NOT_FOUND", "location"),
    ("transfer_inventory('{litem}', '{loc}', '{other_loc}', 1)", "PT404", "NOT_FOUND", "location"),
    ("decrement_inventory('{litem}', 1, p_location_id => '{other_loc}')", "PT404", "NOT_FOUND", "location"),
    ("increment_inventory('{litem}', 1, p_location_id => '{other_loc}')", "PT404", "NOT_FOUND", "location"),
    ("adjust_inventory('{litem}', 1, 2, p_location_id => '{other_loc}')", "PT404", "NOT_FOUND", "location"),
    ("decrement_inventory_many('[{{\"inventory_id\":\"{litem}\",\"quantity\":1,\"location_id\":\"{other_loc}\"}}]')", "PT404", "NOT_FOUND", "location"),
    ("update_location('{other_loc}', p_name => 'x')", "PT404", "NOT_FOUND", "location"),
    ("get_inventory('{litem}', '{other_loc}')", "PT404", "NOT_FOUND", "location"),
    ("set_reorder_point('{litem}', 1, '{other_loc}')", "PT404", "NOT_FOUND", "location"),
    ("reserve_inventory('[{{\"inventory_id\":\"{litem}\",\"quantity\":1,\"location_id\":\"{other_loc}\"}}]')", "PT404", "NOT_FOUND", "location"),
    ("update_location('{loc}', p_name => 'x')", "22023", "INVALID_INPUT", "shared"),
    ("receive_transfer('{other_transit}')", "PT404", "NOT_FOUND", "transfer"),
    ("cancel_transfer('{other_transit}')", "PT404", "NOT_FOUND", "transfer"),
    ("create_location('bad-new', p_tenant_id => 'bad-tenant-b')", "22023", "INVALID_INPUT", "own tenant"),
    ("move_stock_state('{other_item}', 'available', 'damaged', 1)", "PT404", "NOT_FOUND"),
    # (granted to this role for the test: grant_usage leaves stripe_item out)
    ("stripe_item('{litem}', 2, p_location_id => '{other_loc}')", "PT404", "NOT_FOUND", "location"),
    ("set_preorder('{other_item}', 1, now() + interval '1 day')", "PT404", "NOT_FOUND"),
]

# Every free-text argument (text, varchar, text[]) of every function, with
# its limit in characters and a call that reaches the check ({v}: the value).
# text_limits() lists the arguments from pg_proc: one missing here fails, so
# a new text argument cannot go without a limit. The limits are the ones
# docs/functions.md ("Text limits") gives; the test reads that table too.
TEXT_LIMITS = {
    ("decrement_inventory", "p_reason"): (1024, "decrement_inventory('{item}', 1, p_reason => {v})"),
    ("decrement_inventory", "p_reference"): (1024, "decrement_inventory('{item}', 1, p_reference => {v})"),
    ("decrement_inventory", "p_idempotency_key"): (255, "decrement_inventory('{item}', 1, p_idempotency_key => {v})"),
    ("decrement_inventory_many", "p_reason"): (1024, "decrement_inventory_many({lines}, p_reason => {v})"),
    ("decrement_inventory_many", "p_reference"): (1024, "decrement_inventory_many({lines}, p_reference => {v})"),
    ("decrement_inventory_many", "p_idempotency_key"): (255, "decrement_inventory_many({lines}, p_idempotency_key => {v})"),
    ("increment_inventory", "p_reason"): (1024, "increment_inventory('{item}', 1, p_reason => {v})"),
    ("increment_inventory", "p_reference"): (1024, "increment_inventory('{item}', 1, p_reference => {v})"),
    ("increment_inventory", "p_idempotency_key"): (255, "increment_inventory('{item}', 1, p_idempotency_key => {v})"),
    ("adjust_inventory", "p_reason"): (1024, "adjust_inventory('{item}', 10, p_force => true, p_reason => {v})"),
    ("adjust_inventory", "p_reference"): (1024, "adjust_inventory('{item}', 10, p_force => true, p_reference => {v})"),
    ("adjust_inventory", "p_idempotency_key"): (255, "adjust_inventory('{item}', 10, p_force => true, p_idempotency_key => {v})"),
    ("transfer_inventory", "p_reason"): (1024, "transfer_inventory('{litem}', '{loc}', '{loc2}', 1, p_reason => {v})"),
    ("transfer_inventory", "p_reference"): (1024, "transfer_inventory('{litem}', '{loc}', '{loc2}', 1, p_reference => {v})"),
    ("transfer_inventory", "p_idempotency_key"): (255, "transfer_inventory('{litem}', '{loc}', '{loc2}', 1, p_idempotency_key => {v})"),
    ("receive_transfer", "p_reason"): (1024, "receive_transfer('{transit}', p_reason => {v})"),
    ("receive_transfer", "p_reference"): (1024, "receive_transfer('{transit}', p_reference => {v})"),
    ("receive_transfer", "p_idempotency_key"): (255, "receive_transfer('{transit}', p_idempotency_key => {v})"),
    ("cancel_transfer", "p_reason"): (1024, "cancel_transfer('{transit}', p_reason => {v})"),
    ("cancel_transfer", "p_reference"): (1024, "cancel_transfer('{transit}', p_reference => {v})"),
    ("cancel_transfer", "p_idempotency_key"): (255, "cancel_transfer('{transit}', p_idempotency_key => {v})"),
    ("move_stock_state", "p_from"): (1024, "move_stock_state('{item}', {v}, 'damaged', 1)"),
    ("move_stock_state", "p_to"): (1024, "move_stock_state('{item}', 'available', {v}, 1)"),
    ("move_stock_state", "p_reason"): (1024, "move_stock_state('{item}', 'available', 'damaged', 1, p_reason => {v})"),
    ("move_stock_state", "p_reference"): (1024, "move_stock_state('{item}', 'available', 'damaged', 1, p_reference => {v})"),
    ("move_stock_state", "p_idempotency_key"): (255, "move_stock_state('{item}', 'available', 'damaged', 1, p_idempotency_key => {v})"),
    ("create_location", "p_code"): (255, "create_location({v})"),
    ("create_location", "p_name"): (1024, "create_location('bad-limit', p_name => {v})"),
    ("create_location", "p_tenant_id"): (255, "create_location('bad-limit', p_tenant_id => {v})"),
    ("update_location", "p_name"): (1024, "update_location('{loc}', p_name => {v})"),
    ("create_item", "p_sku"): (255, "create_item(p_sku => {v})"),
    ("create_item", "p_name"): (1024, "create_item(p_name => {v})"),
    ("create_item", "p_tenant_id"): (255, "create_item(p_tenant_id => {v})"),
    ("create_batch", "p_zone"): (1024, "create_batch(p_zone => {v})"),
    ("create_batch", "p_reference"): (1024, "create_batch(p_reference => {v})"),
    ("create_batch", "p_tenant_id"): (255, "create_batch(p_tenant_id => {v})"),
    ("claim_batch", "p_driver_id"): (255, "claim_batch('{batch}', {v})"),
    ("claim_next_batch", "p_driver_id"): (255, "claim_next_batch({v}, p_zone => 'no-such-zone')"),
    ("claim_next_batch", "p_zone"): (1024, "claim_next_batch('d', p_zone => {v})"),
    ("unclaim_batch", "p_driver_id"): (255, "unclaim_batch('{batch}', {v})"),
    ("start_batch", "p_driver_id"): (255, "start_batch('{batch}', {v})"),
    ("complete_batch", "p_driver_id"): (255, "complete_batch('{batch}', {v})"),
    ("extend_batch_lease", "p_driver_id"): (255, "extend_batch_lease('{batch}', {v})"),
    ("reserve_inventory", "p_reference"): (1024, "reserve_inventory({lines}, p_reference => {v})"),
    ("reserve_inventory", "p_idempotency_key"): (255, "reserve_inventory({lines}, p_idempotency_key => {v})"),
    ("commit_reservation", "p_reason"): (1024, "commit_reservation('{res}', p_reason => {v})"),
    ("commit_reservation", "p_idempotency_key"): (255, "commit_reservation('{res}', p_idempotency_key => {v})"),
    ("commit_reservation", "p_rest"): (1024, "commit_reservation('{res}', p_rest => {v})"),
    ("release_reservation", "p_reason"): (1024, "release_reservation('{res}', p_reason => {v})"),
    ("release_reservation", "p_idempotency_key"): (255, "release_reservation('{res}', p_idempotency_key => {v})"),
    ("bind_stock_source", "p_name"): (63, "bind_stock_source({v}, 'public.bad_inputs_plain', 'id', 'qty')"),
    ("bind_batch_source", "p_name"): (63, "bind_batch_source({v}, 'public.bad_inputs_batches', 'id', 'status', 'driver')"),
    ("bind_batch_source", "p_available_value"): (255, "bind_batch_source('bad_b2', 'public.bad_inputs_batches', 'id', 'status', 'driver', p_available_value => {v})"),
    ("bind_batch_source", "p_claimed_value"): (255, "bind_batch_source('bad_b2', 'public.bad_inputs_batches', 'id', 'status', 'driver', p_claimed_value => {v})"),
    ("unbind_source", "p_name"): (63, "unbind_source({v})"),
    ("bound_decrement", "p_source"): (63, "bound_decrement({v}, 'k1', 1)"),
    ("bound_decrement", "p_item_id"): (255, "bound_decrement('{src}', {v}, 1)"),
    ("bound_decrement", "p_reason"): (1024, "bound_decrement('{src}', 'k1', 1, p_reason => {v})"),
    ("bound_decrement", "p_reference"): (1024, "bound_decrement('{src}', 'k1', 1, p_reference => {v})"),
    ("bound_decrement", "p_idempotency_key"): (255, "bound_decrement('{src}', 'k1', 1, p_idempotency_key => {v})"),
    ("bound_decrement_many", "p_source"): (63, "bound_decrement_many({v}, {blines})"),
    ("bound_decrement_many", "p_reason"): (1024, "bound_decrement_many('{src}', {blines}, p_reason => {v})"),
    ("bound_decrement_many", "p_reference"): (1024, "bound_decrement_many('{src}', {blines}, p_reference => {v})"),
    ("bound_decrement_many", "p_idempotency_key"): (255, "bound_decrement_many('{src}', {blines}, p_idempotency_key => {v})"),
    ("bound_increment", "p_source"): (63, "bound_increment({v}, 'k1', 1)"),
    ("bound_increment", "p_item_id"): (255, "bound_increment('{src}', {v}, 1)"),
    ("bound_increment", "p_reason"): (1024, "bound_increment('{src}', 'k1', 1, p_reason => {v})"),
    ("bound_increment", "p_reference"): (1024, "bound_increment('{src}', 'k1', 1, p_reference => {v})"),
    ("bound_increment", "p_idempotency_key"): (255, "bound_increment('{src}', 'k1', 1, p_idempotency_key => {v})"),
    ("bound_adjust", "p_source"): (63, "bound_adjust({v}, 'k1', 5, p_force => true)"),
    ("bound_adjust", "p_item_id"): (255, "bound_adjust('{src}', {v}, 5, p_force => true)"),
    ("bound_adjust", "p_reason"): (1024, "bound_adjust('{src}', 'k1', 5, p_force => true, p_reason => {v})"),
    ("bound_adjust", "p_reference"): (1024, "bound_adjust('{src}', 'k1', 5, p_force => true, p_reference => {v})"),
    ("bound_adjust", "p_idempotency_key"): (255, "bound_adjust('{src}', 'k1', 5, p_force => true, p_idempotency_key => {v})"),
    ("bound_get", "p_source"): (63, "bound_get({v}, 'k1')"),
    ("bound_get", "p_item_id"): (255, "bound_get('{src}', {v})"),
    ("bound_get", "p_location"): (255, "bound_get('{lsrc}', 'k1', {v})"),
    ("bound_decrement", "p_location"): (255, "bound_decrement('{lsrc}', 'k1', 1, p_location => {v})"),
    ("bound_increment", "p_location"): (255, "bound_increment('{lsrc}', 'k1', 1, p_location => {v})"),
    ("bound_adjust", "p_location"): (255, "bound_adjust('{lsrc}', 'k1', 5, p_force => true, p_location => {v})"),
    ("bound_reserve", "p_source"): (63, "bound_reserve({v}, {blines})"),
    ("bound_reserve", "p_reference"): (1024, "bound_reserve('{src}', {blines}, p_reference => {v})"),
    ("bound_reserve", "p_idempotency_key"): (255, "bound_reserve('{src}', {blines}, p_idempotency_key => {v})"),
    ("bound_commit_reservation", "p_item_ids"): (255, "bound_commit_reservation('{bres}', ARRAY[{v}])"),
    ("bound_commit_reservation", "p_reason"): (1024, "bound_commit_reservation('{bres}', p_reason => {v})"),
    ("bound_commit_reservation", "p_idempotency_key"): (255, "bound_commit_reservation('{bres}', p_idempotency_key => {v})"),
    ("bound_commit_reservation", "p_rest"): (1024, "bound_commit_reservation('{bres}', p_rest => {v})"),
    ("bound_release_reservation", "p_item_ids"): (255, "bound_release_reservation('{bres}', ARRAY[{v}])"),
    ("bound_release_reservation", "p_reason"): (1024, "bound_release_reservation('{bres}', p_reason => {v})"),
    ("bound_release_reservation", "p_idempotency_key"): (255, "bound_release_reservation('{bres}', p_idempotency_key => {v})"),
    ("bound_claim_batch", "p_source"): (63, "bound_claim_batch({v}, 'b1', 'd')"),
    ("bound_claim_batch", "p_batch_id"): (255, "bound_claim_batch('{bsrc}', {v}, 'd')"),
    ("bound_claim_batch", "p_driver_id"): (255, "bound_claim_batch('{bsrc}', 'b1', {v})"),
    ("bound_claim_next_batch", "p_source"): (63, "bound_claim_next_batch({v}, 'd')"),
    ("bound_claim_next_batch", "p_driver_id"): (255, "bound_claim_next_batch('{bsrc}', {v})"),
    ("bound_unclaim_batch", "p_source"): (63, "bound_unclaim_batch({v}, 'b1', 'd')"),
    ("bound_unclaim_batch", "p_batch_id"): (255, "bound_unclaim_batch('{bsrc}', {v}, 'd')"),
    ("bound_unclaim_batch", "p_driver_id"): (255, "bound_unclaim_batch('{bsrc}', 'b1', {v})"),
    ("reconcile_source", "p_source"): (63, "reconcile_source({v})"),
    ("bind_packing_source", "p_name"): (63, "bind_packing_source({v}, 'bad_wh.sessions', 'bad_wh.lines', 'bad_wh.orders', 'bad_wh.picked')"),
    ("bind_packing_source", "p_packing_value"): (255, "bind_packing_source('bad_p2', 'bad_wh.sessions', 'bad_wh.lines', 'bad_wh.orders', 'bad_wh.picked', p_packing_value => {v})"),
    ("bind_packing_source", "p_completed_values"): (255, "bind_packing_source('bad_p2', 'bad_wh.sessions', 'bad_wh.lines', 'bad_wh.orders', 'bad_wh.picked', p_completed_values => ARRAY[{v}])"),
    ("bind_packing_source", "p_closed_values"): (255, "bind_packing_source('bad_p2', 'bad_wh.sessions', 'bad_wh.lines', 'bad_wh.orders', 'bad_wh.picked', p_closed_values => ARRAY[{v}])"),
    ("bound_increment_packing_quantity", "p_source"): (63, "bound_increment_packing_quantity({v}, 'l1', 's1')"),
    ("bound_increment_packing_quantity", "p_progress_id"): (255, "bound_increment_packing_quantity('{psrc}', {v}, 's1')"),
    ("bound_increment_packing_quantity", "p_session_id"): (255, "bound_increment_packing_quantity('{psrc}', 'l1', {v})"),
    ("bound_increment_packing_quantity", "p_product_id"): (255, "bound_increment_packing_quantity('{psrc}', 'l1', 's1', {v})"),
    ("bound_increment_packing_quantity", "p_idempotency_key"): (255, "bound_increment_packing_quantity('{psrc}', 'l1', 's1', p_idempotency_key => {v})"),
    ("bound_decrement_packing_quantity", "p_source"): (63, "bound_decrement_packing_quantity({v}, 'l1', 's1')"),
    ("bound_decrement_packing_quantity", "p_progress_id"): (255, "bound_decrement_packing_quantity('{psrc}', {v}, 's1')"),
    ("bound_decrement_packing_quantity", "p_session_id"): (255, "bound_decrement_packing_quantity('{psrc}', 'l1', {v})"),
    ("bound_decrement_packing_quantity", "p_idempotency_key"): (255, "bound_decrement_packing_quantity('{psrc}', 'l1', 's1', p_idempotency_key => {v})"),
    ("create_event_consumer", "p_consumer"): (63, "create_event_consumer({v})"),
    ("create_event_consumer", "p_tenant_id"): (255, "create_event_consumer('bad-inputs-2', {v})"),
    ("drop_event_consumer", "p_consumer"): (63, "drop_event_consumer({v})"),
    ("read_events", "p_consumer"): (63, "read_events({v})"),
    ("ack_events", "p_consumer"): (63, "ack_events({v}, ARRAY[1])"),
}


# Helpers the extension's own functions and triggers call, never granted to
# anyone (grant_usage leaves them out): their text comes from our code.
# helpers no caller calls: emit_event and event_consumer_id (the events'
# triggers'), and the reservation tables' CHECK functions (a CHECK passes
# them the row's own status)
INTERNAL = {"emit_event", "event_consumer_id", "reservation_valid", "reservation_line_valid"}


def text_arguments(conn):
    """(function, argument) of every text, varchar or text[] argument of the
    extension's functions, but the INTERNAL helpers."""
    rows = conn.execute(f"""
        SELECT p.proname::text, a.name
          FROM pg_proc AS p
          JOIN pg_namespace AS n ON n.oid = p.pronamespace AND n.nspname = '{S}'
         CROSS JOIN LATERAL unnest(p.proargnames, p.proargtypes::oid[]) AS a(name, typ)
         WHERE a.typ IN ('text'::regtype, 'varchar'::regtype, 'text[]'::regtype, 'varchar[]'::regtype)
         ORDER BY 1, 2""").fetchall()
    return {(f, a) for f, a in rows if f not in INTERNAL}


def documented_limits():
    """The "Text limits" table of docs/functions.md: (function, argument) -> characters."""
    import os
    import re
    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "functions.md")).read()
    section = doc.split("## Text limits", 1)[1].split("\n## ", 1)[0]
    out = {}
    for line in section.splitlines():
        # | `arg`[, `arg`...] | characters | `function`, ... (notes) |
        m = re.match(r"\|\s*((?:`\w+`,?\s*)+)\|\s*(\d+)\s*\|\s*(.+?)\s*\|", line)
        if not m:
            continue
        args, limit, functions = re.findall(r"`(\w+)`", m.group(1)), int(m.group(2)), m.group(3)
        for f in re.findall(r"`(\w+)`", functions):
            for arg in args:
                out[(f, arg)] = limit
    return out


def run_limit(conn, sql):
    """The error of one call (checks.OK if none), in a transaction rolled back."""
    def run():
        with conn.transaction(force_rollback=True):
            conn.execute(sql)
    return attempt(run)


def text_limits(conn, fixtures, checks):
    """Every text argument has a limit here and in the docs; past it the call
    is refused naming the argument (22023), and a value at the limit, of
    4-byte characters, gets past that check and through every index."""
    listed = text_arguments(conn)
    documented = documented_limits()
    for key in sorted(listed - set(TEXT_LIMITS)):
        checks.check("text argument without a tested limit", False, f"{key[0]}({key[1]})")
    for key in sorted(listed ^ set(documented)):
        checks.check(f"text argument {key[0]}({key[1]}) {'not in' if key in listed else 'documented but not in'} "
                     "docs/functions.md's Text limits", False)
    for key, (limit, call) in sorted(TEXT_LIMITS.items()):
        if key not in listed:
            checks.check(f"{key[0]}({key[1]}) is in TEXT_LIMITS but no such text argument exists", False)
            continue
        if documented.get(key) not in (None, limit):
            checks.check(f"{key[0]}({key[1]})", False, f"docs say {documented.get(key)} characters, the test {limit}")
        fn, arg = key
        text = "SELECT " + S + "." + call.format(v="{v}", **fixtures)
        over = run_limit(conn, text.replace("{v}", f"repeat('x', {limit + 1})"))
        # 4-byte characters that don't repeat, so no compression shrinks
        # what an index entry holds
        at = run_limit(conn, text.replace("{v}", "(SELECT string_agg(chr(65536 + abs(hashint4(g)) % 60000), '') "
                                                  f"FROM generate_series(1, {limit}) AS g)"))
        refused_over = over.sqlstate == "22023" and over.field == arg and str(limit) in over.message
        # (at the limit a call may still be refused on that argument for
        # another reason, e.g. a source name's spelling, but not its length)
        refused_at = at.sqlstate == "22023" and at.field == arg and ("longer" in at.message or "characters" in at.message)
        broke_at = at.sqlstate in ("54000", "XX000", "22001", "42601")
        checks.check(f"{fn}({arg}) limit {limit}", refused_over and not refused_at and not broke_at,
                     f"over the limit got {over.sqlstate} {over.field} ({over.message[:70]}); "
                     f"at the limit got {at.sqlstate} {at.field} ({at.message[:70]})")
    # the caller's tenant (a setting or a JWT claim) is a key too
    for setting, value in (("atomic_inventory.tenant_id", "x" * 256),
                           ("request.jwt.claims", json.dumps({"tenant_id": "x" * 256}))):
        with conn.transaction(force_rollback=True):
            conn.execute("SELECT set_config(%s, %s, true)", (setting, value))
            got = run_limit(conn, f"SELECT {S}.decrement_inventory('{fixtures['item']}', 1)")
        checks.check(f"a 256-character tenant in {setting}",
                     got.sqlstate == "22023" and got.field == setting and "255" in got.message, f"got {tuple(got)}")
    print(f"bad_inputs: {len(listed)} text arguments, each with a checked limit")


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
               (SELECT string_agg(quantity::text, ',' ORDER BY item_id, location_id, stripe) FROM {S}.item_stripes),
               (SELECT sum(stripes) FROM {S}.items), (SELECT sum(stripes) FROM {S}.stock_levels),
               (SELECT string_agg(id || ':' || qty || '/' || held, ',' ORDER BY id) FROM public.bad_inputs_inv),
               (SELECT count(*) FROM {S}.bound_reservation_lines), (SELECT count(*) FROM {S}.bindings),
               (SELECT string_agg(id || ':' || quantity_packed, ',' ORDER BY id) FROM bad_wh.lines),
               -- locations and levels (digests: a run after the stress test has many)
               (SELECT md5(string_agg(id || ':' || code || ':' || coalesce(name, '') || ':' || priority || ':'
                                      || active || ':' || sellable || ':' || coalesce(tenant_id, ''), ',' ORDER BY id))
                  FROM {S}.locations),
               (SELECT md5(string_agg(item_id || '@' || location_id || ':' || quantity || '/' || reserved || '/'
                                      || coalesce(reorder_point::text, ''), ',' ORDER BY item_id, location_id))
                  FROM {S}.stock_levels),
               (SELECT md5(string_agg(id || ':' || status, ',' ORDER BY id)) FROM {S}.transfers),
               -- stock states
               (SELECT sum(unsellable) FROM {S}.items),
               (SELECT md5(string_agg(item_id || ':' || state || ':' || quantity, ',' ORDER BY item_id, state))
                  FROM {S}.stock_states)""").fetchone()


def main():
    conn = connect()
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
    conn.execute(f"SELECT {S}.create_event_consumer('bad-inputs')")
    conn.execute("DROP TABLE IF EXISTS public.bad_inputs_inv, public.bad_inputs_plain")
    conn.execute("CREATE TABLE public.bad_inputs_inv (id text PRIMARY KEY, qty integer NOT NULL CHECK (qty >= 0), "
                 "held integer NOT NULL DEFAULT 0)")
    conn.execute("INSERT INTO public.bad_inputs_inv VALUES ('k1', 5, 0), ('k2', 5, 0)")
    conn.execute("CREATE TABLE public.bad_inputs_plain (id text PRIMARY KEY, qty integer NOT NULL CHECK (qty >= 0))")
    conn.execute("DROP TABLE IF EXISTS public.bad_inputs_batches, public.bad_inputs_gone")
    conn.execute("CREATE TABLE public.bad_inputs_batches (id text PRIMARY KEY, status text NOT NULL, driver text)")
    conn.execute("INSERT INTO public.bad_inputs_batches VALUES ('b1', 'available', NULL)")
    conn.execute("CREATE TABLE public.bad_inputs_gone (id int PRIMARY KEY, qty int NOT NULL CHECK (qty >= 0))")
    src, plain, bsrc, gone = (f"bad_{uuid.uuid4().hex[:8]}" for _ in range(4))
    conn.execute(f"SELECT {S}.bind_stock_source(%s, 'public.bad_inputs_inv', 'id', 'qty', p_reserved_column => 'held')", (src,))
    conn.execute(f"SELECT {S}.bind_stock_source(%s, 'public.bad_inputs_plain', 'id', 'qty')", (plain,))
    conn.execute(f"SELECT {S}.bind_batch_source(%s, 'public.bad_inputs_batches', 'id', 'status', 'driver')", (bsrc,))
    conn.execute(f"SELECT {S}.bind_stock_source(%s, 'public.bad_inputs_gone', 'id', 'qty')", (gone,))
    conn.execute("DROP TABLE public.bad_inputs_gone")
    conn.execute("DROP TABLE IF EXISTS public.bad_inputs_loc")
    conn.execute("CREATE TABLE public.bad_inputs_loc (id text NOT NULL, wh text NOT NULL, "
                 "qty integer NOT NULL CHECK (qty >= 0), PRIMARY KEY (id, wh))")
    conn.execute("INSERT INTO public.bad_inputs_loc VALUES ('k1', 'w1', 5)")
    lsrc = f"bad_{uuid.uuid4().hex[:8]}"
    conn.execute(f"SELECT {S}.bind_stock_source(%s, 'public.bad_inputs_loc', 'id', 'qty', "
                 "p_location_column => 'wh')", (lsrc,))
    # a warehouse's own packing tables (text ids), bound
    conn.execute("DROP SCHEMA IF EXISTS bad_wh CASCADE")
    conn.execute("""CREATE SCHEMA bad_wh;
        CREATE TABLE bad_wh.sessions (id text PRIMARY KEY, status text NOT NULL, last_activity_at timestamptz);
        CREATE TABLE bad_wh.orders (id text PRIMARY KEY, sleeves_status text NOT NULL, order_number text);
        CREATE TABLE bad_wh.lines (id text PRIMARY KEY, picking_session_id text NOT NULL, order_id text NOT NULL,
          product_id text NOT NULL, quantity_needed integer NOT NULL, quantity_packed integer NOT NULL DEFAULT 0,
          updated_at timestamptz);
        CREATE TABLE bad_wh.picked (picking_session_id text, product_id text, quantity_picked integer NOT NULL);
        INSERT INTO bad_wh.sessions VALUES ('s1', 'packing', now());
        INSERT INTO bad_wh.orders VALUES ('o1', 'new', '#1');
        INSERT INTO bad_wh.lines (id, picking_session_id, order_id, product_id, quantity_needed)
          VALUES ('l1', 's1', 'o1', 'p1', 1);
        INSERT INTO bad_wh.picked VALUES ('s1', 'p1', 1)""")
    psrc = f"bad_{uuid.uuid4().hex[:8]}"
    conn.execute(f"SELECT {S}.bind_packing_source(%s, 'bad_wh.sessions', 'bad_wh.lines', 'bad_wh.orders', "
                 "'bad_wh.picked')", (psrc,))
    bres = conn.execute(f"""SELECT {S}.bound_reserve(%s, '[{{"item_id": "k1", "quantity": 2}}]')->>'reservation_id'""",
                        (src,)).fetchone()[0]
    # locations: {litem} has 10 units at the default location, 5 at {loc},
    # none at {loc2} nor at {off} (inactive), 3 at {unsell} (not sellable),
    # 2 at {other_loc} (another tenant's)
    litem = conn.execute(f"SELECT {S}.create_item(p_quantity => 10, p_sku => 'bad-' || gen_random_uuid())->>'inventory_id'").fetchone()[0]
    tag = uuid.uuid4().hex[:8]
    locs = {}
    for name, kw in (("loc", {}), ("loc2", {}), ("off", {}), ("unsell", {"p_sellable": False}),
                     ("other_loc", {"p_tenant_id": "bad-tenant-b"})):
        locs[name] = call(conn, "create_location", p_code=f"bad-{name}-{tag}", **kw)["location_id"]
    for name, qty in (("loc", 5), ("unsell", 3), ("other_loc", 2)):
        call(conn, "increment_inventory", p_inventory_id=litem, p_quantity=qty, p_location_id=locs[name])
    call(conn, "update_location", p_location_id=locs["off"], p_active=False)
    # transfers in transit, of an item of their own (the cases above count
    # {litem}'s units): 2 units of {titem} on their way to {loc2}, one
    # shipment cancelled, one on its way to another tenant's location
    titem = conn.execute(f"SELECT {S}.create_item(p_quantity => 10, p_sku => 'bad-' || gen_random_uuid())->>'inventory_id'").fetchone()[0]
    transit = call(conn, "transfer_inventory", p_inventory_id=titem, p_from_location_id=DEFAULT,
                   p_to_location_id=locs["loc2"], p_quantity=2, p_receive=False)["transfer_id"]
    landed = call(conn, "transfer_inventory", p_inventory_id=titem, p_from_location_id=DEFAULT,
                  p_to_location_id=locs["loc"], p_quantity=1, p_receive=False)["transfer_id"]
    call(conn, "cancel_transfer", p_transfer_id=landed)
    other_transit = call(conn, "transfer_inventory", p_inventory_id=titem, p_from_location_id=DEFAULT,
                         p_to_location_id=locs["other_loc"], p_quantity=1, p_receive=False)["transfer_id"]
    # an item of tenant bad-tenant-b, not bad-tenant-a's to see
    other_item = conn.execute(f"SELECT {S}.create_item(p_quantity => 3, p_sku => 'bad-' || gen_random_uuid(), "
                              "p_tenant_id => 'bad-tenant-b')->>'inventory_id'").fetchone()[0]
    # a caller who is no admin
    conn.execute("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bad_inputs_tenant') "
                 "THEN CREATE ROLE bad_inputs_tenant NOLOGIN; END IF; END $$")
    conn.execute(f"SELECT {S}.grant_usage('bad_inputs_tenant')")
    conn.execute(f"GRANT EXECUTE ON FUNCTION {S}.stripe_item(uuid, integer, integer, uuid) TO bad_inputs_tenant")
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    # Holds left by earlier stages (TTLs of seconds) are swept now, not while
    # the bad calls run (the background sweeper would change the state).
    while int(conn.execute(f"SELECT {S}.expire_reservations()->>'expired'").fetchone()[0]):
        pass
    fixtures = dict(item=item, res=res, batch=batch, session=session, line=line, striped=striped,
                    src=src, plain=plain, lsrc=lsrc, bres=bres, bsrc=bsrc, gone=gone, psrc=psrc,
                    litem=litem, other_item=other_item, loc_code=f"bad-loc-{tag}", **locs,
                    titem=titem, transit=transit, landed=landed, other_transit=other_transit,
                    lines=f"""'[{{"inventory_id": "{item}", "quantity": 1}}]'""",
                    blines="""'[{"item_id": "k1", "quantity": 1}]'""")
    checks = Checks("bad_inputs", show="failures")
    before = state(conn)
    def tenant_call(text):
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL ROLE bad_inputs_tenant")
            conn.execute("SELECT set_config('atomic_inventory.tenant_id', 'bad-tenant-a', true)")
            conn.execute(text)

    for run, cases, label in ((conn.execute, CASES, ""), (tenant_call, TENANT_CASES, " as tenant bad-tenant-a")):
        for sql, want_state, want_code, *want_text in cases:
            text = "SELECT " + S + "." + sql.format(**fixtures)
            got = attempt(run, text)
            ok = got.sqlstate == want_state and (want_code is None or (got.code == want_code and got.message.startswith(want_code)))
            ok = ok and all(t in got.message for t in want_text)
            alive = conn.execute("SELECT pg_backend_pid()").fetchone()[0] == pid
            checks.check(sql + label, ok and alive, f"got {got.sqlstate} {got.code} ({got.message[:80]}), "
                                                    f"want {want_state} {want_code} {' '.join(want_text)}, backend alive {alive}")
    text_limits(conn, fixtures, checks)
    after = state(conn)
    checks.check("partial write", before == after, f"state before {before}, after {after}")
    print(f"bad_inputs: {len(CASES) + len(TENANT_CASES)} distinct bad inputs tried, state unchanged: {before == after}")
    checks.finish()


if __name__ == "__main__":
    main()
