#!/usr/bin/env bash
# The stress test again, through PgBouncer in transaction pooling mode (as
# Supabase's pooler runs): every call must work whichever server connection
# its transaction lands on, i.e. nothing may depend on session state.
# Runs against the cluster lib.sh started (PGHOST/PGPORT).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"  # free_port
dir="$(mktemp -d /tmp/ai-pgbouncer.XXXXXX)"
chown postgres "$dir"
write_ini() {
cat > "$dir/pgbouncer.ini" <<INI
[databases]
$PGDATABASE = host=127.0.0.1 port=$PGPORT dbname=$PGDATABASE user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = 16
max_client_conn = 400
ignore_startup_parameters = extra_float_digits,options
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
chown postgres "$dir/pgbouncer.ini"
}
trap 'kill "$(cat "$dir/pgbouncer.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$dir"' EXIT
# Start it up to twice (on a port free at that moment, below the ephemeral
# range: lib.sh's free_port), and if it still
# does not answer, fail here with its log instead of with the test's
# "connection refused".
up=""
for attempt in 1 2; do
    port="$(free_port 500)"
    write_ini
    # PgBouncer refuses to run as root
    runuser -u postgres -- pgbouncer -d "$dir/pgbouncer.ini" || true
    for _ in $(seq 1 100); do
        if psql -X -q -h 127.0.0.1 -p "$port" -c "SELECT 1" >/dev/null 2>&1; then up=1; break; fi
        sleep 0.1
    done
    [[ -n "$up" ]] && break
    echo "pgbouncer: not answering on port $port after 10 s (attempt $attempt); its log:" >&2
    tail -n 20 "$dir/pgbouncer.log" >&2 2>/dev/null || true
done
[[ -n "$up" ]] || { echo "pgbouncer: could not be started" >&2; exit 1; }
echo "pgbouncer: transaction pooling on 127.0.0.1:$port, 16 server connections for 32+ clients"
PGPORT=$port AI_NO_PREPARE=1 python3 "$here/stress.py" --connections 32 --seconds "${AI_PGBOUNCER_SECONDS:-10}" --batches 300
