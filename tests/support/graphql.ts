// A GraphQL query over HTTP as a user's client sends it, for tests of a running server: the
// answer's data, or a failed assertion carrying the errors it came with.
import assert from 'node:assert/strict'

export async function gql<T>(url: string, query: string, variables: object = {}): Promise<T> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  })
  const body = (await res.json()) as { data?: T; errors?: unknown[] }
  assert.equal(body.errors, undefined, JSON.stringify(body.errors))
  return body.data!
}
