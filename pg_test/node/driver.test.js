// atomic_inventory through node-postgres: results as JSON objects, errors as
// node-pg surfaces them (err.code = SQLSTATE, err.detail = JSON with the
// stable code), and many concurrent pool clients losing nothing.
// Uses the PG* environment (pg_test/lib.sh's start_cluster).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';

const pool = new pg.Pool({ max: 32 });
const S = 'atomic_inventory';
let item;

before(async () => {
  const r = await pool.query(
    `SELECT ${S}.create_item(p_quantity => 100, p_sku => 'node-' || gen_random_uuid()) AS j`);
  item = r.rows[0].j.inventory_id; // json columns arrive parsed
});

after(() => pool.end());

test('decrement returns a parsed JSON object', async () => {
  const { rows } = await pool.query(
    `SELECT ${S}.decrement_inventory(p_inventory_id => $1, p_quantity => $2) AS result`, [item, 3]);
  assert.equal(rows[0].result.success, true);
  assert.equal(rows[0].result.deducted, 3);
});

test('errors carry SQLSTATE and a JSON detail with the code', async () => {
  await assert.rejects(
    pool.query(`SELECT ${S}.decrement_inventory(p_inventory_id => $1, p_quantity => $2)`, [item, 1000]),
    (err) => {
      assert.equal(err.code, 'PT409');
      assert.equal(JSON.parse(err.detail).code, 'INSUFFICIENT_INVENTORY');
      assert.match(err.message, /^INSUFFICIENT_INVENTORY: /);
      assert.ok(err.hint);
      return true;
    });
  await assert.rejects(
    pool.query(`SELECT ${S}.decrement_inventory(p_inventory_id => $1, p_quantity => $2)`,
      ['00000000-0000-0000-0000-0000000000ff', 1]),
    (err) => err.code === 'PT404' && JSON.parse(err.detail).code === 'NOT_FOUND');
  await assert.rejects(
    pool.query(`SELECT ${S}.decrement_inventory_many(p_lines => $1)`, [JSON.stringify([])]),
    (err) => err.code === '22023' && JSON.parse(err.detail).code === 'INVALID_INPUT');
});

test('64 concurrent sales through a 32-client pool lose nothing', async () => {
  const start = (await pool.query(`SELECT quantity FROM ${S}.items WHERE id = $1`, [item])).rows[0].quantity;
  const calls = Array.from({ length: 64 }, (_, k) => pool.query(
    `SELECT ${S}.decrement_inventory(p_inventory_id => $1, p_quantity => 1, p_reference => $2) AS r`,
    [item, `node-${k}`]).then(() => 'ok', (e) => e.code));
  const outcomes = await Promise.all(calls);
  const ok = outcomes.filter((o) => o === 'ok').length;
  const refused = outcomes.filter((o) => o === 'PT409').length;
  assert.equal(ok + refused, 64, `unexpected outcomes: ${outcomes}`);
  const end = (await pool.query(`SELECT quantity FROM ${S}.items WHERE id = $1`, [item])).rows[0].quantity;
  assert.equal(Number(start) - Number(end), ok);
  assert.ok(Number(end) >= 0);
  const drift = await pool.query(`SELECT count(*)::int AS n FROM ${S}.reconcile() WHERE inventory_id = $1`, [item]);
  assert.equal(drift.rows[0].n, 0);
});

test('idempotent retry returns the first result', async () => {
  const key = `node-key-${Date.now()}`;
  const q = `SELECT ${S}.decrement_inventory(p_inventory_id => $1, p_quantity => 1, p_idempotency_key => $2) AS r`;
  const [a, b] = await Promise.all([pool.query(q, [item, key]), pool.query(q, [item, key])]);
  assert.deepEqual(a.rows[0].r, b.rows[0].r);
});

test('claim_batch: exactly one of 16 concurrent drivers wins, the rest get PT409', async () => {
  const b = (await pool.query(`SELECT ${S}.create_batch() AS j`)).rows[0].j.batch_id;
  const outcomes = await Promise.all(Array.from({ length: 16 }, (_, k) =>
    pool.query(`SELECT ${S}.claim_batch(p_batch_id => $1, p_driver_id => $2)`, [b, `node-driver-${k}`])
      .then(() => 'ok', (e) => e.code)));
  assert.equal(outcomes.filter((o) => o === 'ok').length, 1);
  assert.equal(outcomes.filter((o) => o === 'PT409').length, 15);
});
