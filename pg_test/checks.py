"""Shared by the single-connection suites (faults.py, stats_check.py): one
line per check, a `<suite>: N passed, N failed` summary and its exit code."""
import sys

import psycopg

results = []


def check(name, ok, info=""):
    results.append(bool(ok))
    print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else ': ' + str(info)}")


def conn(autocommit=True):
    """A connection from the PG* environment."""
    return psycopg.connect("", autocommit=autocommit)


def finish(suite):
    passed = sum(results)
    print(f"{suite}: {passed} passed, {len(results) - passed} failed")
    sys.exit(0 if results and passed == len(results) else 1)
