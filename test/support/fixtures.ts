/** Short texts with a clear sentiment, so a test can check labels and not just shapes. */
export const POSITIVE = 'I love this product, it is wonderful and works great.';
export const NEGATIVE = 'Terrible service, awful support, I hate it.';

export function items(count: number, text = POSITIVE) {
  return Array.from({ length: count }, (_, i) => ({ id: `item-${i}`, text: `${text} #${i}` }));
}

export const TASK_FIELDS = `
  id kind status progressPercentage itemsTotal itemsSucceeded itemsFailed
  acceptedAt startedAt finishedAt updatedAt suggestedNextPollTime estimatedCompletionTime queuePosition
  attempt maxAttempts priority idempotencyKey error { code message } links { self results }`;

export const SUBMIT = `mutation Submit($input: SubmitBulkInferenceInput!) { submitBulkInference(input: $input) { ${TASK_FIELDS} } }`;
export const TASK = `query Task($id: ID!) { task(id: $id) { ${TASK_FIELDS} } }`;
export const WATCH = `subscription Watch($id: ID!) {
  taskUpdated(id: $id) { id status progressPercentage itemsSucceeded itemsFailed itemsTotal attempt updatedAt suggestedNextPollTime estimatedCompletionTime } }`;
export const CANCEL = `mutation Cancel($id: ID!) { cancelTask(id: $id) { ${TASK_FIELDS} } }`;
export const RESULTS = `query Results($id: ID!, $first: Int, $after: String) {
  task(id: $id) { results(first: $first, after: $after) {
    edges { cursor node { index itemId status error { code message }
      output { __typename ... on SentimentOutput { label score } ... on EntitiesOutput { entities { text type start end } } } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }`;
