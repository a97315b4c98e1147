-- The MOs on the floor now (registered or running, not finished): the few that every line's
-- view and every panel's ready and running lists are made of. Without it each of those scans
-- every MO of the store (10,000: 50-200 ms for a command's line views on a busy gateway).
-- store::mo names the same condition, word for word, so that SQLite uses it.
CREATE INDEX mo_on_floor ON mo (line)
    WHERE date_finished IS NULL AND (ready_for_production OR date_start IS NOT NULL);
