-- Results in a table of their own. Recording one was an UPDATE of its item: SQLite rewrites the
-- whole row (the item's text with it) and moves it between the pending and the done index. Now
-- it is an append to one narrow B-tree: about half the cost per result, on the event loop
-- (bench/optimisations.md, section 11). An item is pending while it has no row here.
CREATE TABLE task_results (
  task_seq          INTEGER NOT NULL REFERENCES tasks (seq) ON DELETE CASCADE,
  idx               INTEGER NOT NULL,
  status            TEXT    NOT NULL CHECK (status IN ('SUCCEEDED', 'FAILED')),
  output            TEXT,
  error_code        TEXT,
  error_message     TEXT,
  -- Which attempt computed the result: shows that a resumed task did not redo finished items.
  completed_attempt INTEGER NOT NULL,
  PRIMARY KEY (task_seq, idx)
) WITHOUT ROWID;

INSERT INTO task_results (task_seq, idx, status, output, error_code, error_message, completed_attempt)
SELECT task_seq, idx, status, output, error_code, error_message, completed_attempt FROM task_items WHERE status IS NOT NULL;

DROP INDEX task_items_pending;
DROP INDEX task_items_done;
ALTER TABLE task_items DROP COLUMN status;
ALTER TABLE task_items DROP COLUMN output;
ALTER TABLE task_items DROP COLUMN error_code;
ALTER TABLE task_items DROP COLUMN error_message;
ALTER TABLE task_items DROP COLUMN completed_attempt;
