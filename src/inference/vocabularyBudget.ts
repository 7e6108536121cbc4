/**
 * When the words a model has learned from texts are worth dropping: once a full garbage collection
 * (after which the heap holds only what is live) finds the live heap more than `budgetBytes` above
 * what it was at the first full collection after the models were loaded. Only full collections are
 * read: any other moment counts garbage too, and a reload for garbage would cost 100-200 ms for
 * nothing.
 */
export class VocabularyBudget {
  #baseline: number | null = null;
  #due = false;
  constructor(private readonly budgetBytes: number) {}

  /** The live heap, read just after a full collection. */
  afterFullCollection(liveBytes: number): void {
    if (this.#baseline === null) this.#baseline = liveBytes;
    else if (liveBytes - this.#baseline > this.budgetBytes) this.#due = true;
  }

  /** True once, when a reload is due; the next full collection after it sets the new baseline. */
  takeReload(): boolean {
    if (!this.#due) return false;
    this.#due = false;
    this.#baseline = null;
    return true;
  }
}
