import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { printedSchema } from '../src/graphql/schema.ts';

it('schema.graphql is the schema the code builds (run `npm run schema` after changing it)', () => {
  const checkedIn = readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8');
  expect(checkedIn).toBe(printedSchema());
});
