import { describe, expect, it } from 'vitest';
import { VocabularyBudget } from '../../src/inference/vocabularyBudget.ts';

const MB = 1024 * 1024;

describe('VocabularyBudget', () => {
  it('measures growth from the first full collection after loading, and asks for one reload once past the budget', () => {
    const budget = new VocabularyBudget(64 * MB);
    expect(budget.takeReload()).toBe(false);
    budget.afterFullCollection(60 * MB); // the baseline: the model and little else
    budget.afterFullCollection(124 * MB); // 64 MB more: at the budget, not past it
    expect(budget.takeReload()).toBe(false);
    budget.afterFullCollection(125 * MB);
    expect(budget.takeReload()).toBe(true);
    expect(budget.takeReload()).toBe(false);
  });

  it('takes a new baseline after a reload: the heap it is read against is the reloaded one', () => {
    const budget = new VocabularyBudget(10 * MB);
    budget.afterFullCollection(60 * MB);
    budget.afterFullCollection(80 * MB);
    expect(budget.takeReload()).toBe(true);
    // The first full collection after the reload may still hold more than the old baseline.
    budget.afterFullCollection(65 * MB);
    budget.afterFullCollection(74 * MB);
    expect(budget.takeReload()).toBe(false);
    budget.afterFullCollection(76 * MB);
    expect(budget.takeReload()).toBe(true);
  });
});
