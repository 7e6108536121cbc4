/** The GraphQL documents the benchmarks send: the README's, as a client would write them. */

export const SUBMIT = `mutation Submit($input: SubmitBulkInferenceInput!) {
  submitBulkInference(input: $input) { id status itemsTotal acceptedAt suggestedNextPollTime }
}`;

export const POLL = `query Poll($id: ID!) {
  task(id: $id) {
    status progressPercentage itemsSucceeded itemsFailed
    queuePosition suggestedNextPollTime estimatedCompletionTime attempt error { code message }
  }
}`;

export const WATCH = `subscription Watch($id: ID!) {
  taskUpdated(id: $id) { id status progressPercentage itemsSucceeded itemsFailed itemsTotal attempt updatedAt suggestedNextPollTime estimatedCompletionTime }
}`;

export const CANCEL = `mutation Cancel($id: ID!) { cancelTask(id: $id) { id status } }`;

const SENTENCES = [
  'I love this product, it works great.',
  'The worst purchase I have made, very disappointed.',
  'The parcel arrived on Tuesday.',
  'Support answered quickly and solved my problem, thank you!',
  'It broke after two days and nobody replies to my emails.',
  'Delivery was on time; the box was a little dented.',
  'Absolutely fantastic quality for the price.',
  'Meh. It does what it says, nothing more.',
];

/** The i-th text of every benchmark: short review-like sentences, each one distinct. */
export function text(i: number): string {
  return `${SENTENCES[i % SENTENCES.length]} #${i}`;
}

export function items(count: number, offset = 0): Array<{ id: string; text: string }> {
  return Array.from({ length: count }, (_, i) => ({ id: `item-${offset + i}`, text: text(offset + i) }));
}
