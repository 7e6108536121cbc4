/**
 * Longhaul's engine, in-process (no GraphQL: the engine, not the API): TaskOperations.submit writes
 * a 1-item task durably; the pool claims it, runs it on the inference threads, records the result
 * and the terminal state, and publishes the change; completion is that published terminal change
 * (what a taskUpdated subscriber receives). Store: DATABASE_URL.
 */
import { buildApp } from '../../../src/app.ts';
import { loadConfig } from '../../../src/config.ts';
import { isTerminal, type TaskRecord } from '../../../src/domain/task.ts';
import { createLogger } from '../../../src/logger.ts';
import { DEFAULT_TENANT } from '../../../src/tasks/operations.ts';
import { text } from '../../lib/documents.ts';
import { serveEngine } from './drive.ts';

await serveEngine(async (completions) => {
  const config = loadConfig(process.env);
  const app = buildApp(config, { log: createLogger(config.logLevel) });
  await app.start();
  // Observed where every subscriber's copy comes from: the events' publish.
  const publish = app.events.publishTaskChanged.bind(app.events);
  app.events.publishTaskChanged = (task: TaskRecord) => {
    publish(task);
    if (isTerminal(task.status)) {
      if (task.status !== 'SUCCEEDED') throw new Error(`task ${task.id} ended ${task.status}: ${task.error?.message}`);
      completions.completed();
    }
  };
  return {
    async submit(i) {
      await app.tasks.submit(DEFAULT_TENANT, { items: [{ id: `job-${i}`, text: text(i) }] });
    },
    close: () => app.stop(),
  };
});
