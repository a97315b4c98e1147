-- The MOs on the floor now (registered or running, not finished): the few that every line's
-- view and every panel's ready and running lists are made of. Without it each of those scans
-- every MO of the store (10,000: 50-200 ms for a command's line views on a busy gateway).
-- store::mo names the same condition, word for word, so that SQLite uses it.
CREATE INDEX mo_on_floor ON mo (line)
    WHERE date_finished IS NULL AND (ready_for_production OR date_start IS NOT NULL);

-- The MOs each line ended last: what its display shows of what was made, and the lines that
-- ended something keep their view until those MOs are purged.
CREATE INDEX mo_ended ON mo (line, date_finished) WHERE date_finished IS NOT NULL AND line IS NOT NULL;
