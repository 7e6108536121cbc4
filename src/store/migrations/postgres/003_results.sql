-- Results in a table of their own: the PostgreSQL translation of migrations/sqlite/003_results.sql.
-- Recording one was an UPDATE of its item: a new version of the whole row (text and all) and an
-- entry in each of its indexes. Now it is an insert into one narrow table. An item is pending
-- while it has no row here.
CREATE TABLE task_results (
  task_seq          BIGINT  NOT NULL REFERENCES tasks (seq) ON DELETE CASCADE,
  idx               INTEGER NOT NULL,
  status            TEXT    NOT NULL CHECK (status IN ('SUCCEEDED', 'FAILED')),
  output            TEXT,
  error_code        TEXT,
  error_message     TEXT,
  -- Which attempt computed the result: shows that a resumed task did not redo finished items.
  completed_attempt INTEGER NOT NULL,
  PRIMARY KEY (task_seq, idx)
);

INSERT INTO task_results (task_seq, idx, status, output, error_code, error_message, completed_attempt)
SELECT task_seq, idx, status, output, error_code, error_message, completed_attempt FROM task_items WHERE status IS NOT NULL;

DROP INDEX task_items_pending;
DROP INDEX task_items_done;
ALTER TABLE task_items DROP COLUMN status, DROP COLUMN output, DROP COLUMN error_code, DROP COLUMN error_message, DROP COLUMN completed_attempt;
