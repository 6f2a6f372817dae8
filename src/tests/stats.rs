//! `#[pg_test]`s for the stats view in its backend-local form (pgrx's test
//! cluster does not preload the library). The cluster-wide form, with many
//! connections and PostgreSQL's own errors, is tested by pg_test/stats_check.py.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;

    fn row(function: &str) -> serde_json::Value {
        call(&format!(
            "(SELECT row_to_json(s) FROM atomic_inventory.stats s WHERE function = '{function}')"
        ))
    }

    #[pg_test]
    fn counts_successes_and_each_error_code() {
        call("atomic_inventory.stats_reset()");
        item(A, "5");
        call(&format!("atomic_inventory.decrement_inventory('{A}', 2)"));
        call(&format!("atomic_inventory.decrement_inventory('{A}', 3)"));
        assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{A}', 1)"),
            "PT409",
            "INSUFFICIENT_INVENTORY",
        );
        assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{A}', -1)"),
            "22023",
            "INVALID_QUANTITY",
        );
        assert_err(
            &format!("SELECT atomic_inventory.decrement_inventory('{MISSING}', 1)"),
            "PT404",
            "NOT_FOUND",
        );
        let r = row("decrement_inventory");
        assert_eq!(r["calls"], 5);
        assert_eq!(r["ok"], 2);
        assert_eq!(
            r["errors"],
            serde_json::json!({"INSUFFICIENT_INVENTORY": 1, "INVALID_QUANTITY": 1, "NOT_FOUND": 1})
        );
        assert_eq!(r["scope"], "backend");
        assert!(r["p50_ms"].as_f64().unwrap() <= r["p99_ms"].as_f64().unwrap());
        // untouched functions are listed with zero calls
        assert_eq!(row("claim_batch")["calls"], 0);
        assert_eq!(row("claim_batch")["p50_ms"], serde_json::Value::Null);
    }

    #[pg_test]
    fn reset_zeroes_and_every_function_has_a_row() {
        item(A, "5");
        call(&format!("atomic_inventory.increment_inventory('{A}', 1)"));
        assert!(row("increment_inventory")["calls"].as_i64().unwrap() >= 1);
        call("atomic_inventory.stats_reset()");
        assert_eq!(row("increment_inventory")["calls"], 0);
        assert_eq!(
            scalar("SELECT count(*)::text FROM atomic_inventory.stats"),
            crate::stats::FUNCTIONS.len().to_string()
        );
    }
}
