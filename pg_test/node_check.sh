#!/usr/bin/env bash
# node-postgres (npm `pg`) against the running cluster (PG* from lib.sh).
set -euo pipefail
cd "$(dirname "$0")/node"
# pg is pinned exactly in package.json; no lockfile is kept (it would record
# registry addresses)
[[ -d node_modules/pg ]] || npm install --silent --no-audit --no-fund --no-package-lock
node --test
