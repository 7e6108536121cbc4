import { GraphQLError, Kind, type FieldNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { LonghaulError } from '../../src/domain/errors.ts';
import { maskError, maskErrorForWebSocket } from '../../src/graphql/maskError.ts';

const node: FieldNode = { kind: Kind.FIELD, name: { kind: Kind.NAME, value: 'task' } };
const located = (original: Error, path: Array<string | number> | undefined = ['task']) =>
  new GraphQLError(original.message, { nodes: [node], path: path ?? null, originalError: original });

function mask(error: unknown) {
  const internal: unknown[] = [];
  const masked = maskError(error, (e) => internal.push(e)) as GraphQLError;
  return { masked, internal };
}

describe('maskError', () => {
  it('passes our coded errors with their code and extensions', () => {
    const { masked, internal } = mask(located(new LonghaulError('QUEUE_FULL', 'the queue is full', { retryAfterSeconds: 5 })));
    expect(masked.message).toBe('the queue is full');
    expect(masked.extensions).toEqual({ retryAfterSeconds: 5, code: 'QUEUE_FULL' });
    expect(masked.path).toEqual(['task']);
    expect(internal).toEqual([]);
  });

  it('hides any other error behind INTERNAL_SERVER_ERROR and reports it', () => {
    const cause = new Error('SQLITE_CORRUPT: database disk image is malformed');
    const { masked, internal } = mask(located(cause));
    expect(masked.message).not.toMatch(/SQLITE/);
    expect(masked.extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR' });
    expect(internal).toHaveLength(1);
  });

  it('treats a code-less GraphQL error raised while resolving as ours, not the client’s', () => {
    const { masked, internal } = mask(new GraphQLError('Int cannot represent non-integer value: 1.5', { path: ['task', 'attempt'] }));
    expect(masked.extensions.code).toBe('INTERNAL_SERVER_ERROR');
    expect(masked.message).not.toContain('1.5');
    expect(internal).toHaveLength(1);
  });

  it('gives request errors without a code BAD_USER_INPUT', () => {
    const { masked, internal } = mask(new GraphQLError('Variable "$id" of required type "ID!" was not provided.'));
    expect(masked.extensions.code).toBe('BAD_USER_INPUT');
    expect(internal).toEqual([]);
  });

  it('speaks the contract’s codes for yoga’s, keeping the HTTP status hint', () => {
    const parse = mask(new GraphQLError('Syntax Error', { extensions: { code: 'GRAPHQL_PARSE_FAILED', http: { status: 400 } } })).masked;
    expect(parse.extensions).toEqual({ code: 'BAD_USER_INPUT', http: { status: 400 } });
    expect(mask(new GraphQLError('x', { extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } })).masked.extensions.code).toBe('BAD_USER_INPUT');
    expect(mask(new GraphQLError('too big', { extensions: { code: 'REQUEST_ENTITY_TOO_LARGE' } })).masked.extensions.code).toBe('PAYLOAD_TOO_LARGE');
    expect(maskErrorForWebSocket(new GraphQLError('Syntax Error', { extensions: { code: 'GRAPHQL_PARSE_FAILED', http: { status: 400 } } }), () => {}).extensions).toEqual({
      code: 'BAD_USER_INPUT',
    });
  });
});
