// GraphQL abuse against the API on a real HTTP server (127.0.0.1, port 0) over chDB: depth 100,
// 1,000 aliases, 50,000 tokens, fragment cycles, batches of 100, 10 MB bodies and `first: 1e9`
// are each refused with a coded error before any store query — the store is wrapped to count
// every statement, and a plain query first proves the count moves — and quickly: each
// refusal's round trip is timed and the p99 asserted (loosely: the machine is shared) and
// reported. The soak profile sends each shape 200 times.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createApi, startApiServer } from '@ebbflow/api'
import { createLogger } from '@ebbflow/common'
import { ChdbStore, migrate, type Store } from '@ebbflow/store'
import { fuzzProfile } from './profile.ts'

const TOKEN = 'token-abuse-0123456789'
const REPEAT = fuzzProfile.cases(20, 200)
/**
 * A bound for a shared 2-core machine where other suites run Kafka, chDB and kernel tests at
 * the same time; the measured p50/p99 are reported (bench/RESULTS.md) against the 20 ms.
 */
const P99_BOUND_MS = 250

interface Shape {
  name: string
  /** The request body (a JSON text), or a size for a body of that many bytes. */
  body: () => string
  /** HTTP status and error code it must be refused with. */
  status: number
  code: RegExp
}

const json = (query: string, variables: Record<string, unknown> = {}) =>
  JSON.stringify({ query, variables })

const SHAPES: Shape[] = [
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

/** The store, counting every statement the API sends it. */
function counting(store: Store): { store: Store; count: () => number } {
  let n = 0
  const wrapped = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver)
      if (typeof v !== 'function') return v
      if (['query', 'exec', 'insert', 'queryRaw'].includes(String(prop)))
        return (...args: unknown[]) => {
          n++
          return v.apply(target, args)
        }
      return v.bind(target)
    },
  })
  return { store: wrapped, count: () => n }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

describe('GraphQL abuse is refused before any store query', {
  timeout: fuzzProfile.soak ? 1_800_000 : 120_000,
}, () => {
  let tmp: string
  let chdb: ChdbStore
  let url: string
  let close: () => Promise<void>
  let count: () => number

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-abuse-'))
    chdb = await ChdbStore.open(join(tmp, 'data'))
    await migrate(chdb)
    const c = counting(chdb)
    count = c.count
    const api = createApi({
      store: c.store,
      tokens: { [TOKEN]: ['*'] },
      logger: createLogger('abuse', 'silent'),
    })
    const server = await startApiServer({ api, port: 0, host: '127.0.0.1', console: false })
    url = server.url
    close = server.close
  })
  after(async () => {
    await close?.()
    await chdb?.close()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  /**
   * Posts one request and times the refusal: from the moment the whole request was handed to
   * the socket to the moment the whole answer was read. The upload of a 10 MB body is the
   * client's and the network's time, not the server's: the server refuses it from its
   * Content-Length, before reading a byte of it (guard.ts).
   */
  function post(body: string): Promise<{ status: number; text: string; ms: number }> {
    const bytes = Buffer.from(body)
    return new Promise((resolve, reject) => {
      let sent = 0
      const req = request(
        url,
        {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'content-length': bytes.length,
            authorization: `Bearer ${TOKEN}`,
          },
        },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              text: Buffer.concat(chunks).toString('utf8'),
              ms: performance.now() - (sent || performance.now()),
            }),
          )
          res.on('error', reject)
        },
      )
      req.on('error', reject)
      req.on('finish', () => {
        sent = performance.now()
      })
      req.end(bytes)
    })
  }

  it('counts the statements of a plain query (the counter works)', async () => {
    const before = count()
    const r = await post(json('{ collectorHealth { node } }'))
    assert.equal(r.status, 200, r.text)
    assert.ok(count() > before, 'a plain query reached no store: the counter counts nothing')
  })

  const figures: Record<string, { p50: number; p99: number; max: number; n: number }> = {}
  for (const shape of SHAPES) {
    it(`refuses ${shape.name} (${REPEAT} times) with no store query`, async () => {
      const body = shape.body()
      const times: number[] = []
      const before = count()
      for (let i = 0; i < REPEAT; i++) {
        const r = await post(body)
        times.push(r.ms)
        assert.equal(r.status, shape.status, `${shape.name}: ${r.text.slice(0, 300)}`)
        const errors = (JSON.parse(r.text) as { errors?: { extensions?: { code?: string } }[] })
          .errors
        assert.ok(errors?.length, `${shape.name}: no error: ${r.text.slice(0, 300)}`)
        for (const e of errors)
          assert.match(
            e.extensions?.code ?? '',
            shape.code,
            `${shape.name}: ${r.text.slice(0, 300)}`,
          )
      }
      assert.equal(count() - before, 0, `${shape.name} reached the store`)
      times.sort((a, b) => a - b)
      const f = {
        n: times.length,
        p50: percentile(times, 50),
        p99: percentile(times, 99),
        max: times.at(-1)!,
      }
      figures[shape.name] = f
      assert.ok(
        f.p99 <= P99_BOUND_MS,
        `${shape.name}: p99 ${f.p99.toFixed(1)} ms > ${P99_BOUND_MS} ms`,
      )
    })
  }

  it('reports the figures', () => {
    fuzzProfile.report('graphql-abuse', {
      repeat: REPEAT,
      p99BoundMs: P99_BOUND_MS,
      storeQueries: 0,
      latencyMs: Object.fromEntries(
        Object.entries(figures).map(([k, f]) => [
          k,
          { n: f.n, p50: +f.p50.toFixed(2), p99: +f.p99.toFixed(2), max: +f.max.toFixed(2) },
        ]),
      ),
    })
  })
})
