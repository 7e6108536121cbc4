import { describe, expect, it } from 'vitest';
import { LonghaulError } from '../../src/domain/errors.ts';
import { isWellFormedText, submissionFingerprint, validateSubmission } from '../../src/domain/submission.ts';
import { decodeCursor, encodeCursor } from '../../src/domain/cursor.ts';
import { assertTaskId, isTaskId, newTaskId } from '../../src/domain/ids.ts';

const limits = { maxItemsPerTask: 10, maxItemTextLength: 50 };

describe('validateSubmission', () => {
  it('applies the defaults', () => {
    expect(validateSubmission({ items: [{ text: 'hi' }] }, limits)).toEqual({
      items: [{ id: null, text: 'hi' }],
      model: 'SENTIMENT',
      idempotencyKey: null,
      priority: 0,
      webhookUrl: null,
      maxAttempts: 3,
      timeoutSeconds: null,
    });
  });

  it('throws BAD_USER_INPUT naming the field', () => {
    const attempt = () => validateSubmission({ items: [{ text: 'ok' }, { text: '' }] }, limits);
    expect(attempt).toThrow(LonghaulError);
    expect(attempt).toThrow(/items\[1\]/);
  });

  it('normalises the webhook URL', () => {
    expect(validateSubmission({ items: [{ text: 'x' }], webhookUrl: 'HTTPS://Example.com' }, limits).webhookUrl).toBe('https://example.com/');
  });
});

describe('submissionFingerprint', () => {
  const a = validateSubmission({ items: [{ text: 'x' }], idempotencyKey: 'k1' }, limits);
  it('ignores the key itself and sees any change of input', () => {
    expect(submissionFingerprint(a)).toBe(submissionFingerprint({ ...a, idempotencyKey: 'k2' }));
    expect(submissionFingerprint(a)).not.toBe(submissionFingerprint({ ...a, priority: 1 }));
    expect(submissionFingerprint(a)).not.toBe(submissionFingerprint({ ...a, items: [{ id: null, text: 'y' }] }));
  });
});

describe('isWellFormedText', () => {
  it('accepts surrogate pairs and refuses lone halves', () => {
    expect(isWellFormedText('emoji 😀 ok')).toBe(true);
    expect(isWellFormedText('lone \ud800 high')).toBe(false);
    expect(isWellFormedText('lone \udc00 low')).toBe(false);
    expect(isWellFormedText('\ud83d')).toBe(false);
  });
});

describe('ids and cursors', () => {
  it('task ids are URL-safe and recognised', () => {
    const id = newTaskId();
    expect(isTaskId(id)).toBe(true);
    expect(encodeURIComponent(id)).toBe(id);
    expect(() => assertTaskId('task_short')).toThrow(/not a task id/);
  });

  it('a cursor of one list is refused by another', () => {
    expect(decodeCursor('item', encodeCursor('item', 42))).toBe(42);
    expect(() => decodeCursor('task', encodeCursor('item', 42))).toThrow(/not a cursor/);
    expect(() => decodeCursor('item', 'garbage')).toThrow(/not a cursor/);
  });
});
