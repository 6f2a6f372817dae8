#!/usr/bin/env bash
# Stage check_pg17: the crate type-checks for PostgreSQL 17 (cargo check
# --features pg17) against the PostgreSQL 17 bindings pgrx-pg-sys ships
# pre-generated (those docs.rs uses), since no PostgreSQL 17 with server
# headers is reachable here. Catches a per-major API our code uses that 17
# lacks (src/pg/path.rs's cfgs); it does not link, run or test anything on 17.
#
# pgrx-pg-sys takes its bundled bindings when built with --cfg docsrs and
# DOCS_RS=1 (its build script then runs no bindgen); the cfg is given to
# that crate only (other crates turn nightly-only features on under it).
set -euo pipefail
cd "$(dirname "$0")/.."
wrapper="$(mktemp /tmp/ai-rustc-wrapper.XXXXXX)"
trap 'rm -f "$wrapper"' EXIT
cat >"$wrapper" <<'SH'
#!/bin/sh
rustc="$1"; shift
case " $* " in *" --crate-name pgrx_pg_sys "*) exec "$rustc" "$@" --cfg docsrs ;; esac
exec "$rustc" "$@"
SH
chmod 755 "$wrapper"
DOCS_RS=1 RUSTC_WRAPPER="$wrapper" CARGO_TARGET_DIR="$PWD/target/check-pg17" \
    cargo check --lib --no-default-features --features pg17
