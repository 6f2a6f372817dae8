//! `#[pg_test]`s for delivery batches. The races themselves (many drivers at
//! once) are in pg_test/isolation and pg_test/stress.py.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;

    const BATCH: &str = "00000000-0000-0000-0000-0000000000b1";
    const BATCH2: &str = "00000000-0000-0000-0000-0000000000b2";
    const BATCH3: &str = "00000000-0000-0000-0000-0000000000b3";
    const BATCH4: &str = "00000000-0000-0000-0000-0000000000b4";

    fn batch(id: &str) {
        call(&format!(
            "atomic_inventory.create_batch(p_id => '{id}', p_zone => 'north')"
        ));
    }

    fn status(id: &str) -> String {
        scalar(&format!(
            "SELECT status || ':' || coalesce(claimed_by, '-') FROM atomic_inventory.batches WHERE id = '{id}'"
        ))
    }

    /// create_batch with a p_id that exists: the same call again (a client
    /// retrying a create whose answer it lost) gets the batch back; other
    /// attributes are BATCH_EXISTS (PT409), not a raw unique violation.
    #[pg_test]
    fn create_batch_again_with_the_same_id() {
        const B: &str = "00000000-0000-0000-0000-0000000000b5";
        let create = format!(
            "atomic_inventory.create_batch(p_id => '{B}', p_zone => 'north', p_priority => 2)"
        );
        assert_eq!(call(&create)["status"], "available");
        assert_eq!(call(&create)["batch_id"], B);
        call(&format!(
            "atomic_inventory.claim_batch(p_batch_id => '{B}', p_driver_id => 'driver-r')"
        ));
        assert_eq!(call(&create)["status"], "claimed");
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.create_batch(p_id => '{B}', p_zone => 'south', p_priority => 2)"),
            "PT409",
            "BATCH_EXISTS",
        );
        assert_eq!(d["batch_id"], B);
        let (_, d) = assert_err(
            "SELECT atomic_inventory.create_batch(p_zone => repeat('z', 1025))",
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_zone");
        assert_eq!(
            scalar(&format!(
                "SELECT count(*)::text FROM atomic_inventory.batches WHERE id = '{B}'"
            )),
            "1"
        );
    }

    #[pg_test]
    fn claim_then_other_driver_gets_409() {
        batch(BATCH);
        let r = call(&format!(
            "atomic_inventory.claim_batch(p_batch_id => '{BATCH}', p_driver_id => 'driver-a')"
        ));
        assert_eq!(r["success"], true);
        assert_eq!(r["status"], "claimed");
        assert_eq!(r["claimed_by"], "driver-a");
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.claim_batch('{BATCH}', 'driver-b')"),
            "PT409",
            "BATCH_UNAVAILABLE",
        );
        assert_eq!(d["status"], "claimed");
        assert_eq!(status(BATCH), "claimed:driver-a");
    }

    #[pg_test]
    fn reclaiming_your_own_batch_is_idempotent() {
        batch(BATCH);
        let first = call(&format!(
            "atomic_inventory.claim_batch('{BATCH}', 'driver-a')"
        ));
        let again = call(&format!(
            "atomic_inventory.claim_batch('{BATCH}', 'driver-a')"
        ));
        assert_eq!(first["claimed_at"], again["claimed_at"]);
        assert_eq!(status(BATCH), "claimed:driver-a");
    }

    #[pg_test]
    fn claim_errors() {
        assert_err(
            &format!("SELECT atomic_inventory.claim_batch('{MISSING}', 'd')"),
            "PT404",
            "NOT_FOUND",
        );
        batch(BATCH);
        for (args, field) in [
            ("NULL, 'd'", "p_batch_id"),
            (&format!("'{BATCH}', NULL") as &str, "p_driver_id"),
            (&format!("'{BATCH}', ''"), "p_driver_id"),
            (
                &format!("'{BATCH}', 'd', p_lease_seconds => 0"),
                "p_lease_seconds",
            ),
            (
                &format!("'{BATCH}', 'd', p_max_active => 0"),
                "p_max_active",
            ),
            (
                &format!("'{BATCH}', 'd', p_lock_timeout_ms => 0"),
                "p_lock_timeout_ms",
            ),
        ] {
            let (_, d) = assert_err(
                &format!("SELECT atomic_inventory.claim_batch({args})"),
                "22023",
                "INVALID_INPUT",
            );
            assert_eq!(d["field"], field, "{args}");
        }
        call(&format!("atomic_inventory.claim_batch('{BATCH}', 'a')"));
        call(&format!("atomic_inventory.complete_batch('{BATCH}', 'a')"));
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.claim_batch('{BATCH}', 'b')"),
            "PT409",
            "BATCH_UNAVAILABLE",
        );
        assert_eq!(d["status"], "completed");
    }

    #[pg_test]
    fn lapsed_lease_makes_batch_claimable_again() {
        batch(BATCH);
        call(&format!(
            "atomic_inventory.claim_batch('{BATCH}', 'driver-a', p_lease_seconds => 60)"
        ));
        assert_err(
            &format!("SELECT atomic_inventory.claim_batch('{BATCH}', 'driver-b')"),
            "PT409",
            "BATCH_UNAVAILABLE",
        );
        Spi::run(&format!(
            "UPDATE atomic_inventory.batches SET lease_expires_at = now() - interval '1 second' WHERE id = '{BATCH}'"
        ))
        .unwrap();
        call(&format!(
            "atomic_inventory.claim_batch('{BATCH}', 'driver-b')"
        ));
        assert_eq!(status(BATCH), "claimed:driver-b");
        // the old holder lost it (checked as a non-admin role)
        as_app_user();
        assert_err(
            &format!("SELECT atomic_inventory.complete_batch('{BATCH}', 'driver-a')"),
            "PT403",
            "BATCH_NOT_HELD",
        );
        Spi::run("RESET ROLE").unwrap();
    }

    /// claim_next_batch finds lapsed claims through their own index and
    /// weighs them against available batches by priority: a lapsed claim
    /// of higher priority goes first, one of lower priority after the
    /// available batches above it.
    #[pg_test]
    fn claim_next_weighs_lapsed_claims_by_priority() {
        for (id, priority) in [(BATCH, 5), (BATCH2, 1), (BATCH3, 0), (BATCH4, 2)] {
            call(&format!(
                "atomic_inventory.create_batch(p_id => '{id}', p_zone => 'lapse', p_priority => {priority})"
            ));
        }
        for id in [BATCH, BATCH3] {
            call(&format!(
                "atomic_inventory.claim_batch('{id}', 'driver-a', p_lease_seconds => 60)"
            ));
        }
        Spi::run(&format!(
            "UPDATE atomic_inventory.batches SET lease_expires_at = now() - interval '1 second' \
              WHERE id IN ('{BATCH}', '{BATCH3}')"
        ))
        .unwrap();
        let next = || {
            scalar(
                "SELECT coalesce(atomic_inventory.claim_next_batch(p_driver_id => 'driver-b', p_zone => 'lapse')->>'batch_id', 'none')",
            )
        };
        // 5 (lapsed), 2, 1 (available), 0 (lapsed), then nothing
        assert_eq!(
            [next(), next(), next(), next(), next()],
            [BATCH, BATCH4, BATCH2, BATCH3, "none"]
        );
        assert_eq!(status(BATCH), "claimed:driver-b");
        assert_eq!(status(BATCH3), "claimed:driver-b");
    }

    #[pg_test]
    fn driver_limit_is_enforced() {
        batch(BATCH);
        batch(BATCH2);
        call(&format!(
            "atomic_inventory.claim_batch('{BATCH}', 'driver-a', p_max_active => 1)"
        ));
        let (_, d) = assert_err(
            &format!(
                "SELECT atomic_inventory.claim_batch('{BATCH2}', 'driver-a', p_max_active => 1)"
            ),
            "PT409",
            "DRIVER_LIMIT_REACHED",
        );
        assert_eq!(d["limit"], 1);
        assert_err(
            "SELECT atomic_inventory.claim_next_batch('driver-a', p_max_active => 1)",
            "PT409",
            "DRIVER_LIMIT_REACHED",
        );
        // re-claiming the one you hold is not over the limit
        call(&format!(
            "atomic_inventory.claim_batch('{BATCH}', 'driver-a', p_max_active => 1)"
        ));
        call(&format!(
            "atomic_inventory.complete_batch('{BATCH}', 'driver-a')"
        ));
        call(&format!(
            "atomic_inventory.claim_batch('{BATCH2}', 'driver-a', p_max_active => 1)"
        ));
    }

    /// A claim whose lease lapsed is no longer held by its driver: the
    /// limit stops counting it, so starting it as it was let a driver hold
    /// more than p_max_active (claimed B1 with a lease, it lapsed, claimed
    /// B2 with a limit of 1, then started B1: 2 active). Starting or
    /// completing it now needs a new claim; giving it back stays possible.
    #[pg_test]
    fn a_lapsed_claim_must_be_claimed_again_before_start() {
        batch(BATCH);
        batch(BATCH2);
        call(&format!(
            "atomic_inventory.claim_batch('{BATCH}', 'driver-a', p_lease_seconds => 60, p_max_active => 1)"
        ));
        Spi::run(&format!(
            "UPDATE atomic_inventory.batches SET lease_expires_at = now() - interval '1 second' WHERE id = '{BATCH}'"
        ))
        .unwrap();
        call(&format!(
            "atomic_inventory.claim_batch('{BATCH2}', 'driver-a', p_max_active => 1)"
        ));
        for f in ["start_batch", "complete_batch"] {
            let (msg, d) = assert_err(
                &format!("SELECT atomic_inventory.{f}('{BATCH}', 'driver-a')"),
                "PT403",
                "BATCH_NOT_HELD",
            );
            assert!(msg.contains("lease lapsed"), "{msg}");
            assert_eq!(d["status"], "claimed");
            assert!(d["lease_expires_at"].is_string(), "{d}");
        }
        assert_eq!(status(BATCH), "claimed:driver-a");
        // claiming it again checks the limit: B2 is held, so refused
        assert_err(
            &format!(
                "SELECT atomic_inventory.claim_batch('{BATCH}', 'driver-a', p_max_active => 1)"
            ),
            "PT409",
            "DRIVER_LIMIT_REACHED",
        );
        // giving a lapsed claim back is allowed
        call(&format!(
            "atomic_inventory.unclaim_batch('{BATCH}', 'driver-a')"
        ));
        assert_eq!(status(BATCH), "available:-");
        // a claim without lease never lapses: start works as before
        let r = call(&format!(
            "atomic_inventory.start_batch('{BATCH2}', 'driver-a')"
        ));
        assert_eq!(r["status"], "in_progress");
    }

    /// p_max_active counts the driver's batches the caller may see: another
    /// tenant's batches held under the same driver id neither count nor
    /// show through a refusal.
    #[pg_test]
    fn driver_limit_counts_only_the_callers_tenant() {
        batch(BATCH);
        batch(BATCH2);
        Spi::run(&format!(
            "UPDATE atomic_inventory.batches SET tenant_id = 'fleet-1' WHERE id = '{BATCH}';
             UPDATE atomic_inventory.batches SET tenant_id = 'fleet-2' WHERE id = '{BATCH2}'"
        ))
        .unwrap();
        call(&format!("atomic_inventory.claim_batch('{BATCH}', 'd')"));
        as_app_user();
        Spi::run("SET atomic_inventory.tenant_id = 'fleet-2'").unwrap();
        let r = call(&format!(
            "atomic_inventory.claim_batch('{BATCH2}', 'd', p_max_active => 1)"
        ));
        assert_eq!(r["status"], "claimed");
        Spi::run("RESET atomic_inventory.tenant_id").unwrap();
        Spi::run("RESET ROLE").unwrap();
        // an admin sees both: over the limit
        call(&format!("atomic_inventory.unclaim_batch('{BATCH2}', 'd')"));
        assert_err(
            &format!("SELECT atomic_inventory.claim_batch('{BATCH2}', 'd', p_max_active => 1)"),
            "PT409",
            "DRIVER_LIMIT_REACHED",
        );
    }

    #[pg_test]
    fn claim_next_hands_out_by_priority_then_returns_null() {
        batch(BATCH);
        call(&format!(
            "atomic_inventory.create_batch(p_id => '{BATCH2}', p_zone => 'south', p_priority => 5)"
        ));
        let first = call("atomic_inventory.claim_next_batch('d1')");
        assert_eq!(first["batch_id"], BATCH2);
        let second =
            call("atomic_inventory.claim_next_batch(p_driver_id => 'd2', p_zone => 'north')");
        assert_eq!(second["batch_id"], BATCH);
        let none =
            Spi::get_one::<String>("SELECT atomic_inventory.claim_next_batch('d3')::text").unwrap();
        assert_eq!(none, None);
    }

    #[pg_test]
    fn claim_next_respects_zone_filter() {
        batch(BATCH);
        let none = Spi::get_one::<String>(
            "SELECT atomic_inventory.claim_next_batch('d1', p_zone => 'east')::text",
        )
        .unwrap();
        assert_eq!(none, None);
        assert_eq!(status(BATCH), "available:-");
    }

    #[pg_test]
    fn lifecycle_and_ownership() {
        batch(BATCH);
        as_app_user(); // not an admin: ownership applies
        call(&format!("atomic_inventory.claim_batch('{BATCH}', 'a')"));
        for f in ["start_batch", "complete_batch", "unclaim_batch"] {
            assert_err(
                &format!("SELECT atomic_inventory.{f}('{BATCH}', 'intruder')"),
                "PT403",
                "BATCH_NOT_HELD",
            );
        }
        let r = call(&format!("atomic_inventory.start_batch('{BATCH}', 'a')"));
        assert_eq!(r["status"], "in_progress");
        call(&format!("atomic_inventory.start_batch('{BATCH}', 'a')"));
        let r = call(&format!("atomic_inventory.complete_batch('{BATCH}', 'a')"));
        assert_eq!(r["status"], "completed");
        // repeating complete is a success, unclaiming a completed batch is not
        call(&format!("atomic_inventory.complete_batch('{BATCH}', 'a')"));
        assert_err(
            &format!("SELECT atomic_inventory.unclaim_batch('{BATCH}', 'a')"),
            "PT403",
            "BATCH_NOT_HELD",
        );
        assert_err(
            &format!("SELECT atomic_inventory.complete_batch('{MISSING}', 'a')"),
            "PT404",
            "NOT_FOUND",
        );
        Spi::run("RESET ROLE").unwrap();
        assert_eq!(status(BATCH), "completed:a");
    }

    #[pg_test]
    fn unclaim_returns_batch_to_the_pool() {
        batch(BATCH);
        call(&format!("atomic_inventory.claim_batch('{BATCH}', 'a')"));
        let r = call(&format!("atomic_inventory.unclaim_batch('{BATCH}', 'a')"));
        assert_eq!(r["status"], "available");
        assert_eq!(status(BATCH), "available:-");
        call(&format!("atomic_inventory.claim_batch('{BATCH}', 'b')"));
        assert_eq!(status(BATCH), "claimed:b");
    }

    #[pg_test]
    fn jwt_sub_is_the_driver_and_cannot_be_spoofed() {
        batch(BATCH);
        as_app_user();
        Spi::run(r#"SET request.jwt.claims = '{"sub":"driver-7"}'"#).unwrap();
        let r = call(&format!(
            "atomic_inventory.claim_batch(p_batch_id => '{BATCH}')"
        ));
        assert_eq!(r["claimed_by"], "driver-7");
        let (_, d) = assert_err(
            &format!("SELECT atomic_inventory.complete_batch('{BATCH}', 'driver-8')"),
            "22023",
            "INVALID_INPUT",
        );
        assert_eq!(d["field"], "p_driver_id");
        call(&format!("atomic_inventory.complete_batch('{BATCH}')"));
        Spi::run("RESET request.jwt.claims").unwrap();
        Spi::run("RESET ROLE").unwrap();
        assert_eq!(status(BATCH), "completed:driver-7");
    }

    /// A token without `sub` (an anon key's) names no driver: it could
    /// unclaim, start or complete anyone's batch.
    #[pg_test]
    fn a_jwt_without_sub_names_no_driver() {
        batch(BATCH);
        call(&format!(
            "atomic_inventory.claim_batch('{BATCH}', 'driver-7')"
        ));
        as_app_user();
        Spi::run(r#"SET request.jwt.claims = '{"role":"anon"}'"#).unwrap();
        for call in [
            format!("atomic_inventory.unclaim_batch('{BATCH}', 'driver-7')"),
            format!("atomic_inventory.claim_batch('{BATCH}', 'driver-8')"),
            format!("atomic_inventory.claim_batch('{BATCH}')"),
        ] {
            let (_, d) = assert_err(&format!("SELECT {call}"), "22023", "INVALID_INPUT");
            assert_eq!(d["field"], "p_driver_id", "{call}");
        }
        Spi::run("RESET request.jwt.claims").unwrap();
        Spi::run("RESET ROLE").unwrap();
        assert_eq!(status(BATCH), "claimed:driver-7");
    }

    /// An admin's start or complete is retry-safe as the holder's is: the
    /// second call answers the batch, not BATCH_NOT_HELD.
    #[pg_test]
    fn an_admins_retry_of_start_and_complete_succeeds() {
        batch(BATCH);
        call(&format!("atomic_inventory.claim_batch('{BATCH}', 'd1')"));
        for (f, to) in [
            ("start_batch", "in_progress"),
            ("complete_batch", "completed"),
        ] {
            for _ in 0..2 {
                let r = call(&format!("atomic_inventory.{f}('{BATCH}', 'ops-admin')"));
                assert_eq!(r["status"], to, "{f}: {r}");
            }
        }
        assert_eq!(status(BATCH), "completed:d1");
    }

    #[pg_test]
    fn admin_may_unclaim_any_batch_and_tenants_are_isolated() {
        batch(BATCH);
        call(&format!("atomic_inventory.claim_batch('{BATCH}', 'a')"));
        // we run as superuser = admin
        call(&format!(
            "atomic_inventory.unclaim_batch('{BATCH}', 'ops-admin')"
        ));
        assert_eq!(status(BATCH), "available:-");
        Spi::run(&format!(
            "UPDATE atomic_inventory.batches SET tenant_id = 'fleet-1' WHERE id = '{BATCH}'"
        ))
        .unwrap();
        as_app_user();
        Spi::run("SET atomic_inventory.tenant_id = 'fleet-2'").unwrap();
        assert_err(
            &format!("SELECT atomic_inventory.claim_batch('{BATCH}', 'd')"),
            "PT404",
            "NOT_FOUND",
        );
        let none =
            Spi::get_one::<String>("SELECT atomic_inventory.claim_next_batch('d')::text").unwrap();
        assert_eq!(none, None);
        Spi::run("RESET atomic_inventory.tenant_id").unwrap();
        Spi::run("RESET ROLE").unwrap();
        assert_eq!(status(BATCH), "available:-");
    }
}
