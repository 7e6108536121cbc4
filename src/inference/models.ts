import winkNLP from 'wink-nlp';
import type { Detail } from 'wink-nlp';
import model from 'wink-eng-lite-web-model';
import type { Entity, InferenceModel, ItemOutcome, SentimentLabel } from '../domain/results.ts';

export interface Models {
  run(model: InferenceModel, text: string): ItemOutcome;
  /**
   * Loads the model again (100-200 ms), forgetting the words it learned from texts: wink adds every
   * word it has not seen before to its lexicon for good, about 135 bytes each, so a thread fed new
   * words without end (ids, numbers, names, typos) would grow without end.
   */
  reload(): void;
}

export interface ModelOptions {
  /**
   * Longest item, in tokens, the models accept. Like a model's context length, it is only known
   * once the text is tokenized, so a longer item fails on its own (ITEM_TOO_LONG), not the task.
   */
  maxTokens: number;
}

/** Scores inside this band are too weak to call either way. */
const NEUTRAL_BAND = 0.05;

/** Loads the wink model (150-250 ms, ~60 MB in a fresh thread): once per thread, then run() per item. */
export function loadModels(options: ModelOptions): Models {
  let nlp = winkNLP(model);
  const its = nlp.its;
  type Doc = ReturnType<typeof nlp.readDoc>;

  function sentiment(doc: Doc): ItemOutcome {
    const score = doc.out(its.sentiment) as number;
    const label: SentimentLabel =
      score > NEUTRAL_BAND ? 'POSITIVE' : score < -NEUTRAL_BAND ? 'NEGATIVE' : 'NEUTRAL';
    return { ok: true, output: { kind: 'sentiment', label, score: Math.round(score * 1e4) / 1e4 } };
  }

  function entities(text: string, doc: Doc): ItemOutcome {
    const tokens = doc.tokens().out();
    const starts = tokenStarts(text, tokens, doc.tokens().out(its.precedingSpaces));
    // wink's out() is typed as a union with string[]; these its-functions return objects/ranges.
    const details = doc.entities().out(its.detail) as Detail[];
    const spans = doc.entities().out(its.span) as number[][];
    const found: Entity[] = [];
    let cursor = 0;
    details.forEach(({ value, type }, i) => {
      const [first = -1, last = -1] = spans[i] ?? [];
      const start = starts[first] ?? -1;
      const lastStart = starts[last] ?? -1;
      const end = lastStart + (tokens[last]?.length ?? 0);
      // Token offsets are verified per token, but an entity value is wink's own rendering of
      // the span: only trust the offsets if they reproduce it exactly.
      const at = start >= 0 && lastStart >= 0 && text.slice(start, end) === value ? start : text.indexOf(value, cursor);
      // An entity we cannot place exactly is dropped: wrong offsets would be worse than none.
      if (at < 0) return;
      found.push({ text: value, type, start: at, end: at + value.length });
      cursor = at + value.length;
    });
    return { ok: true, output: { kind: 'entities', entities: found } };
  }

  return {
    run(kind, text) {
      // Everything inside the try: texts arrive from another thread, so even the type is not a given.
      try {
        if (!isWellFormed(text)) {
          return { ok: false, error: { code: 'INVALID_TEXT', message: 'item text contains unpaired UTF-16 surrogates' } };
        }
        const doc = nlp.readDoc(text);
        const tokens = doc.tokens().length();
        if (tokens > options.maxTokens) {
          return { ok: false, error: { code: 'ITEM_TOO_LONG', message: `item has ${tokens} tokens; the model takes at most ${options.maxTokens}` } };
        }
        return kind === 'SENTIMENT' ? sentiment(doc) : entities(text, doc);
      } catch (err) {
        return { ok: false, error: { code: 'MODEL_ERROR', message: err instanceof Error ? err.message : String(err) } };
      }
    },
    reload() {
      nlp = winkNLP(model);
    },
  };
}

/**
 * UTF-16 start offset of each token, or -1 when it cannot be located. Tokens plus their
 * preceding spaces normally rebuild the text, but wink silently drops some characters
 * (e.g. U+2028), so each token is checked against the text and re-synchronised if needed.
 */
function tokenStarts(text: string, tokens: string[], spaces: string[]): number[] {
  let cursor = 0;
  return tokens.map((token, i) => {
    const expected = cursor + (spaces[i]?.length ?? 0);
    const at = text.startsWith(token, expected) ? expected : text.indexOf(token, cursor);
    if (at >= 0) cursor = at + token.length;
    return at;
  });
}

/** String.prototype.isWellFormed is Node 20+ but absent from the ES2023 lib typings. */
function isWellFormed(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return false;
    }
  }
  return true;
}
