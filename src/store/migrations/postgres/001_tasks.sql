-- Tasks and their items: the PostgreSQL translation of migrations/sqlite/001_tasks.sql, row for row.
-- Times are epoch milliseconds (BIGINT: the driver hands them over as strings, rows.ts converts).
--
-- What a client sent and must get back exactly (item texts and ids, idempotency keys) is stored as
-- its UTF-8 bytes (BYTEA): a PostgreSQL TEXT cannot hold U+0000, which a valid submission may carry.
-- The adapter encodes and decodes; a person reads them with convert_from(col, 'UTF8').
CREATE TABLE tasks (
  seq               BIGSERIAL PRIMARY KEY,
  id                TEXT     NOT NULL UNIQUE,
  tenant            TEXT     NOT NULL,
  kind              TEXT     NOT NULL,
  model             TEXT     NOT NULL,
  status            TEXT     NOT NULL CHECK (status IN ('QUEUED', 'IN_PROGRESS', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
  priority          INTEGER  NOT NULL,
  items_total       INTEGER  NOT NULL,
  items_succeeded   INTEGER  NOT NULL DEFAULT 0,
  items_failed      INTEGER  NOT NULL DEFAULT 0,
  attempt           INTEGER  NOT NULL DEFAULT 0,
  max_attempts      INTEGER  NOT NULL,
  timeout_seconds   INTEGER,
  -- Shown on the task for good; the key's reservation lives in idempotency_keys until purged.
  idempotency_key   BYTEA,
  webhook_url       TEXT,
  error_code        TEXT,
  error_message     TEXT,
  accepted_at       BIGINT   NOT NULL,
  started_at        BIGINT,
  finished_at       BIGINT,
  updated_at        BIGINT   NOT NULL,
  run_started_at    BIGINT,
  run_started_done  INTEGER,
  available_at      BIGINT   NOT NULL,
  -- 1 when handed back by a graceful shutdown: the next claim continues the attempt.
  keep_attempt      INTEGER  NOT NULL DEFAULT 0 CHECK (keep_attempt IN (0, 1)),
  lease_owner       TEXT,
  lease_expires_at  BIGINT,
  version           INTEGER  NOT NULL DEFAULT 1
);

-- Claim order: priority first, then arrival.
CREATE INDEX tasks_queue ON tasks (priority DESC, seq) WHERE status = 'QUEUED';
CREATE INDEX tasks_running ON tasks (lease_expires_at) WHERE status = 'IN_PROGRESS';
CREATE INDEX tasks_by_tenant ON tasks (tenant, seq DESC);
CREATE INDEX tasks_by_tenant_status ON tasks (tenant, status, seq DESC);

-- One task per (tenant, key) while the key is kept; the primary key decides concurrent submits.
CREATE TABLE idempotency_keys (
  tenant      TEXT    NOT NULL,
  key         BYTEA   NOT NULL,
  task_seq    BIGINT  NOT NULL REFERENCES tasks (seq) ON DELETE CASCADE,
  -- Digest of the request that created the task: the same key with another request is a conflict.
  fingerprint TEXT    NOT NULL,
  created_at  BIGINT  NOT NULL,
  PRIMARY KEY (tenant, key)
);

CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);

CREATE TABLE task_items (
  task_seq          BIGINT  NOT NULL REFERENCES tasks (seq) ON DELETE CASCADE,
  idx               INTEGER NOT NULL,
  item_id           BYTEA,
  text              BYTEA   NOT NULL,
  status            TEXT    CHECK (status IN ('SUCCEEDED', 'FAILED')),
  output            TEXT,
  error_code        TEXT,
  error_message     TEXT,
  -- Which attempt computed the result: shows that a resumed task did not redo finished items.
  completed_attempt INTEGER,
  PRIMARY KEY (task_seq, idx)
);

-- What a run still has to do, and what a results page shows: neither walks the other's rows.
CREATE INDEX task_items_pending ON task_items (task_seq, idx) WHERE status IS NULL;
CREATE INDEX task_items_done ON task_items (task_seq, idx) WHERE status IS NOT NULL;
