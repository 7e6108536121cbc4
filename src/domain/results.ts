/** What a model produces for one item. Pure data: crosses thread boundaries and is stored as JSON. */

export const INFERENCE_MODELS = ['SENTIMENT', 'ENTITIES'] as const;
export type InferenceModel = (typeof INFERENCE_MODELS)[number];

export type SentimentLabel = 'POSITIVE' | 'NEGATIVE' | 'NEUTRAL';

export interface SentimentOutput {
  kind: 'sentiment';
  label: SentimentLabel;
  /** Polarity in [-1, 1]; the label is derived from it. */
  score: number;
}

export interface Entity {
  text: string;
  type: string;
  /** UTF-16 offsets into the item text: text.slice(start, end) === entity text. */
  start: number;
  end: number;
}

export interface EntitiesOutput {
  kind: 'entities';
  entities: Entity[];
}

export type InferenceOutput = SentimentOutput | EntitiesOutput;

export interface ItemError {
  code: string;
  message: string;
}

/** The outcome of one item: an item that fails is recorded, it does not fail the task. */
export type ItemOutcome = { ok: true; output: InferenceOutput } | { ok: false; error: ItemError };
