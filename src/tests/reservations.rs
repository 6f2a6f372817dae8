//! `#[pg_test]`s for reservations. Interleavings of commit, release and expiry
//! across sessions are in pg_test/isolation; the many-connection run is
//! pg_test/stress.py.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;
    use serde_json::Value;

    const C: &str = "00000000-0000-0000-0000-00000000000c";

    fn reserved(id: &str) -> String {
        scalar(&format!(
            "SELECT reserved::text FROM atomic_inventory.items WHERE id = '{id}'"
        ))
    }

    fn reserve(lines: &[(&str, &str)], extra: &str) -> Value {
        let body: Vec<String> = lines
            .iter()
            .map(|(id, q)| format!(r#"{{"inventory_id":"{id}","quantity":{q}}}"#))
            .collect();
        call(&format!(
            "atomic_inventory.reserve_inventory('[{}]'{extra})",
            body.join(",")
        ))
    }

    fn healthy() {
        assert_eq!(
            scalar("SELECT count(*)::text FROM atomic_inventory.reconcile()"),
            "0",
            "reconcile() found drift"
        );
    }

    /// A hold whose record a trigger skips (the reservation's row or a
    /// line's) is refused, with nothing held: one line (the one-statement
    /// hold) or two (the full path), never a success holding units no line
    /// records.
    #[pg_test]
    fn a_skipped_record_of_a_hold_is_refused() {
        item(A, "10");
        item(B, "10");
        for table in [
            "atomic_inventory.reservations",
            "atomic_inventory.reservation_lines",
        ] {
            veto(table, "INSERT");
            for lines in [
                format!(r#"[{{"inventory_id":"{A}","quantity":2}}]"#),
                format!(
                    r#"[{{"inventory_id":"{A}","quantity":2}},{{"inventory_id":"{B}","quantity":1}}]"#
                ),
            ] {
                let sql = format!("SELECT atomic_inventory.reserve_inventory('{lines}')");
                let (state, msg, d) = err(&sql);
                assert_eq!(state, "22023", "{table}: {sql}: {msg}");
                assert!(msg.contains("skipped the record"), "{table}: {msg}");
                assert_eq!(d["code"], "INVALID_INPUT", "{table}: {sql}");
            }
            assert_eq!(reserved(A), "0", "{table}");
            assert_eq!(reserved(B), "0", "{table}");
            Spi::run(&format!("DROP TRIGGER veto ON {table}")).unwrap();
        }
        healthy();
    }

    /// A commit or release whose write of the reservation a trigger skips
    /// is refused with nothing changed, for a one-line reservation (the
    /// one-statement finish) and a two-line one (the full path).
    #[pg_test]
    fn a_skipped_finish_is_refused() {
        item(A, "10");
        item(B, "10");
        let one = reserve(&[(A, "2")], "")["reservation_id"]
            .as_str()
            .unwrap()
            .to_string();
        let two = reserve(&[(A, "1"), (B, "1")], "")["reservation_id"]
            .as_str()
            .unwrap()
            .to_string();
        veto_updates("atomic_inventory.reservations");
        for rid in [&one, &two] {
            for f in ["commit_reservation", "release_reservation"] {
                let sql = format!("SELECT atomic_inventory.{f}('{rid}')");
                let (state, msg, d) = err(&sql);
                assert_eq!(state, "22023", "{sql}: {msg}");
                assert!(msg.contains("skipped"), "{sql}: {msg}");
                assert_eq!(d["code"], "INVALID_INPUT", "{sql}");
            }
        }
        Spi::run("DROP TRIGGER veto ON atomic_inventory.reservations").unwrap();
        assert_eq!(reserved(A), "3");
        assert_eq!(reserved(B), "1");
        assert_eq!(quantity(A), "10");
        healthy();
    }

    /// A one-line cart takes the one-statement hold and finish; the same
    /// cart made to take the full path (a second line of an untracked item,
    /// and a commit naming its line) gives the same answer, rows and ledger.
    #[pg_test]
    fn one_line_carts_answer_as_the_full_path() {
        item(A, "10");
        item(B, "10");
        item(C, "0");
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET track_inventory = false WHERE id = '{C}'"
        ))
        .unwrap();
        let strip = |v: &Value| {
            let mut v = v.clone();
            v.as_object_mut().unwrap().remove("reservation_id");
            v.as_object_mut().unwrap().remove("expires_at");
            v
        };
        for how in ["commit_reservation", "release_reservation"] {
            let fast = reserve(&[(A, "2.50")], ", p_ttl_seconds => 60, p_reference => 'r1'");
            let full = reserve(
                &[(B, "2.50"), (C, "1")],
                ", p_ttl_seconds => 60, p_reference => 'r1'",
            );
            assert_eq!(fast["lines"][0]["quantity"], full["lines"][0]["quantity"]);
            assert_eq!(fast["status"], "active");
            let mut f = strip(&fast);
            let mut g = strip(&full);
            f.as_object_mut().unwrap().remove("lines");
            g.as_object_mut().unwrap().remove("lines");
            assert_eq!(f, g, "{how}: answers of the hold");
            assert_eq!(reserved(A), "2.50");
            assert_eq!(reserved(B), "2.50");
            let tenant = |rid: &Value| {
                scalar(&format!(
                    "SELECT coalesce(tenant_id, '-') || '/' || coalesce(reference, '-')                        FROM atomic_inventory.reservations WHERE id = '{}'",
                    rid["reservation_id"].as_str().unwrap()
                ))
            };
            assert_eq!(tenant(&fast), tenant(&full));
            let done_fast = call(&format!(
                "atomic_inventory.{how}('{}', p_reason => 'why')",
                fast["reservation_id"].as_str().unwrap()
            ));
            let done_full = call(&format!(
                "atomic_inventory.{how}('{}', ARRAY['{B}', '{C}']::uuid[], p_reason => 'why')",
                full["reservation_id"].as_str().unwrap()
            ));
            let key = if how == "commit_reservation" {
                "committed"
            } else {
                "released"
            };
            assert_eq!(done_fast["status"], done_full["status"], "{how}");
            assert_eq!(
                done_fast[key][0]["quantity"], done_full[key][0]["quantity"],
                "{how}"
            );
            assert_eq!(done_fast[key].as_array().unwrap().len(), 1, "{how}");
            assert_eq!(reserved(A), "0.00", "{how}");
            assert_eq!(reserved(B), "0.00", "{how}");
            let led = |id: &str| {
                scalar(&format!(
                    "SELECT coalesce(string_agg(kind || ':' || delta || ':' || coalesce(reason, '-'), ',' ORDER BY id), '') \
                       FROM atomic_inventory.ledger WHERE inventory_id = '{id}' AND kind <> 'initial'"
                ))
            };
            assert_eq!(led(A), led(B), "{how}");
        }
        assert_eq!(quantity(A), "7.50");
        assert_eq!(quantity(A), quantity(B));
        healthy();
    }

    /// The reservation tables' CHECKs (C functions) refuse what the plain
    /// CHECKs they replaced refused: an unknown status, a line of zero,
    /// negative, NaN or infinite units; and let the valid rows through.
    #[pg_test]
    fn reservation_checks_refuse_bad_rows() {
        let rid = scalar(
            "INSERT INTO atomic_inventory.reservations (expires_at) VALUES (now() + interval '1 hour') \
             RETURNING id::text",
        );
        item(A, "10");
        let (s, msg, _) = err(&format!(
            "UPDATE atomic_inventory.reservations SET status = 'lost' WHERE id = '{rid}'"
        ));
        assert_eq!(s, "23514", "{msg}");
        assert!(msg.contains("reservations_valid"), "{msg}");
        for (q, status) in [
            ("0", "active"),
            ("-1", "active"),
            ("'NaN'", "active"),
            ("'Infinity'", "active"),
            ("1", "lost"),
            ("1", "Active"),
        ] {
            let (s, msg, _) = err(&format!(
                "INSERT INTO atomic_inventory.reservation_lines \
                   (reservation_id, inventory_id, quantity, tracked, status) \
                 VALUES ('{rid}', '{A}', {q}, true, '{status}')"
            ));
            assert_eq!(s, "23514", "{q} {status}: {msg}");
            assert!(msg.contains("reservation_lines_valid"), "{msg}");
        }
        for status in ["active", "committed", "released", "expired"] {
            Spi::run(&format!(
                "UPDATE atomic_inventory.reservations SET status = '{status}' WHERE id = '{rid}'"
            ))
            .unwrap();
        }
        Spi::run(&format!(
            "INSERT INTO atomic_inventory.bound_reservation_lines \
               (reservation_id, item_key, quantity, tracked) VALUES ('{rid}', 'k', 0.5, true)"
        ))
        .unwrap();
        let (s, msg, _) = err(&format!(
            "INSERT INTO atomic_inventory.bound_reservation_lines \
               (reservation_id, item_key, quantity, tracked) VALUES ('{rid}', 'k2', 0, true)"
        ));
        assert_eq!(s, "23514", "{msg}");
    }

    #[pg_test]
    fn reserve_holds_available_stock() {
        item(A, "10");
        item(B, "5");
        let r = reserve(&[(A, "3"), (B, "5"), (A, "1")], ", p_reference => 'cart-1'");
        assert_eq!(r["success"], true);
        assert_eq!(r["status"], "active");
        assert!(r["expires_at"].is_string());
        assert_eq!(r["lines"].as_array().unwrap().len(), 2);
        assert_eq!(reserved(A), "4");
        assert_eq!(reserved(B), "5");
        assert_eq!(quantity(A), "10");
        // available is now 6 and 0
        assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{B}', 1)"),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        let (_, d) = assert_err(
            &format!(
                r#"SELECT atomic_inventory.reserve_inventory('[{{"inventory_id":"{A}","quantity":7}}]')"#
            ),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(d["lines"][0]["available"], "6");
        healthy();
    }

    #[pg_test]
    fn reserve_is_all_or_nothing_and_validates() {
        item(A, "10");
        item(B, "1");
        assert_err(
            &format!(
                r#"SELECT atomic_inventory.reserve_inventory('[{{"inventory_id":"{A}","quantity":2}},{{"inventory_id":"{B}","quantity":2}}]')"#
            ),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_eq!(reserved(A), "0");
        assert_err(
            &format!(
                r#"SELECT atomic_inventory.reserve_inventory('[{{"inventory_id":"{MISSING}","quantity":1}}]')"#
            ),
            "PT404",
            "NOT_FOUND",
        );
        assert_err(
            "SELECT atomic_inventory.reserve_inventory('[]')",
            "22023",
            "INVALID_INPUT",
        );
        for ttl in ["0", "-1", "2592001"] {
            assert_err(
                &format!(
                    r#"SELECT atomic_inventory.reserve_inventory('[{{"inventory_id":"{A}","quantity":1}}]', p_ttl_seconds => {ttl})"#
                ),
                "22023",
                "INVALID_INPUT",
            );
        }
        assert_eq!(
            scalar("SELECT count(*)::text FROM atomic_inventory.reservations"),
            "0"
        );
    }

    #[pg_test]
    fn untracked_items_reserve_without_checks() {
        item(A, "0");
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET track_inventory = false WHERE id = '{A}'"
        ))
        .unwrap();
        let r = reserve(&[(A, "50")], "");
        let id = r["reservation_id"].as_str().unwrap();
        assert_eq!(reserved(A), "0");
        call(&format!("atomic_inventory.commit_reservation('{id}')"));
        assert_eq!(quantity(A), "0");
        healthy();
    }

    #[pg_test]
    fn commit_turns_hold_into_sale() {
        item(A, "10");
        let r = reserve(&[(A, "4")], "");
        let id = r["reservation_id"].as_str().unwrap();
        let c = call(&format!(
            "atomic_inventory.commit_reservation(p_reservation_id => '{id}', p_reason => 'order paid')"
        ));
        assert_eq!(c["status"], "committed");
        assert_eq!(c["committed"][0]["quantity"].to_string(), "4");
        assert_eq!(quantity(A), "6");
        assert_eq!(reserved(A), "0");
        assert_eq!(
            scalar(&format!(
                "SELECT kind || ':' || delta || ':' || reference FROM atomic_inventory.ledger WHERE inventory_id = '{A}' ORDER BY id DESC LIMIT 1"
            )),
            format!("commit:-4:{id}")
        );
        // twice: a clear error, nothing applied again
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.commit_reservation('{id}')"),
            "PT409",
            "RESERVATION_NOT_ACTIVE",
        );
        assert_eq!(d["status"], "committed");
        assert_err(
            &format!("SELECT atomic_inventory.release_reservation('{id}')"),
            "PT409",
            "RESERVATION_NOT_ACTIVE",
        );
        assert_eq!(quantity(A), "6");
        healthy();
    }

    #[pg_test]
    fn release_returns_exactly_what_was_held_once() {
        item(A, "10");
        let r1 = reserve(&[(A, "3")], "");
        let r2 = reserve(&[(A, "2")], "");
        let id1 = r1["reservation_id"].as_str().unwrap();
        let rel = call(&format!("atomic_inventory.release_reservation('{id1}')"));
        assert_eq!(rel["status"], "released");
        assert_eq!(reserved(A), "2");
        assert_err(
            &format!("SELECT atomic_inventory.release_reservation('{id1}')"),
            "PT409",
            "RESERVATION_NOT_ACTIVE",
        );
        assert_eq!(reserved(A), "2");
        let id2 = r2["reservation_id"].as_str().unwrap();
        call(&format!("atomic_inventory.release_reservation('{id2}')"));
        assert_eq!(reserved(A), "0");
        assert_eq!(quantity(A), "10");
        healthy();
    }

    #[pg_test]
    fn partial_commit_and_release_of_lines() {
        item(A, "10");
        item(B, "10");
        let r = reserve(&[(A, "2"), (B, "3")], "");
        let id = r["reservation_id"].as_str().unwrap();
        let c = call(&format!(
            "atomic_inventory.commit_reservation('{id}', p_inventory_ids => ARRAY['{A}']::uuid[])"
        ));
        assert_eq!(c["status"], "active", "one line still held");
        assert_eq!(quantity(A), "8");
        assert_eq!(reserved(B), "3");
        // naming a line that is no longer active (e.g. a concurrent request
        // committed it first): a conflict naming it, nothing changed
        let (_, d) = assert_err(
            &format!(
                "SELECT atomic_inventory.release_reservation('{id}', p_inventory_ids => ARRAY['{A}']::uuid[])"
            ),
            "PT409",
            "LINE_NOT_ACTIVE",
        );
        assert_eq!(d["reservation_id"], id);
        assert_eq!(
            d["lines"],
            serde_json::json!([{"inventory_id": A, "status": "committed"}])
        );
        assert_eq!(reserved(B), "3");
        // an id that never was a line, with it: bad input
        let (_, d) = assert_err(
            &format!(
                "SELECT atomic_inventory.release_reservation('{id}', p_inventory_ids => ARRAY['{A}', '{B}', gen_random_uuid()])"
            ),
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_inventory_ids");
        assert_err(
            &format!(
                "SELECT atomic_inventory.release_reservation('{id}', p_inventory_ids => ARRAY[]::uuid[])"
            ),
            "22023",
            "INVALID_INPUT",
        );
        let rel = call(&format!(
            "atomic_inventory.release_reservation('{id}', p_inventory_ids => ARRAY['{B}']::uuid[])"
        ));
        // one line committed, the other released: the reservation counts as committed
        assert_eq!(rel["status"], "committed");
        assert_eq!(reserved(B), "0");
        assert_eq!(quantity(B), "10");
        let g = call(&format!("atomic_inventory.get_reservation('{id}')"));
        assert_eq!(g["lines"][0]["status"], "committed");
        assert_eq!(g["lines"][1]["status"], "released");
        healthy();
    }

    #[pg_test]
    fn expired_reservation_cannot_commit_and_the_sweep_releases_it() {
        item(A, "10");
        let r = reserve(&[(A, "4")], ", p_ttl_seconds => 60");
        let id = r["reservation_id"].as_str().unwrap();
        Spi::run(&format!(
            "UPDATE atomic_inventory.reservations SET expires_at = now() - interval '1 minute' WHERE id = '{id}'"
        ))
        .unwrap();
        assert_err(
            &format!("SELECT atomic_inventory.commit_reservation('{id}')"),
            "PT410",
            "RESERVATION_EXPIRED",
        );
        assert_err(
            &format!("SELECT atomic_inventory.extend_reservation('{id}')"),
            "PT410",
            "RESERVATION_EXPIRED",
        );
        let swept = call("atomic_inventory.expire_reservations()");
        assert_eq!(swept["expired"], 1);
        assert_eq!(reserved(A), "0");
        assert_eq!(quantity(A), "10");
        let again = call("atomic_inventory.expire_reservations()");
        assert_eq!(again["expired"], 0);
        assert_err(
            &format!("SELECT atomic_inventory.commit_reservation('{id}')"),
            "PT409",
            "RESERVATION_NOT_ACTIVE",
        );
        healthy();
    }

    #[pg_test]
    fn the_sweep_limits_its_lock_waits() {
        // The limit in effect (a shorter session lock_timeout wins; 0 = none
        // of ours). The waits themselves are checked across sessions in
        // pg_test/worker_check.sh.
        use crate::settings::sweep_lock_timeout;
        assert_eq!(scalar("SHOW atomic_inventory.sweep_lock_timeout"), "1s");
        Spi::run("SET lock_timeout = 0").unwrap();
        assert_eq!(sweep_lock_timeout(), Some(1000));
        Spi::run("SET lock_timeout = '200ms'").unwrap();
        assert_eq!(sweep_lock_timeout(), None);
        Spi::run("SET lock_timeout = '5s'").unwrap();
        assert_eq!(sweep_lock_timeout(), Some(1000));
        // the caller's setting is back after the call
        item(A, "10");
        call("atomic_inventory.expire_reservations()");
        assert_eq!(scalar("SHOW lock_timeout"), "5s");
        Spi::run("SET lock_timeout = 0").unwrap();
        call("atomic_inventory.expire_reservations()");
        assert_eq!(scalar("SHOW lock_timeout"), "0");
        Spi::run("SET atomic_inventory.sweep_lock_timeout = 0").unwrap();
        assert_eq!(sweep_lock_timeout(), None);
        Spi::run("RESET atomic_inventory.sweep_lock_timeout").unwrap();
    }

    #[pg_test]
    fn the_workers_sweep_takes_only_or_all_but_the_busy_holds() {
        use crate::ops::reservations::sweep;
        use crate::source::holds::{due_ids, Sweep};
        item(A, "10");
        item(B, "10");
        let ids: Vec<pgrx::Uuid> = [A, B, A]
            .iter()
            .map(|i| {
                let r = reserve(&[(i, "1")], "");
                let id = r["reservation_id"].as_str().unwrap();
                Spi::get_one::<pgrx::Uuid>(&format!("SELECT '{id}'::uuid"))
                    .unwrap()
                    .unwrap()
            })
            .collect();
        Spi::run(
            "UPDATE atomic_inventory.reservations SET expires_at = now() - interval '1 minute'",
        )
        .unwrap();
        let status = |u: &pgrx::Uuid| {
            scalar(&format!(
                "SELECT status FROM atomic_inventory.reservations WHERE id = '{u}'"
            ))
        };
        Spi::connect_mut(|c| {
            let mut due = due_ids(c, 10, &[ids[2]]).unwrap();
            due.sort();
            let mut want = vec![ids[0], ids[1]];
            want.sort();
            assert_eq!(due, want, "due_ids leaves out the busy ones");
            let only = Sweep {
                except: Vec::new(),
                only: Some(ids[1]),
            };
            assert_eq!(sweep(c, 10, &only).unwrap(), 1);
            let others = Sweep {
                except: vec![ids[2]],
                only: None,
            };
            assert_eq!(sweep(c, 10, &others).unwrap(), 1);
        });
        assert_eq!(status(&ids[0]), "expired");
        assert_eq!(status(&ids[1]), "expired");
        assert_eq!(status(&ids[2]), "active");
        assert_eq!(reserved(A), "1");
        assert_eq!(reserved(B), "0");
        assert_eq!(call("atomic_inventory.expire_reservations()")["expired"], 1);
        healthy();
    }

    #[pg_test]
    fn release_of_an_expired_but_unswept_reservation_is_allowed() {
        item(A, "10");
        let r = reserve(&[(A, "4")], "");
        let id = r["reservation_id"].as_str().unwrap();
        Spi::run(&format!(
            "UPDATE atomic_inventory.reservations SET expires_at = now() - interval '1 minute' WHERE id = '{id}'"
        ))
        .unwrap();
        let rel = call(&format!("atomic_inventory.release_reservation('{id}')"));
        assert_eq!(rel["status"], "released");
        assert_eq!(call("atomic_inventory.expire_reservations()")["expired"], 0);
        assert_eq!(reserved(A), "0");
        healthy();
    }

    #[pg_test]
    fn extend_moves_expiry() {
        item(A, "10");
        let r = reserve(&[(A, "1")], ", p_ttl_seconds => 10");
        let id = r["reservation_id"].as_str().unwrap();
        call(&format!(
            "atomic_inventory.extend_reservation('{id}', p_ttl_seconds => 3600)"
        ));
        assert_eq!(
            scalar(&format!(
                "SELECT (expires_at > now() + interval '59 minutes')::text FROM atomic_inventory.reservations WHERE id = '{id}'"
            )),
            "true"
        );
    }

    #[pg_test]
    fn reservation_errors() {
        for f in [
            "commit_reservation",
            "release_reservation",
            "extend_reservation",
            "get_reservation",
        ] {
            assert_err(
                &format!("SELECT atomic_inventory.{f}('{MISSING}')"),
                "PT404",
                "NOT_FOUND",
            );
        }
        assert_err(
            "SELECT atomic_inventory.commit_reservation(NULL)",
            "22023",
            "INVALID_INPUT",
        );
        assert_err(
            "SELECT atomic_inventory.expire_reservations(0)",
            "22023",
            "INVALID_INPUT",
        );
    }

    #[pg_test]
    fn idempotent_reserve_and_commit() {
        item(A, "10");
        let first = reserve(&[(A, "2")], ", p_idempotency_key => 'cart-7'");
        let again = reserve(&[(A, "2")], ", p_idempotency_key => 'cart-7'");
        assert_eq!(first, again);
        assert_eq!(reserved(A), "2");
        let id = first["reservation_id"].as_str().unwrap();
        let c1 = call(&format!(
            "atomic_inventory.commit_reservation('{id}', p_idempotency_key => 'pay-7')"
        ));
        let c2 = call(&format!(
            "atomic_inventory.commit_reservation('{id}', p_idempotency_key => 'pay-7')"
        ));
        assert_eq!(c1, c2);
        assert_eq!(quantity(A), "8");
        healthy();
    }

    /// A reservation belongs to the tenant of its items when an admin (here:
    /// the superuser, no tenant set) makes it, as a service-role backend
    /// would: it was stored with the admin's tenant, NULL, which made it
    /// shared, so another tenant could read, commit or release it.
    #[pg_test]
    fn reservations_are_tenant_scoped() {
        item(A, "10");
        item(B, "10");
        item(C, "10");
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET tenant_id = 'shop-1' WHERE id IN ('{A}', '{C}');
             UPDATE atomic_inventory.items SET tenant_id = 'shop-2' WHERE id = '{B}'"
        ))
        .unwrap();
        // an admin's hold on shop-1's items (and shared ones) is shop-1's
        let r = reserve(&[(A, "1")], "");
        let id = r["reservation_id"].as_str().unwrap().to_string();
        assert_eq!(
            scalar(&format!(
                "SELECT tenant_id FROM atomic_inventory.reservations WHERE id = '{id}'"
            )),
            "shop-1"
        );
        // items of two tenants can't share one reservation
        let (_, d) = assert_err(
            &format!(
                r#"SELECT atomic_inventory.reserve_inventory('[{{"inventory_id":"{A}","quantity":1}},{{"inventory_id":"{B}","quantity":1}}]')"#
            ),
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_lines");
        assert_eq!(reserved(B), "0");
        // an admin acting with a tenant set still files it under the items'
        Spi::run("SET atomic_inventory.tenant_id = 'ops'").unwrap();
        let other = reserve(&[(C, "1")], "")["reservation_id"]
            .as_str()
            .unwrap()
            .to_string();
        Spi::run("RESET atomic_inventory.tenant_id").unwrap();
        assert_eq!(
            scalar(&format!(
                "SELECT tenant_id FROM atomic_inventory.reservations WHERE id = '{other}'"
            )),
            "shop-1"
        );
        as_app_user();
        Spi::run("SET atomic_inventory.tenant_id = 'shop-2'").unwrap();
        assert_err(
            &format!("SELECT atomic_inventory.get_reservation('{id}')"),
            "PT404",
            "NOT_FOUND",
        );
        assert_err(
            &format!("SELECT atomic_inventory.commit_reservation('{id}')"),
            "PT404",
            "NOT_FOUND",
        );
        Spi::run("SET atomic_inventory.tenant_id = 'shop-1'").unwrap();
        call(&format!("atomic_inventory.release_reservation('{id}')"));
        call(&format!("atomic_inventory.release_reservation('{other}')"));
        Spi::run("RESET atomic_inventory.tenant_id").unwrap();
        Spi::run("RESET ROLE").unwrap();
        assert_eq!(reserved(A), "0");
        assert_eq!(reserved(C), "0");
        healthy();
    }

    #[pg_test]
    fn adjust_cannot_go_below_reserved_and_reconcile_sees_reserved_drift() {
        item(A, "10");
        reserve(&[(A, "6")], "");
        assert_err(
            &format!("SELECT atomic_inventory.adjust_inventory('{A}', 5, 10)"),
            "PT409",
            "BELOW_RESERVED",
        );
        Spi::run(&format!(
            "UPDATE atomic_inventory.items SET reserved = 1 WHERE id = '{A}'"
        ))
        .unwrap();
        assert_eq!(
            scalar("SELECT reserved_drift::text FROM atomic_inventory.reconcile()"),
            "-5"
        );
    }

    /// Under the reservation functions' own settings (sql/functions.sql,
    /// "Reservations") reserve's and commit's statements get one generic
    /// plan (not planned again on every call) that finds rows by key, even
    /// when the statistics say the tables are tiny, as just after ANALYZE of
    /// a fresh install (the planner would scan them, and keep that plan
    /// while they grow).
    #[pg_test]
    fn reservation_plans_use_keys() {
        // stats of small tables, as a fresh install has (ANALYZE waits for
        // no row lock; other tests' rows may be in them)
        Spi::run(
            "ANALYZE atomic_inventory.items, atomic_inventory.reservations, \
                     atomic_inventory.reservation_lines",
        )
        .unwrap();
        let config = |f: &str| {
            scalar(&format!(
                "SELECT pg_catalog.array_to_string(p.proconfig, ' ') FROM pg_catalog.pg_proc AS p \
                  WHERE p.oid = 'atomic_inventory.{f}'::regproc"
            ))
        };
        let settings = config("reserve_inventory");
        for f in [
            "commit_reservation",
            "release_reservation",
            "bound_reserve",
            "bound_commit_reservation",
            "bound_release_reservation",
        ] {
            assert_eq!(config(f), settings, "{f} has other settings");
        }
        // the multi-line sales run with the same two settings
        for f in ["decrement_inventory_many", "bound_decrement_many"] {
            assert_eq!(config(f), settings, "{f} has other settings");
        }
        // the functions' SET clauses, as a call runs with them
        settings_of("atomic_inventory.reserve_inventory(jsonb, integer, text, text, integer)");
        for stmt in [
            &crate::source::own::stock::LOCK_MANY,
            &crate::source::own::stock::LOCK_MANY_PLAIN,
            &crate::source::own::holds::RESERVE_APPLY,
            &crate::source::holds::LOCK_RESERVATION,
            &crate::source::own::holds::LOCK_LINES,
            &crate::source::own::holds::FINISH,
            &crate::source::own::holds::COMMIT_PARTS,
            &crate::source::own::holds::HOLD_PLAIN_ONE,
            &crate::source::own::holds::FINISH_PLAIN_ONE,
        ] {
            let (plan, generic) = plan_of(stmt);
            let text = plan.join("\n");
            assert!(generic, "{}: not a generic plan:\n{text}", stmt.name);
            assert!(
                !text.contains("Seq Scan"),
                "{}: scans a table:\n{text}",
                stmt.name
            );
        }
    }
}
