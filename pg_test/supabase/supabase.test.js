// atomic_inventory called by @supabase/supabase-js over HTTP: through a
// PostgREST-dialect server (postrust, compat mode) in front of the test
// cluster, with tokens signed here as Supabase signs them (HS256). Run by
// pg_test/supabase_http.sh.
//
// Asserted: HTTP statuses and SQLSTATEs (PostgREST's mapping, which postrust
// shares), the answers' documented fields, and every effect, read back from
// the database afterwards. How postrust differs from PostgREST:
// docs/supabase.md.
//
// The code between `// doc:start` and `// doc:end` is what docs/supabase.md
// shows, character for character (after the indentation): the first test
// compares them.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { createClient } from '@supabase/supabase-js';
import * as L from './lib.js';
import { S, db, one, rows, tally } from './lib.js';

let gateway;
let SUPABASE_URL;
const SUPABASE_ANON_KEY = L.anonKey;
const SUPABASE_SERVICE_ROLE_KEY = L.serviceRoleKey;
const A = 'shop-a';
const B = 'shop-b';
let sources;

// A signed-in user's client: the code of docs/supabase.md, for a token.
function userClient(userJwt) {
  // doc:start
  const supabase = createClient(SUPABASE_URL, SUPABASE_ANON_KEY, {
    accessToken: async () => userJwt,  // the user's JWT; or sign the user in with supabase.auth
  });
  const inv = supabase.schema('atomic_inventory');
  // doc:end
  return inv;
}

function serviceClient() {
  // doc:start
  // a trusted backend (never a browser): service_role acts across tenants
  const admin = createClient(SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY, {
    auth: { persistSession: false, autoRefreshToken: false },
  });
  const adminInv = admin.schema('atomic_inventory');
  // doc:end
  return adminInv;
}

function anonClient() {
  return createClient(SUPABASE_URL, SUPABASE_ANON_KEY, {
    auth: { persistSession: false, autoRefreshToken: false },
  }).schema('atomic_inventory');
}

// users' ids carry the run's id: a driver's active batches count against
// p_max_active, and the cluster may have served an earlier run
const sub = (name) => `${name}-${L.runId}`;
const user = (name, tenant = A) => userClient(L.userToken(sub(name), tenant));
let inv; // user-a of shop-a
let invB; // user-b of shop-b
let adminInv; // service_role
let anon; // the anon key

// error.details is our JSON detail; its code is the stable one
const codeOf = (error) => JSON.parse(error.details).code;
function refused(res, status, sqlstate, code) {
  assert.equal(res.status, status, `status of ${JSON.stringify(res.error)}`);
  assert.ok(res.error, 'an error');
  assert.equal(res.data, null);
  if (sqlstate) assert.equal(res.error.code, sqlstate);
  if (code) {
    assert.equal(codeOf(res.error), code);
    assert.match(res.error.message, new RegExp(`^${code}: `));
  }
}

before(async () => {
  gateway = await L.startGateway();
  SUPABASE_URL = gateway.url;
  inv = user('user-a', A);
  invB = user('user-b', B);
  adminInv = serviceClient();
  anon = anonClient();
  sources = await L.makeSources();
});

after(async () => {
  await gateway?.close();
  await db.end();
});

test('docs/supabase.md shows the code this test runs', () => {
  const source = readFileSync(new URL(import.meta.url), 'utf8');
  const snippets = [...source.matchAll(/^([ \t]*)\/\/ doc:start\n([\s\S]*?)^[ \t]*\/\/ doc:end$/gm)]
    .map((m) => m[2].split('\n').map((line) => line.slice(m[1].length)).join('\n').trimEnd());
  const doc = readFileSync(new URL('../../docs/supabase.md', import.meta.url), 'utf8');
  const blocks = [...doc.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1].trimEnd());
  assert.ok(snippets.length >= 10, `found ${snippets.length} snippets`);
  assert.doesNotMatch(doc, /^```(javascript|ts|typescript|mjs)\b/m, 'JavaScript blocks are marked js');
  for (const block of blocks) assert.ok(snippets.includes(block), `docs/supabase.md shows code no test runs:\n${block}`);
  for (const snippet of snippets) assert.ok(blocks.includes(snippet), `docs/supabase.md lacks:\n${snippet}`);
});

describe('stock', () => {
  let outOfStock = [];
  const showOutOfStock = (lines) => { outOfStock = lines; };

  test('a POS sale, and its 409 as supabase-js hands it over', async () => {
    const item = await L.makeItem(A, 10);
    const order = { id: randomUUID() };
    // doc:start
    // POS sale / checkout line (the POS sale of docs/background.md)
    const { data, error } = await inv.rpc('decrement_inventory', {
      p_inventory_id: item.id, p_quantity: 2, p_reference: order.id,
      p_idempotency_key: `${order.id}:${item.id}`,          // safe to retry
    });
    // data: { success: true, inventory_id, old_quantity, new_quantity, deducted }
    // doc:end
    assert.equal(error, null);
    assert.deepEqual(data, { success: true, inventory_id: item.id, old_quantity: 10, new_quantity: 8, deducted: 2 });
    // the same key again: the first answer, nothing applied twice
    const again = await inv.rpc('decrement_inventory', {
      p_inventory_id: item.id, p_quantity: 2, p_reference: order.id, p_idempotency_key: `${order.id}:${item.id}`,
    });
    assert.deepEqual([again.status, again.data], [200, data]);
    assert.deepEqual(await L.itemState(item.id), { quantity: 8, reserved: 0, ledger_rows: 2, ledger_sum: 8 });

    // doc:start
    const { error: short, status } = await inv.rpc('decrement_inventory', { p_inventory_id: item.id, p_quantity: 9 });
    if (short) {
      // status 409, short.code 'PT409' (the SQLSTATE),
      // short.message 'INSUFFICIENT_INVENTORY: item … has 8 available, 9 requested'
      const detail = JSON.parse(short.details);  // { code: 'INSUFFICIENT_INVENTORY', lines: [{ available, requested, … }] }
      if (detail.code === 'INSUFFICIENT_INVENTORY') showOutOfStock(detail.lines);
    }
    // doc:end
    assert.equal(status, 409);
    assert.equal(short.code, 'PT409');
    assert.match(short.message, /^INSUFFICIENT_INVENTORY: /);
    assert.ok(short.hint);
    // the detail's quantities are JSON strings (numeric's text), the answers' JSON numbers
    assert.deepEqual(outOfStock, [{ inventory_id: item.id, available: '8', requested: '9' }]);
    assert.deepEqual(await L.itemState(item.id), { quantity: 8, reserved: 0, ledger_rows: 2, ledger_sum: 8 });
  });

  test('a whole cart, all or nothing', async () => {
    const a = await L.makeItem(A, 5);
    const b = await L.makeItem(A, 1);
    const order = { id: randomUUID() };
    let cart = [{ id: a.id, qty: 2 }, { id: b.id, qty: 1 }];
    // doc:start
    // whole cart, all or nothing
    const { data: sold, error } = await inv.rpc('decrement_inventory_many', {
      p_lines: cart.map((l) => ({ inventory_id: l.id, quantity: l.qty })), p_reference: order.id });
    // sold.lines: [{ inventory_id, old_quantity, new_quantity, deducted }, …]
    // doc:end
    assert.equal(error, null);
    assert.equal(sold.lines.length, 2);
    cart = [{ id: a.id, qty: 1 }, { id: b.id, qty: 1 }];
    const res = await inv.rpc('decrement_inventory_many', {
      p_lines: cart.map((l) => ({ inventory_id: l.id, quantity: l.qty })), p_reference: order.id });
    refused(res, 409, 'PT409', 'INSUFFICIENT_INVENTORY');
    assert.deepEqual(JSON.parse(res.error.details).lines.map((l) => l.inventory_id), [b.id]);
    assert.equal((await L.itemState(a.id)).quantity, 3); // the covered line was not taken either
    assert.equal((await L.itemState(b.id)).quantity, 0);
    const ledger = await rows(`SELECT count(*)::int AS n FROM ${S}.ledger WHERE reference = $1`, [order.id]);
    assert.equal(ledger[0].n, 2);
    refused(await inv.rpc('decrement_inventory_many', { p_lines: [] }), 400, '22023', 'INVALID_INPUT');
  });

  test('create an item, read it, restock it, compare-and-set it', async () => {
    const sku = `sb-${L.runId}-${randomUUID()}`;
    // doc:start
    const { data: created } = await inv.rpc('create_item', {
      p_sku: sku, p_name: 'Espresso beans 1 kg', p_quantity: 12, p_id: crypto.randomUUID() });  // p_id: safe to retry
    const p_inventory_id = created.inventory_id;  // the item belongs to the caller's tenant
    await inv.rpc('increment_inventory', { p_inventory_id, p_quantity: 10, p_reason: 'restock' });
    const { data: seen } = await inv.rpc('get_inventory', { p_inventory_id });
    // seen: { quantity: 22, reserved: 0, available: 22, tenant_id: 'shop-a', … }
    const { error: moved } = await inv.rpc('adjust_inventory', {
      p_inventory_id, p_new_quantity: 20, p_expected_quantity: seen.quantity, p_reason: 'stock count' });
    // moved?.code === 'PT409' (QUANTITY_MISMATCH): it changed since it was read; read again
    // doc:end
    assert.equal(moved, null);
    assert.equal(created.tenant_id, A);
    assert.deepEqual([seen.quantity, seen.reserved, seen.available, seen.tenant_id], [22, 0, 22, A]);
    assert.deepEqual(await L.itemState(p_inventory_id), { quantity: 20, reserved: 0, ledger_rows: 3, ledger_sum: 20 });
    const stale = await inv.rpc('adjust_inventory', { p_inventory_id, p_new_quantity: 5, p_expected_quantity: 22 });
    refused(stale, 409, 'PT409', 'QUANTITY_MISMATCH');
    refused(await inv.rpc('adjust_inventory', { p_inventory_id, p_new_quantity: 5 }), 400, '22023', 'INVALID_INPUT');
    refused(await inv.rpc('create_item', { p_sku: sku }), 409, 'PT409', 'ITEM_EXISTS');
    refused(await inv.rpc('create_item', { p_sku: `${sku}-b`, p_tenant_id: B }), 400, '22023', 'INVALID_INPUT');
    refused(await inv.rpc('increment_inventory', { p_inventory_id, p_quantity: -1 }), 400, '22023', 'INVALID_QUANTITY');
    refused(await inv.rpc('get_inventory', { p_inventory_id: randomUUID() }), 404, 'PT404', 'NOT_FOUND');
    // another tenant: the same 404, no existence leak
    refused(await invB.rpc('get_inventory', { p_inventory_id }), 404, 'PT404', 'NOT_FOUND');
    assert.deepEqual(await L.itemState(p_inventory_id), { quantity: 20, reserved: 0, ledger_rows: 3, ledger_sum: 20 });
  });

  test('adjusting below the reserved units: 409 BELOW_RESERVED', async () => {
    const item = await L.makeItem(A, 6);
    await L.makeHold([[item.id, 4]]);
    refused(await inv.rpc('adjust_inventory', { p_inventory_id: item.id, p_new_quantity: 3, p_force: true }),
      409, 'PT409', 'BELOW_RESERVED');
    assert.deepEqual(await L.itemState(item.id), { quantity: 6, reserved: 4, ledger_rows: 1, ledger_sum: 6 });
  });

  test('an idempotency key reused with other arguments: 422', async () => {
    const item = await L.makeItem(A, 10);
    const key = `sb-${randomUUID()}`;
    const first = await inv.rpc('increment_inventory', { p_inventory_id: item.id, p_quantity: 1, p_idempotency_key: key });
    assert.equal(first.status, 200);
    refused(await inv.rpc('increment_inventory', { p_inventory_id: item.id, p_quantity: 2, p_idempotency_key: key }),
      422, 'PT422', 'IDEMPOTENCY_CONFLICT');
    // keys are per tenant: the same key in shop-b is another key
    const other = await L.makeItem(B, 1);
    assert.equal((await invB.rpc('increment_inventory', { p_inventory_id: other.id, p_quantity: 1, p_idempotency_key: key })).status, 200);
    assert.equal((await L.itemState(item.id)).quantity, 11);
    assert.equal((await L.itemState(other.id)).quantity, 2);
  });

  test('a row held by another transaction past p_lock_timeout_ms: 503 LOCK_TIMEOUT, nothing changed', async () => {
    const item = await L.makeItem(A, 10);
    const holder = await db.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM ${S}.items WHERE id = $1 FOR UPDATE`, [item.id]);
      const started = Date.now();
      // doc:start
      const { error, status } = await inv.rpc('decrement_inventory', {
        p_inventory_id: item.id, p_quantity: 1, p_lock_timeout_ms: 200 });
      // status 503, error.code 'PT503' (LOCK_TIMEOUT): nothing changed, retry shortly
      // doc:end
      assert.ok(Date.now() - started < 5000);
      assert.equal(status, 503);
      assert.equal(error.code, 'PT503');
      assert.equal(codeOf(error), 'LOCK_TIMEOUT');
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
    assert.deepEqual(await L.itemState(item.id), { quantity: 10, reserved: 0, ledger_rows: 1, ledger_sum: 10 });
  });

  test('reconcile, caller_tenant, caller_is_admin', async () => {
    const item = await L.makeItem(A, 3);
    // doc:start
    const { data: drift } = await inv.rpc('reconcile');            // [] when every unit is accounted for
    const { data: tenant } = await inv.rpc('caller_tenant');       // 'shop-a': the token's tenant_id claim
    const { data: isAdmin } = await adminInv.rpc('caller_is_admin');  // true: service_role has BYPASSRLS
    // doc:end
    assert.ok(Array.isArray(drift));
    assert.ok(!drift.some((r) => r.inventory_id === item.id));
    assert.equal(tenant, A);
    assert.equal(isAdmin, true);
    assert.deepEqual([(await inv.rpc('caller_is_admin')).data, (await invB.rpc('caller_tenant')).data], [false, B]);
    // a write outside the functions shows up, to its tenant only
    await db.query(`UPDATE ${S}.items SET quantity = quantity + 1 WHERE id = $1`, [item.id]);
    try {
      const seenA = (await inv.rpc('reconcile')).data.filter((r) => r.inventory_id === item.id);
      const seenB = (await invB.rpc('reconcile')).data.filter((r) => r.inventory_id === item.id);
      const seenAdmin = (await adminInv.rpc('reconcile')).data.filter((r) => r.inventory_id === item.id);
      assert.deepEqual(seenA.map((r) => r.drift), [1]);
      assert.deepEqual(seenB, []);
      assert.deepEqual(seenAdmin.map((r) => r.drift), [1]);
    } finally {
      await db.query(`UPDATE ${S}.items SET quantity = quantity - 1 WHERE id = $1`, [item.id]);
    }
  });
});

describe('reservations', () => {
  test('hold a cart, then commit it when paid or release it', async () => {
    for (const paid of [true, false]) {
      const a = await L.makeItem(A, 5);
      const b = await L.makeItem(A, 5);
      const cart = { id: `cart-${randomUUID()}` };
      const p_lines = [{ inventory_id: a.id, quantity: 2 }, { inventory_id: b.id, quantity: 1 }];
      // doc:start
      // reservations (the checkout reservation): hold, then commit or release
      const { data: hold } = await inv.rpc('reserve_inventory', { p_lines, p_ttl_seconds: 900, p_reference: cart.id });
      // … payment …
      if (paid) await inv.rpc('commit_reservation', { p_reservation_id: hold.reservation_id });
      else await inv.rpc('release_reservation', { p_reservation_id: hold.reservation_id, p_reason: 'cart abandoned' });
      // doc:end
      const state = await L.holdState(hold.reservation_id);
      assert.equal(state.status, paid ? 'committed' : 'released');
      assert.deepEqual(await L.itemState(a.id), paid
        ? { quantity: 3, reserved: 0, ledger_rows: 2, ledger_sum: 3 }
        : { quantity: 5, reserved: 0, ledger_rows: 1, ledger_sum: 5 });
      // finished is final: the other one is refused, nothing applied twice
      const again = await inv.rpc(paid ? 'release_reservation' : 'commit_reservation', { p_reservation_id: hold.reservation_id });
      refused(again, 409, 'PT409', 'RESERVATION_NOT_ACTIVE');
      assert.equal((await L.itemState(b.id)).quantity, paid ? 4 : 5);
    }
  });

  test('extend, read, commit a line, and the line already finished: 409 LINE_NOT_ACTIVE', async () => {
    const a = await L.makeItem(A, 5);
    const b = await L.makeItem(A, 5);
    const { data: hold } = await inv.rpc('reserve_inventory', {
      p_lines: [{ inventory_id: a.id, quantity: 2 }, { inventory_id: b.id, quantity: 3 }], p_ttl_seconds: 60 });
    // doc:start
    await inv.rpc('extend_reservation', { p_reservation_id: hold.reservation_id, p_ttl_seconds: 900 });
    const { data: current } = await inv.rpc('get_reservation', { p_reservation_id: hold.reservation_id });
    // current: { status: 'active', expires_at, lines: [{ inventory_id, quantity, status }, …], … }
    // only some lines (the rest stay held):
    await inv.rpc('commit_reservation', { p_reservation_id: hold.reservation_id, p_inventory_ids: [a.id] });
    // doc:end
    assert.equal(current.status, 'active');
    assert.ok(new Date(current.expires_at) - Date.now() > 800e3);
    const line = await inv.rpc('commit_reservation', { p_reservation_id: hold.reservation_id, p_inventory_ids: [a.id] });
    refused(line, 409, 'PT409', 'LINE_NOT_ACTIVE');
    refused(await inv.rpc('commit_reservation', { p_reservation_id: hold.reservation_id, p_inventory_ids: [randomUUID()] }),
      400, '22023', 'INVALID_INPUT');
    refused(await invB.rpc('get_reservation', { p_reservation_id: hold.reservation_id }), 404, 'PT404', 'NOT_FOUND');
    const state = await L.holdState(hold.reservation_id);
    assert.equal(state.status, 'active');
    assert.deepEqual(state.lines.map((l) => l.status).sort(), ['active', 'committed']);
    assert.deepEqual(await L.itemState(a.id), { quantity: 3, reserved: 0, ledger_rows: 2, ledger_sum: 3 });
    assert.deepEqual(await L.itemState(b.id), { quantity: 5, reserved: 3, ledger_rows: 1, ledger_sum: 5 });
    const over = await inv.rpc('reserve_inventory', { p_lines: [{ inventory_id: b.id, quantity: 3 }] });
    refused(over, 409, 'PT409', 'INSUFFICIENT_INVENTORY');
    refused(await inv.rpc('reserve_inventory', { p_lines: [{ inventory_id: b.id, quantity: 1 }], p_ttl_seconds: 0 }),
      400, '22023', 'INVALID_INPUT');
  });

  test('a hold past its expiry: 410 RESERVATION_EXPIRED', async () => {
    // The background worker of this cluster sweeps every second and may
    // expire the hold first (then it is 409 RESERVATION_NOT_ACTIVE): tried
    // up to three times.
    let res;
    let item;
    for (let attempt = 0; attempt < 3; attempt += 1) {
      item = await L.makeItem(A, 5);
      const id = await L.makeHold([[item.id, 2]]);
      await db.query(`UPDATE ${S}.reservations SET expires_at = now() - interval '1 second' WHERE id = $1`, [id]);
      res = await inv.rpc('commit_reservation', { p_reservation_id: id });
      if (res.status === 410) break;
    }
    refused(res, 410, 'PT410', 'RESERVATION_EXPIRED');
    assert.equal((await L.itemState(item.id)).quantity, 5);
  });
});

describe('delivery batches', () => {
  test('the claim route: one driver gets the batch, the next a 409; start, complete, unclaim', async () => {
    const zone = `sb-${randomUUID()}`;
    const p_batch_id = await L.makeBatch(A, zone);
    const other = await L.makeBatch(A, zone);
    const toasts = [];
    const showToast = (text) => toasts.push(text);
    const driver2 = user('driver-2');
    const first = await driver2.rpc('claim_batch', { p_batch_id });
    assert.equal(first.status, 200, JSON.stringify(first.error));
    // doc:start
    // delivery batches (the claim route): the driver is the JWT's sub
    const { error: e } = await inv.rpc('claim_batch', { p_batch_id });
    if (e?.code === 'PT409') showToast('Another driver already took this batch');  // HTTP 409
    const { data: next } = await inv.rpc('claim_next_batch', { p_zone: zone, p_max_active: 3 }); // null if none
    await inv.rpc('start_batch', { p_batch_id: next.batch_id });
    await inv.rpc('complete_batch', { p_batch_id: next.batch_id });
    // doc:end
    assert.equal(codeOf(e), 'BATCH_UNAVAILABLE', JSON.stringify(e));
    assert.deepEqual(toasts, ['Another driver already took this batch']);
    assert.equal(next.batch_id, other);
    assert.deepEqual(await L.batchState(other), { status: 'completed', claimed_by: sub('user-a') });
    assert.deepEqual(await L.batchState(p_batch_id), { status: 'claimed', claimed_by: sub('driver-2') });
    // nothing left in the zone: 200 with null
    const none = await inv.rpc('claim_next_batch', { p_zone: zone });
    assert.deepEqual([none.status, none.data, none.error], [200, null, null]);
    // not the holder: 403; acting as another driver: 400
    refused(await inv.rpc('start_batch', { p_batch_id }), 403, 'PT403', 'BATCH_NOT_HELD');
    refused(await inv.rpc('unclaim_batch', { p_batch_id, p_driver_id: sub('driver-2') }), 400, '22023', 'INVALID_INPUT');
    refused(await invB.rpc('claim_batch', { p_batch_id }), 404, 'PT404', 'NOT_FOUND');
    assert.equal((await driver2.rpc('unclaim_batch', { p_batch_id })).status, 200);
    const reclaimed = await inv.rpc('claim_batch', { p_batch_id });
    assert.equal(reclaimed.status, 200, JSON.stringify(reclaimed.error));
    // doc:start
    await inv.rpc('unclaim_batch', { p_batch_id });  // give it back: available again
    // doc:end
    assert.deepEqual(await L.batchState(p_batch_id), { status: 'available', claimed_by: null });
    // the driver's limit
    const more = [await L.makeBatch(A, zone), await L.makeBatch(A, zone)];
    assert.equal((await driver2.rpc('claim_batch', { p_batch_id: more[0], p_max_active: 1 })).status, 200);
    refused(await driver2.rpc('claim_batch', { p_batch_id: more[1], p_max_active: 1 }), 409, 'PT409', 'DRIVER_LIMIT_REACHED');
    assert.deepEqual(await L.batchState(more[1]), { status: 'available', claimed_by: null });
    // the anon key: no EXECUTE
    refused(await anon.rpc('claim_batch', { p_batch_id: more[1] }), 401, '42501');
    assert.deepEqual(await L.batchState(more[1]), { status: 'available', claimed_by: null });
  });
});

describe('locations and stock events', () => {
  test('a shipment received and one cancelled; units set aside and brought back', async () => {
    const item = await L.makeItem(A, 10);
    const store = await locationOf();
    const ship = async () => {
      const { data, status } = await inv.rpc('transfer_inventory', {
        p_inventory_id: item.id, p_from_location_id: DEFAULT_LOCATION, p_to_location_id: store,
        p_quantity: 2, p_receive: false });
      assert.deepEqual([status, data.status], [200, 'shipped']);
      return data.transfer_id;
    };
    const first = await ship();
    const got = await inv.rpc('receive_transfer', { p_transfer_id: first });
    assert.equal(got.status, 200, JSON.stringify(got.error));
    refused(await inv.rpc('receive_transfer', { p_transfer_id: first }), 409, 'PT409', 'TRANSFER_NOT_IN_TRANSIT');
    const second = await ship();
    refused(await invB.rpc('cancel_transfer', { p_transfer_id: second }), 404, 'PT404', 'NOT_FOUND');
    assert.equal((await inv.rpc('cancel_transfer', { p_transfer_id: second })).status, 200);
    const aside = await inv.rpc('move_stock_state', {
      p_inventory_id: item.id, p_from: 'available', p_to: 'damaged', p_quantity: 1 });
    assert.deepEqual([aside.status, aside.data.unsellable], [200, 1]);
    const back = await inv.rpc('move_stock_state', {
      p_inventory_id: item.id, p_from: 'damaged', p_to: 'available', p_quantity: 1 });
    assert.deepEqual([back.status, back.data.unsellable], [200, 0]);
    const levels = await one(`SELECT quantity::int AS q FROM ${S}.stock_levels WHERE item_id = $1 AND location_id = $2`,
      [item.id, store]);
    assert.equal(levels.q, 2);
  });

  test('a store, stock moved there and sold there; a heartbeat keeps a batch', async () => {
    const item = await L.makeItem(A, 10);
    const storeCode = `sb-${L.runId}-${randomUUID().slice(0, 8)}`;
    // doc:start
    // a store of the caller's tenant, stock moved there from the default location, sold there
    const { data: store } = await inv.rpc('create_location', { p_code: storeCode, p_name: 'Store Kreuzberg' });
    const { data: moved } = await inv.rpc('transfer_inventory', {
      p_inventory_id: item.id, p_from_location_id: '00000000-0000-0000-0000-000000000000',
      p_to_location_id: store.location_id, p_quantity: 4 });
    // moved.to: { location_id, old_quantity: 0, new_quantity: 4 }
    const { data: sale } = await inv.rpc('decrement_inventory', {
      p_inventory_id: item.id, p_quantity: 1, p_location_id: store.location_id });
    // doc:end
    assert.deepEqual([moved.from.new_quantity, moved.to.new_quantity], [6, 4]);
    assert.deepEqual([sale.location_id, sale.new_quantity], [store.location_id, 3]);
    const renamed = await inv.rpc('update_location', { p_location_id: store.location_id, p_name: 'Store Mitte' });
    assert.deepEqual([renamed.status, renamed.data.name], [200, 'Store Mitte']);
    refused(await inv.rpc('transfer_inventory', { p_inventory_id: item.id, p_from_location_id: store.location_id,
      p_to_location_id: '00000000-0000-0000-0000-000000000000', p_quantity: 9 }), 409, 'PT409', 'INSUFFICIENT_INVENTORY');
    refused(await invB.rpc('decrement_inventory', { p_inventory_id: item.id, p_quantity: 1,
      p_location_id: store.location_id }), 404, 'PT404', 'NOT_FOUND');
    const p_batch_id = await L.makeBatch(A);
    assert.equal((await inv.rpc('claim_batch', { p_batch_id, p_lease_seconds: 60 })).status, 200);
    // doc:start
    await inv.rpc('extend_batch_lease', { p_batch_id, p_seconds: 120 });  // the driver app's heartbeat
    // doc:end
    const lease = await one(`SELECT lease_expires_at - statement_timestamp() > interval '100 seconds' AS long
                               FROM ${S}.batches WHERE id = $1`, [p_batch_id]);
    assert.equal(lease.long, true);
  });

  test('reorder points, low stock and a consumer group', async () => {
    const item = await L.makeItem(A, 8);
    const consumer = `storefront-${L.runId}`;
    // doc:start
    await inv.rpc('set_reorder_point', { p_inventory_id: item.id, p_reorder_point: 5 });
    await inv.rpc('create_event_consumer', { p_consumer: consumer });  // once; then each worker reads:
    // doc:end
    assert.equal((await inv.rpc('decrement_inventory', { p_inventory_id: item.id, p_quantity: 8 })).status, 200);
    // doc:start
    const { data: low } = await inv.rpc('low_stock_items');  // [{ inventory_id, available, reorder_point, … }]
    const { data: events } = await inv.rpc('read_events', { p_consumer: consumer, p_limit: 50 });
    // events: [{ id, kind: 'low_stock' | 'out_of_stock' | …, inventory_id, available_after, … }]
    await inv.rpc('ack_events', { p_consumer: consumer, p_event_ids: events.map((e) => e.id) });
    // doc:end
    assert.ok(low.some((l) => l.inventory_id === item.id && l.available === 0));
    assert.deepEqual(events.filter((e) => e.inventory_id === item.id).map((e) => e.kind), ['low_stock', 'out_of_stock']);
    assert.ok(events.every((e) => e.tenant_id === A || e.tenant_id === null));
    assert.deepEqual(await inv.rpc('read_events', { p_consumer: consumer }).then((r) => r.data), []);
    refused(await invB.rpc('read_events', { p_consumer: consumer }), 404, 'PT404', 'NOT_FOUND');
    refused(await inv.rpc('read_events', { p_consumer: consumer, p_limit: 0 }), 400, '22023', 'INVALID_INPUT');
    assert.equal((await inv.rpc('drop_event_consumer', { p_consumer: consumer })).status, 200);
  });
});

describe('kits and backorders', () => {
  test('a kit sold as its components; a backorder limit', async () => {
    const mug = await L.makeItem(A, 3);
    const tea = await L.makeItem(A, 5);
    const box = await L.makeItem(A, 0);
    // doc:start
    // a gift box of 2 mugs and 1 tea tin: it holds no stock, selling it takes its components
    await inv.rpc('define_kit', { p_inventory_id: box.id,
      p_components: [{ inventory_id: mug.id, quantity: 2 }, { inventory_id: tea.id, quantity: 1 }] });
    const { data: kitSale } = await inv.rpc('decrement_inventory', { p_inventory_id: box.id, p_quantity: 1 });
    // kitSale: { kit: true, deducted: 1, lines: [{ inventory_id, old_quantity, new_quantity, deducted }, …] }
    // the mugs may be sold up to 5 past the stock on hand
    await inv.rpc('set_backorder_limit', { p_inventory_id: mug.id, p_limit: 5 });
    const { data: backordered } = await inv.rpc('decrement_inventory', { p_inventory_id: mug.id, p_quantity: 3 });
    // backordered: { new_quantity: -2, deducted: 3, backordered: 2, … }
    // doc:end
    assert.equal(kitSale.kit, true);
    assert.deepEqual(kitSale.lines.map((l) => l.deducted).sort(), [1, 2]);
    assert.deepEqual([backordered.new_quantity, backordered.backordered], [-2, 2]);
    // 4 kits would need 8 mugs: 409, nothing sold
    refused(await inv.rpc('decrement_inventory', { p_inventory_id: box.id, p_quantity: 4 }), 409, 'PT409',
      'INSUFFICIENT_INVENTORY');
    refused(await invB.rpc('decrement_inventory', { p_inventory_id: box.id, p_quantity: 1 }), 404, 'PT404', 'NOT_FOUND');
    refused(await inv.rpc('set_backorder_limit', { p_inventory_id: mug.id, p_limit: 1 }), 409, 'PT409',
      'BACKORDERS_EXCEED_LIMIT');
    assert.equal((await inv.rpc('remove_kit', { p_inventory_id: box.id })).status, 200);
    assert.deepEqual(await L.itemState(tea.id), { quantity: 4, reserved: 0, ledger_rows: 2, ledger_sum: 4 });
  });

  test('a preorder: past the stock up to the cap until the release date', async () => {
    const novel = await L.makeItem(A, 0);
    const release = new Date(Date.now() + 7 * 24 * 3600 * 1000).toISOString();
    const set = await inv.rpc('set_preorder', { p_inventory_id: novel.id, p_limit: 2, p_release_at: release });
    assert.equal(set.status, 200, JSON.stringify(set.error));
    assert.equal(set.data.preorder_limit, 2);
    const { data: preordered } = await inv.rpc('decrement_inventory', { p_inventory_id: novel.id, p_quantity: 2 });
    assert.deepEqual([preordered.new_quantity, preordered.preordered], [-2, 2]);
    refused(await inv.rpc('decrement_inventory', { p_inventory_id: novel.id, p_quantity: 1 }), 409, 'PT409',
      'INSUFFICIENT_INVENTORY');
    refused(await inv.rpc('set_preorder', { p_inventory_id: novel.id, p_limit: 2, p_release_at: '2020-01-01T00:00:00Z' }),
      400, '22023', 'INVALID_INPUT');
    refused(await invB.rpc('set_preorder', { p_inventory_id: novel.id, p_limit: 2, p_release_at: release }), 404, 'PT404',
      'NOT_FOUND');
    // ended: no more sales past the stock, the 2 units stay owed
    const ended = await inv.rpc('set_preorder', { p_inventory_id: novel.id, p_limit: 0 });
    assert.equal(ended.data.preordered, 2);
    refused(await inv.rpc('decrement_inventory', { p_inventory_id: novel.id, p_quantity: 1 }), 409, 'PT409',
      'INSUFFICIENT_INVENTORY');
  });
});

describe('warehouse packing', () => {
  test('pack and unpack clicks; the validations answered with their statuses', async () => {
    const pack = await L.makePacking(A, 3, [2, 2]);
    const [p_progress_id, second] = pack.lines;
    const { session: p_session_id, product: p_product_id } = pack;
    const p_quantity_needed = 2;
    const p_picked_quantity = 3;
    // doc:start
    // warehouse packing: the packing RPC's own arguments (its numbers are not trusted: the tables decide)
    const { data: line } = await inv.rpc('increment_packing_quantity', {
      p_progress_id, p_quantity_needed, p_picked_quantity, p_session_id, p_product_id });
    // line: { quantity_needed: 2, quantity_packed: 1, remaining: 1, … }
    await inv.rpc('decrement_packing_quantity', { p_progress_id, p_session_id, p_quantity: 1 });  // undo a click
    // doc:end
    assert.deepEqual([line.quantity_needed, line.quantity_packed, line.remaining], [2, 1, 1]);
    assert.deepEqual((await L.packedState(p_session_id)).map((r) => r.packed), [0, 0]);
    refused(await inv.rpc('decrement_packing_quantity', { p_progress_id, p_session_id }), 409, 'PT409', 'NOTHING_TO_UNPACK');
    assert.equal((await inv.rpc('increment_packing_quantity', { p_progress_id, p_session_id, p_quantity: 2 })).status, 200);
    refused(await inv.rpc('increment_packing_quantity', { p_progress_id, p_session_id }), 409, 'PT409', 'ALREADY_FULLY_PACKED');
    refused(await inv.rpc('increment_packing_quantity', { p_progress_id: second, p_session_id, p_quantity: 2 }),
      409, 'PT409', 'BASKET_EXHAUSTED');
    const elsewhere = await L.makePacking(A, 3, [1]);
    refused(await inv.rpc('increment_packing_quantity', { p_progress_id, p_session_id: elsewhere.session }),
      403, 'PT403', 'PROGRESS_SESSION_MISMATCH');
    refused(await inv.rpc('increment_packing_quantity', { p_progress_id: randomUUID(), p_session_id }),
      404, 'PT404', 'PROGRESS_NOT_FOUND');
    refused(await invB.rpc('increment_packing_quantity', { p_progress_id: second, p_session_id }),
      404, 'PT404', 'SESSION_NOT_FOUND');
    const orderOf = async (line) => (await one(`SELECT order_id FROM ${S}.packing_progress WHERE id = $1`, [line])).order_id;
    await db.query(`UPDATE ${S}.orders SET status = 'shipped' WHERE id = $1`, [await orderOf(elsewhere.lines[0])]);
    refused(await inv.rpc('increment_packing_quantity', { p_progress_id: elsewhere.lines[0], p_session_id: elsewhere.session }),
      409, 'PT409', 'ORDER_COMPLETED');
    await db.query(`UPDATE ${S}.orders SET status = 'cancelled' WHERE id = $1`, [await orderOf(elsewhere.lines[0])]);
    refused(await inv.rpc('increment_packing_quantity', { p_progress_id: elsewhere.lines[0], p_session_id: elsewhere.session }),
      409, 'PT409', 'ORDER_CLOSED');
    await db.query(`UPDATE ${S}.picking_sessions SET status = 'completed' WHERE id = $1`, [elsewhere.session]);
    refused(await inv.rpc('increment_packing_quantity', { p_progress_id: elsewhere.lines[0], p_session_id: elsewhere.session }),
      409, 'PT409', 'SESSION_NOT_PACKING');
    const packed = await L.packedState(p_session_id);
    assert.deepEqual(packed.map((r) => r.packed).sort(), [0, 2]);
    assert.deepEqual((await L.packedState(elsewhere.session)).map((r) => r.packed), [0]);
  });
});

describe('packing on the warehouse\'s own tables', () => {
  test('bound pack and unpack clicks, idempotent, tenant-scoped, with their statuses', async () => {
    const pack = await L.makeBoundPacking(sources.packing, A, 3, [2, 2]);
    const [p_progress_id, second] = pack.lines;
    const { session: p_session_id, product: p_product_id } = pack;
    const source = sources.packing;
    const click = { id: randomUUID() };
    // doc:start
    // the same click on a warehouse's own tables (bind_packing_source), retry-safe with a key
    const { data: packed } = await inv.rpc('bound_increment_packing_quantity', {
      p_source: source, p_progress_id, p_session_id, p_product_id, p_idempotency_key: click.id });
    // packed: { success: true, source, id, quantity_needed: 2, quantity_packed: 1, remaining: 1, … }
    // doc:end
    assert.deepEqual([packed.quantity_needed, packed.quantity_packed, packed.remaining], [2, 1, 1]);
    const again = await inv.rpc('bound_increment_packing_quantity', {
      p_source: source, p_progress_id, p_session_id, p_product_id, p_idempotency_key: click.id });
    assert.deepEqual([again.status, again.data], [200, packed]);
    const state = async () => (await L.boundPackedState(source, p_session_id)).map((r) => r.packed).sort();
    assert.deepEqual(await state(), [0, 1]);
    assert.equal((await inv.rpc('bound_increment_packing_quantity',
      { p_source: source, p_progress_id, p_session_id })).status, 200);
    refused(await inv.rpc('bound_increment_packing_quantity', { p_source: source, p_progress_id, p_session_id }),
      409, 'PT409', 'ALREADY_FULLY_PACKED');
    refused(await inv.rpc('bound_increment_packing_quantity',
      { p_source: source, p_progress_id: second, p_session_id, p_quantity: 2 }), 409, 'PT409', 'BASKET_EXHAUSTED');
    refused(await invB.rpc('bound_increment_packing_quantity', { p_source: source, p_progress_id: second, p_session_id }),
      404, 'PT404', 'SESSION_NOT_FOUND');
    refused(await inv.rpc('bound_increment_packing_quantity',
      { p_source: source, p_progress_id: 'not-a-uuid', p_session_id }), 400, '22023', 'INVALID_INPUT');
    const undo = await inv.rpc('bound_decrement_packing_quantity', { p_source: source, p_progress_id, p_session_id });
    assert.deepEqual([undo.status, undo.data.quantity_packed], [200, 1]);
    assert.deepEqual(await state(), [0, 1]);
  });
});

describe('adopted tables (bound_*)', () => {
  test('stock: sell, sell a cart, restock, read, compare-and-set, reconcile', async () => {
    const source = sources.stock;
    const row = { id: `sku-${randomUUID()}` };
    const other = `sku-${randomUUID()}`;
    await L.addStockRow(source, row.id, A, 10);
    await L.addStockRow(source, other, A, 4);
    // doc:start
    // an app's own stock table, bound as `source` (docs/adopting.md)
    const { data: sale } = await inv.rpc('bound_decrement', { p_source: source, p_item_id: row.id, p_quantity: 1 });
    await inv.rpc('bound_decrement_many', { p_source: source,
      p_lines: [{ item_id: row.id, quantity: 2 }, { item_id: other, quantity: 1 }] });
    await inv.rpc('bound_increment', { p_source: source, p_item_id: row.id, p_quantity: 5 });
    const { data: now } = await inv.rpc('bound_get', { p_source: source, p_item_id: row.id });
    await inv.rpc('bound_adjust', { p_source: source, p_item_id: row.id,
      p_new_quantity: 20, p_expected_quantity: now.quantity });
    const { data: drift } = await inv.rpc('reconcile_source', { p_source: source });  // [] = every unit accounted for
    // doc:end
    assert.deepEqual([sale.old_quantity, sale.new_quantity, sale.deducted], [10, 9, 1]);
    assert.deepEqual([now.quantity, now.available, now.tenant_id], [12, 12, A]);
    assert.deepEqual(drift, []);
    // ledger: the restock that stocked the new row, a sale, a cart, a restock, an adjust
    assert.deepEqual(await L.stockRow(source, row.id), { quantity: 20, reserved: 0, ledger_rows: 5 });
    assert.deepEqual(await L.stockRow(source, other), { quantity: 3, reserved: 0, ledger_rows: 2 });
    refused(await inv.rpc('bound_decrement', { p_source: source, p_item_id: other, p_quantity: 4 }),
      409, 'PT409', 'INSUFFICIENT_INVENTORY');
    refused(await inv.rpc('bound_adjust', { p_source: source, p_item_id: row.id, p_new_quantity: 1, p_expected_quantity: 12 }),
      409, 'PT409', 'QUANTITY_MISMATCH');
    refused(await inv.rpc('bound_decrement', { p_source: source, p_item_id: other, p_quantity: 0.5 }),
      400, '22023', 'INVALID_QUANTITY');
    refused(await inv.rpc('bound_get', { p_source: 'no_such_source', p_item_id: other }), 404, 'PT404', 'NOT_FOUND');
    refused(await invB.rpc('bound_get', { p_source: source, p_item_id: other }), 404, 'PT404', 'NOT_FOUND');
    assert.deepEqual(await L.stockRow(source, other), { quantity: 3, reserved: 0, ledger_rows: 2 });
  });

  test('reservations on the bound table', async () => {
    const source = sources.stock;
    const x = `sku-${randomUUID()}`;
    const y = `sku-${randomUUID()}`;
    await L.addStockRow(source, x, A, 5);
    await L.addStockRow(source, y, A, 5);
    // doc:start
    const { data: hold } = await inv.rpc('bound_reserve', { p_source: source,
      p_lines: [{ item_id: x, quantity: 2 }, { item_id: y, quantity: 1 }], p_ttl_seconds: 600 });
    await inv.rpc('bound_commit_reservation', { p_reservation_id: hold.reservation_id, p_item_ids: [x] });
    await inv.rpc('bound_release_reservation', { p_reservation_id: hold.reservation_id, p_item_ids: [y] });
    // doc:end
    assert.equal(hold.status, 'active');
    const state = await L.holdState(hold.reservation_id);
    assert.equal(state.status, 'committed');
    assert.deepEqual(state.bound_lines.map((l) => l.status).sort(), ['committed', 'released']);
    assert.deepEqual(await L.stockRow(source, x), { quantity: 3, reserved: 0, ledger_rows: 2 });
    assert.deepEqual(await L.stockRow(source, y), { quantity: 5, reserved: 0, ledger_rows: 1 });
    refused(await inv.rpc('bound_release_reservation', { p_reservation_id: hold.reservation_id, p_item_ids: [y] }),
      409, 'PT409', 'RESERVATION_NOT_ACTIVE');
    const big = await inv.rpc('bound_reserve', { p_source: source, p_lines: [{ item_id: x, quantity: 4 }] });
    refused(big, 409, 'PT409', 'INSUFFICIENT_INVENTORY');
    const { data: read } = await inv.rpc('get_reservation', { p_reservation_id: hold.reservation_id });
    assert.equal(read.source, source);
  });

  test('batches: claim, the 409 for the next driver, claim next, give back', async () => {
    const batchSource = sources.batches;
    const p_batch_id = await L.addBatchRow(batchSource, A);
    // doc:start
    const { data: claim, error: taken } = await inv.rpc('bound_claim_batch', { p_source: batchSource, p_batch_id });
    const { data: next } = await inv.rpc('bound_claim_next_batch', { p_source: batchSource });  // null: none free
    await inv.rpc('bound_unclaim_batch', { p_source: batchSource, p_batch_id });
    // doc:end
    assert.equal(taken, null);
    assert.deepEqual([claim.status, claim.driver_id], ['claimed', sub('user-a')]);
    if (next) await inv.rpc('bound_unclaim_batch', { p_source: batchSource, p_batch_id: next.batch_id });
    assert.deepEqual(await L.batchRow(batchSource, p_batch_id), { status: 'available', driver: null });
    await user('driver-2').rpc('bound_claim_batch', { p_source: batchSource, p_batch_id });
    refused(await inv.rpc('bound_claim_batch', { p_source: batchSource, p_batch_id }), 409, 'PT409', 'BATCH_UNAVAILABLE');
    refused(await inv.rpc('bound_unclaim_batch', { p_source: batchSource, p_batch_id }), 403, 'PT403', 'BATCH_NOT_HELD');
    assert.deepEqual(await L.batchRow(batchSource, p_batch_id), { status: 'claimed', driver: sub('driver-2') });
  });
});

// What every granted function is called with as anon, as shop-b and as
// service_role, each time on fresh rows of shop-a: `b` and `svc` are the
// statuses shop-b and service_role get (anon: always 401, 42501), `state`
// reads the rows back (unchanged after a refusal; changed by service_role's
// call where `mutates`), `check` looks at an answer.
const fresh = async (quantity = 10) => (await L.makeItem(A, quantity)).id;
const stockRowOf = async () => {
  const id = `sku-${randomUUID()}`;
  await L.addStockRow(sources.stock, id, A, 10);
  return id;
};
const DEFAULT_LOCATION = '00000000-0000-0000-0000-000000000000';
const locationOf = async (tenant = A) => (await one(
  `SELECT (${S}.create_location($1, p_tenant_id => $2))->>'location_id' AS id`,
  [`sb-${L.runId}-${randomUUID()}`, tenant])).id;
// a unit of a fresh shop-a item shipped to a shop-a store: the transfer's id
const shipped = async () => {
  const id = await fresh();
  const loc = await locationOf();
  return (await one(
    `SELECT (${S}.transfer_inventory($1, $2, $3, 1, p_receive => false))->>'transfer_id' AS id`,
    [id, DEFAULT_LOCATION, loc])).id;
};
// a consumer group in a tenant's scope ('' : admins' without a tenant)
const consumerIn = async (scope) => {
  const name = `sb-${randomUUID().slice(0, 12)}`;
  await db.query(`INSERT INTO ${S}.event_consumers (tenant_scope, name, tenant_id, all_tenants)
                  VALUES ($1, $2, NULLIF($1, ''), $1 = '')`, [scope, name]);
  return name;
};
const consumerState = (name, scope) => one(
  `SELECT count(*)::int AS n, count(*) FILTER (WHERE d.acked_at IS NOT NULL)::int AS acked
     FROM ${S}.event_consumers c LEFT JOIN ${S}.event_deliveries d ON d.consumer_id = c.id
    WHERE c.name = $1 AND c.tenant_scope = $2`, [name, scope]);
const claimedBatch = async () => {
  const id = await L.makeBatch(A);
  await L.claimAs(id, sub('holder'));
  return id;
};
const boundHold = async () => {
  const id = await stockRowOf();
  const r = await one(`SELECT ${S}.bound_reserve(p_source => $1, p_lines => $2) AS j`,
    [sources.stock, JSON.stringify([{ item_id: id, quantity: 2 }])]);
  return r.j.reservation_id;
};
const MATRIX = {
  decrement_inventory: async () => {
    const id = await fresh();
    return { args: { p_inventory_id: id, p_quantity: 1 }, state: () => L.itemState(id), mutates: true };
  },
  decrement_inventory_many: async () => {
    const id = await fresh();
    return { args: { p_lines: [{ inventory_id: id, quantity: 1 }] }, state: () => L.itemState(id), mutates: true };
  },
  increment_inventory: async () => {
    const id = await fresh();
    return { args: { p_inventory_id: id, p_quantity: 1 }, state: () => L.itemState(id), mutates: true };
  },
  adjust_inventory: async () => {
    const id = await fresh();
    return { args: { p_inventory_id: id, p_new_quantity: 3, p_expected_quantity: 10 }, state: () => L.itemState(id), mutates: true };
  },
  create_item: async () => {
    const sku = `sb-${L.runId}-${randomUUID()}`;
    // for shop-a only shop-a's own callers and admins
    return {
      args: { p_sku: sku, p_quantity: 1, p_tenant_id: A }, b: 400, mutates: true,
      state: () => one(`SELECT count(*)::int AS n FROM ${S}.items WHERE sku = $1 AND tenant_id = $2`, [sku, A]),
    };
  },
  get_inventory: async () => {
    const id = await fresh();
    return {
      args: { p_inventory_id: id }, state: () => L.itemState(id),
      check: (who, res) => who === 'service_role' && assert.equal(res.data.tenant_id, A),
    };
  },
  reconcile: async () => ({ args: {}, b: 200, check: (who, res) => assert.ok(Array.isArray(res.data)) }),
  transfer_inventory: async () => {
    const id = await fresh();
    const loc = await locationOf();
    return {
      args: { p_inventory_id: id, p_from_location_id: DEFAULT_LOCATION, p_to_location_id: loc, p_quantity: 1 },
      state: () => L.itemState(id), mutates: true,
    };
  },
  // a shipment of shop-a's, in transit from the default location to a store
  receive_transfer: async () => {
    const tid = await shipped();
    return {
      args: { p_transfer_id: tid }, mutates: true,
      state: () => one(`SELECT status FROM ${S}.transfers WHERE id = $1`, [tid]),
    };
  },
  cancel_transfer: async () => {
    const tid = await shipped();
    return {
      args: { p_transfer_id: tid }, mutates: true,
      state: () => one(`SELECT status FROM ${S}.transfers WHERE id = $1`, [tid]),
    };
  },
  move_stock_state: async () => {
    const id = await fresh();
    return {
      args: { p_inventory_id: id, p_from: 'available', p_to: 'damaged', p_quantity: 1 }, mutates: true,
      state: () => one(`SELECT unsellable::float8 AS set_aside FROM ${S}.items WHERE id = $1`, [id]),
    };
  },
  create_location: async () => {
    const code = `sb-${L.runId}-${randomUUID()}`;
    // for shop-a only shop-a's own callers and admins
    return {
      args: { p_code: code, p_tenant_id: A }, b: 400, mutates: true,
      state: () => one(`SELECT count(*)::int AS n FROM ${S}.locations WHERE code = $1 AND tenant_id = $2`, [code, A]),
    };
  },
  update_location: async () => {
    const loc = await locationOf();
    return {
      args: { p_location_id: loc, p_name: 'renamed' }, mutates: true,
      state: () => one(`SELECT name FROM ${S}.locations WHERE id = $1`, [loc]),
    };
  },
  set_reorder_point: async () => {
    const id = await fresh();
    return {
      args: { p_inventory_id: id, p_reorder_point: 3 }, mutates: true,
      state: () => one(`SELECT reorder_point::float8 AS point FROM ${S}.items WHERE id = $1`, [id]),
    };
  },
  low_stock_items: async () => ({ args: {}, b: 200, check: (who, res) => assert.ok(Array.isArray(res.data)) }),
  set_backorder_limit: async () => {
    const id = await fresh();
    return {
      args: { p_inventory_id: id, p_limit: 5 }, mutates: true,
      state: () => one(`SELECT backorder_limit::float8 AS lim FROM ${S}.items WHERE id = $1`, [id]),
    };
  },
  set_preorder: async () => {
    const id = await fresh();
    return {
      args: { p_inventory_id: id, p_limit: 5, p_release_at: new Date(Date.now() + 86400000).toISOString() },
      mutates: true,
      state: () => one(`SELECT backorder_limit::float8 AS lim, preorder_until IS NOT NULL AS dated
                          FROM ${S}.items WHERE id = $1`, [id]),
    };
  },
  define_kit: async () => {
    const kit = await fresh(0);
    const part = await fresh();
    return {
      args: { p_inventory_id: kit, p_components: [{ inventory_id: part, quantity: 2 }] }, mutates: true,
      state: () => one(`SELECT count(*)::int AS n FROM ${S}.kit_components WHERE kit_id = $1`, [kit]),
    };
  },
  remove_kit: async () => {
    const kit = await fresh(0);
    const part = await fresh();
    await db.query(`SELECT ${S}.define_kit($1, $2::jsonb)`,
      [kit, JSON.stringify([{ inventory_id: part, quantity: 1 }])]);
    return {
      args: { p_inventory_id: kit }, mutates: true,
      state: () => one(`SELECT count(*)::int AS n FROM ${S}.kit_components WHERE kit_id = $1`, [kit]),
    };
  },
  create_event_consumer: async () => {
    const name = `sb-${randomUUID().slice(0, 12)}`;
    // anyone may make a group of their own tenant's (shop-b's is another one)
    return {
      args: { p_consumer: name }, b: 200, mutates: true, state: () => consumerState(name, ''),
      check: (who, res) => assert.equal(res.data.tenant_id, who === 'shop-b' ? B : null),
    };
  },
  drop_event_consumer: async () => {
    const name = await consumerIn('');
    return { args: { p_consumer: name }, mutates: true, state: () => consumerState(name, '') };
  },
  read_events: async () => {
    const name = await consumerIn('');
    return {
      args: { p_consumer: name }, state: () => consumerState(name, ''),
      check: (who, res) => who === 'service_role' && assert.deepEqual(res.data, []),
    };
  },
  ack_events: async () => {
    const name = await consumerIn('');
    const ev = await one(`INSERT INTO ${S}.events (kind, tenant_id) VALUES ('movement', $1) RETURNING id`, [A]);
    await db.query(`INSERT INTO ${S}.event_deliveries (consumer_id, event_id)
                    SELECT c.id, $2 FROM ${S}.event_consumers c WHERE c.name = $1 AND c.tenant_scope = ''`,
    [name, ev.id]);
    return { args: { p_consumer: name, p_event_ids: [Number(ev.id)] }, mutates: true, state: () => consumerState(name, '') };
  },
  extend_batch_lease: async () => {
    const id = await claimedBatch();
    return {
      args: { p_batch_id: id, p_seconds: 600 },
      svcArgs: { p_batch_id: id, p_driver_id: sub('svc-driver'), p_seconds: 600 },
      mutates: true,
      state: () => one(`SELECT lease_expires_at FROM ${S}.batches WHERE id = $1`, [id]),
    };
  },
  claim_batch: async () => {
    const id = await L.makeBatch(A);
    return {
      args: { p_batch_id: id }, svcArgs: { p_batch_id: id, p_driver_id: sub('svc-driver') },
      state: () => L.batchState(id), mutates: true,
    };
  },
  claim_next_batch: async () => {
    const zone = `sb-${randomUUID()}`;
    const id = await L.makeBatch(A, zone);
    return {
      args: { p_zone: zone }, svcArgs: { p_zone: zone, p_driver_id: sub('svc-driver') }, b: 200,
      state: () => L.batchState(id), mutates: true,
      check: (who, res) => assert.equal(who === 'shop-b' ? res.data : res.data.batch_id, who === 'shop-b' ? null : id),
    };
  },
  unclaim_batch: async () => {
    const id = await claimedBatch();
    return {
      args: { p_batch_id: id }, svcArgs: { p_batch_id: id, p_driver_id: sub('svc-driver') },
      state: () => L.batchState(id), mutates: true,
    };
  },
  start_batch: async () => {
    const id = await claimedBatch();
    return {
      args: { p_batch_id: id }, svcArgs: { p_batch_id: id, p_driver_id: sub('svc-driver') },
      state: () => L.batchState(id), mutates: true,
    };
  },
  complete_batch: async () => {
    const id = await claimedBatch();
    return {
      args: { p_batch_id: id }, svcArgs: { p_batch_id: id, p_driver_id: sub('svc-driver') },
      state: () => L.batchState(id), mutates: true,
    };
  },
  reserve_inventory: async () => {
    const id = await fresh();
    return { args: { p_lines: [{ inventory_id: id, quantity: 1 }] }, state: () => L.itemState(id), mutates: true };
  },
  commit_reservation: async () => {
    const hold = await L.makeHold([[await fresh(), 1]]);
    return { args: { p_reservation_id: hold }, state: () => L.holdState(hold), mutates: true };
  },
  release_reservation: async () => {
    const hold = await L.makeHold([[await fresh(), 1]]);
    return { args: { p_reservation_id: hold }, state: () => L.holdState(hold), mutates: true };
  },
  extend_reservation: async () => {
    const hold = await L.makeHold([[await fresh(), 1]], 60);
    return { args: { p_reservation_id: hold, p_ttl_seconds: 900 }, state: () => L.holdState(hold), mutates: true };
  },
  get_reservation: async () => {
    const hold = await L.makeHold([[await fresh(), 1]]);
    return { args: { p_reservation_id: hold }, state: () => L.holdState(hold) };
  },
  increment_packing_quantity: async () => {
    const pack = await L.makePacking(A, 3, [2]);
    return {
      args: { p_progress_id: pack.lines[0], p_session_id: pack.session },
      state: () => L.packedState(pack.session), mutates: true,
    };
  },
  decrement_packing_quantity: async () => {
    const pack = await L.makePacking(A, 3, [2]);
    await db.query(`SELECT ${S}.increment_packing_quantity(p_progress_id => $1, p_session_id => $2)`,
      [pack.lines[0], pack.session]);
    return {
      args: { p_progress_id: pack.lines[0], p_session_id: pack.session },
      state: () => L.packedState(pack.session), mutates: true,
    };
  },
  bound_decrement: async () => {
    const id = await stockRowOf();
    return {
      args: { p_source: sources.stock, p_item_id: id, p_quantity: 1 },
      state: () => L.stockRow(sources.stock, id), mutates: true,
    };
  },
  bound_decrement_many: async () => {
    const id = await stockRowOf();
    return {
      args: { p_source: sources.stock, p_lines: [{ item_id: id, quantity: 1 }] },
      state: () => L.stockRow(sources.stock, id), mutates: true,
    };
  },
  bound_increment: async () => {
    const id = await stockRowOf();
    return {
      args: { p_source: sources.stock, p_item_id: id, p_quantity: 1 },
      state: () => L.stockRow(sources.stock, id), mutates: true,
    };
  },
  bound_adjust: async () => {
    const id = await stockRowOf();
    return {
      args: { p_source: sources.stock, p_item_id: id, p_new_quantity: 3, p_expected_quantity: 10 },
      state: () => L.stockRow(sources.stock, id), mutates: true,
    };
  },
  bound_get: async () => {
    const id = await stockRowOf();
    return {
      args: { p_source: sources.stock, p_item_id: id }, state: () => L.stockRow(sources.stock, id),
      check: (who, res) => who === 'service_role' && assert.equal(res.data.quantity, 10),
    };
  },
  bound_reserve: async () => {
    const id = await stockRowOf();
    return {
      args: { p_source: sources.stock, p_lines: [{ item_id: id, quantity: 1 }] },
      state: () => L.stockRow(sources.stock, id), mutates: true,
    };
  },
  bound_commit_reservation: async () => {
    const hold = await boundHold();
    return { args: { p_reservation_id: hold }, state: () => L.holdState(hold), mutates: true };
  },
  bound_release_reservation: async () => {
    const hold = await boundHold();
    return { args: { p_reservation_id: hold }, state: () => L.holdState(hold), mutates: true };
  },
  bound_claim_batch: async () => {
    const id = await L.addBatchRow(sources.batches, A);
    return {
      args: { p_source: sources.batches, p_batch_id: id },
      svcArgs: { p_source: sources.batches, p_batch_id: id, p_driver_id: sub('svc-driver') },
      state: () => L.batchRow(sources.batches, id), mutates: true,
    };
  },
  bound_claim_next_batch: async () => {
    await L.addBatchRow(sources.batches, A);
    return {
      args: { p_source: sources.batches }, svcArgs: { p_source: sources.batches, p_driver_id: sub('svc-driver') }, b: 200,
      state: () => rows(`SELECT id, status, driver FROM public.${sources.batches} ORDER BY id`), mutates: true,
      check: (who, res) => who === 'shop-b' && assert.equal(res.data, null),
    };
  },
  bound_unclaim_batch: async () => {
    const id = await L.addBatchRow(sources.batches, A);
    await db.query(`SELECT ${S}.bound_claim_batch(p_source => $1, p_batch_id => $2, p_driver_id => $3)`,
      [sources.batches, id, sub('holder')]);
    return {
      args: { p_source: sources.batches, p_batch_id: id },
      svcArgs: { p_source: sources.batches, p_batch_id: id, p_driver_id: sub('holder') },
      state: () => L.batchRow(sources.batches, id), mutates: true,
    };
  },
  bound_increment_packing_quantity: async () => {
    const pack = await L.makeBoundPacking(sources.packing, A, 3, [2]);
    return {
      args: { p_source: sources.packing, p_progress_id: pack.lines[0], p_session_id: pack.session },
      state: () => L.boundPackedState(sources.packing, pack.session), mutates: true,
    };
  },
  bound_decrement_packing_quantity: async () => {
    const pack = await L.makeBoundPacking(sources.packing, A, 3, [2]);
    await db.query(`SELECT ${S}.bound_increment_packing_quantity(p_source => $1, p_progress_id => $2,
                    p_session_id => $3)`, [sources.packing, pack.lines[0], pack.session]);
    return {
      args: { p_source: sources.packing, p_progress_id: pack.lines[0], p_session_id: pack.session },
      state: () => L.boundPackedState(sources.packing, pack.session), mutates: true,
    };
  },
  reconcile_source: async () => ({
    args: { p_source: sources.stock }, b: 200, check: (who, res) => assert.ok(Array.isArray(res.data)),
  }),
  caller_tenant: async () => ({
    args: {}, b: 200, check: (who, res) => assert.equal(res.data, who === 'shop-b' ? B : null),
  }),
  caller_is_admin: async () => ({
    args: {}, b: 200, check: (who, res) => assert.equal(res.data, who === 'service_role'),
  }),
};

// the functions grant_usage('authenticated') granted (stock_valid, the
// CHECK's function, is PUBLIC's)
const granted = async () => (await rows(
  `SELECT p.proname FROM pg_proc p
    WHERE p.pronamespace = $1::regnamespace
      AND EXISTS (SELECT 1 FROM aclexplode(p.proacl) a
                   WHERE a.grantee = 'authenticated'::regrole AND a.privilege_type = 'EXECUTE')
    ORDER BY 1`, [S])).map((r) => r.proname);

describe('roles and tokens', () => {
  test('every granted function as anon (401), as another tenant, and as service_role', async () => {
    const functions = await granted();
    assert.deepEqual(functions, Object.keys(MATRIX).sort());
    for (const fn of functions) {
      for (const [who, client] of [['anon', anon], ['shop-b', invB], ['service_role', adminInv]]) {
        const fx = await MATRIX[fn]();
        const before = fx.state ? await fx.state() : null;
        const res = await client.rpc(fn, who === 'service_role' && fx.svcArgs ? fx.svcArgs : fx.args);
        const want = { anon: 401, 'shop-b': fx.b ?? 404, service_role: fx.svc ?? 200 }[who];
        const what = `${fn} as ${who}: ${res.status} ${JSON.stringify(res.error ?? res.data)}`;
        assert.equal(res.status, want, what);
        if (who === 'anon') assert.equal(res.error.code, '42501', what);
        if (want === 404) assert.equal(res.error.code, 'PT404', what);
        const after = fx.state ? await fx.state() : null;
        if (who !== 'service_role' || !fx.mutates) assert.deepEqual(after, before, `${what}: changed the rows`);
        else assert.notDeepEqual(after, before, `${what}: changed nothing`);
        if (fx.check && who !== 'anon') fx.check(who, res);
      }
    }
  });

  test('service_role acts across tenants', async () => {
    const item = await L.makeItem(A, 5);
    // doc:start
    const { data: anyTenant } = await adminInv.rpc('get_inventory', { p_inventory_id: item.id });
    // anyTenant.tenant_id: 'shop-a', whichever tenant the item is in
    // doc:end
    assert.equal(anyTenant.tenant_id, A);
    const { data: made } = await adminInv.rpc('create_item', { p_sku: `sb-${L.runId}-${randomUUID()}`, p_tenant_id: B });
    assert.equal(made.tenant_id, B);
    assert.equal((await invB.rpc('get_inventory', { p_inventory_id: made.inventory_id })).status, 200);
    refused(await inv.rpc('get_inventory', { p_inventory_id: made.inventory_id }), 404, 'PT404', 'NOT_FOUND');
  });

  test('expired, forged, tampered and unsigned tokens: 401, nothing changed', async () => {
    const item = await L.makeItem(A, 5);
    const body = { p_inventory_id: item.id, p_quantity: 1 };
    const expired = L.userToken('user-a', A, { exp: L.nowSeconds() - 60 });
    const forged = L.signJwt({ sub: 'user-a', role: 'authenticated', tenant_id: A, exp: L.nowSeconds() + 600 },
      'a-secret-that-is-not-the-servers-own-secret');
    const [head, , signature] = L.userToken('user-a', A).split('.');
    const raised = Buffer.from(JSON.stringify({ sub: 'user-a', role: 'service_role', exp: L.nowSeconds() + 600 }))
      .toString('base64url');
    const tampered = `${head}.${raised}.${signature}`;
    const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${raised}.`;
    for (const [name, token] of Object.entries({ expired, forged, tampered, unsigned })) {
      const res = await userClient(token).rpc('decrement_inventory', body);
      assert.equal(res.status, 401, `${name} token: ${res.status} ${JSON.stringify(res.error ?? res.data)}`);
      assert.ok(res.error);
    }
    // no Authorization header at all: the anon role, which has no EXECUTE
    const bare = await fetch(`${SUPABASE_URL}/rest/v1/rpc/decrement_inventory`, {
      method: 'POST', body: JSON.stringify(body),
      headers: { 'Content-Type': 'application/json', 'Content-Profile': S },
    });
    assert.equal(bare.status, 401);
    assert.equal((await bare.json()).code, '42501');
    assert.deepEqual(await L.itemState(item.id), { quantity: 5, reserved: 0, ledger_rows: 1, ledger_sum: 5 });
  });

  test('functions grant_usage() does not open: refused with 42501 (PostgREST 403, postrust 401)', async () => {
    const item = await L.makeItem(A, 5);
    for (const [fn, args] of [['purge_idempotency_keys', { p_older_than: '0 seconds' }],
      ['stripe_item', { p_inventory_id: item.id, p_stripes: 4 }],
      ['create_batch', { p_zone: 'nowhere' }],
      ['expire_reservations', {}]]) {
      for (const client of [inv, adminInv]) {
        const res = await client.rpc(fn, args);
        assert.ok([401, 403].includes(res.status), `${fn}: ${res.status}`);
        assert.equal(res.error.code, '42501', fn);
      }
    }
    assert.equal((await one(`SELECT stripes FROM ${S}.items WHERE id = $1`, [item.id])).stripes, 0);
    const missing = await inv.rpc('no_such_function', {});
    assert.equal(missing.status, 404);
  });
});

describe('concurrent bursts over HTTP', () => {
  const burst = (n, call) => Promise.all(Array.from({ length: n }, (_, k) => call(k)));
  const buyers = (n) => Array.from({ length: n }, (_, k) => user(`buyer-${k}`));

  test('sales: 20 buyers for the last 7 units; no oversell, stock and ledger exact', async () => {
    const item = await L.makeItem(A, 7);
    const clients = buyers(20);
    const ref = `burst-${randomUUID()}`;
    const res = await burst(20, (k) => clients[k].rpc('decrement_inventory', {
      p_inventory_id: item.id, p_quantity: 1, p_reference: `${ref}-${k}` }));
    assert.deepEqual(tally(res.map((r) => r.status)), { 200: 7, 409: 13 });
    assert.ok(res.filter((r) => r.error).every((r) => codeOf(r.error) === 'INSUFFICIENT_INVENTORY'));
    // each unit sold once: the winners saw 6, 5, …, 0 left
    assert.deepEqual(res.filter((r) => r.data).map((r) => r.data.new_quantity).sort(), [0, 1, 2, 3, 4, 5, 6]);
    assert.deepEqual(await L.itemState(item.id), { quantity: 0, reserved: 0, ledger_rows: 8, ledger_sum: 0 });
    const sold = await rows(`SELECT reference FROM ${S}.ledger WHERE inventory_id = $1 AND kind = 'decrement' ORDER BY 1`, [item.id]);
    assert.deepEqual(sold.map((r) => r.reference), res.map((r, k) => (r.data ? `${ref}-${k}` : null)).filter(Boolean).sort());
  });

  test('holds: 16 carts for 5 units, then a commit, a release and a second commit racing for each hold', async () => {
    const item = await L.makeItem(A, 5);
    const clients = buyers(16);
    const holds = await burst(16, (k) => clients[k].rpc('reserve_inventory', {
      p_lines: [{ inventory_id: item.id, quantity: 1 }], p_ttl_seconds: 600 }));
    assert.deepEqual(tally(holds.map((r) => r.status)), { 200: 5, 409: 11 });
    assert.deepEqual(await L.itemState(item.id), { quantity: 5, reserved: 5, ledger_rows: 1, ledger_sum: 5 });
    const won = holds.map((r, k) => [r, clients[k]]).filter(([r]) => r.data);
    const ends = await Promise.all(won.map(([r, c]) => Promise.all(['commit_reservation', 'release_reservation', 'commit_reservation']
      .map((fn) => c.rpc(fn, { p_reservation_id: r.data.reservation_id }).then((x) => [fn, x.status, x.error && codeOf(x.error)])))));
    let committed = 0;
    for (const outcome of ends) {
      const wins = outcome.filter(([, status]) => status === 200);
      assert.equal(wins.length, 1, JSON.stringify(outcome));
      assert.ok(outcome.filter(([, status]) => status !== 200).every(([, s, code]) => s === 409 && code === 'RESERVATION_NOT_ACTIVE'));
      if (wins[0][0] === 'commit_reservation') committed += 1;
    }
    assert.deepEqual(await L.itemState(item.id),
      { quantity: 5 - committed, reserved: 0, ledger_rows: 1 + committed, ledger_sum: 5 - committed });
    for (const [r] of won) {
      assert.ok(['committed', 'released'].includes((await L.holdState(r.data.reservation_id)).status));
    }
  });

  test('claims: one driver per batch, by id and by claim-next, on managed and bound batches', async () => {
    const drivers = Array.from({ length: 16 }, (_, k) => user(`driver-burst-${k}`));
    const batch = await L.makeBatch(A);
    const res = await burst(16, (k) => drivers[k].rpc('claim_batch', { p_batch_id: batch }));
    assert.deepEqual(tally(res.map((r) => r.status)), { 200: 1, 409: 15 });
    const winner = res.findIndex((r) => r.status === 200);
    assert.deepEqual(await L.batchState(batch), { status: 'claimed', claimed_by: sub(`driver-burst-${winner}`) });

    const zone = `sb-${randomUUID()}`;
    const batches = [];
    for (let k = 0; k < 8; k += 1) batches.push(await L.makeBatch(A, zone));
    const next = await burst(16, (k) => drivers[k].rpc('claim_next_batch', { p_zone: zone, p_max_active: 3 }));
    assert.ok(next.every((r) => r.status === 200), JSON.stringify(next.map((r) => r.error)));
    const got = next.map((r, k) => [r.data?.batch_id, k]).filter(([id]) => id);
    assert.equal(got.length, 8);
    assert.deepEqual(got.map(([id]) => id).sort(), [...batches].sort());
    for (const [id, k] of got) assert.deepEqual(await L.batchState(id), { status: 'claimed', claimed_by: sub(`driver-burst-${k}`) });

    const row = await L.addBatchRow(sources.batches, A);
    const bound = await burst(16, (k) => drivers[k].rpc('bound_claim_batch', { p_source: sources.batches, p_batch_id: row }));
    assert.deepEqual(tally(bound.map((r) => r.status)), { 200: 1, 409: 15 });
    const boundWinner = bound.findIndex((r) => r.status === 200);
    assert.deepEqual(await L.batchRow(sources.batches, row), { status: 'claimed', driver: sub(`driver-burst-${boundWinner}`) });
  });

  test('packing: 40 clicks over a 30-unit basket; the basket is never exceeded', async () => {
    const pack = await L.makePacking(A, 30, [10, 10, 10, 10]);
    const packers = Array.from({ length: 8 }, (_, k) => user(`packer-${k}`));
    const res = await burst(40, (k) => packers[k % 8].rpc('increment_packing_quantity', {
      p_progress_id: pack.lines[k % 4], p_session_id: pack.session }));
    assert.deepEqual(tally(res.map((r) => r.status)), { 200: 30, 409: 10 });
    assert.ok(res.filter((r) => r.error).every((r) => codeOf(r.error) === 'BASKET_EXHAUSTED'));
    const lines = await L.packedState(pack.session);
    assert.equal(lines.reduce((n, l) => n + l.packed, 0), 30);
    assert.ok(lines.every((l) => l.packed <= l.needed));
  });

  test('bound sales: 20 buyers for 7 units of an adopted row; reconcile_source empty', async () => {
    const id = `sku-${randomUUID()}`;
    await L.addStockRow(sources.stock, id, A, 7);
    const clients = buyers(20);
    const res = await burst(20, (k) => clients[k].rpc('bound_decrement', { p_source: sources.stock, p_item_id: id, p_quantity: 1 }));
    assert.deepEqual(tally(res.map((r) => r.status)), { 200: 7, 409: 13 });
    assert.deepEqual(await L.stockRow(sources.stock, id), { quantity: 0, reserved: 0, ledger_rows: 8 });
    const drift = await inv.rpc('reconcile_source', { p_source: sources.stock });
    assert.deepEqual([drift.status, drift.data], [200, []]);
  });
});

test('the ledger explains every unit this run moved', async () => {
  const drift = await rows(`SELECT r.inventory_id, r.drift::float8, r.reserved_drift::float8
                              FROM ${S}.reconcile() r JOIN ${S}.items i ON i.id = r.inventory_id
                             WHERE i.sku LIKE $1`, [`sb-${L.runId}-%`]);
  assert.deepEqual(drift, []);
  const made = (await one(`SELECT count(*)::int AS n FROM ${S}.items WHERE sku LIKE $1`, [`sb-${L.runId}-%`])).n;
  assert.ok(made >= 50, `${made} items of this run`);
  assert.deepEqual(await rows(`SELECT * FROM ${S}.reconcile_source($1)`, [sources.stock]), []);
});

test('every granted function went over HTTP as shop-a (answered 2xx), shop-b, service_role and anon', async () => {
  const who = (s) => (s.role === 'authenticated' ? s.tenant : s.role);
  const missing = [];
  for (const fn of await granted()) {
    for (const caller of ['shop-a', 'shop-b', 'service_role', 'anon']) {
      const ok = caller === 'shop-a' ? (s) => s.status < 300 : () => true;
      if (!L.seen.some((s) => s.fn === fn && who(s) === caller && ok(s))) missing.push(`${fn} as ${caller}`);
    }
  }
  assert.deepEqual(missing, []);
  console.log(`supabase.test.js: ${L.seen.length} requests over HTTP, by status: ${JSON.stringify(tally(L.seen.map((s) => s.status)))}`);
});
