-- Partial commits (commit_reservation's and bound_commit_reservation's
-- p_lines and p_rest): the columns a reservation line counts its settled
-- units in, for
-- atomic_inventory--0.3.0--0.4.0.sql. Not loaded by anything as it is.
--
-- Lines finished before the upgrade settled all their units one way: a
-- committed line sold what it held, a released or expired one gave it back.
-- The backfill says so, so that a finished line's committed_quantity +
-- released_quantity is what it was reserved with, for old lines too (the
-- functions don't need it: a reservation's status looks at a line's status
-- as well as its committed_quantity).

ALTER TABLE atomic_inventory.reservation_lines
    ADD COLUMN committed_quantity numeric NOT NULL DEFAULT 0
        CHECK (committed_quantity >= 0 AND committed_quantity < 'Infinity'),
    ADD COLUMN released_quantity  numeric NOT NULL DEFAULT 0
        CHECK (released_quantity >= 0 AND released_quantity < 'Infinity');

UPDATE atomic_inventory.reservation_lines
   SET committed_quantity = CASE WHEN status = 'committed' THEN quantity ELSE 0 END,
       released_quantity  = CASE WHEN status IN ('released', 'expired') THEN quantity ELSE 0 END
 WHERE status <> 'active';

ALTER TABLE atomic_inventory.bound_reservation_lines
    ADD COLUMN committed_quantity numeric NOT NULL DEFAULT 0
        CHECK (committed_quantity >= 0 AND committed_quantity < 'Infinity'),
    ADD COLUMN released_quantity  numeric NOT NULL DEFAULT 0
        CHECK (released_quantity >= 0 AND released_quantity < 'Infinity');

UPDATE atomic_inventory.bound_reservation_lines
   SET committed_quantity = CASE WHEN status = 'committed' THEN quantity ELSE 0 END,
       released_quantity  = CASE WHEN status IN ('released', 'expired') THEN quantity ELSE 0 END
 WHERE status <> 'active';

COMMENT ON COLUMN atomic_inventory.reservation_lines.quantity IS 'Units held (an active line: what it holds now, after partial commits that kept the rest; a finished line: what it held when it finished).';
COMMENT ON COLUMN atomic_inventory.reservation_lines.updated_at IS 'When the line''s status or quantity last changed.';
COMMENT ON COLUMN atomic_inventory.reservation_lines.committed_quantity IS 'Units of the line committed (sold) so far, over all its commits (commit_reservation''s p_lines may commit part of a line).';
COMMENT ON COLUMN atomic_inventory.reservation_lines.released_quantity IS 'Units of the line given back: by release_reservation, by expiry, or as the rest of a partial commit (p_rest = release). A finished line''s committed and released units add up to what it was reserved with.';
COMMENT ON COLUMN atomic_inventory.bound_reservation_lines.quantity IS 'Units held (an active line: what it holds now, after partial commits that kept the rest; a finished line: what it held when it finished).';
COMMENT ON COLUMN atomic_inventory.bound_reservation_lines.updated_at IS 'When the line''s status or quantity last changed.';
COMMENT ON COLUMN atomic_inventory.bound_reservation_lines.committed_quantity IS 'Units of the row committed (sold) so far, over all the line''s commits (p_lines may commit part of a line).';
COMMENT ON COLUMN atomic_inventory.bound_reservation_lines.released_quantity IS 'Units of the line given back: by a release, by expiry, or as the rest of a partial commit (p_rest = release). A finished line''s committed and released units add up to what it was reserved with.';
COMMENT ON COLUMN atomic_inventory.reservations.status IS 'active while any line is held; then committed (any units of any line committed), released or expired.';

-- Besides the columns, the upgrade needs (from sql/functions.sql, not
-- repeated here):
-- * the new signatures of commit_reservation and bound_commit_reservation:
--   each gained p_lines jsonb and p_rest text, so
--     DROP FUNCTION atomic_inventory.commit_reservation(uuid, uuid[], text, text, integer);
--     DROP FUNCTION atomic_inventory.bound_commit_reservation(uuid, text[], text, text, integer);
--   then their CREATE FUNCTION and COMMENT as in functions.sql (left in
--   place, the old ones would make a call with the old arguments
--   ambiguous);
-- * grant_usage's list names commit_reservation(uuid, uuid[], text, text,
--   integer, jsonb, text) and bound_commit_reservation(uuid, text[], text,
--   text, integer, jsonb, text);
-- * get_reservation (CREATE OR REPLACE) answers each line's
--   committed_quantity and released_quantity.
