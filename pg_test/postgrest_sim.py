#!/usr/bin/env python3
"""Calls every function the way PostgREST/Supabase does, and checks each
error's SQLSTATE and the HTTP status PostgREST's documented mapping gives it.

Per request PostgREST (connected as `authenticator`): opens a transaction,
`SET LOCAL ROLE` to the JWT's role (anon / authenticated / service_role), sets
`request.jwt.claims` (and friends) with set_config(..., true), and calls
`schema.fn(p_a := …)` with the arguments taken from the JSON body through
json_to_record, typed from the function's declaration. No PostgREST binary is
needed to reproduce that. Prints `postgrest: N passed, N failed`.
"""
import datetime
import json
import threading
import uuid

import psycopg
from psycopg import sql

from checks import S, Checks, connect


def http_status(sqlstate, anonymous):
    """PostgREST's table (docs.postgrest.org, references/errors, HTTP Status Codes)."""
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    exact = {"23503": 409, "23505": 409, "25006": 405, "53400": 500, "P0001": 400,
             "42883": 404, "42P01": 404, "42P17": 500, "42501": 401 if anonymous else 403}
    if sqlstate in exact:
        return exact[sqlstate]
    prefix = {"08": 503, "09": 500, "0L": 403, "0P": 403, "25": 500, "28": 403, "2D": 500, "38": 500,
              "39": 500, "3B": 500, "40": 500, "53": 503, "54": 500, "55": 500, "57": 500, "58": 500,
              "F0": 500, "HV": 500, "P0": 500, "XX": 500}
    return prefix.get(sqlstate[:2], 400)


class PostgREST:
    """One `authenticator` connection per simulated server worker."""

    def __init__(self, dsn=""):
        self.conn = connect(dsn, user="authenticator")
        self.arg_types = {}

    def types(self, fn):
        # PostgREST's schema cache: the function's argument names and types
        if fn not in self.arg_types:
            rows = self.conn.execute(
                "SELECT unnest(p.proargnames), unnest(p.proargtypes::regtype[]::text[]) "
                "FROM pg_proc p WHERE p.proname = %s AND p.pronamespace = %s::regnamespace", (fn, S)).fetchall()
            self.arg_types[fn] = dict(rows)
        return self.arg_types[fn]

    def rpc(self, fn, body, role="authenticated", claims=None):
        """POST /rpc/<fn> with a JSON body; returns (status, json)."""
        types = self.types(fn)
        names = list(body)
        cols = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(types[n])) for n in names)
        args = sql.SQL(", ").join(sql.SQL("{} := _.{}").format(sql.Identifier(n), sql.Identifier(n)) for n in names)
        query = sql.SQL("SELECT {}.{}({}) FROM json_to_record(%s::json) AS _({})").format(
            sql.Identifier(S), sql.Identifier(fn), args, cols)
        claims = dict(claims or {}, role=role)
        anonymous = role == "anon"
        try:
            with self.conn.transaction():
                self.conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
                self.conn.execute("SELECT set_config('request.jwt.claims', %s, true), "
                                  "set_config('request.method', 'POST', true), "
                                  "set_config('request.path', %s, true)", (json.dumps(claims), f"/rpc/{fn}"))
                row = self.conn.execute(query, (json.dumps(body),)).fetchone()
            return 200, row[0]
        except psycopg.Error as e:
            return http_status(e.sqlstate, anonymous), {
                "code": e.sqlstate, "message": e.diag.message_primary,
                "details": e.diag.message_detail, "hint": e.diag.message_hint}


def setup(admin):
    for stmt in [
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN CREATE ROLE anon NOLOGIN; END IF; END $$",
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF; END $$",
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN CREATE ROLE service_role NOLOGIN BYPASSRLS; END IF; END $$",
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticator') THEN CREATE ROLE authenticator LOGIN NOINHERIT; END IF; END $$",
        "GRANT anon, authenticated, service_role TO authenticator",
        f"SELECT {S}.grant_usage('authenticated')",
        f"SELECT {S}.grant_usage('service_role')",
        f"GRANT USAGE ON SCHEMA {S} TO anon",  # the schema is exposed; anon has no EXECUTE
    ]:
        admin.execute(stmt)


def main():
    admin = connect()
    setup(admin)
    checks = Checks("postgrest")
    check = checks.expect  # a line per check: `ok  name: got`, or FAIL with what was wanted

    item = admin.execute(f"SELECT {S}.create_item(p_quantity => 5, p_sku => 'rest-' || gen_random_uuid())->>'inventory_id'").fetchone()[0]
    store_item = admin.execute(f"SELECT {S}.create_item(p_quantity => 5, p_sku => 'rest-' || gen_random_uuid(), p_tenant_id => 'store-a')->>'inventory_id'").fetchone()[0]
    batch = admin.execute(f"SELECT {S}.create_batch()->>'batch_id'").fetchone()[0]
    api = PostgREST()
    user = {"sub": "user-1"}

    status, body = api.rpc("decrement_inventory", {"p_inventory_id": item, "p_quantity": 3}, claims=user)
    check("decrement_inventory 200 with the POS sale's body", (status, body and body.get("new_quantity")), (200, 2))
    status, body = api.rpc("decrement_inventory", {"p_inventory_id": item, "p_quantity": 3}, claims=user)
    check("INSUFFICIENT_INVENTORY -> 409", (status, body["code"], body["message"].split(":")[0]), (409, "PT409", "INSUFFICIENT_INVENTORY"))
    check("error details are JSON with the code", json.loads(body["details"])["code"], "INSUFFICIENT_INVENTORY")
    status, body = api.rpc("decrement_inventory", {"p_inventory_id": str(uuid.uuid4()), "p_quantity": 1}, claims=user)
    check("NOT_FOUND -> 404", (status, body["code"]), (404, "PT404"))
    status, body = api.rpc("decrement_inventory", {"p_inventory_id": item, "p_quantity": -1}, claims=user)
    check("INVALID_QUANTITY (22023) -> 400", (status, body["code"]), (400, "22023"))
    status, body = api.rpc("decrement_inventory_many", {"p_lines": []}, claims=user)
    check("INVALID_INPUT -> 400", (status, body["code"]), (400, "22023"))
    status, body = api.rpc("decrement_inventory", {"p_inventory_id": item, "p_quantity": 1}, role="anon")
    check("anon without EXECUTE -> 401", (status, body["code"]), (401, "42501"))
    key = f"rest-{uuid.uuid4()}"
    api.rpc("increment_inventory", {"p_inventory_id": item, "p_quantity": 1, "p_idempotency_key": key}, claims=user)
    status, body = api.rpc("increment_inventory", {"p_inventory_id": item, "p_quantity": 2, "p_idempotency_key": key}, claims=user)
    check("IDEMPOTENCY_CONFLICT -> 422", (status, body["code"]), (422, "PT422"))
    status, body = api.rpc("adjust_inventory", {"p_inventory_id": item, "p_new_quantity": 9, "p_expected_quantity": 1}, claims=user)
    check("QUANTITY_MISMATCH -> 409", (status, body["code"]), (409, "PT409"))

    # tenants from the JWT claim
    status, body = api.rpc("decrement_inventory", {"p_inventory_id": store_item, "p_quantity": 1}, claims={"sub": "u", "tenant_id": "store-b"})
    check("another tenant's item -> 404", status, 404)
    status, body = api.rpc("decrement_inventory", {"p_inventory_id": store_item, "p_quantity": 1}, claims={"sub": "u", "tenant_id": "store-a"})
    check("own tenant's item -> 200", status, 200)
    status, body = api.rpc("decrement_inventory", {"p_inventory_id": store_item, "p_quantity": 1}, role="service_role")
    check("service_role (BYPASSRLS) crosses tenants -> 200", status, 200)

    # preorders (docs/preorders.md): a cap of 2 past the 0 on hand until next
    # week; the sale past the cap is a 409, a release date past is a 400,
    # another tenant's item a 404
    book = admin.execute(f"SELECT {S}.create_item(p_quantity => 0, p_sku => 'rest-' || gen_random_uuid())->>'inventory_id'").fetchone()[0]
    week = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=7)).isoformat()
    status, body = api.rpc("set_preorder", {"p_inventory_id": book, "p_limit": 2, "p_release_at": week}, claims=user)
    check("set_preorder -> 200", (status, body and body.get("preorder_limit")), (200, 2))
    status, body = api.rpc("decrement_inventory", {"p_inventory_id": book, "p_quantity": 2}, claims=user)
    check("a preorder sale -> 200, preordered", (status, body and body.get("preordered")), (200, 2))
    status, body = api.rpc("decrement_inventory", {"p_inventory_id": book, "p_quantity": 1}, claims=user)
    check("a preorder sale past the cap -> 409", (status, body["code"], body["message"].split(":")[0]), (409, "PT409", "INSUFFICIENT_INVENTORY"))
    status, body = api.rpc("set_preorder", {"p_inventory_id": book, "p_limit": 1, "p_release_at": week}, claims=user)
    check("a cap below what is preordered -> 409", (status, body["code"], body["message"].split(":")[0]), (409, "PT409", "BACKORDERS_EXCEED_LIMIT"))
    status, body = api.rpc("set_preorder", {"p_inventory_id": book, "p_limit": 2, "p_release_at": "2020-01-01T00:00:00Z"}, claims=user)
    check("a release date in the past -> 400", (status, body["code"], body["message"].split(":")[0]), (400, "22023", "INVALID_INPUT"))
    status, body = api.rpc("set_preorder", {"p_inventory_id": book, "p_limit": -1, "p_release_at": week}, claims=user)
    check("a negative cap -> 400", (status, body["code"], body["message"].split(":")[0]), (400, "22023", "INVALID_QUANTITY"))
    status, body = api.rpc("set_preorder", {"p_inventory_id": store_item, "p_limit": 2, "p_release_at": week}, claims={"sub": "u", "tenant_id": "store-b"})
    check("set_preorder of another tenant's item -> 404", (status, body["code"]), (404, "PT404"))
    status, body = api.rpc("set_preorder", {"p_inventory_id": book, "p_limit": 0}, claims=user)
    check("set_preorder(p_limit 0) ends it -> 200, the 2 units stay owed", (status, body and body.get("preordered")), (200, 2))
    status, body = api.rpc("decrement_inventory", {"p_inventory_id": book, "p_quantity": 1}, claims=user)
    check("a sale past the stock after the end -> 409", (status, body["code"]), (409, "PT409"))

    # reservations
    lines = [{"inventory_id": item, "quantity": 1}]
    status, body = api.rpc("reserve_inventory", {"p_lines": lines, "p_ttl_seconds": 60}, claims=user)
    check("reserve_inventory -> 200", status, 200)
    res = body["reservation_id"]
    status, body = api.rpc("commit_reservation", {"p_reservation_id": res}, claims=user)
    check("commit_reservation -> 200", (status, body["status"]), (200, "committed"))
    status, body = api.rpc("commit_reservation", {"p_reservation_id": res}, claims=user)
    check("RESERVATION_NOT_ACTIVE -> 409", (status, body["code"]), (409, "PT409"))
    status, body = api.rpc("reserve_inventory", {"p_lines": lines, "p_ttl_seconds": 60}, claims=user)
    admin.execute(f"UPDATE {S}.reservations SET expires_at = now() - interval '1 minute' WHERE id = %s", (body["reservation_id"],))
    status, body = api.rpc("commit_reservation", {"p_reservation_id": body["reservation_id"]}, claims=user)
    check("RESERVATION_EXPIRED -> 410", (status, body["code"]), (410, "PT410"))

    # batches: the driver is the JWT sub; the claim route's 409 for the loser
    status, body = api.rpc("claim_batch", {"p_batch_id": batch}, claims={"sub": "driver-a"})
    check("claim_batch as the JWT's driver -> 200", (status, body["claimed_by"]), (200, "driver-a"))
    status, body = api.rpc("claim_batch", {"p_batch_id": batch}, claims={"sub": "driver-b"})
    check("BATCH_UNAVAILABLE -> 409", (status, body["code"], body["message"].split(":")[0]), (409, "PT409", "BATCH_UNAVAILABLE"))
    status, body = api.rpc("complete_batch", {"p_batch_id": batch}, claims={"sub": "driver-b"})
    check("BATCH_NOT_HELD -> 403", (status, body["code"]), (403, "PT403"))
    status, body = api.rpc("complete_batch", {"p_batch_id": batch, "p_driver_id": "driver-a"}, claims={"sub": "driver-b"})
    check("acting as another driver -> 400", (status, body["code"]), (400, "22023"))
    status, body = api.rpc("unclaim_batch", {"p_batch_id": batch, "p_driver_id": "driver-a"})
    check("naming a driver with a token without sub -> 400", (status, body["code"]), (400, "22023"))
    status, body = api.rpc("claim_next_batch", {"p_zone": f"none-{uuid.uuid4()}"}, claims={"sub": "driver-b"})
    check("claim_next_batch with nothing left -> 200 null", (status, body), (200, None))

    # the delivery-batch claim route end to end: 32 drivers POST /rpc/claim_batch at once, one 200, 31 409
    contested = admin.execute(f"SELECT {S}.create_batch()->>'batch_id'").fetchone()[0]
    servers = [PostgREST() for _ in range(32)]
    gate, statuses = threading.Barrier(32), []

    def driver(k):
        gate.wait()
        statuses.append(servers[k].rpc("claim_batch", {"p_batch_id": contested}, claims={"sub": f"racer-{k}"})[0])

    threads = [threading.Thread(target=driver, args=(k,)) for k in range(32)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    check("32 concurrent claims: one 200, 31 409", (statuses.count(200), statuses.count(409)), (1, 31))

    # packing on a warehouse's own tables (bind_packing_source), as the
    # warehouse app's users call it
    wh = f"rest_wh_{uuid.uuid4().hex[:8]}"
    admin.execute(f"""CREATE SCHEMA {wh};
        CREATE TABLE {wh}.picking_sessions (id uuid PRIMARY KEY, status text NOT NULL,
          last_activity_at timestamptz, tenant_id text);
        CREATE TABLE {wh}.orders (id uuid PRIMARY KEY, sleeves_status text NOT NULL, order_number text);
        CREATE TABLE {wh}.packing_progress (id uuid PRIMARY KEY, picking_session_id uuid NOT NULL,
          order_id uuid NOT NULL, product_id uuid NOT NULL, quantity_needed integer NOT NULL,
          quantity_packed integer NOT NULL DEFAULT 0, updated_at timestamptz);
        CREATE TABLE {wh}.picking_session_items (picking_session_id uuid, product_id uuid,
          quantity_picked integer NOT NULL)""")
    sid, order, product, line = (str(uuid.uuid4()) for _ in range(4))
    admin.execute(f"INSERT INTO {wh}.picking_sessions VALUES (%s, 'packing', NULL, 'store-a')", (sid,))
    admin.execute(f"INSERT INTO {wh}.orders VALUES (%s, 'packing', '#R1')", (order,))
    admin.execute(f"INSERT INTO {wh}.packing_progress (id, picking_session_id, order_id, product_id, quantity_needed) "
                  "VALUES (%s, %s, %s, %s, 1)", (line, sid, order, product))
    admin.execute(f"INSERT INTO {wh}.picking_session_items VALUES (%s, %s, 5)", (sid, product))
    admin.execute(f"SELECT {S}.bind_packing_source(%s, %s, %s, %s, %s, p_tenant_column => 'tenant_id')",
                  (wh, f"{wh}.picking_sessions", f"{wh}.packing_progress", f"{wh}.orders", f"{wh}.picking_session_items"))
    pack = {"p_source": wh, "p_progress_id": line, "p_session_id": sid, "p_product_id": product}
    store_a = {"sub": "packer-1", "tenant_id": "store-a"}
    status, body = api.rpc("bound_increment_packing_quantity", pack, claims={"sub": "packer-2", "tenant_id": "store-b"})
    check("bound packing: another tenant's session -> 404", (status, body["code"]), (404, "PT404"))
    status, body = api.rpc("bound_increment_packing_quantity", pack, claims=store_a)
    check("bound_increment_packing_quantity -> 200", (status, body and body.get("quantity_packed")), (200, 1))
    status, body = api.rpc("bound_increment_packing_quantity", pack, claims=store_a)
    check("ALREADY_FULLY_PACKED -> 409", (status, body["code"]), (409, "PT409"))
    status, body = api.rpc("bound_increment_packing_quantity", dict(pack, p_product_id=str(uuid.uuid4())), claims=store_a)
    check("PROGRESS_SESSION_MISMATCH -> 403", (status, body["code"]), (403, "PT403"))
    status, body = api.rpc("bound_decrement_packing_quantity", {"p_source": wh, "p_progress_id": "not-a-uuid",
                                                                 "p_session_id": sid}, claims=store_a)
    check("bound packing: a malformed id -> 400", (status, body["code"]), (400, "22023"))
    status, body = api.rpc("bound_decrement_packing_quantity", {"p_source": wh, "p_progress_id": line,
                                                                 "p_session_id": sid}, claims=store_a)
    check("bound_decrement_packing_quantity -> 200", (status, body and body.get("quantity_packed")), (200, 0))

    # an app's own stock(product_id, warehouse_id, quantity) keyed by both
    # (bind_stock_source's p_location_column), sold per warehouse over HTTP
    st = f"rest_st_{uuid.uuid4().hex[:8]}"
    admin.execute(f"""CREATE TABLE public.{st} (product_id integer NOT NULL, warehouse_id text NOT NULL,
          quantity integer NOT NULL CHECK (quantity >= 0), PRIMARY KEY (product_id, warehouse_id));
        INSERT INTO public.{st} VALUES (1, 'north', 5), (1, 'south', 2)""")
    admin.execute(f"SELECT {S}.bind_stock_source(%s, %s, 'product_id', 'quantity', p_location_column => 'warehouse_id')",
                  (st, f"public.{st}"))
    status, body = api.rpc("bound_decrement", {"p_source": st, "p_item_id": "1", "p_quantity": 2, "p_location": "north"})
    check("bound_decrement at a location -> 200", (status, body and body.get("location"), body and body.get("new_quantity")),
          (200, "north", 3))
    status, body = api.rpc("bound_decrement", {"p_source": st, "p_item_id": "1", "p_quantity": 1})
    check("bound_decrement without p_location on a located table -> 400", (status, body["code"]), (400, "22023"))
    status, body = api.rpc("bound_decrement", {"p_source": st, "p_item_id": "1", "p_quantity": 3, "p_location": "south"})
    check("bound_decrement short at that location -> 409", (status, body["code"]), (409, "PT409"))
    status, body = api.rpc("bound_decrement_many", {"p_source": st, "p_lines": [
        {"item_id": "1", "location": "south", "quantity": 2}, {"item_id": 1, "location": "north", "quantity": 1}]})
    check("bound_decrement_many across locations -> 200", (status, body and [l["location"] for l in body["lines"]]),
          (200, ["north", "south"]))
    status, body = api.rpc("bound_get", {"p_source": st, "p_item_id": "1", "p_location": "north"})
    check("bound_get at a location -> 200", (status, body and body.get("quantity")), (200, 2))

    # locations (docs/locations.md), as a store's staff calls them: tenant
    # store-a from the JWT; a shared item with 10 units at the default location
    litem = admin.execute(f"SELECT {S}.create_item(p_quantity => 10, p_sku => 'rest-' || gen_random_uuid())->>'inventory_id'").fetchone()[0]
    default = "00000000-0000-0000-0000-000000000000"
    tag = uuid.uuid4().hex[:8]
    status, body = api.rpc("create_location", {"p_code": f"S1-{tag}", "p_name": "Store 1", "p_priority": 5}, claims=store_a)
    check("create_location -> 200, the caller's tenant", (status, body and body.get("tenant_id")), (200, "store-a"))
    s1 = body["location_id"]
    status, body = api.rpc("create_location", {"p_code": f"S1-{tag}"}, claims=store_a)
    check("create_location, code taken: LOCATION_EXISTS -> 409", (status, body["code"], body["message"].split(":")[0]),
          (409, "PT409", "LOCATION_EXISTS"))
    status, body = api.rpc("create_location", {"p_code": ""}, claims=store_a)
    check("create_location, empty code: INVALID_INPUT -> 400", (status, body["code"]), (400, "22023"))
    status, body = api.rpc("create_location", {"p_code": f"RET-{tag}", "p_sellable": False}, claims=store_a)
    check("create_location not sellable -> 200", (status, body and body.get("sellable")), (200, False))
    ret = body["location_id"]
    status, body = api.rpc("create_location", {"p_code": f"S2-{tag}"}, claims=store_a)
    s2 = body["location_id"]
    status, body = api.rpc("transfer_inventory", {"p_inventory_id": litem, "p_from_location_id": default,
                                                  "p_to_location_id": s1, "p_quantity": 4,
                                                  "p_reference": "replenish-1"}, claims=store_a)
    check("transfer_inventory -> 200", (status, body and body["from"]["new_quantity"], body and body["to"]["new_quantity"]),
          (200, 6, 4))
    check("transfer_inventory answers its transfer_id", bool(body and body.get("transfer_id")), True)
    status, body = api.rpc("transfer_inventory", {"p_inventory_id": litem, "p_from_location_id": s1,
                                                  "p_to_location_id": ret, "p_quantity": 5}, claims=store_a)
    check("transfer_inventory, source short: INSUFFICIENT_INVENTORY -> 409",
          (status, body["code"], body["message"].split(":")[0]), (409, "PT409", "INSUFFICIENT_INVENTORY"))
    status, body = api.rpc("transfer_inventory", {"p_inventory_id": litem, "p_from_location_id": s1,
                                                  "p_to_location_id": s1, "p_quantity": 1}, claims=store_a)
    check("transfer_inventory to its source: INVALID_INPUT -> 400", (status, body["code"]), (400, "22023"))
    status, body = api.rpc("transfer_inventory", {"p_inventory_id": litem, "p_from_location_id": s1,
                                                  "p_to_location_id": s2, "p_quantity": 0}, claims=store_a)
    check("transfer_inventory of 0: INVALID_QUANTITY -> 400", (status, body["code"]), (400, "22023"))
    status, body = api.rpc("transfer_inventory", {"p_inventory_id": litem, "p_from_location_id": s2,
                                                  "p_to_location_id": s1, "p_quantity": 1}, claims=store_a)
    check("transfer_inventory out of a location without stock: LEVEL_NOT_FOUND -> 404",
          (status, body["code"], body["message"].split(":")[0]), (404, "PT404", "LEVEL_NOT_FOUND"))
    status, body = api.rpc("transfer_inventory", {"p_inventory_id": litem, "p_from_location_id": s1,
                                                  "p_to_location_id": ret, "p_quantity": 1}, claims=store_a)
    check("transfer_inventory into a returns area -> 200", status, 200)
    status, body = api.rpc("decrement_inventory", {"p_inventory_id": litem, "p_quantity": 2, "p_location_id": s1}, claims=store_a)
    check("a sale at a location -> 200", (status, body and body.get("location_id"), body and body.get("new_quantity")),
          (200, s1, 1))
    status, body = api.rpc("decrement_inventory", {"p_inventory_id": litem, "p_quantity": 2, "p_location_id": s1}, claims=store_a)
    check("a sale at a location, short: INSUFFICIENT_INVENTORY -> 409", (status, body["code"]), (409, "PT409"))
    status, body = api.rpc("decrement_inventory", {"p_inventory_id": litem, "p_quantity": 1, "p_location_id": s2}, claims=store_a)
    check("a sale where the item has no stock: LEVEL_NOT_FOUND -> 404",
          (status, body["code"], body["message"].split(":")[0]), (404, "PT404", "LEVEL_NOT_FOUND"))
    status, body = api.rpc("decrement_inventory", {"p_inventory_id": litem, "p_quantity": 1, "p_location_id": ret}, claims=store_a)
    check("a sale at a location that is not sellable: LOCATION_UNAVAILABLE -> 409",
          (status, body["code"], body["message"].split(":")[0]), (409, "PT409", "LOCATION_UNAVAILABLE"))
    status, body = api.rpc("decrement_inventory", {"p_inventory_id": litem, "p_quantity": 1, "p_location_id": s1},
                           claims={"sub": "u", "tenant_id": "store-b"})
    check("a sale at another tenant's location -> 404", (status, body["code"]), (404, "PT404"))
    status, body = api.rpc("update_location", {"p_location_id": s1, "p_name": "Store 1 (Kreuzberg)"}, claims=store_a)
    check("update_location -> 200", (status, body and body.get("name")), (200, "Store 1 (Kreuzberg)"))
    status, body = api.rpc("update_location", {"p_location_id": s1, "p_active": False}, claims=store_a)
    check("update_location deactivating one with stock: LOCATION_IN_USE -> 409",
          (status, body["code"], body["message"].split(":")[0]), (409, "PT409", "LOCATION_IN_USE"))
    status, body = api.rpc("update_location", {"p_location_id": s1, "p_name": "x"}, claims={"sub": "u", "tenant_id": "store-b"})
    check("update_location of another tenant's location -> 404", (status, body["code"]), (404, "PT404"))
    # a transfer in transit: shipped from the default location, received at
    # the store (an item of its own, so the counts above and below hold)
    titem = admin.execute(f"SELECT {S}.create_item(p_quantity => 5, p_sku => 'rest-' || gen_random_uuid())->>'inventory_id'").fetchone()[0]
    status, body = api.rpc("transfer_inventory", {"p_inventory_id": titem, "p_from_location_id": default,
                                                  "p_to_location_id": s1, "p_quantity": 3, "p_receive": False},
                           claims=store_a)
    check("transfer_inventory p_receive false: shipped -> 200",
          (status, body and body.get("status"), body and body["from"]["new_quantity"]), (200, "shipped", 2))
    tid = body and body.get("transfer_id")
    status, body = api.rpc("get_inventory", {"p_inventory_id": titem, "p_location_id": s1}, claims=store_a)
    check("get_inventory: the units in transit to the store",
          (status, body and body.get("quantity"), body and body.get("in_transit")), (200, 0, 3))
    status, body = api.rpc("receive_transfer", {"p_transfer_id": tid}, claims={"sub": "u", "tenant_id": "store-b"})
    check("receive_transfer of another tenant's transfer -> 404", (status, body["code"]), (404, "PT404"))
    status, body = api.rpc("receive_transfer", {"p_transfer_id": tid, "p_reference": f"gr-{tag}"}, claims=store_a)
    check("receive_transfer -> 200", (status, body and body.get("status"), body and body["to"]["new_quantity"]),
          (200, "received", 3))
    status, body = api.rpc("receive_transfer", {"p_transfer_id": tid}, claims=store_a)
    check("receive_transfer again: TRANSFER_NOT_IN_TRANSIT -> 409",
          (status, body["code"], body["message"].split(":")[0]), (409, "PT409", "TRANSFER_NOT_IN_TRANSIT"))
    status, body = api.rpc("transfer_inventory", {"p_inventory_id": titem, "p_from_location_id": default,
                                                  "p_to_location_id": s2, "p_quantity": 1, "p_receive": False},
                           claims=store_a)
    tid = body and body.get("transfer_id")
    status, body = api.rpc("update_location", {"p_location_id": s2, "p_active": False}, claims=store_a)
    check("update_location deactivating one with units on their way: LOCATION_IN_USE -> 409",
          (status, body["code"], body["message"].split(":")[0]), (409, "PT409", "LOCATION_IN_USE"))
    status, body = api.rpc("cancel_transfer", {"p_transfer_id": tid}, claims=store_a)
    check("cancel_transfer -> 200", (status, body and body.get("status"), body and body["from"]["new_quantity"]),
          (200, "cancelled", 2))
    status, body = api.rpc("update_location", {"p_location_id": s2, "p_active": False}, claims=store_a)
    check("update_location deactivating an empty one -> 200", (status, body and body.get("active")), (200, False))
    status, body = api.rpc("increment_inventory", {"p_inventory_id": litem, "p_quantity": 1, "p_location_id": s2}, claims=store_a)
    check("a restock at an inactive location: LOCATION_UNAVAILABLE -> 409", (status, body["code"]), (409, "PT409"))
    status, body = api.rpc("decrement_inventory_many", {"p_lines": [{"inventory_id": litem, "quantity": 7}]}, claims=store_a)
    check("an order allocated across locations -> 200",
          (status, body and sorted((l["location_id"], l["deducted"]) for l in body["lines"])),
          (200, sorted([(default, 6), (s1, 1)])))
    status, body = api.rpc("get_inventory", {"p_inventory_id": litem}, claims=store_a)
    check("get_inventory: the totals over the levels", (status, body and body.get("quantity")), (200, 1))
    # a cart held at a store (a line's location_id), committed in part, the rest released
    status, body = api.rpc("increment_inventory", {"p_inventory_id": litem, "p_quantity": 3, "p_location_id": s1}, claims=store_a)
    check("a restock at a store -> 200", (status, body and body.get("new_quantity")), (200, 3))
    status, body = api.rpc("reserve_inventory", {"p_lines": [{"inventory_id": litem, "quantity": 2, "location_id": s1}],
                                                 "p_ttl_seconds": 600, "p_reference": f"cart-{tag}"}, claims=store_a)
    check("reserve_inventory at a store -> 200",
          (status, body and body["lines"][0].get("location_id"), body and body["lines"][0].get("quantity")), (200, s1, 2))
    rid = body and body.get("reservation_id")
    status, body = api.rpc("get_inventory", {"p_inventory_id": litem, "p_location_id": s1}, claims=store_a)
    check("the store's level holds the units", (status, body and body.get("reserved"), body and body.get("available")),
          (200, 2, 1))
    status, body = api.rpc("decrement_inventory", {"p_inventory_id": litem, "p_quantity": 2, "p_location_id": s1}, claims=store_a)
    check("a sale of held units at the store: INSUFFICIENT_INVENTORY -> 409", (status, body["code"]), (409, "PT409"))
    status, body = api.rpc("commit_reservation", {"p_reservation_id": rid, "p_lines": [{"inventory_id": litem, "quantity": 1}],
                                                  "p_rest": "keep"}, claims=store_a)
    check("commit_reservation of part of a hold at a store -> 200",
          (status, body and body.get("status"), body and body["committed"][0].get("location_id")), (200, "active", s1))
    status, body = api.rpc("release_reservation", {"p_reservation_id": rid}, claims=store_a)
    check("release_reservation of the rest -> 200", (status, body and body.get("status")), (200, "committed"))
    status, body = api.rpc("get_inventory", {"p_inventory_id": litem, "p_location_id": s1}, claims=store_a)
    check("the store's level: 1 sold, nothing held", (status, body and body.get("quantity"), body and body.get("reserved")),
          (200, 2, 0))
    status, body = api.rpc("reserve_inventory", {"p_lines": [{"inventory_id": litem, "quantity": 1, "location_id": ret}]},
                           claims=store_a)
    check("a hold at a location that is not sellable: LOCATION_UNAVAILABLE -> 409",
          (status, body["code"], body["message"].split(":")[0]), (409, "PT409", "LOCATION_UNAVAILABLE"))
    status, body = api.rpc("reserve_inventory", {"p_lines": [{"inventory_id": litem, "quantity": 1, "location_id": s2}]},
                           claims=store_a)
    check("a hold at an inactive location: LOCATION_UNAVAILABLE -> 409", (status, body["code"]), (409, "PT409"))
    status, body = api.rpc("reserve_inventory", {"p_lines": [{"inventory_id": litem, "quantity": 1, "location_id": s1}]},
                           claims={"sub": "u", "tenant_id": "store-b"})
    check("a hold at another tenant's location -> 404", (status, body["code"]), (404, "PT404"))

    # stock states (docs/stock-states.md): a store's item, 8 units
    sitem = admin.execute(f"SELECT {S}.create_item(p_quantity => 8, p_sku => 'rest-' || gen_random_uuid(), "
                          "p_tenant_id => 'store-a')->>'inventory_id'").fetchone()[0]
    move = {"p_inventory_id": sitem, "p_from": "available", "p_to": "damaged", "p_quantity": 3,
            "p_reason": "dropped", "p_reference": "count-7"}
    status, body = api.rpc("move_stock_state", move, claims=store_a)
    check("move_stock_state -> 200, the item's states",
          (status, body and body.get("available"), body and body["states"]["damaged"]), (200, 5, 3))
    status, body = api.rpc("decrement_inventory", {"p_inventory_id": sitem, "p_quantity": 6}, claims=store_a)
    check("a sale of set-aside units: INSUFFICIENT_INVENTORY -> 409",
          (status, body["code"], body["message"].split(":")[0]), (409, "PT409", "INSUFFICIENT_INVENTORY"))
    status, body = api.rpc("move_stock_state", dict(move, p_from="damaged", p_to="written_off", p_quantity=4),
                           claims=store_a)
    check("move_stock_state, more than the state holds: INSUFFICIENT_STOCK_STATE -> 409",
          (status, body["code"], body["message"].split(":")[0]), (409, "PT409", "INSUFFICIENT_STOCK_STATE"))
    status, body = api.rpc("move_stock_state", dict(move, p_to="broken"), claims=store_a)
    check("move_stock_state, an unknown state: UNKNOWN_STOCK_STATE -> 400",
          (status, body["code"], body["message"].split(":")[0]), (400, "22023", "UNKNOWN_STOCK_STATE"))
    status, body = api.rpc("move_stock_state", dict(move, p_to="available"), claims=store_a)
    check("move_stock_state to its own state: INVALID_INPUT -> 400", (status, body["code"]), (400, "22023"))
    status, body = api.rpc("move_stock_state", dict(move, p_quantity=0), claims=store_a)
    check("move_stock_state of 0: INVALID_QUANTITY -> 400", (status, body["code"]), (400, "22023"))
    status, body = api.rpc("move_stock_state", move, claims={"sub": "u", "tenant_id": "store-b"})
    check("move_stock_state of another tenant's item -> 404", (status, body["code"]), (404, "PT404"))
    status, body = api.rpc("move_stock_state", move, role="anon")
    check("move_stock_state as anon -> 401", (status, body["code"]), (401, "42501"))
    status, body = api.rpc("move_stock_state", dict(move, p_from="damaged", p_to="written_off"), claims=store_a)
    check("move_stock_state damaged -> written_off -> 200",
          (status, body and body.get("quantity"), body and body["states"]["damaged"]), (200, 5, 0))

    # nothing leaks between requests on one connection (transaction-scoped settings)
    role, claims = api.conn.execute("SELECT current_user, current_setting('request.jwt.claims', true)").fetchone()
    check("no session state left behind", (role, claims or ""), ("authenticator", ""))

    checks.finish()


if __name__ == "__main__":
    main()
