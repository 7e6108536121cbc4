-- Results in runs: the outcomes of consecutive items recorded together share one row. A row per
-- result was an insert per item on the event loop (about 4 µs each); a 100,000-item task paid it
-- 100,000 times on the thread that answers requests (bench/optimisations.md, section 20). An item
-- is pending while no run covers it; runs of a task never overlap.
CREATE TABLE task_result_runs (
  task_seq          INTEGER NOT NULL REFERENCES tasks (seq) ON DELETE CASCADE,
  first_idx         INTEGER NOT NULL,
  last_idx          INTEGER NOT NULL CHECK (last_idx >= first_idx),
  -- A JSON array, one entry per item from first_idx to last_idx: its output, or null if it failed.
  outputs           TEXT    NOT NULL,
  -- NULL when every item of the run succeeded; else a JSON array of the same length: null for an
  -- item that succeeded, {"code", "message"} for one that failed.
  errors            TEXT,
  -- Which attempt computed the results: shows that a resumed task did not redo finished items.
  completed_attempt INTEGER NOT NULL,
  PRIMARY KEY (task_seq, first_idx)
) WITHOUT ROWID;

-- Existing results become runs: consecutive items of one attempt go together (islands of idx).
INSERT INTO task_result_runs (task_seq, first_idx, last_idx, outputs, errors, completed_attempt)
SELECT task_seq, MIN(idx), MAX(idx),
       json_group_array(json(output) ORDER BY idx),
       CASE WHEN SUM(status = 'FAILED') = 0 THEN NULL
            ELSE json_group_array(CASE WHEN status = 'FAILED' THEN json_object('code', error_code, 'message', COALESCE(error_message, '')) END ORDER BY idx)
       END,
       completed_attempt
FROM (SELECT *, idx - ROW_NUMBER() OVER (PARTITION BY task_seq, completed_attempt ORDER BY idx) AS island FROM task_results)
GROUP BY task_seq, completed_attempt, island;

DROP TABLE task_results;

-- One row per result, as before, for operators' queries (and the tests' look at the file); the
-- store itself reads and writes the runs.
CREATE VIEW task_results (task_seq, idx, status, output, error_code, error_message, completed_attempt) AS
SELECT r.task_seq, r.first_idx + o.key,
       CASE WHEN json_type(r.errors, '$[' || o.key || ']') = 'object' THEN 'FAILED' ELSE 'SUCCEEDED' END,
       CASE WHEN o.type = 'null' THEN NULL ELSE o.value END,
       json_extract(r.errors, '$[' || o.key || '].code'),
       json_extract(r.errors, '$[' || o.key || '].message'),
       r.completed_attempt
FROM task_result_runs r, json_each(r.outputs) o;
