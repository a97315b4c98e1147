-- What a command costs the SD card: every page it dirties goes to the WAL and is later
-- checkpointed. The command log was keyed by (station, request_id), so each entry, reply and
-- all, went in among the others wherever its key fell (splitting full pages anywhere), and a
-- second index on received_at served only pruning. Now entries are appended in arrival order
-- (one leaf page, usually the last one again), found by a small index of their key, and
-- pruned from the oldest rowid up (src/store/prune.rs), without an index on the time.
ALTER TABLE command_log RENAME TO command_log_keyed;

CREATE TABLE command_log (
    id           INTEGER PRIMARY KEY,
    station      TEXT    NOT NULL,
    request_id   TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    operator     TEXT,
    received_at  TEXT    NOT NULL,
    clock_synced INTEGER NOT NULL,
    ok           INTEGER NOT NULL,
    reply        TEXT    NOT NULL
) STRICT;

INSERT INTO command_log (station, request_id, action, operator, received_at, clock_synced, ok, reply)
    SELECT station, request_id, action, operator, received_at, clock_synced, ok, reply
    FROM command_log_keyed ORDER BY received_at, station, request_id;

DROP TABLE command_log_keyed;

CREATE UNIQUE INDEX command_log_request ON command_log (station, request_id);

-- The outbox's undelivered messages are few (a backlog after an outage is bounded by
-- [odoo.push] max_pending): outbox_key, by channel, serves every query the due index did,
-- and each enqueue and delivery now changes one index, not two.
DROP INDEX outbox_due;
