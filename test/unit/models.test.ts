import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { describe, it, expect } from 'vitest';
import { loadModels } from '../../src/inference/models.ts';
import type { EntitiesOutput, ItemOutcome, SentimentOutput } from '../../src/domain/results.ts';

const models = loadModels({ maxTokens: 2_048 });

function sentiment(text: string): SentimentOutput {
  const outcome = models.run('SENTIMENT', text);
  if (!outcome.ok || outcome.output.kind !== 'sentiment') throw new Error(`unexpected ${JSON.stringify(outcome)}`);
  return outcome.output;
}

function entities(text: string): EntitiesOutput['entities'] {
  const outcome = models.run('ENTITIES', text);
  if (!outcome.ok || outcome.output.kind !== 'entities') throw new Error(`unexpected ${JSON.stringify(outcome)}`);
  return outcome.output.entities;
}

describe('SENTIMENT', () => {
  it('labels clearly positive, negative and neutral sentences', () => {
    expect(sentiment('I love this product, it is absolutely wonderful!').label).toBe('POSITIVE');
    expect(sentiment('This is a terrible, awful experience and I hate it.').label).toBe('NEGATIVE');
    expect(sentiment('The box is on the table.')).toEqual({ kind: 'sentiment', label: 'NEUTRAL', score: 0 });
  });

  it('keeps the score in [-1, 1] with at most 4 decimals', () => {
    for (const text of ['good', 'not good at all', 'best best best!!! :)', 'bad bad bad', 'Great product but bad support']) {
      const { score } = sentiment(text);
      expect(Math.abs(score)).toBeLessThanOrEqual(1);
      expect(Number(score.toFixed(4))).toBe(score);
    }
  });
});

describe('ENTITIES', () => {
  it('finds typed entities', () => {
    const found = entities('Pay $5,000 on 5th June 2020 at 10:30 am, mail a@b.com #launch @joe 50%');
    expect(found.map((e) => [e.type, e.text])).toEqual([
      ['MONEY', '$5,000'],
      ['DATE', '5th June 2020'],
      ['TIME', '10:30 am'],
      ['EMAIL', 'a@b.com'],
      ['HASHTAG', '#launch'],
      ['MENTION', '@joe'],
      ['PERCENT', '50%'],
    ]);
  });

  it.each([
    ['multi-byte letters', 'Café naïve résumé costs $5 on Monday'],
    ['emoji (surrogate pairs, ZWJ sequences, flags)', '😀 hi 👨‍👩‍👧 and 🇫🇷 then $10 😀😀 #tag'],
    ['runs of spaces and tabs', 'on 5th   June\t2020  we   paid  $ 5,000'],
    ['newlines and leading/trailing whitespace', '  \n\nCall @ann\r\non Monday at 3 pm\n\n  '],
    // wink drops U+2028 from its tokens, so naive offset accumulation drifts after it.
    ['characters wink drops', 'line\u2028break then #after on 1st Jan 2021 \u2028 😀'],
    ['a repeated value', '#a #a #a then $5 and $5'],
  ])('offsets slice back to the entity text: %s', (_, text) => {
    const found = entities(text);
    expect(found.length).toBeGreaterThan(0);
    let previousEnd = 0;
    for (const e of found) {
      expect(text.slice(e.start, e.end)).toBe(e.text);
      expect(e.start).toBeGreaterThanOrEqual(previousEnd);
      previousEnd = e.end;
    }
  });

  it('locates entities after dropped characters at their real position', () => {
    // A bare search for '42' would land inside 'v42x': offsets must come from the tokens.
    const text = 'a\u2028b v42x and 42 apples';
    expect(entities(text)).toEqual([{ text: '42', type: 'CARDINAL', start: 13, end: 15 }]);
  });

  it('returns no entities for empty text', () => {
    expect(entities('')).toEqual([]);
  });
});

describe('item failures are returned, not thrown', () => {
  const invalid: ItemOutcome = {
    ok: false,
    error: { code: 'INVALID_TEXT', message: 'item text contains unpaired UTF-16 surrogates' },
  };

  it.each(['\ud800abc', 'abc\udc00', 'x\udbff'])('rejects lone surrogates in %j', (text) => {
    expect(models.run('SENTIMENT', text)).toEqual(invalid);
    expect(models.run('ENTITIES', text)).toEqual(invalid);
  });

  it('accepts well-formed surrogate pairs', () => {
    expect(models.run('SENTIMENT', '\ud83d\ude00').ok).toBe(true);
  });

  it('reports a wink exception as MODEL_ERROR', () => {
    // Texts cross a thread boundary, so a non-string can reach the model at runtime.
    const outcome = models.run('SENTIMENT', 42 as unknown as string);
    expect(outcome).toMatchObject({ ok: false, error: { code: 'MODEL_ERROR' } });
    expect(outcome.ok === false && outcome.error.message).toMatch(/string/);
  });
});

describe('token limit', () => {
  const short = loadModels({ maxTokens: 5 });
  it('fails an item longer than maxTokens on its own, with a coded error', () => {
    expect(short.run('SENTIMENT', 'one two three four five')).toMatchObject({ ok: true });
    expect(short.run('ENTITIES', 'one two three four five six')).toEqual({
      ok: false,
      error: { code: 'ITEM_TOO_LONG', message: 'item has 6 tokens; the model takes at most 5' },
    });
  });
});

describe('reload', () => {
  it('drops the words learned from texts (wink keeps every new one) and answers as before', () => {
    // A full collection on demand, to read the live heap (vitest runs without --expose-gc).
    setFlagsFromString('--expose-gc');
    const collect = runInNewContext('gc') as () => void;
    const own = loadModels({ maxTokens: 2_048 });
    const probe = 'This is a terrible, awful experience and I hate it.';
    const before = own.run('SENTIMENT', probe);
    const live = () => {
      collect();
      return process.memoryUsage().heapUsed;
    };
    const start = live();
    for (let i = 0; i < 30_000; i++) own.run('SENTIMENT', `order qx${i}a shipped to wz${i}b today`);
    const grown = live() - start;
    own.reload();
    const after = live() - start;
    // About 135 bytes a word: some 8 MB for 60,000 new words, all of it gone with the reload.
    expect(grown).toBeGreaterThan(4_000_000);
    expect(after).toBeLessThan(grown / 4);
    expect(own.run('SENTIMENT', probe)).toEqual(before);
  });
});
