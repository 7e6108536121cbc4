import { createHash } from 'node:crypto';
import { badUserInput } from './errors.ts';
import { INFERENCE_MODELS, type InferenceModel } from './results.ts';

export interface SubmissionInput {
  items: ReadonlyArray<{ id?: string | null; text?: string | null }>;
  model?: InferenceModel | null;
  idempotencyKey?: string | null;
  priority?: number | null;
  webhookUrl?: string | null;
  maxAttempts?: number | null;
  timeoutSeconds?: number | null;
}

export interface SubmissionLimits {
  maxItemsPerTask: number;
  maxItemTextLength: number;
}

export interface SubmissionItem {
  id: string | null;
  text: string;
}

/** A submission that passed validation, with every default applied. */
export interface Submission {
  items: SubmissionItem[];
  model: InferenceModel;
  idempotencyKey: string | null;
  priority: number;
  webhookUrl: string | null;
  maxAttempts: number;
  timeoutSeconds: number | null;
}

export const DEFAULT_MAX_ATTEMPTS = 3;
const MAX_ITEM_ID_LENGTH = 256;
const MAX_IDEMPOTENCY_KEY_LENGTH = 255;
const MAX_URL_LENGTH = 2048;
const PRIORITY_RANGE = 1000;
const MAX_ATTEMPTS_LIMIT = 10;
const MAX_TIMEOUT_SECONDS = 7 * 24 * 3600;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Text that UTF-8 can hold as sent; anything else would be silently altered by the store. */
export function isWellFormedText(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}

function integerIn(name: string, value: number | null | undefined, min: number, max: number, fallback: number): number;
function integerIn(name: string, value: number | null | undefined, min: number, max: number, fallback: null): number | null;
function integerIn(name: string, value: number | null | undefined, min: number, max: number, fallback: number | null) {
  if (value == null) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw badUserInput(`"${name}" must be a whole number from ${min} to ${max}`);
  }
  return value;
}

/** Checks a submission before anything is stored; the first problem found is the error. */
export function validateSubmission(input: SubmissionInput, limits: SubmissionLimits): Submission {
  if (!Array.isArray(input.items) || input.items.length === 0) {
    throw badUserInput('"items" is empty: submit at least one item with a "text"');
  }
  if (input.items.length > limits.maxItemsPerTask) {
    throw badUserInput(
      `"items" has ${input.items.length} items; the limit is ${limits.maxItemsPerTask} per task: split the work into several tasks`,
    );
  }
  const items = input.items.map((item, index): SubmissionItem => {
    const text = item?.text;
    if (typeof text !== 'string' || text.trim() === '') {
      throw badUserInput(`items[${index}] has no text: every item needs a non-empty "text"`);
    }
    if (!isWellFormedText(text)) {
      throw badUserInput(`items[${index}].text is not valid Unicode (it has an unpaired surrogate): send UTF-8 text`);
    }
    if (text.length > limits.maxItemTextLength) {
      throw badUserInput(`items[${index}].text has ${text.length} characters; the limit is ${limits.maxItemTextLength}`);
    }
    const id = item.id ?? null;
    if (id !== null && (typeof id !== 'string' || id.length > MAX_ITEM_ID_LENGTH || !isWellFormedText(id))) {
      throw badUserInput(`items[${index}].id must be valid Unicode text of at most ${MAX_ITEM_ID_LENGTH} characters`);
    }
    return { id, text };
  });

  const model = input.model ?? 'SENTIMENT';
  if (!INFERENCE_MODELS.includes(model)) {
    throw badUserInput(`"model" must be one of ${INFERENCE_MODELS.join(', ')}`);
  }

  const idempotencyKey = input.idempotencyKey ?? null;
  if (
    idempotencyKey !== null &&
    (typeof idempotencyKey !== 'string' || idempotencyKey.length === 0 || idempotencyKey.length > MAX_IDEMPOTENCY_KEY_LENGTH || !isWellFormedText(idempotencyKey))
  ) {
    throw badUserInput(`"idempotencyKey" must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters of valid Unicode`);
  }

  return {
    items,
    model,
    idempotencyKey,
    priority: integerIn('priority', input.priority, -PRIORITY_RANGE, PRIORITY_RANGE, 0),
    webhookUrl: validateWebhookUrl(input.webhookUrl ?? null),
    maxAttempts: integerIn('maxAttempts', input.maxAttempts, 1, MAX_ATTEMPTS_LIMIT, DEFAULT_MAX_ATTEMPTS),
    timeoutSeconds: integerIn('timeoutSeconds', input.timeoutSeconds, 1, MAX_TIMEOUT_SECONDS, null),
  };
}

function validateWebhookUrl(value: string | null): string | null {
  if (value === null) return null;
  let url: URL | null = null;
  try {
    url = typeof value === 'string' && value.length <= MAX_URL_LENGTH ? new URL(value) : null;
  } catch {
    url = null;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw badUserInput(`"webhookUrl" must be an absolute http(s) URL of at most ${MAX_URL_LENGTH} characters`);
  }
  return url.toString();
}

/**
 * A stable digest of what was asked for: the same key with the same fingerprint is a retry, with a
 * different one it is a conflict. Idempotency keys compare requests, not their JSON formatting.
 */
export function submissionFingerprint(submission: Submission): string {
  const { idempotencyKey: _key, ...request } = submission;
  return createHash('sha256').update(JSON.stringify(request)).digest('base64url');
}
