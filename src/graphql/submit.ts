import { builder } from './builder.ts';
import { InferenceModelEnum, TaskRef } from './task.ts';

const InferenceItemInput = builder.inputType('InferenceItemInput', {
  fields: (t) => ({
    id: t.string({ description: 'Your own id for the item, echoed in its result.' }),
    text: t.string({ required: true }),
  }),
});

const SubmitBulkInferenceInput = builder.inputType('SubmitBulkInferenceInput', {
  fields: (t) => ({
    items: t.field({ type: [InferenceItemInput], required: true }),
    model: t.field({ type: InferenceModelEnum, defaultValue: 'SENTIMENT' }),
    idempotencyKey: t.string({ description: 'Resubmitting with the same key and input returns the same task.' }),
    priority: t.int({ defaultValue: 0, description: 'Higher runs first; from -1000 to 1000.' }),
    webhookUrl: t.string(),
    maxAttempts: t.int({ description: 'Runs allowed before the task fails (1 to 10, default 3).' }),
    timeoutSeconds: t.int({ description: 'Longest one attempt may run before the task fails with TIMEOUT.' }),
  }),
});

builder.mutationField('submitBulkInference', (t) =>
  t.field({
    type: TaskRef,
    description: 'Accepts the work and answers at once with a QUEUED task; the task and its items are stored before the answer.',
    args: { input: t.arg({ type: SubmitBulkInferenceInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.tasks.submit(ctx.tenant, input),
  }),
);
