-- Server-wide values that must survive restarts (e.g. a generated webhook signing secret).
CREATE TABLE settings (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

-- The webhook outbox: a message is written in the same transaction as the terminal state it
-- announces, so neither can exist without the other, and a restart loses no delivery.
CREATE TABLE webhook_messages (
  id              TEXT    PRIMARY KEY,  -- the webhook-id header: the same on every attempt
  task_seq        INTEGER NOT NULL REFERENCES tasks (seq) ON DELETE CASCADE,
  event_type      TEXT    NOT NULL,
  url             TEXT    NOT NULL,
  state           TEXT    NOT NULL CHECK (state IN ('PENDING', 'DELIVERED', 'FAILED')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  -- While an instance is sending it; past this time another may try (the sender died).
  locked_until    INTEGER NOT NULL DEFAULT 0,
  created_at      INTEGER NOT NULL
);

CREATE INDEX webhook_messages_due ON webhook_messages (next_attempt_at) WHERE state = 'PENDING';
CREATE INDEX webhook_messages_by_task ON webhook_messages (task_seq);

CREATE TABLE webhook_attempts (
  message_id      TEXT    NOT NULL REFERENCES webhook_messages (id) ON DELETE CASCADE,
  attempt         INTEGER NOT NULL,
  at              INTEGER NOT NULL,
  response_status INTEGER,
  error           TEXT,
  delivered       INTEGER NOT NULL,
  PRIMARY KEY (message_id, attempt)
) WITHOUT ROWID;
