-- SICANTIK permits, keyed on pendaftaran_id: a 16-digit string with leading zeros.
CREATE TABLE permit_type (
    id       TEXT PRIMARY KEY,
    name     TEXT NOT NULL,
    grp      TEXT,              -- kelompok_izin
    sla_days TEXT,              -- v_hari
    extra    TEXT NOT NULL DEFAULT '{}'  -- fields other installs send, kept as JSON
) STRICT;

CREATE TABLE permit (
    pendaftaran_id  TEXT PRIMARY KEY,
    no_surat        TEXT NOT NULL,   -- the permit number (contains / and .)
    applicant       TEXT,
    permit_name     TEXT,            -- n_perizinan, the permit type's name
    permit_type_id  TEXT,
    listed_at       TEXT NOT NULL,   -- when linegate first saw it listed
    -- From cekperizinan: the expiry and the applicant's contact.
    detail_state    TEXT NOT NULL DEFAULT 'pending',  -- pending | found | unknown
    detail_attempts INTEGER NOT NULL DEFAULT 0,
    detail_retry_at TEXT,            -- for unknown ones: not before
    detail_at       TEXT,
    expiry          TEXT,            -- d_berlaku_izin, YYYY-MM-DD
    expiry_learned  TEXT,            -- the regency's date when this expiry was first seen
    issued          TEXT,            -- tgl_surat
    received        TEXT,            -- d_terima_berkas
    phone           TEXT,            -- normalised to +62…
    address         TEXT,
    company         TEXT
) STRICT;

CREATE INDEX permit_detail ON permit (detail_state, detail_retry_at);
CREATE INDEX permit_expiry ON permit (expiry) WHERE expiry IS NOT NULL;

-- A reminder is produced once per permit, expiry date and threshold: a renewed permit (a new
-- expiry) starts afresh. `sent` is 0 for thresholds already passed when the expiry was first
-- learned (recorded so they are never sent late).
CREATE TABLE permit_reminder (
    pendaftaran_id TEXT    NOT NULL,
    expiry         TEXT    NOT NULL,
    threshold      INTEGER NOT NULL,
    created_at     TEXT    NOT NULL,
    sent           INTEGER NOT NULL,
    PRIMARY KEY (pendaftaran_id, expiry, threshold)
) STRICT, WITHOUT ROWID;

-- Messages that must get out at least once, whatever happens to the process or the link.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY,
    channel      TEXT    NOT NULL,   -- mqtt | webhook
    payload      TEXT    NOT NULL,
    created_at   TEXT    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      TEXT    NOT NULL,
    last_error   TEXT,
    delivered_at TEXT
) STRICT;

CREATE INDEX outbox_due ON outbox (channel, next_at) WHERE delivered_at IS NULL;

-- SICANTIK runs also count permit details found, permits no endpoint knows, and reminders.
ALTER TABLE sync_run ADD COLUMN details INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_run ADD COLUMN unknown INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_run ADD COLUMN reminders INTEGER NOT NULL DEFAULT 0;
