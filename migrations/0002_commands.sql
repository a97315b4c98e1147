-- Operators' commands from workstation panels. A command is applied and its reply stored in
-- one transaction, keyed by the panel's request_id: a redelivered command gets the stored
-- reply and writes nothing.
CREATE TABLE command_log (
    request_id   TEXT    PRIMARY KEY,
    station      TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    operator     TEXT,
    received_at  TEXT    NOT NULL,
    clock_synced INTEGER NOT NULL,
    ok           INTEGER NOT NULL,
    reply        TEXT    NOT NULL
) STRICT;

CREATE INDEX command_log_received ON command_log (received_at);

-- Protected (operator-owned) as well: the line an MO runs on, and who last wrote the
-- operator columns, from which station, and whether the gateway's clock was synchronised
-- (a gateway without a clock battery boots in the past).
ALTER TABLE mo ADD COLUMN line TEXT;
ALTER TABLE mo ADD COLUMN operator TEXT;
ALTER TABLE mo ADD COLUMN station TEXT;
ALTER TABLE mo ADD COLUMN clock_synced INTEGER;
