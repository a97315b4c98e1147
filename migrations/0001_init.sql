-- Manufacturing orders, keyed on Odoo's id: backorders rename MOs, so the name is an attribute.
-- Two owners share a row. Upstream-owned columns are written only by the sync (the list lives in
-- src/store/mo.rs); protected columns are written only by operators' commands.
CREATE TABLE mo (
    id                   INTEGER PRIMARY KEY,
    -- upstream-owned
    name                 TEXT    NOT NULL,
    state                TEXT    NOT NULL,
    product_id           INTEGER,
    product_name         TEXT,
    uom                  TEXT,
    product_qty          REAL    NOT NULL,
    qty_producing        REAL    NOT NULL,
    origin               TEXT,
    create_date          TEXT,
    write_date           TEXT    NOT NULL,
    planned_start        TEXT,
    planned_finish       TEXT,
    date_deadline        TEXT,
    transfer_id          INTEGER,
    transfer_name        TEXT,
    group_worker         TEXT,
    note                 TEXT,
    initial_qty_target   REAL,
    -- sync bookkeeping
    synced_at            TEXT    NOT NULL,  -- when the sync last changed this row
    gone_at              TEXT,              -- when the MO left Odoo's domain; NULL while it is in it
    -- protected (operator-owned)
    auth_first           TEXT,
    auth_last            TEXT,
    leader_id            TEXT,
    roll_number          TEXT,
    ready_for_production INTEGER NOT NULL DEFAULT 0,
    date_start           TEXT,
    date_finished        TEXT,
    operator_updated_at  TEXT
) STRICT;

CREATE INDEX mo_name ON mo (name);
CREATE INDEX mo_gone ON mo (gone_at) WHERE gone_at IS NOT NULL;

-- One row per source and key: the incremental cursor and when the last full reconcile ran.
CREATE TABLE sync_state (
    source TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (source, key)
) STRICT, WITHOUT ROWID;

-- One row per sync run, shown by `linegate status`; old rows are trimmed.
CREATE TABLE sync_run (
    id          INTEGER PRIMARY KEY,
    source      TEXT    NOT NULL,
    started_at  TEXT    NOT NULL,
    duration_ms INTEGER NOT NULL,
    ok          INTEGER NOT NULL,
    error       TEXT,
    fetched     INTEGER NOT NULL,
    inserted    INTEGER NOT NULL,
    updated     INTEGER NOT NULL,
    unchanged   INTEGER NOT NULL,
    gone        INTEGER NOT NULL,
    purged      INTEGER NOT NULL,
    requests    INTEGER NOT NULL
) STRICT;

CREATE INDEX sync_run_source ON sync_run (source, id);
