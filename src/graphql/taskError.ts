import type { TaskError } from '../domain/task.ts';
import { builder } from './builder.ts';

export const TaskErrorRef = builder.objectRef<TaskError>('TaskError').implement({
  fields: (t) => ({
    code: t.exposeString('code', { description: 'Stable and machine-readable, e.g. TIMEOUT, ATTEMPTS_EXHAUSTED, CANCELLED, INVALID_TEXT.' }),
    message: t.exposeString('message'),
  }),
});
