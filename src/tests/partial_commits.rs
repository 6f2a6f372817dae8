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

    /// A striped item's row holds only its reserved units: a partial
    /// commit takes the units sold from it, the units released stay in it
    /// (until the next gather), the total is right and the ledger row has
    /// no quantity_after, as a whole commit's.
    #[pg_test]
    fn partial_commit_of_a_striped_item() {
        item(A, "20");
        call(&format!("atomic_inventory.stripe_item('{A}', 2)"));
        let rid = reserve(&[(A, "6")]);
        let total =
            || call(&format!("atomic_inventory.get_inventory('{A}')"))["quantity"].to_string();
        commit(&rid, &[(A, "2")], ", p_rest => 'keep'");
        assert_eq!(total(), "18");
        assert_eq!(reserved(A), "4");
        commit(&rid, &[(A, "1")], "");
        assert_eq!(total(), "17");
        assert_eq!(reserved(A), "0");
        assert_eq!(line(&rid, A), "committed 4 3 3");
        assert_eq!(
            scalar(&format!(
                "SELECT string_agg(delta || ' ' || coalesce(quantity_after::text, 'null'), ',' ORDER BY id)
                   FROM atomic_inventory.ledger WHERE inventory_id = '{A}' AND kind = 'commit'"
            )),
            "-2 null,-1 null"
        );
        // the units released can be sold
        call(&format!("atomic_inventory.decrement_inventory('{A}', 17)"));
        assert_eq!(total(), "0");
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

    // On a bound source (bound_commit_reservation's p_lines, keyed by
    // item_id; commit_reservation's by inventory_id on a uuid-keyed table).

    const U1: &str = "30000000-0000-0000-0000-000000000001";
    const U2: &str = "30000000-0000-0000-0000-000000000002";

    fn bound_table() {
        Spi::run(
            "CREATE TABLE public.pc_inventory (id uuid PRIMARY KEY,
               quantity integer NOT NULL CHECK (quantity >= 0),
               reserved integer NOT NULL DEFAULT 0)",
        )
        .unwrap();
        Spi::run(&format!(
            "INSERT INTO public.pc_inventory VALUES ('{U1}', 10, 0), ('{U2}', 5, 0)"
        ))
        .unwrap();
        call(
            "atomic_inventory.bind_stock_source('pc', 'public.pc_inventory', 'id', 'quantity',
               p_reserved_column => 'reserved')",
        );
    }

    /// quantity/reserved of a bound row
    fn bound_row(id: &str) -> String {
        scalar(&format!(
            "SELECT quantity || '/' || reserved FROM public.pc_inventory WHERE id = '{id}'"
        ))
    }

    fn bound_line(rid: &str, key: &str) -> String {
        scalar(&format!(
            "SELECT status || ' ' || quantity || ' ' || committed_quantity || ' ' || released_quantity \
               FROM atomic_inventory.bound_reservation_lines \
              WHERE reservation_id = '{rid}' AND item_key = '{key}'"
        ))
    }

    fn bound_commits(key: &str) -> String {
        scalar(&format!(
            "SELECT coalesce(string_agg(delta::text, ',' ORDER BY id), '') FROM atomic_inventory.ledger \
              WHERE source = 'pc' AND item_key = '{key}' AND kind = 'commit'"
        ))
    }

    fn bound_healthy() {
        assert_eq!(
            scalar("SELECT count(*)::text FROM atomic_inventory.reconcile_source('pc')"),
            "0",
            "reconcile_source() found drift"
        );
    }

    fn bound_parts(lines: &[(&str, &str)]) -> String {
        let body: Vec<String> = lines
            .iter()
            .map(|(id, q)| format!(r#"{{"item_id":"{id}","quantity":{q}}}"#))
            .collect();
        format!("[{}]", body.join(","))
    }

    fn bound_commit_sql(rid: &str, lines: &[(&str, &str)], extra: &str) -> String {
        format!(
            "atomic_inventory.bound_commit_reservation('{rid}', p_lines => '{}'{extra})",
            bound_parts(lines)
        )
    }

    fn items(v: &Value) -> Vec<(String, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["item_id"].as_str().unwrap().to_string(),
                    l["quantity"].to_string(),
                )
            })
            .collect()
    }

    #[pg_test]
    fn partial_commits_on_a_bound_source() {
        bound_table();
        let r = call(&format!(
            r#"atomic_inventory.bound_reserve('pc', '[{{"item_id":"{U1}","quantity":5}},{{"item_id":"{U2}","quantity":2}}]')"#
        ));
        let rid = r["reservation_id"].as_str().unwrap().to_string();
        assert_eq!(bound_row(U1), "10/5");
        // keep: 2 sold, 3 still held
        let c = call(&bound_commit_sql(&rid, &[(U1, "2")], ", p_rest => 'keep'"));
        assert_eq!(c["status"], "active");
        assert_eq!(c["source"], "pc");
        assert_eq!(items(&c["committed"]), vec![(U1.into(), "2".into())]);
        assert_eq!(items(&c["kept"]), vec![(U1.into(), "3".into())]);
        assert_eq!(items(&c["released"]), vec![]);
        assert_eq!(bound_row(U1), "8/3");
        assert_eq!(bound_line(&rid, U1), "active 3 2 0");
        assert_eq!(bound_commits(U1), "-2");
        bound_healthy();
        let g = call(&format!("atomic_inventory.get_reservation('{rid}')"));
        assert_eq!(g["lines"][0]["committed_quantity"].to_string(), "2");
        // refused: a fraction of an integer column, more than the line
        // holds, a key that is no line, with p_item_ids, an unknown p_rest
        let (_, d) = assert_err(
            &format!("SELECT {}", bound_commit_sql(&rid, &[(U1, "1.5")], "")),
            "22023",
            "INVALID_QUANTITY",
        );
        assert_eq!(d["field"], "p_lines");
        for (sql, field) in [
            (bound_commit_sql(&rid, &[(U1, "4")], ""), "p_lines"),
            (bound_commit_sql(&rid, &[("nope", "1")], ""), "p_lines"),
            (
                bound_commit_sql(
                    &rid,
                    &[(U1, "1")],
                    &format!(", p_item_ids => ARRAY['{U1}']"),
                ),
                "p_lines",
            ),
            (
                bound_commit_sql(&rid, &[(U1, "1")], ", p_rest => 'all'"),
                "p_rest",
            ),
        ] {
            let (_, d) = assert_err(&format!("SELECT {sql}"), "22023", "INVALID_INPUT");
            assert_eq!(d["field"], field, "{sql}");
        }
        for q in ["0", "-2", "\"NaN\""] {
            let (_, d) = assert_err(
                &format!("SELECT {}", bound_commit_sql(&rid, &[(U1, q)], "")),
                "22023",
                "INVALID_QUANTITY",
            );
            assert_eq!(d["field"], "p_lines[0].quantity", "{q}");
        }
        assert_eq!(bound_row(U1), "8/3");
        // the managed function names a uuid-keyed row's line by inventory_id:
        // 1 more sold, the other 2 given back, the line finished
        let c = commit(&rid, &[(U1, "1")], "");
        assert_eq!(items(&c["committed"]), vec![(U1.into(), "1".into())]);
        assert_eq!(items(&c["released"]), vec![(U1.into(), "2".into())]);
        assert_eq!(c["status"], "active");
        assert_eq!(bound_row(U1), "7/0");
        assert_eq!(bound_line(&rid, U1), "committed 3 3 2");
        assert_eq!(bound_commits(U1), "-2,-1");
        assert_err(
            &format!("SELECT {}", bound_commit_sql(&rid, &[(U1, "1")], "")),
            "PT409",
            "LINE_NOT_ACTIVE",
        );
        bound_healthy();
        // keep part of U2, replayed by its key; the rest expires
        let key = ", p_rest => 'keep', p_idempotency_key => 'bpc-1'";
        let first = call(&bound_commit_sql(&rid, &[(U2, "1")], key));
        let again = call(&bound_commit_sql(&rid, &[(U2, "1.0")], key));
        assert_eq!(first, again);
        assert_err(
            &format!(
                "SELECT {}",
                bound_commit_sql(&rid, &[(U2, "1")], ", p_idempotency_key => 'bpc-1'")
            ),
            "PT422",
            "IDEMPOTENCY_CONFLICT",
        );
        assert_eq!(bound_row(U2), "4/1");
        assert_eq!(bound_line(&rid, U2), "active 1 1 0");
        Spi::run(&format!(
            "UPDATE atomic_inventory.reservations SET expires_at = now() - interval '1 minute' WHERE id = '{rid}'"
        ))
        .unwrap();
        assert_eq!(call("atomic_inventory.expire_reservations()")["expired"], 1);
        assert_eq!(status(&rid), "committed");
        assert_eq!(bound_row(U2), "4/0");
        assert_eq!(bound_line(&rid, U2), "expired 1 1 1");
        assert_eq!(bound_commits(U2), "-1");
        bound_healthy();
    }
}
