//! `stats_snapshot()` and `stats_reset()`: the counters of stats.rs.

use crate::error::Result;
use crate::pg::fmgr::{entry_points, Args};
use crate::stats;
use serde_json::json;

/// `stats_snapshot()`: one JSON object per counted function, read by the
/// `stats` view.
fn snapshot(_args: &Args) -> Result<String> {
    Ok(stats::snapshot())
}

/// `stats_reset()`: zero every counter (of the cluster, or of this backend
/// when not preloaded).
fn reset(_args: &Args) -> Result<String> {
    Ok(json!({"reset": true, "scope": stats::reset()}).to_string())
}

entry_points! {
    ai_stats_snapshot / pg_finfo_ai_stats_snapshot () => snapshot;
    ai_stats_reset / pg_finfo_ai_stats_reset () => reset;
}
