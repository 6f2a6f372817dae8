#!/usr/bin/env bash
# Supabase's own client over real HTTP: @supabase/supabase-js (schema
# atomic_inventory) against postrust, a PostgREST-dialect server, in front of
# the running cluster (PG* from lib.sh's start_cluster), with JWTs the test
# signs itself (HS256). What it covers: pg_test/supabase/supabase.test.js;
# how postrust differs from PostgREST: docs/supabase.md.
#
# postrust (crates.io `postrust-server`, binary `postrust`) is built once into
# $AI_POSTRUST_ROOT (default /opt/ai-postrust-3.1.0) and reused from there;
# building it took 6.5 minutes on 2 cores beside another build, 10 minutes
# beside a full test run (the stage prints how long).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"  # free_port, log
stage_start=$(date +%s)

postrust_version=3.1.0
root="${AI_POSTRUST_ROOT:-/opt/ai-postrust-$postrust_version}"
postrust="$root/bin/postrust"
if [[ -x "$postrust" ]]; then
    echo "supabase_http: postrust $postrust_version reused from $root"
else
    log "building postrust $postrust_version (cargo install postrust-server) into $root"
    build_start=$(date +%s)
    # Not --locked: the lockfile inside the crate names a webpki-roots release
    # (1.0.11) that the registry here does not serve; the newest compatible
    # versions are taken instead.
    cargo install postrust-server --version "$postrust_version" --root "$root" --quiet
    echo "supabase_http: built postrust $postrust_version in $(($(date +%s) - build_start)) s"
fi

# The roles Supabase has. authenticator logs in and switches to the role of
# the request's JWT (NOINHERIT: it holds none of their rights itself);
# service_role is an admin for the extension (BYPASSRLS, docs/security.md).
# Idempotent: the postgrest stage creates the same roles on this cluster.
PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN CREATE ROLE anon NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN CREATE ROLE service_role NOLOGIN BYPASSRLS; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticator') THEN CREATE ROLE authenticator LOGIN NOINHERIT; END IF;
END $$;
ALTER ROLE service_role BYPASSRLS;
ALTER ROLE authenticator LOGIN NOINHERIT;
GRANT anon, authenticated, service_role TO authenticator;
SELECT atomic_inventory.grant_usage('authenticated');
SELECT atomic_inventory.grant_usage('service_role');
-- the schema is exposed to the API, so anon sees it; it has no EXECUTE
GRANT USAGE ON SCHEMA atomic_inventory TO anon;
SQL

dir="$(mktemp -d /tmp/ai-supabase.XXXXXX)"
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT

# A secret of our own per run (PostgREST wants at least 32 characters).
jwt_secret="$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"

# start_postrust NAME COMPAT OFFSET: a postrust in front of the cluster, on a
# port free at that moment (lib.sh's free_port), its log in $dir/NAME.log;
# sets $port. Tried twice; fails with its log if it never answers.
start_postrust() {
    local name="$1" compat="$2" offset="$3" attempt pid up=""
    for attempt in 1 2; do
        port="$(free_port "$offset")"
        # PORT would override PGRST_SERVER_PORT
        env -u PORT \
            DATABASE_URL="postgres://authenticator@127.0.0.1:$PGPORT/$PGDATABASE" \
            PGRST_DB_SCHEMAS=atomic_inventory \
            PGRST_DB_ANON_ROLE=anon \
            PGRST_JWT_SECRET="$jwt_secret" \
            PGRST_COMPAT_MODE="$compat" \
            PGRST_DB_POOL="${AI_POSTRUST_POOL:-20}" \
            PGRST_SERVER_HOST=127.0.0.1 \
            PGRST_SERVER_PORT="$port" \
            PGRST_LOG_LEVEL=warn \
            "$postrust" >"$dir/$name.log" 2>&1 &
        pid=$!
        pids+=("$pid")
        for _ in $(seq 1 100); do
            if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
                "http://127.0.0.1:$port/healthz" 2>/dev/null; then up=1; break; fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        [[ -n "$up" ]] && break
        echo "supabase_http: postrust ($name) not answering on port $port (attempt $attempt); its log:" >&2
        tail -n 20 "$dir/$name.log" >&2 || true
        kill "$pid" 2>/dev/null || true
    done
    [[ -n "$up" ]] || { echo "supabase_http: postrust ($name) could not be started" >&2; return 1; }
    echo "supabase_http: postrust $postrust_version ($name) on 127.0.0.1:$port in front of $PGHOST:$PGPORT/$PGDATABASE"
}
# PGRST_COMPAT_MODE: PostgREST's paths at the root (/rpc/<fn>), a function's
# JSON answered as itself, errors with the database's code, message, details
# and hint. supabase.test.js runs against it; postrust_default.test.js pins
# what the default mode does differently (docs/supabase.md).
start_postrust compat true 700
compat_url="http://127.0.0.1:$port"
start_postrust default false 800
default_url="http://127.0.0.1:$port"

cd "$here/supabase"
# versions pinned exactly in package.json; no lockfile is kept (it would
# record registry addresses)
[[ -d node_modules/@supabase/supabase-js && -d node_modules/pg ]] ||
    npm install --silent --no-audit --no-fund --no-package-lock
rc=0
# supabase-js 2.119 needs a WebSocket global (for realtime, even unused),
# which Node 20 has behind a flag, 22 and later without one
flags=()
node -e 'process.exit(typeof WebSocket === "undefined" ? 0 : 1)' && flags+=(--experimental-websocket)
AI_POSTRUST_URL="$compat_url" AI_POSTRUST_DEFAULT_URL="$default_url" AI_JWT_SECRET="$jwt_secret" \
    node "${flags[@]}" --test || rc=$?
if ((rc)); then
    for name in compat default; do
        echo "supabase_http: postrust ($name) log, last 30 lines:"
        tail -n 30 "$dir/$name.log" || true
    done
fi
echo "supabase_http: stage took $(($(date +%s) - stage_start)) s"
exit $rc
