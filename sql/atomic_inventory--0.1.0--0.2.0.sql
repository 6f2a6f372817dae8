-- atomic_inventory 0.1.0 -> 0.2.0: statistics (the stats view, stats_reset()),
-- generic plans for decrement_inventory_many.
-- Run by ALTER EXTENSION atomic_inventory UPDATE; the same objects a fresh
-- 0.2.0 install creates (pg_test/upgrade/run.sh compares the two catalogs).
\echo Use "ALTER EXTENSION atomic_inventory UPDATE" to load this file. \quit

-- Statistics (src/stats.rs): per-function calls, outcomes and latency.
-- Cluster-wide when the library is preloaded, else this backend's own.

CREATE FUNCTION atomic_inventory.stats_snapshot() RETURNS json
LANGUAGE c VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS 'MODULE_PATHNAME', 'ai_stats_snapshot';
COMMENT ON FUNCTION atomic_inventory.stats_snapshot() IS
    'Counters of every function as a JSON array; read it through the stats view.';

CREATE FUNCTION atomic_inventory.stats_reset() RETURNS json
LANGUAGE c VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, atomic_inventory, pg_temp
AS 'MODULE_PATHNAME', 'ai_stats_reset';
COMMENT ON FUNCTION atomic_inventory.stats_reset() IS
    'Zero the statistics (of the cluster when preloaded, else of this backend).';

CREATE VIEW atomic_inventory.stats AS
SELECT s.*
  FROM pg_catalog.json_to_recordset(atomic_inventory.stats_snapshot()) AS s(
       function text, calls bigint, ok bigint, errors jsonb,
       lock_timeouts bigint, deadlocks bigint, serialization_failures bigint,
       canceled bigint, mean_ms numeric, p50_ms numeric, p95_ms numeric,
       p99_ms numeric, max_ms numeric, scope text, since timestamptz);
COMMENT ON VIEW atomic_inventory.stats IS
    'Per-function calls since stats_reset(): successes, each error code, lock timeouts, deadlocks, serialization failures, cancels, latency percentiles (upper bounds of log-linear buckets, at most 25% high). scope = cluster (preloaded) or backend.';

-- Like every function of the extension: not callable by PUBLIC.
REVOKE ALL ON FUNCTION atomic_inventory.stats_snapshot() FROM PUBLIC;
REVOKE ALL ON FUNCTION atomic_inventory.stats_reset() FROM PUBLIC;
REVOKE ALL ON atomic_inventory.stats FROM PUBLIC;

-- decrement_inventory_many was planned on every call (custom plans); see functions.sql.
ALTER FUNCTION atomic_inventory.decrement_inventory_many(jsonb, text, text, text, integer)
    SET plan_cache_mode = force_generic_plan;
