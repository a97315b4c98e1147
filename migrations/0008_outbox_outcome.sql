-- What Odoo made of a result, as the step that learnt it recorded it (an end: the MO closed
-- under its new name, the backorder Odoo made for the rest); the chatter note, made after it,
-- says so too.
ALTER TABLE outbox ADD COLUMN outcome TEXT;
