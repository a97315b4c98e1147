-- Operators' commands from workstation panels. A command is applied and its reply stored in
-- one transaction, keyed by the station and the panel's request_id (panels count on their
-- own): a redelivered command gets the stored reply and writes nothing.
CREATE TABLE command_log (
    station      TEXT    NOT NULL,
    request_id   TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    operator     TEXT,
    received_at  TEXT    NOT NULL,
    clock_synced INTEGER NOT NULL,
    ok           INTEGER NOT NULL,
    reply        TEXT    NOT NULL,
    PRIMARY KEY (station, request_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX command_log_received ON command_log (received_at);

-- Protected (operator-owned) as well: the line an MO runs on, and who last wrote the
-- operator columns, from which station, and whether the gateway's clock was synchronised
-- (a gateway without a clock battery boots in the past).
ALTER TABLE mo ADD COLUMN line TEXT;
ALTER TABLE mo ADD COLUMN operator TEXT;
ALTER TABLE mo ADD COLUMN station TEXT;
ALTER TABLE mo ADD COLUMN clock_synced INTEGER;
