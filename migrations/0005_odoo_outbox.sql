-- Operator results on their way to Odoo share the outbox: `key` orders them per MO (its Odoo
-- id; one MO's results go in order, different MOs never wait on each other), `event_id` finds
-- a delivered one again in Odoo, `steps_done` says which of its steps Odoo already has, and a
-- parked one waits for a person (`linegate outbox`), holding back the rest of its MO.
ALTER TABLE outbox ADD COLUMN key INTEGER;
ALTER TABLE outbox ADD COLUMN event_id TEXT;
ALTER TABLE outbox ADD COLUMN steps_done INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN parked_at TEXT;
ALTER TABLE outbox ADD COLUMN park_reason TEXT;

CREATE INDEX outbox_key ON outbox (channel, key, id) WHERE delivered_at IS NULL;

-- Results dropped by the outbox's bounds (`[odoo.push] max_pending`, `max_age`): each one is
-- logged in full when dropped; here they are counted, for the status.
CREATE TABLE outbox_dropped (
    channel TEXT PRIMARY KEY,
    count   INTEGER NOT NULL,
    last_at TEXT    NOT NULL
) STRICT;
