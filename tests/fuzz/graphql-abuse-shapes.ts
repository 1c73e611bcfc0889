// The eight abusive GraphQL requests of issue 11, shared by the abuse test
// (graphql-abuse.test.ts) and its benchmark (bench/graphql-abuse).

export interface Shape {
  name: string
  /** The request body, a JSON text. */
  body: () => string
  /** HTTP status and error code it must be refused with. */
  status: number
  code: RegExp
}

export const json = (query: string, variables: Record<string, unknown> = {}) =>
  JSON.stringify({ query, variables })

export const SHAPES: Shape[] = [
  {
    name: 'depth 100',
    body: () =>
      json(
        `{ execSessions(filter: {}) { ${'edges { node { commands { '.repeat(33)}comm${' } } }'.repeat(33)} } }`,
      ),
    status: 200,
    code: /^(QUERY_TOO_COMPLEX|GRAPHQL_VALIDATION_FAILED)$/,
  },
  {
    name: '1,000 aliases',
    body: () =>
      json(
        `{ ${Array.from({ length: 1000 }, (_, i) => `a${i}: collectorHealth { node }`).join(' ')} }`,
      ),
    status: 200,
    code: /^QUERY_TOO_COMPLEX$/,
  },
  {
    name: '50,000 tokens',
    body: () => json(`{ collectorHealth { ${'node '.repeat(49_990)} } }`),
    status: 200,
    code: /^QUERY_TOO_COMPLEX$/,
  },
  {
    name: 'fragment cycle',
    body: () =>
      json(
        '{ ...A } fragment A on Query { collectorHealth { node } ...B } fragment B on Query { ...A }',
      ),
    status: 200,
    code: /^(QUERY_TOO_COMPLEX|GRAPHQL_VALIDATION_FAILED)$/,
  },
  {
    name: 'batch of 100',
    body: () =>
      JSON.stringify(
        Array.from({ length: 100 }, () => ({ query: '{ collectorHealth { node } }' })),
      ),
    status: 400,
    code: /./,
  },
  {
    name: '10 MB body',
    body: () => json('{ collectorHealth { node } }', { pad: 'x'.repeat(10 * 1024 * 1024) }),
    status: 413,
    code: /^PAYLOAD_TOO_LARGE|REQUEST_TOO_LARGE|BODY_TOO_LARGE$/,
  },
  {
    name: 'first: 1e9 (literal)',
    body: () =>
      json('{ execEvents(filter: {}, first: 1000000000) { edges { node { pid comm } } } }'),
    status: 200,
    code: /^(QUERY_TOO_COMPLEX|PAGE_TOO_LARGE)$/,
  },
  {
    name: 'first: 1e9 (variable)',
    body: () =>
      json('query ($n: Int) { execEvents(filter: {}, first: $n) { edges { node { pid } } } }', {
        n: 1e9,
      }),
    status: 200,
    code: /^PAGE_TOO_LARGE$/,
  },
]
