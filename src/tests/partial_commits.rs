//! `#[pg_test]`s for partial commits: commit_reservation's p_lines (units
//! per line) and p_rest (release or keep the rest). The race of a partial
//! commit with the sweep is pg_test/isolation/specs/partial_commit_sweep.spec.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;
    use serde_json::Value;

    fn reserved(id: &str) -> String {
        scalar(&format!(
            "SELECT reserved::text FROM atomic_inventory.items WHERE id = '{id}'"
        ))
    }

    fn reserve(lines: &[(&str, &str)]) -> String {
        let body: Vec<String> = lines
            .iter()
            .map(|(id, q)| format!(r#"{{"inventory_id":"{id}","quantity":{q}}}"#))
            .collect();
        let r = call(&format!(
            "atomic_inventory.reserve_inventory('[{}]')",
            body.join(",")
        ));
        r["reservation_id"].as_str().unwrap().to_string()
    }

    fn parts(lines: &[(&str, &str)]) -> String {
        let body: Vec<String> = lines
            .iter()
            .map(|(id, q)| format!(r#"{{"inventory_id":"{id}","quantity":{q}}}"#))
            .collect();
        format!("[{}]", body.join(","))
    }

    /// commit_reservation(rid, p_lines => lines, extra)
    fn commit_sql(rid: &str, lines: &[(&str, &str)], extra: &str) -> String {
        format!(
            "atomic_inventory.commit_reservation('{rid}', p_lines => '{}'{extra})",
            parts(lines)
        )
    }

    fn commit(rid: &str, lines: &[(&str, &str)], extra: &str) -> Value {
        call(&commit_sql(rid, lines, extra))
    }

    /// status, quantity, committed_quantity, released_quantity of a line
    fn line(rid: &str, id: &str) -> String {
        scalar(&format!(
            "SELECT status || ' ' || quantity || ' ' || committed_quantity || ' ' || released_quantity \
               FROM atomic_inventory.reservation_lines \
              WHERE reservation_id = '{rid}' AND inventory_id = '{id}'"
        ))
    }

    fn status(rid: &str) -> String {
        scalar(&format!(
            "SELECT status FROM atomic_inventory.reservations WHERE id = '{rid}'"
        ))
    }

    /// the item's commit ledger rows' deltas, oldest first
    fn commits(id: &str) -> String {
        scalar(&format!(
            "SELECT coalesce(string_agg(delta::text, ',' ORDER BY id), '') FROM atomic_inventory.ledger \
              WHERE inventory_id = '{id}' AND kind = 'commit'"
        ))
    }

    /// reconcile() is empty: quantity = the sum of the ledger, reserved =
    /// the active tracked lines
    fn healthy() {
        assert_eq!(
            scalar("SELECT count(*)::text FROM atomic_inventory.reconcile()"),
            "0",
            "reconcile() found drift"
        );
    }

    fn pairs(v: &Value) -> Vec<(String, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["inventory_id"].as_str().unwrap().to_string(),
                    l["quantity"].to_string(),
                )
            })
            .collect()
    }

    #[pg_test]
    fn partial_commit_releases_the_rest() {
        item(A, "10");
        item(B, "10");
        let rid = reserve(&[(A, "5"), (B, "2")]);
        let c = commit(&rid, &[(A, "3")], "");
        assert_eq!(c["rest"], "release");
        assert_eq!(pairs(&c["committed"]), vec![(A.into(), "3".into())]);
        assert_eq!(pairs(&c["released"]), vec![(A.into(), "2".into())]);
        assert_eq!(pairs(&c["kept"]), vec![]);
        // B is still held
        assert_eq!(c["status"], "active");
        assert_eq!(quantity(A), "7");
        assert_eq!(reserved(A), "0");
        assert_eq!(reserved(B), "2");
        assert_eq!(line(&rid, A), "committed 5 3 2");
        assert_eq!(line(&rid, B), "active 2 0 0");
        assert_eq!(commits(A), "-3");
        healthy();
        // the rest of the reservation, whole
        let c = call(&format!("atomic_inventory.commit_reservation('{rid}')"));
        assert_eq!(c["status"], "committed");
        assert_eq!(pairs(&c["committed"]), vec![(B.into(), "2".into())]);
        assert_eq!(quantity(B), "8");
        assert_eq!(reserved(B), "0");
        assert_eq!(line(&rid, B), "committed 2 2 0");
        assert_eq!(commits(B), "-2");
        healthy();
    }

    #[pg_test]
    fn partial_commit_of_everything_a_line_holds_commits_it_whole() {
        item(A, "10");
        let rid = reserve(&[(A, "4")]);
        // quantities as strings, an id given twice adds up
        let c = call(&format!(
            r#"atomic_inventory.commit_reservation('{rid}', p_lines => '[{{"inventory_id":"{A}","quantity":"1.5"}},{{"inventory_id":"{A}","quantity":2.5}}]', p_rest => 'keep')"#
        ));
        assert_eq!(c["status"], "committed");
        assert_eq!(pairs(&c["committed"]), vec![(A.into(), "4.0".into())]);
        assert_eq!(pairs(&c["released"]), vec![]);
        assert_eq!(pairs(&c["kept"]), vec![]);
        assert_eq!(quantity(A), "6.0");
        assert_eq!(reserved(A), "0.0");
        assert_eq!(commits(A), "-4.0");
        healthy();
    }

    #[pg_test]
    fn keep_then_commit_the_rest() {
        item(A, "10");
        let rid = reserve(&[(A, "5")]);
        let c = commit(&rid, &[(A, "2")], ", p_rest => 'keep'");
        assert_eq!(c["status"], "active");
        assert_eq!(c["rest"], "keep");
        assert_eq!(pairs(&c["committed"]), vec![(A.into(), "2".into())]);
        assert_eq!(pairs(&c["kept"]), vec![(A.into(), "3".into())]);
        assert_eq!(pairs(&c["released"]), vec![]);
        assert_eq!(quantity(A), "8");
        assert_eq!(reserved(A), "3");
        assert_eq!(line(&rid, A), "active 3 2 0");
        assert_eq!(status(&rid), "active");
        let g = call(&format!("atomic_inventory.get_reservation('{rid}')"));
        assert_eq!(g["status"], "active");
        assert_eq!(g["lines"][0]["status"], "active");
        assert_eq!(g["lines"][0]["quantity"].to_string(), "3");
        assert_eq!(g["lines"][0]["committed_quantity"].to_string(), "2");
        assert_eq!(g["lines"][0]["released_quantity"].to_string(), "0");
        healthy();
        // the line now holds 3: 4 is more than that
        let (_, d) = assert_err(
            &format!("SELECT {}", commit_sql(&rid, &[(A, "4")], "")),
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_lines");
        // another part, kept again, then the last unit
        commit(&rid, &[(A, "2")], ", p_rest => 'keep'");
        assert_eq!(line(&rid, A), "active 1 4 0");
        assert_eq!(reserved(A), "1");
        healthy();
        let c = call(&format!("atomic_inventory.commit_reservation('{rid}')"));
        assert_eq!(c["status"], "committed");
        assert_eq!(pairs(&c["committed"]), vec![(A.into(), "1".into())]);
        assert_eq!(quantity(A), "5");
        assert_eq!(reserved(A), "0");
        assert_eq!(line(&rid, A), "committed 1 5 0");
        assert_eq!(commits(A), "-2,-2,-1");
        healthy();
    }

    #[pg_test]
    fn keep_then_release() {
        item(A, "10");
        item(B, "10");
        let rid = reserve(&[(A, "5"), (B, "1")]);
        commit(&rid, &[(A, "2")], ", p_rest => 'keep'");
        let r = call(&format!("atomic_inventory.release_reservation('{rid}')"));
        // some units were sold: the reservation ends committed
        assert_eq!(r["status"], "committed");
        assert_eq!(quantity(A), "8");
        assert_eq!(reserved(A), "0");
        assert_eq!(quantity(B), "10");
        assert_eq!(reserved(B), "0");
        assert_eq!(line(&rid, A), "released 3 2 3");
        assert_eq!(line(&rid, B), "released 1 0 1");
        assert_eq!(commits(A), "-2");
        assert_eq!(commits(B), "");
        healthy();
    }

    #[pg_test]
    fn keep_then_expiry() {
        item(A, "10");
        item(B, "10");
        let rid = reserve(&[(A, "5"), (B, "1")]);
        commit(&rid, &[(A, "2")], ", p_rest => 'keep'");
        Spi::run(&format!(
            "UPDATE atomic_inventory.reservations SET expires_at = now() - interval '1 minute' WHERE id = '{rid}'"
        ))
        .unwrap();
        // expired: no more commits, parts or whole
        assert_err(
            &format!("SELECT {}", commit_sql(&rid, &[(A, "1")], "")),
            "PT410",
            "RESERVATION_EXPIRED",
        );
        let swept = call("atomic_inventory.expire_reservations()");
        assert_eq!(swept["expired"], 1);
        assert_eq!(status(&rid), "committed");
        assert_eq!(quantity(A), "8");
        assert_eq!(reserved(A), "0");
        assert_eq!(reserved(B), "0");
        assert_eq!(line(&rid, A), "expired 3 2 3");
        assert_eq!(line(&rid, B), "expired 1 0 1");
        assert_eq!(commits(A), "-2");
        assert_eq!(call("atomic_inventory.expire_reservations()")["expired"], 0);
        healthy();
    }

    #[pg_test]
    fn partial_commit_of_an_untracked_item() {
        item(A, "0");
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET track_inventory = false WHERE id = '{A}'"
        ))
        .unwrap();
        let rid = reserve(&[(A, "50")]);
        let c = commit(&rid, &[(A, "20")], ", p_rest => 'keep'");
        assert_eq!(pairs(&c["kept"]), vec![(A.into(), "30".into())]);
        assert_eq!(line(&rid, A), "active 30 20 0");
        assert_eq!(quantity(A), "0");
        assert_eq!(reserved(A), "0");
        commit(&rid, &[(A, "10")], "");
        assert_eq!(line(&rid, A), "committed 30 30 20");
        assert_eq!(status(&rid), "committed");
        healthy();
    }

    #[pg_test]
    fn partial_commits_refuse_bad_input() {
        item(A, "10");
        item(B, "10");
        let rid = reserve(&[(A, "5")]);
        let bad = |sql: String, state: &str, code: &str, field: &str| {
            let (_, d) = assert_err(&format!("SELECT {sql}"), state, code);
            assert_eq!(d["field"], field, "{sql}");
        };
        // more than the line holds
        bad(
            commit_sql(&rid, &[(A, "6")], ""),
            "22023",
            "INVALID_INPUT",
            "p_lines",
        );
        bad(
            commit_sql(&rid, &[(A, "3"), (A, "3")], ""),
            "22023",
            "INVALID_INPUT",
            "p_lines",
        );
        // zero, negative, not finite, not a number
        for q in [
            "0",
            "-1",
            "\"NaN\"",
            "\"Infinity\"",
            "1e400",
            "\"x\"",
            "null",
        ] {
            bad(
                commit_sql(&rid, &[(A, q)], ""),
                "22023",
                "INVALID_QUANTITY",
                "p_lines[0].quantity",
            );
        }
        // a line the reservation doesn't have
        for other in [B, MISSING] {
            bad(
                commit_sql(&rid, &[(other, "1")], ""),
                "22023",
                "INVALID_INPUT",
                "p_lines",
            );
        }
        // p_lines with p_inventory_ids
        bad(
            commit_sql(
                &rid,
                &[(A, "1")],
                &format!(", p_inventory_ids => ARRAY['{A}']::uuid[]"),
            ),
            "22023",
            "INVALID_INPUT",
            "p_lines",
        );
        // an unknown p_rest, with or without p_lines
        bad(
            commit_sql(&rid, &[(A, "1")], ", p_rest => 'hold'"),
            "22023",
            "INVALID_INPUT",
            "p_rest",
        );
        bad(
            format!("atomic_inventory.commit_reservation('{rid}', p_rest => 'Keep')"),
            "22023",
            "INVALID_INPUT",
            "p_rest",
        );
        // not a list of lines
        for v in ["[]", "{}", "[1]", "\"x\""] {
            let (_, d) = assert_err(
                &format!("SELECT atomic_inventory.commit_reservation('{rid}', p_lines => '{v}')"),
                "22023",
                "INVALID_INPUT",
            );
            assert!(d["field"].as_str().unwrap().starts_with("p_lines"), "{v}");
        }
        bad(
            format!(
                r#"atomic_inventory.commit_reservation('{rid}', p_lines => '[{{"inventory_id":"{A}","quantity":1,"location_id":"{B}"}}]')"#
            ),
            "22023",
            "INVALID_INPUT",
            "p_lines",
        );
        // nothing changed
        assert_eq!(quantity(A), "10");
        assert_eq!(reserved(A), "5");
        assert_eq!(line(&rid, A), "active 5 0 0");
        // a line already finished is a conflict, as for whole lines
        let rid2 = reserve(&[(A, "2"), (B, "2")]);
        commit(&rid2, &[(A, "1")], "");
        let (_, d) = assert_err(
            &format!("SELECT {}", commit_sql(&rid2, &[(A, "1")], "")),
            "PT409",
            "LINE_NOT_ACTIVE",
        );
        assert_eq!(d["lines"][0]["inventory_id"], A);
        // a finished reservation, as before
        call(&format!("atomic_inventory.commit_reservation('{rid2}')"));
        assert_err(
            &format!("SELECT {}", commit_sql(&rid2, &[(B, "1")], "")),
            "PT409",
            "RESERVATION_NOT_ACTIVE",
        );
        healthy();
    }

    #[pg_test]
    fn partial_commits_replay_by_idempotency_key() {
        item(A, "10");
        let rid = reserve(&[(A, "5")]);
        let key = ", p_idempotency_key => 'pc-1', p_rest => 'keep'";
        let first = commit(&rid, &[(A, "2")], key);
        // the same request: the first answer, nothing applied again (the
        // same lines written otherwise are the same request)
        let again = call(&format!(
            r#"atomic_inventory.commit_reservation('{rid}', p_lines => '[{{"quantity":"2.0","inventory_id":"{A}"}}]'{key})"#
        ));
        assert_eq!(again, first);
        assert_eq!(quantity(A), "8");
        assert_eq!(reserved(A), "3");
        assert_eq!(commits(A), "-2");
        // the same key for another request
        for other in [
            commit_sql(&rid, &[(A, "1")], key),
            commit_sql(&rid, &[(A, "2")], ", p_idempotency_key => 'pc-1'"),
            format!("atomic_inventory.commit_reservation('{rid}', p_idempotency_key => 'pc-1')"),
        ] {
            assert_err(&format!("SELECT {other}"), "PT422", "IDEMPOTENCY_CONFLICT");
        }
        assert_eq!(line(&rid, A), "active 3 2 0");
        healthy();
    }
}
