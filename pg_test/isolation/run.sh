#!/usr/bin/env bash
# Runs every isolation spec against the running cluster (PGHOST/PGPORT/
# PGUSER/PGDATABASE from lib.sh's start_cluster) and diffs with expected/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
pg_config="${AI_PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
regress="$("$pg_config" --pkglibdir)/pgxs/src/test/isolation/pg_isolation_regress"
out="$(mktemp -d /tmp/ai-isolation.XXXXXX)"
specs=()
for f in "$here"/specs/*.spec; do specs+=("$(basename "$f" .spec)"); done
status=0
"$regress" --use-existing --host="$PGHOST" --port="$PGPORT" --user="$PGUSER" \
    --dbname="$PGDATABASE" --inputdir="$here" --outputdir="$out" \
    "${specs[@]}" || status=$?
if [[ $status -ne 0 && -f "$out/regression.diffs" ]]; then
    cat "$out/regression.diffs"
fi
# keep the outputs for inspection when asked (used to (re)generate expected/)
if [[ -n "${AI_KEEP_ISOLATION_OUTPUT:-}" ]]; then cp -r "$out" "$AI_KEEP_ISOLATION_OUTPUT"; fi
rm -rf "$out"
exit $status
