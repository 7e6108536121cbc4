-- Server-wide values that must survive restarts (e.g. a generated webhook signing secret).
CREATE TABLE settings (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- The webhook outbox: a message is written in the same transaction as the terminal state it
-- announces, so neither can exist without the other, and a restart loses no delivery.
CREATE TABLE webhook_messages (
  id              TEXT    PRIMARY KEY,  -- the webhook-id header: the same on every attempt
  -- Insertion order, which SQLite's rowid gives for free: breaks ties between messages due at once.
  seq             BIGSERIAL NOT NULL,
  task_seq        BIGINT  NOT NULL REFERENCES tasks (seq) ON DELETE CASCADE,
  event_type      TEXT    NOT NULL,
  url             TEXT    NOT NULL,
  state           TEXT    NOT NULL CHECK (state IN ('PENDING', 'DELIVERED', 'FAILED')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at BIGINT  NOT NULL,
  -- While an instance is sending it; past this time another may try (the sender died).
  locked_until    BIGINT  NOT NULL DEFAULT 0,
  created_at      BIGINT  NOT NULL
);

CREATE INDEX webhook_messages_due ON webhook_messages (next_attempt_at, seq) WHERE state = 'PENDING';
CREATE INDEX webhook_messages_by_task ON webhook_messages (task_seq);

CREATE TABLE webhook_attempts (
  message_id      TEXT    NOT NULL REFERENCES webhook_messages (id) ON DELETE CASCADE,
  attempt         INTEGER NOT NULL,
  at              BIGINT  NOT NULL,
  response_status INTEGER,
  error           TEXT,
  delivered       BOOLEAN NOT NULL,
  PRIMARY KEY (message_id, attempt)
);
