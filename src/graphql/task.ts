import { estimatedCompletionTime, suggestedNextPollTime } from '../domain/pollHints.ts';
import { INFERENCE_MODELS } from '../domain/results.ts';
import { taskLinks } from '../domain/taskJson.ts';
import { progressPercentage, TASK_STATUSES, type TaskRecord } from '../domain/task.ts';
import type { WebhookAttempt } from '../store/taskStore.ts';
import { builder, type GraphQLContext } from './builder.ts';
import { toConnection } from './connection.ts';
import { InferenceResultConnection } from './results.ts';
import { TaskErrorRef } from './taskError.ts';

/**
 * queuePosition and suggestedNextPollTime both need the position: one store read per task record
 * per response. Keyed by the record itself, so each subscription event (a new record) reads afresh.
 * The hint alone needs only the first positions (a bounded count: a submit's answer must not cost
 * O(queue)); once the exact position is asked for, the hint uses it too.
 */
const queuePositions = new WeakMap<TaskRecord, { exact?: Promise<number | null>; forHint?: Promise<number | null> }>();
function queuePositionOf(task: TaskRecord, ctx: GraphQLContext, use: 'exact' | 'forHint'): Promise<number | null> {
  let known = queuePositions.get(task);
  if (!known) queuePositions.set(task, (known = {}));
  if (use === 'exact') return (known.exact ??= ctx.tasks.queuePosition(task));
  return known.exact ?? (known.forHint ??= ctx.tasks.queuePosition(task, true));
}

export const TaskStatusEnum = builder.enumType('TaskStatus', { values: TASK_STATUSES });
export const InferenceModelEnum = builder.enumType('InferenceModel', { values: INFERENCE_MODELS });

const TaskLinks = builder.objectRef<TaskRecord>('TaskLinks').implement({
  description: 'REST URLs of the task (paths relative to the server).',
  fields: (t) => ({
    self: t.string({ resolve: (task) => taskLinks(task.id).self }),
    results: t.string({ resolve: (task) => taskLinks(task.id).results }),
  }),
});

const WebhookDelivery = builder.objectRef<WebhookAttempt>('WebhookDelivery').implement({
  description: 'One attempt to deliver the task webhook.',
  fields: (t) => ({
    attempt: t.exposeInt('attempt'),
    at: t.field({ type: 'DateTime', resolve: (delivery) => delivery.at }),
    responseStatus: t.exposeInt('responseStatus', { nullable: true }),
    error: t.exposeString('error', { nullable: true }),
    delivered: t.exposeBoolean('delivered'),
  }),
});

export const TaskRef = builder.node(builder.objectRef<TaskRecord>('Task'), {
  description: 'A unit of accepted work. Follow it by polling task(id), the taskUpdated subscription, a webhook or REST.',
  id: { resolve: (task) => task.id },
  loadOne: (id, ctx) => ctx.tasks.get(ctx.tenant, id),
  isTypeOf: (value) => typeof value === 'object' && value !== null && (value as TaskRecord).kind === 'bulkInference',
  fields: (t) => ({
    kind: t.exposeString('kind'),
    model: t.field({ type: InferenceModelEnum, resolve: (task) => task.model }),
    status: t.field({ type: TaskStatusEnum, resolve: (task) => task.status }),
    progressPercentage: t.float({ description: 'From 0 to 100: items done (succeeded or failed) over items total.', resolve: progressPercentage }),
    itemsTotal: t.exposeInt('itemsTotal'),
    itemsSucceeded: t.exposeInt('itemsSucceeded'),
    itemsFailed: t.exposeInt('itemsFailed'),
    acceptedAt: t.field({ type: 'DateTime', resolve: (task) => task.acceptedAt }),
    startedAt: t.field({ type: 'DateTime', nullable: true, resolve: (task) => task.startedAt }),
    finishedAt: t.field({ type: 'DateTime', nullable: true, resolve: (task) => task.finishedAt }),
    updatedAt: t.field({ type: 'DateTime', resolve: (task) => task.updatedAt }),
    suggestedNextPollTime: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When polling again is worthwhile; null once the task is terminal.',
      resolve: async (task, _args, ctx) => suggestedNextPollTime(task, Date.now(), await queuePositionOf(task, ctx, 'forHint')),
    }),
    estimatedCompletionTime: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'From the rate observed in the current attempt; null until it can be estimated and once terminal.',
      resolve: (task) => estimatedCompletionTime(task, Date.now()),
    }),
    queuePosition: t.int({
      nullable: true,
      description: '1 = next to run. Null unless QUEUED.',
      resolve: (task, _args, ctx) => queuePositionOf(task, ctx, 'exact'),
    }),
    attempt: t.exposeInt('attempt', { description: 'Runs started so far: above 1 after a crash or a retry.' }),
    maxAttempts: t.exposeInt('maxAttempts'),
    priority: t.exposeInt('priority'),
    idempotencyKey: t.exposeString('idempotencyKey', { nullable: true }),
    error: t.field({ type: TaskErrorRef, nullable: true, description: 'Why it FAILED, or how it was CANCELLED.', resolve: (task) => task.error }),
    links: t.field({ type: TaskLinks, resolve: (task) => task }),
    results: t.field({
      type: InferenceResultConnection,
      description: 'Finished items in item order; while the task runs, the results so far.',
      args: { first: t.arg.int(), after: t.arg.string() },
      resolve: async (task, args, ctx) => toConnection(await ctx.tasks.results(task, args), args.after),
    }),
    webhookDeliveries: t.field({
      type: [WebhookDelivery],
      description: 'Delivery attempts of the webhook so far, oldest first.',
      resolve: (task, _args, ctx) => ctx.tasks.webhookDeliveries(task),
    }),
  }),
});

const TaskConnection = builder.connectionObject({ type: TaskRef, name: 'TaskConnection' }, { name: 'TaskEdge' });

builder.queryFields((t) => ({
  task: t.field({
    type: TaskRef,
    nullable: true,
    description: 'Null when the id is unknown or not yours.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => ctx.tasks.get(ctx.tenant, String(id)),
  }),
  tasks: t.field({
    type: TaskConnection,
    description: 'Your tasks, newest first.',
    args: { status: t.arg({ type: TaskStatusEnum }), first: t.arg.int(), after: t.arg.string() },
    resolve: async (_root, args, ctx) => toConnection(await ctx.tasks.list(ctx.tenant, args), args.after),
  }),
}));

builder.mutationField('cancelTask', (t) =>
  t.field({
    type: TaskRef,
    description: 'Stops the task; finished item results are kept. Cancelling a terminal task changes nothing.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => ctx.tasks.cancel(ctx.tenant, String(id)),
  }),
);

builder.subscriptionField('taskUpdated', (t) =>
  t.field({
    type: TaskRef,
    description: 'First the current state, then every change; completes after a terminal state.',
    args: { id: t.arg.id({ required: true }) },
    // Delivered by graphql/sharedSubscribe.ts, which counts it in longhaul_subscriptions_active while it is open.
    subscribe: (_root, { id }, ctx) => ctx.tasks.watch(ctx.tenant, String(id)),
    resolve: (task) => task,
  }),
);
