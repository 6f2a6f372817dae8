// postrust in its default mode (no PGRST_COMPAT_MODE), as supabase-js sees
// it: the differences from PostgREST that docs/supabase.md lists, pinned
// here, and the statuses and effects, which are PostgREST's all the same.
// supabase.test.js runs everything against compat mode.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createClient } from '@supabase/supabase-js';
import * as L from './lib.js';
import { S, db, one } from './lib.js';

const DEFAULT_URL = process.env.AI_POSTRUST_DEFAULT_URL;
let gateway;
let inv;
let anon;

before(async () => {
  // Supabase's /rest/v1/ mapped to postrust's /api/
  gateway = await L.startGateway(DEFAULT_URL, '/api');
  const options = { auth: { persistSession: false, autoRefreshToken: false } };
  const token = L.userToken(`user-a-${L.runId}`, 'shop-a');
  inv = createClient(gateway.url, L.anonKey, { accessToken: async () => token }).schema(S);
  anon = createClient(gateway.url, L.anonKey, options).schema(S);
});

after(async () => {
  await gateway?.close();
  await db.end();
});

test('a function\'s JSON comes wrapped: [{"<function>": <json>}]', async () => {
  const item = await L.makeItem('shop-a', 5);
  const res = await inv.rpc('decrement_inventory', { p_inventory_id: item.id, p_quantity: 2 });
  assert.equal(res.status, 200);
  assert.deepEqual(res.data, [{ decrement_inventory:
    { success: true, inventory_id: item.id, old_quantity: 5, new_quantity: 3, deducted: 2 } }]);
  assert.equal((await L.itemState(item.id)).quantity, 3);
  const none = await inv.rpc('claim_next_batch', { p_zone: `none-${randomUUID()}` });
  assert.deepEqual([none.status, none.data], [200, [{ claim_next_batch: null }]]);
  const tenant = await inv.rpc('caller_tenant');
  assert.deepEqual(tenant.data, [{ caller_tenant: 'shop-a' }]);
});

test('errors: the same statuses, postrust\'s code and message, our details and hint', async () => {
  const item = await L.makeItem('shop-a', 5);
  const short = await inv.rpc('decrement_inventory', { p_inventory_id: item.id, p_quantity: 6 });
  assert.equal(short.status, 409);
  assert.deepEqual([short.error.code, short.error.message], ['PGRST500', 'Database error']);
  assert.equal(JSON.parse(short.error.details).code, 'INSUFFICIENT_INVENTORY');
  assert.ok(short.error.hint);
  const bad = await inv.rpc('decrement_inventory', { p_inventory_id: item.id, p_quantity: -1 });
  assert.deepEqual([bad.status, bad.error.code, JSON.parse(bad.error.details).code], [400, 'PGRST500', 'INVALID_QUANTITY']);
  const missing = await inv.rpc('get_inventory', { p_inventory_id: randomUUID() });
  assert.deepEqual([missing.status, JSON.parse(missing.error.details).code], [404, 'NOT_FOUND']);
  const denied = await anon.rpc('decrement_inventory', { p_inventory_id: item.id, p_quantity: 1 });
  assert.deepEqual([denied.status, denied.error.code, denied.error.details], [401, 'PGRST504', null]);
  assert.equal((await L.itemState(item.id)).quantity, 5);
});

test('the API is under /api only', async () => {
  const item = await L.makeItem('shop-a', 5);
  const root = await fetch(`${DEFAULT_URL}/rpc/get_inventory`, {
    method: 'POST', body: JSON.stringify({ p_inventory_id: item.id }),
    headers: { 'Content-Type': 'application/json', 'Content-Profile': S, Authorization: `Bearer ${L.serviceRoleKey}` },
  });
  assert.equal(root.status, 404);
  const row = await one(`SELECT quantity::float8 AS q FROM ${S}.items WHERE id = $1`, [item.id]);
  assert.equal(row.q, 5);
});
