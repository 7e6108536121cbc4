import { GraphQLError } from 'graphql';
import { builder } from './builder.ts';

/** ISO 8601 in UTC, to the millisecond. The store keeps epoch milliseconds. */
builder.scalarType('DateTime', {
  description: 'An instant, as an ISO 8601 string in UTC (e.g. 2026-01-31T12:00:00.000Z).',
  serialize: (value) => new Date(value).toISOString(),
  parseValue: (value) => {
    const date = typeof value === 'string' ? new Date(value) : new Date(Number.NaN);
    if (Number.isNaN(date.getTime())) throw new GraphQLError('DateTime must be an ISO 8601 string', { extensions: { code: 'BAD_USER_INPUT' } });
    return date;
  },
});
