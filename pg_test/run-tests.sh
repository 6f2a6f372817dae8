#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what is missing, then runs
# every suite on each major, then the packages stage (pg_test/package/check.sh).
# Prints a line per stage and, last, `stages: N passed, N failed`.
#
#   bash pg_test/run-tests.sh                # everything
#   bash pg_test/run-tests.sh --only live    # skip the cargo stages (fmt, clippy, pg_test)
#   bash pg_test/run-tests.sh --long         # long mode: 20 crashes, 120 s stress
#   AI_PG_MAJORS=15 bash pg_test/run-tests.sh  # one major only (default: 15, 16 and 18)
#   AI_STRESS_SECONDS=60 AI_STRESS_CONNECTIONS=64 bash pg_test/run-tests.sh   # custom stress
set -uo pipefail
cd "$(dirname "$0")/.."
source pg_test/lib.sh

only=""
crash_rounds=3
stress_seconds="${AI_STRESS_SECONDS:-20}"
while (($#)); do
    case "$1" in
        --only) only="${2:-}"; shift ;;
        --long) crash_rounds=20; stress_seconds="${AI_STRESS_SECONDS:-120}" ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

passed=0
failed=0
failed_names=()
majors=(${AI_PG_MAJORS:-15 16 18})
suffix=""  # the major under test, appended to stage names
# Each stage's output is kept, so that the end of the run can repeat what a
# failed stage said: CI shows only the tail of a run, and a stage that fails
# early has scrolled out of it by then.
stage_logs="$(mktemp -d /tmp/ai-stage-logs.XXXXXX)"
stage() {
    local name="$1$suffix"
    shift
    log "stage: $name"
    local start=$SECONDS
    "$@" 2>&1 | tee "$stage_logs/$name.log"
    if ((PIPESTATUS[0] == 0)); then
        passed=$((passed + 1))
        echo "stage $name: ok ($((SECONDS - start)) s)"
    else
        failed=$((failed + 1))
        failed_names+=("$name")
        echo "stage $name: FAILED ($((SECONDS - start)) s)"
    fi
}

# digest NAME: what stage NAME said about its failure: every line reporting
# failures with the indented details under it, errors and tracebacks, and
# its last 15 lines.
digest() {
    local f="$stage_logs/$1.log"
    echo "---- stage $1 failed; its failures, then its last lines:"
    awk '/[1-9][0-9]* failed|FAIL|[Ee]rror|Traceback|panicked|not ok/ { print; more = 1; next }
         more && /^ / { print; next }
         { more = 0 }' "$f" | head -60
    echo "---- ..."
    tail -n 15 "$f"
}

pgrx_tests() {
    # pgrx runs its test cluster as postgres (Postgres refuses root); its data
    # directory must belong to postgres.
    local pgdata
    pgdata="$(mktemp -d /tmp/ai-pgrx-pgdata.XXXXXX)"
    chown postgres "$pgdata"
    env -u RUST_BACKTRACE cargo pgrx test "pg${AI_PG_MAJOR}" --runas postgres --pgdata "$pgdata"
    local rc=$?
    rm -rf "$pgdata"
    return $rc
}

live_suites() {
    install_extension || return 1
    # preloaded, so the reservation sweeper runs (every second, on ai_test)
    AI_PG_OPTIONS="-c shared_preload_libraries=atomic_inventory -c atomic_inventory.sweep_interval=1 -c atomic_inventory.sweep_database=ai_test" \
        start_cluster || return 1
    local rc=0
    stage isolation bash pg_test/isolation/run.sh || rc=1
    stage stress python3 pg_test/stress.py \
        --connections "${AI_STRESS_CONNECTIONS:-32}" --seconds "$stress_seconds" || rc=1
    stage ledger_off_stress python3 pg_test/ledger_off_stress.py \
        --connections "${AI_STRESS_CONNECTIONS:-24}" --seconds 8 || rc=1
    stage bound_stress python3 pg_test/bound_stress.py \
        --connections "${AI_STRESS_CONNECTIONS:-32}" --seconds 15 || rc=1
    stage bound_locations python3 pg_test/bound_locations_check.py \
        --connections "${AI_STRESS_CONNECTIONS:-8}" --seconds 5 || rc=1
    stage events python3 pg_test/events_check.py \
        --connections "${AI_STRESS_CONNECTIONS:-32}" --seconds 8 || rc=1
    stage bad_inputs python3 pg_test/bad_inputs.py || rc=1
    stage faults python3 pg_test/faults.py || rc=1
    stage level_race python3 pg_test/level_race.py || rc=1
    stage admin_race python3 pg_test/admin_race.py || rc=1
    stage postgrest python3 pg_test/postgrest_sim.py || rc=1
    stage supabase_http bash pg_test/supabase_http.sh || rc=1
    stage pgbouncer bash pg_test/pgbouncer_check.sh || rc=1
    stage node_postgres bash pg_test/node_check.sh || rc=1
    stage sweeper_worker bash pg_test/worker_check.sh || rc=1
    stage stats python3 pg_test/stats_check.py || rc=1
    stage upgrade bash pg_test/upgrade/run.sh || rc=1
    stop_cluster
    stage no_backend_crashes test -z "${AI_SERVER_CRASHED:-}"
    # without preloading (each backend's own statistics)
    AI_PG_OPTIONS="" start_cluster || return 1
    stage dump_restore bash pg_test/dump_restore.sh || rc=1
    stage stats_backend bash pg_test/stats_backend_check.sh || rc=1
    stop_cluster
    # a cluster of its own, killed on purpose; preloaded, since the crash
    # test checks that the sweeper comes back and expires what fell due
    AI_PG_OPTIONS="-c shared_preload_libraries=atomic_inventory -c atomic_inventory.sweep_interval=1 -c atomic_inventory.sweep_database=ai_test" \
        start_cluster || return 1
    stage crash python3 pg_test/crash.py --rounds "$crash_rounds" || rc=1
    AI_EXPECT_CRASHES=1 stop_cluster
    return $rc
}

ensure_deps "${majors[@]}" || { echo "stages: 0 passed, 1 failed"; exit 1; }

if [[ "$only" != "live" ]]; then
    stage fmt cargo fmt --check
    stage clippy cargo clippy --all-targets --features pg15 -- -D warnings
    stage check_pg17 bash pg_test/check_pg17.sh
fi
times=()
for major in "${majors[@]}"; do
    use_pg "$major"
    suffix="_pg$major"
    major_start=$SECONDS
    [[ "$only" == "live" ]] || stage pg_test pgrx_tests
    live_suites
    times+=("PostgreSQL $major $((SECONDS - major_start)) s")
done
# Last, the release packages of every major under test, installed as a user
# would (the .deb into Debian's PostgreSQL, the tarball elsewhere), used and
# removed; what the runs above installed is put back afterwards.
suffix=""
stage packages bash pg_test/package/check.sh "${majors[@]}"
# Citus (docs/scaling.md), only where a Citus 13 source tree is named: it
# builds Citus into PostgreSQL 15 and uses the extension installed there.
if [[ -n "${CITUS_SRC:-}" && " ${majors[*]} " == *" 15 "* ]]; then
    stage citus bash pg_test/citus/run.sh
else
    echo "stage citus: skipped (set CITUS_SRC to a Citus 13 source tree to run it; docs/scaling.md)"
fi

for name in "${failed_names[@]}"; do digest "$name"; done
echo "time per major: $(IFS=,; echo "${times[*]}" | sed 's/,/, /g'); whole run $SECONDS s"
rm -rf "$stage_logs"
if ((failed)); then echo "failed stages: ${failed_names[*]}"; fi
echo "stages: $passed passed, $failed failed"
((failed == 0))
