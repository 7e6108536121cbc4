import type { EntitiesOutput, Entity, InferenceOutput, SentimentOutput } from '../domain/results.ts';
import type { StoredResult } from '../store/taskStore.ts';
import { builder } from './builder.ts';
import { TaskErrorRef } from './taskError.ts';

const SentimentLabel = builder.enumType('SentimentLabel', { values: ['POSITIVE', 'NEGATIVE', 'NEUTRAL'] as const });
const ItemStatus = builder.enumType('ItemStatus', { values: ['SUCCEEDED', 'FAILED'] as const });

const SentimentOutputRef = builder.objectRef<SentimentOutput>('SentimentOutput').implement({
  fields: (t) => ({
    label: t.field({ type: SentimentLabel, resolve: (output) => output.label }),
    score: t.exposeFloat('score', { description: 'Polarity from -1 (negative) to 1 (positive).' }),
  }),
});

const EntityRef = builder.objectRef<Entity>('Entity').implement({
  fields: (t) => ({
    text: t.exposeString('text'),
    type: t.exposeString('type', { description: 'DATE, TIME, MONEY, PERCENT, CARDINAL, ORDINAL, EMAIL, URL, HASHTAG, MENTION, …' }),
    start: t.exposeInt('start', { description: 'UTF-16 offset of the first character in the item text.' }),
    end: t.exposeInt('end', { description: 'UTF-16 offset just past the last character.' }),
  }),
});

const EntitiesOutputRef = builder.objectRef<EntitiesOutput>('EntitiesOutput').implement({
  fields: (t) => ({
    entities: t.field({ type: [EntityRef], resolve: (output) => output.entities }),
  }),
});

const InferenceOutputRef = builder.unionType('InferenceOutput', {
  types: [SentimentOutputRef, EntitiesOutputRef],
  resolveType: (output: InferenceOutput) => (output.kind === 'sentiment' ? SentimentOutputRef : EntitiesOutputRef),
});

export const InferenceResultRef = builder.objectRef<StoredResult>('InferenceResult').implement({
  description: 'The outcome of one item. A failed item does not fail its task.',
  fields: (t) => ({
    index: t.exposeInt('index', { description: 'Position of the item in the submitted list, from 0.' }),
    itemId: t.exposeString('itemId', { nullable: true }),
    status: t.field({ type: ItemStatus, resolve: (result) => result.status }),
    output: t.field({ type: InferenceOutputRef, nullable: true, resolve: (result) => result.output }),
    error: t.field({ type: TaskErrorRef, nullable: true, resolve: (result) => result.error }),
  }),
});

export const InferenceResultConnection = builder.connectionObject(
  { type: InferenceResultRef, name: 'InferenceResultConnection' },
  { name: 'InferenceResultEdge' },
);
