-- One row the agent writes only while the store is unhealthy (a full or read-only disk), to
-- learn when writes work again. Never written in normal operation.
CREATE TABLE store_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at TEXT NOT NULL
) STRICT;
