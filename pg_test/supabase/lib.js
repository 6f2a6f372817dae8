// Helpers of supabase.test.js: tokens signed here, a stand-in for Supabase's
// API gateway, and an admin connection (node-postgres, as the superuser of
// lib.sh's cluster) to set fixtures up and to check effects in the database.
import { createHmac, randomUUID } from 'node:crypto';
import http from 'node:http';
import pg from 'pg';

export const S = 'atomic_inventory';
const SECRET = process.env.AI_JWT_SECRET;
if (!SECRET || !process.env.AI_POSTRUST_URL) {
  throw new Error('run through pg_test/supabase_http.sh (AI_JWT_SECRET, AI_POSTRUST_URL)');
}

// ---- JWTs: HS256 with node's crypto, as Supabase's keys and GoTrue's tokens

const b64url = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
export const nowSeconds = () => Math.floor(Date.now() / 1000);

export function signJwt(claims, secret = SECRET) {
  const signed = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(claims)}`;
  return `${signed}.${createHmac('sha256', secret).update(signed).digest('base64url')}`;
}

// Supabase's two API keys are JWTs of these roles; a signed-in user's token
// is role authenticated with their id in sub (and here a tenant claim).
export const anonKey = signJwt({ iss: 'supabase', role: 'anon', iat: nowSeconds(), exp: nowSeconds() + 3600 });
export const serviceRoleKey = signJwt({
  iss: 'supabase', role: 'service_role', iat: nowSeconds(), exp: nowSeconds() + 3600,
});
export function userToken(sub, tenant, extra = {}) {
  return signJwt({
    sub, role: 'authenticated', aud: 'authenticated', tenant_id: tenant,
    iat: nowSeconds(), exp: nowSeconds() + 3600, ...extra,
  });
}

function claimsOf(authorization) {
  try {
    return JSON.parse(Buffer.from(authorization.split(' ')[1].split('.')[1], 'base64url'));
  } catch {
    return {};
  }
}

// ---- the gateway: Supabase's Kong serves PostgREST under /rest/v1/; this
// maps that prefix to the server's API (`mount`: '' for postrust in compat
// mode, which serves PostgREST's paths at the root; '/api' in its default
// mode) and records each RPC's function, caller and status, so the test can
// check that every granted function went over HTTP as every role.

export const seen = []; // { fn, role, tenant, status }

export function startGateway(upstream = process.env.AI_POSTRUST_URL, mount = '') {
  const UPSTREAM = new URL(upstream);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const server = http.createServer((req, res) => {
    const path = req.url.replace(/^\/rest\/v1(?=\/|\?|$)/, mount) || '/';
    const fn = /\/rpc\/([^?/]+)/.exec(path)?.[1];
    const claims = claimsOf(req.headers.authorization ?? '');
    const upstream = http.request({
      host: UPSTREAM.hostname, port: UPSTREAM.port, path, method: req.method, headers: req.headers, agent,
    }, (answer) => {
      if (fn) seen.push({ fn, role: claims.role ?? 'none', tenant: claims.tenant_id ?? null, status: answer.statusCode });
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
    req.pipe(upstream);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({
      url: `http://127.0.0.1:${server.address().port}`,
      close: () => new Promise((done) => { agent.destroy(); server.close(done); }),
    }));
  });
}

// ---- the database, as the superuser (an admin: any tenant, any driver)

export const db = new pg.Pool({ max: 8 });
export const one = async (text, params = []) => (await db.query(text, params)).rows[0];
export const rows = async (text, params = []) => (await db.query(text, params)).rows;

export const runId = randomUUID().slice(0, 8);

export async function makeItem(tenant, quantity, extra = {}) {
  const r = await one(`SELECT ${S}.create_item(p_quantity => $1, p_sku => $2, p_tenant_id => $3,
                              p_track_inventory => $4) AS j`,
  [quantity, `sb-${runId}-${randomUUID()}`, tenant, extra.tracked ?? true]);
  return { id: r.j.inventory_id };
}

export async function itemState(id) {
  return one(`SELECT i.quantity::float8 AS quantity, i.reserved::float8 AS reserved,
                     (SELECT count(*)::int FROM ${S}.ledger g WHERE g.inventory_id = i.id) AS ledger_rows,
                     (SELECT coalesce(sum(g.delta), 0)::float8 FROM ${S}.ledger g WHERE g.inventory_id = i.id) AS ledger_sum
                FROM ${S}.items i WHERE i.id = $1`, [id]);
}

export async function makeBatch(tenant, zone = `sb-${runId}`, priority = 0) {
  const r = await one(`SELECT ${S}.create_batch(p_zone => $1, p_tenant_id => $2, p_priority => $3) AS j`,
    [zone, tenant, priority]);
  return r.j.batch_id;
}

export async function claimAs(batch, driver) {
  await db.query(`SELECT ${S}.claim_batch(p_batch_id => $1, p_driver_id => $2)`, [batch, driver]);
}

export const batchState = (id) => one(
  `SELECT status, claimed_by FROM ${S}.batches WHERE id = $1`, [id]);

export async function makeHold(lines, ttlSeconds = 600) {
  const r = await one(`SELECT ${S}.reserve_inventory(p_lines => $1, p_ttl_seconds => $2) AS j`,
    [JSON.stringify(lines.map(([id, quantity]) => ({ inventory_id: id, quantity }))), ttlSeconds]);
  return r.j.reservation_id;
}

export const holdState = (id) => one(
  `SELECT r.status, r.expires_at,
          (SELECT json_agg(json_build_object('status', l.status, 'quantity', l.quantity::float8)
                           ORDER BY l.inventory_id) FROM ${S}.reservation_lines l WHERE l.reservation_id = r.id) AS lines,
          (SELECT json_agg(json_build_object('status', b.status, 'quantity', b.quantity::float8)
                           ORDER BY b.item_key) FROM ${S}.bound_reservation_lines b WHERE b.reservation_id = r.id) AS bound_lines
     FROM ${S}.reservations r WHERE r.id = $1`, [id]);

// A picking session in packing, tenant `tenant`, with `picked` units of one
// product in its basket and one order per entry of `needs` wanting that many.
export async function makePacking(tenant, picked, needs) {
  const session = randomUUID();
  const product = randomUUID();
  await db.query(`INSERT INTO ${S}.picking_sessions (id, status, tenant_id) VALUES ($1, 'packing', $2)`,
    [session, tenant]);
  await db.query(`INSERT INTO ${S}.picking_session_items VALUES ($1, $2, $3)`, [session, product, picked]);
  const lines = [];
  for (const need of needs) {
    const order = randomUUID();
    const line = randomUUID();
    await db.query(`INSERT INTO ${S}.orders (id, order_number, status, tenant_id) VALUES ($1, $2, 'confirmed', $3)`,
      [order, `SB-${runId}-${lines.length}`, tenant]);
    await db.query(`INSERT INTO ${S}.packing_progress (id, picking_session_id, order_id, product_id, quantity_needed)
                    VALUES ($1, $2, $3, $4, $5)`, [line, session, order, product, need]);
    lines.push(line);
  }
  return { session, product, lines, picked, needs };
}

export const packedState = (session) => rows(
  `SELECT quantity_packed AS packed, quantity_needed AS needed FROM ${S}.packing_progress
    WHERE picking_session_id = $1 ORDER BY id`, [session]);

// Adopted tables: an app's stock table (text ids, integer quantity and
// reserved, a tenant column) and its batches table (bigint ids), bound under
// names of this run.
export async function makeSources() {
  const stock = `sb_stock_${runId}`;
  const batches = `sb_batches_${runId}`;
  await db.query(`CREATE TABLE public.${stock} (id text PRIMARY KEY, quantity integer NOT NULL,
                  reserved integer NOT NULL DEFAULT 0, tenant text)`);
  await db.query(`CREATE TABLE public.${batches} (id bigint PRIMARY KEY, status text NOT NULL DEFAULT 'available',
                  driver text, tenant text)`);
  await db.query(`SELECT ${S}.bind_stock_source(p_name => $1, p_relation => $2::regclass, p_id_column => 'id',
                  p_quantity_column => 'quantity', p_reserved_column => 'reserved', p_tenant_column => 'tenant')`,
  [stock, `public.${stock}`]);
  await db.query(`SELECT ${S}.bind_batch_source(p_name => $1, p_relation => $2::regclass, p_id_column => 'id',
                  p_status_column => 'status', p_assignee_column => 'driver', p_tenant_column => 'tenant')`,
  [batches, `public.${batches}`]);
  // a warehouse's packing tables (the packing RPC's names, in a schema of
  // this run), bound with a tenant column on the sessions
  const packing = `sb_wh_${runId}`;
  await db.query(`CREATE SCHEMA ${packing};
    CREATE TABLE ${packing}.picking_sessions (id uuid PRIMARY KEY, status text NOT NULL,
      last_activity_at timestamptz, tenant text);
    CREATE TABLE ${packing}.orders (id uuid PRIMARY KEY, sleeves_status text NOT NULL, order_number text);
    CREATE TABLE ${packing}.packing_progress (id uuid PRIMARY KEY, picking_session_id uuid NOT NULL,
      order_id uuid NOT NULL, product_id uuid NOT NULL, quantity_needed integer NOT NULL,
      quantity_packed integer NOT NULL DEFAULT 0, updated_at timestamptz);
    CREATE TABLE ${packing}.picking_session_items (picking_session_id uuid, product_id uuid,
      quantity_picked integer NOT NULL)`);
  await db.query(`SELECT ${S}.bind_packing_source(p_name => $1, p_sessions => $2::regclass,
                  p_lines => $3::regclass, p_orders => $4::regclass, p_picked => $5::regclass,
                  p_tenant_column => 'tenant')`,
  [packing, `${packing}.picking_sessions`, `${packing}.packing_progress`, `${packing}.orders`,
    `${packing}.picking_session_items`]);
  return { stock, batches, packing };
}

// A session of `tenant` on the bound packing tables: `picked` units of one
// product, a line per entry of `needs`.
export async function makeBoundPacking(source, tenant, picked, needs) {
  const session = randomUUID();
  const product = randomUUID();
  await db.query(`INSERT INTO ${source}.picking_sessions (id, status, tenant) VALUES ($1, 'packing', $2)`,
    [session, tenant]);
  await db.query(`INSERT INTO ${source}.picking_session_items VALUES ($1, $2, $3)`, [session, product, picked]);
  const lines = [];
  for (const need of needs) {
    const order = randomUUID();
    const line = randomUUID();
    await db.query(`INSERT INTO ${source}.orders VALUES ($1, 'packing', $2)`, [order, `SBW-${lines.length}`]);
    await db.query(`INSERT INTO ${source}.packing_progress (id, picking_session_id, order_id, product_id,
                    quantity_needed) VALUES ($1, $2, $3, $4, $5)`, [line, session, order, product, need]);
    lines.push(line);
  }
  return { session, product, lines };
}

export const boundPackedState = (source, session) => rows(
  `SELECT quantity_packed AS packed, quantity_needed AS needed FROM ${source}.packing_progress
    WHERE picking_session_id = $1 ORDER BY id`, [session]);

// Rows inserted after binding have no ledger row yet: an adjust to their
// own quantity as the superuser would be a no-op, so they are written with
// quantity 0 and restocked through bound_increment (ledgered).
export async function addStockRow(source, id, tenant, quantity) {
  await db.query(`INSERT INTO public.${source} (id, quantity, tenant) VALUES ($1, 0, $2)`, [id, tenant]);
  if (quantity > 0) {
    await db.query(`SELECT ${S}.bound_increment(p_source => $1, p_item_id => $2, p_quantity => $3)`,
      [source, id, quantity]);
  }
}

export const stockRow = (source, id) => one(
  `SELECT quantity, reserved,
          (SELECT count(*)::int FROM ${S}.ledger g WHERE g.source = $2 AND g.item_key = $1) AS ledger_rows
     FROM public.${source} WHERE id = $1`, [id, source]);

let batchKey = 0;
export async function addBatchRow(source, tenant) {
  batchKey += 1;
  await db.query(`INSERT INTO public.${source} (id, tenant) VALUES ($1, $2)`, [batchKey, tenant]);
  return String(batchKey);
}

export const batchRow = (source, id) => one(
  `SELECT status, driver FROM public.${source} WHERE id = $1`, [Number(id)]);

// ---- outcomes

export const tally = (outcomes) => outcomes.reduce((n, o) => ({ ...n, [o]: (n[o] ?? 0) + 1 }), {});
