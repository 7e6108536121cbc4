import { badUserInput } from '../../domain/errors.ts';
import type { InferenceModel } from '../../domain/results.ts';
import type { SubmissionInput } from '../../domain/submission.ts';

/**
 * The REST body of a submit as the SubmissionInput every transport hands to TaskOperations.submit.
 * This checks JSON types and field names only, as GraphQL's input types do for that transport;
 * the rules (non-empty items, ranges, limits, models) are validateSubmission's, applied in submit.
 */

const SUBMISSION_FIELDS = ['items', 'model', 'priority', 'webhookUrl', 'maxAttempts', 'timeoutSeconds', 'idempotencyKey'] as const;
const ITEM_FIELDS = ['text', 'id'] as const;

type JsonObject = Record<string, unknown>;

const isObject = (value: unknown): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

function assertKnownFields(object: JsonObject, known: readonly string[], where: string): void {
  const unknown = Object.keys(object).find((key) => !known.includes(key));
  if (unknown !== undefined) {
    throw badUserInput(`${where} has an unknown field ${JSON.stringify(unknown.slice(0, 64))}: the fields are ${known.join(', ')}`);
  }
}

function optional<T>(value: unknown, type: 'string' | 'number', name: string): T | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== type) throw badUserInput(`${name} must be a ${type}`);
  return value as T;
}

function itemsFrom(value: unknown): SubmissionInput['items'] {
  if (!Array.isArray(value)) {
    throw badUserInput('"items" must be an array of items like { "text": "…", "id": "optional" }');
  }
  return value.map((item: unknown, index) => {
    if (!isObject(item)) throw badUserInput(`items[${index}] must be an object like { "text": "…" }`);
    assertKnownFields(item, ITEM_FIELDS, `items[${index}]`);
    return { text: optional<string>(item.text, 'string', `items[${index}].text`), id: optional<string>(item.id, 'string', `items[${index}].id`) };
  });
}

/** Both keys, when both are given, must be the same: which one should win is not guessable. */
function idempotencyKeyFrom(header: string | null, body: string | null): string | null {
  if (header !== null && body !== null && header !== body) {
    throw badUserInput(
      `the Idempotency-Key header (${JSON.stringify(header.slice(0, 64))}) and "idempotencyKey" in the body (${JSON.stringify(body.slice(0, 64))}) differ: send one of them, or the same key in both`,
    );
  }
  return header ?? body;
}

/** `[items…]` or `{ "items": [...], "model", … }`, plus the Idempotency-Key header (null when absent). */
export function submissionFromBody(body: unknown, idempotencyKeyHeader: string | null): SubmissionInput {
  if (Array.isArray(body)) {
    return { items: itemsFrom(body), idempotencyKey: idempotencyKeyHeader };
  }
  if (!isObject(body)) {
    throw badUserInput('the body must be a JSON array of items, or an object with "items" and options');
  }
  assertKnownFields(body, SUBMISSION_FIELDS, 'the body');
  return {
    items: itemsFrom(body.items),
    model: optional<InferenceModel>(body.model, 'string', '"model"'),
    priority: optional<number>(body.priority, 'number', '"priority"'),
    webhookUrl: optional<string>(body.webhookUrl, 'string', '"webhookUrl"'),
    maxAttempts: optional<number>(body.maxAttempts, 'number', '"maxAttempts"'),
    timeoutSeconds: optional<number>(body.timeoutSeconds, 'number', '"timeoutSeconds"'),
    idempotencyKey: idempotencyKeyFrom(idempotencyKeyHeader, optional<string>(body.idempotencyKey, 'string', '"idempotencyKey"')),
  };
}
