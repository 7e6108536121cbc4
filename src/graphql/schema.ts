import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { builder } from './builder.ts';
import './scalars.ts';
import './task.ts';
import './submit.ts';

export const schema: GraphQLSchema = builder.toSchema();

/** The checked-in schema.graphql is exactly this text; a test fails when they differ. */
export function printedSchema(): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}
