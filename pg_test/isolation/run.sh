#!/usr/bin/env bash
# Runs every isolation spec against the running cluster (PGHOST/PGPORT/
# PGUSER from lib.sh's start_cluster), in a database of its own, and diffs
# with expected/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
pg_config="${AI_PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
regress="$("$pg_config" --pkglibdir)/pgxs/src/test/isolation/pg_isolation_regress"
out="$(mktemp -d /tmp/ai-isolation.XXXXXX)"
specs=()
for f in "$here"/specs/*.spec; do specs+=("$(basename "$f" .spec)"); done
# A database of their own, which the background sweeper (sweep_database =
# ai_test in the test clusters) never visits: a spec that lets a lease or a
# hold lapse sees what its steps do, not a sweep round landing in between
# (batch_claims' lapse permutation once saw its claim already returned).
db="ai_isolation"
psql -X -q -d postgres -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -X -q -d "$db" -v ON_ERROR_STOP=1 -c "CREATE EXTENSION atomic_inventory"
status=0
"$regress" --use-existing --host="$PGHOST" --port="$PGPORT" --user="$PGUSER" \
    --dbname="$db" --inputdir="$here" --outputdir="$out" \
    "${specs[@]}" || status=$?
psql -X -q -d postgres -c "DROP DATABASE $db" || true
if [[ $status -ne 0 && -f "$out/regression.diffs" ]]; then
    cat "$out/regression.diffs"
fi
# keep the outputs for inspection when asked (used to (re)generate expected/)
if [[ -n "${AI_KEEP_ISOLATION_OUTPUT:-}" ]]; then cp -r "$out" "$AI_KEEP_ISOLATION_OUTPUT"; fi
rm -rf "$out"
exit $status
