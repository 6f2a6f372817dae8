//! The SQL that settles a reservation's lines (finish, partial commit),
//! shared by the statements of holds at the default location (holds.rs)
//! and at other locations (level_holds.rs): the rule of what a line counts
//! when it settles is written once.

/// The line-settling CTE of FINISH (holds.rs) and of its twin for lines
/// held at other locations (FINISH_AT in level_holds.rs), `WITH fl AS
/// (...`: lines $2 of reservation $1 finished as $3 ('committed' or
/// 'released'), each counting what it settled. `$extra` adds columns to what it returns (after the
/// item's id): one text, so the statements can't drift apart. With a
/// second argument, that condition picks the active lines instead of $2
/// (FINISH_PLAIN_ONE).
macro_rules! finish_lines {
    ($extra:literal) => {
        finish_lines!($extra, "l.inventory_id = ANY ($2)")
    };
    ($extra:literal, $which:literal) => {
        concat!(
            "WITH fl AS ( \
               UPDATE atomic_inventory.reservation_lines AS l \
                  SET status = $3, \
                      committed_quantity = l.committed_quantity \
                        + CASE WHEN $3 = 'committed' THEN l.quantity ELSE 0 END, \
                      released_quantity = l.released_quantity \
                        + CASE WHEN $3 = 'committed' THEN 0 ELSE l.quantity END, \
                      updated_at = pg_catalog.now() \
                WHERE l.reservation_id = $1 AND l.status = 'active' AND ",
            $which,
            " RETURNING l.inventory_id, ",
            $extra,
            "l.quantity, l.tracked "
        )
    };
}
pub(crate) use finish_lines;

/// The line-settling CTEs of COMMIT_PARTS (holds.rs) and of its twin for lines held at
/// other locations (COMMIT_PARTS_AT in level_holds.rs), `WITH p AS (...), fl
/// AS (...`: $3 units of each line $2 committed, the rest released ($4
/// false) or kept held ($4 true). `$extra` as for finish_lines!.
macro_rules! commit_parts_lines {
    ($extra:literal) => {
        concat!(
            "WITH p AS ( \
               SELECT x.k, x.n \
                 FROM ROWS FROM (pg_catalog.unnest($2::uuid[]), pg_catalog.unnest($3::numeric[])) AS x(k, n) \
             ), fl AS ( \
               UPDATE atomic_inventory.reservation_lines AS l \
                  SET status = CASE WHEN $4 AND p.n < l.quantity THEN 'active' ELSE 'committed' END, \
                      quantity = CASE WHEN $4 AND p.n < l.quantity THEN l.quantity - p.n \
                                      ELSE l.quantity END, \
                      committed_quantity = l.committed_quantity + p.n, \
                      released_quantity = l.released_quantity \
                        + CASE WHEN $4 THEN 0 ELSE l.quantity - p.n END, \
                      updated_at = pg_catalog.now() \
                 FROM p \
                WHERE l.reservation_id = $1 AND l.status = 'active' AND l.inventory_id = p.k \
                  AND p.n > 0 AND p.n <= l.quantity \
               RETURNING l.inventory_id, ",
            $extra,
            "l.tracked, p.n AS sold, \
                         CASE WHEN l.status = 'committed' THEN l.quantity - p.n ELSE 0 END AS freed, \
                         CASE WHEN l.status = 'active' THEN l.quantity END AS kept "
        )
    };
}
pub(crate) use commit_parts_lines;
