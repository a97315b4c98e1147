-- A result whose last call to Odoo was never answered (a timeout, a connection lost mid-call,
-- the agent killed) is not looked up in Odoo before `settle_at`: the call may still be running
-- there, and a look too early would find nothing and do it twice.
ALTER TABLE outbox ADD COLUMN settle_at TEXT;
