// The eight abusive GraphQL requests of issue 11, shared by the abuse test
// (graphql-abuse.test.ts) and its benchmark (bench/graphql-abuse), and how both time a refusal.
import { request } from 'node:http'

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

/**
 * Posts one request and times the refusal: from the moment the request is handed to the
 * socket to the moment the whole answer was read — what a client waits. The server answers a
 * body over its limit from the Content-Length, before reading a byte of it (guard.ts), so the
 * 10 MB upload is not waited for. Callers make the body into bytes once per shape, outside the
 * timing: the client shares the server's process and its garbage collector. A refused upload
 * is stopped once its answer is read, as curl and browsers stop on an early error answer (the
 * server reads no more of it and would hold it until it cuts the connection); resolves once the
 * request is closed, so that the next request timed does not run beside this one's upload.
 */
export function timedPost(
  url: string,
  bytes: Buffer,
  token: string,
): Promise<{ status: number; text: string; ms: number }> {
  return new Promise((resolve, reject) => {
    let answer: { status: number; text: string; ms: number } | undefined
    let closed = false
    const settle = () => {
      if (answer && closed) resolve(answer)
    }
    const req = request(
      url,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': bytes.length,
          authorization: `Bearer ${token}`,
        },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          answer = {
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString('utf8'),
            ms: performance.now() - started,
          }
          if (answer.status >= 400 && !req.writableFinished) req.destroy()
          settle()
        })
        res.on('error', reject)
      },
    )
    req.on('error', (err) => {
      // After the answer, the server may end a refused upload's connection under it.
      if (answer) return
      reject(err)
    })
    req.on('close', () => {
      closed = true
      settle()
    })
    const started = performance.now()
    req.end(bytes)
  })
}

/**
 * Sends every shape once to each of `urls` per round, the order of the variants alternating
 * round by round, and checks each refusal's status. `sending` is told the shape before each
 * request. Returns the times and the caller's process CPU (ms) per "shape|variant".
 */
export async function sendRounds(
  urls: Readonly<Record<string, string>>,
  rounds: number,
  token: string,
  sending: (shape: string) => void = () => {},
): Promise<{ times: Record<string, number[]>; cpuMs: Record<string, number> }> {
  const variants = Object.keys(urls)
  const bodies = SHAPES.map((s) => Buffer.from(s.body()))
  const times: Record<string, number[]> = {}
  const cpuMs: Record<string, number> = {}
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? variants : [...variants].reverse()
    for (const [i, shape] of SHAPES.entries())
      for (const v of order) {
        const c0 = process.cpuUsage()
        sending(shape.name)
        const r = await timedPost(urls[v]!, bodies[i]!, token)
        const c = process.cpuUsage(c0)
        if (r.status !== shape.status) throw new Error(`${v} ${shape.name}: status ${r.status}`)
        const key = `${shape.name}|${v}`
        times[key] = [...(times[key] ?? []), r.ms]
        cpuMs[key] = (cpuMs[key] ?? 0) + (c.user + c.system) / 1000
      }
  }
  return { times, cpuMs }
}
