// Tenant isolation and SQL injection, with generated queries. Two tenants' data is the kernel
// capture of the golden records, enriched as the collector enriches (namespace, pod, container,
// function, labels, session) and published through the real ingest path (the collector's
// encoder, the Ingestor, chDB), plus a traffic and a syscall-count delta per tenant for the
// series and the seccomp advice. Then:
// - tenant A's token (scoped as `ebbflow api --tokens-file` scopes it) sends generated queries
//   to every root field aimed at tenant B (B's namespace, pods, containers, functions, labels,
//   session ids) and to the live tail: no answer carries any of B's values;
// - the admin token sends generated SQL-injection payloads in every string argument of every
//   root field: no payload matches a row, none breaks a query, and the tables stay whole.
// CI sends 30 queries per root field, 3 live subscriptions and 20 payloads; `npm run soak`
// sends 1,000 per root field, 200 subscriptions and 1,000 payloads (the counts).
//
// The queries and payloads are drawn with fast-check from the printed seed and sent IN_FLIGHT at
// a time; every answer is checked on its own, and a failure names its field and its variables
// (drawn, not shrunk; EBBFLOW_FUZZ_SEED replays the run). Each live case has a source of its own
// that it closes, so a case ends as soon as its checks are done (it used to wait 12 s for yoga's
// keep-alive ping to notice the reader's cancel: 200 cases were 40 minutes of the soak).
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type Api, createApi, type LiveSource, MemoryLiveSource } from '@ebbflow/api'
import { createLogger } from '@ebbflow/common'
import { decodeBatch, newDecodeErrors } from '@ebbflow/common/events/decode'
import { DEFAULT_SECURITY_SYSCALLS, syscallName } from '@ebbflow/common/events/syscalls'
import type { CapturedEvent, EventMeta, RecordEvent } from '@ebbflow/common/events/types'
import {
  batchEvents,
  decodeEventBatch,
  familyOf,
  TOPICS,
  WallClock,
  writeEvent,
} from '@ebbflow/common/wire'
import { IngestMetrics, Ingestor, type InRecord, StoreDeadLetters } from '@ebbflow/ingester'
import { Long, v1 } from '@ebbflow/proto'
import { ChdbStore, migrate } from '@ebbflow/store'
import fc from 'fast-check'
import protobuf from 'protobufjs'
import { fuzzProfile } from './profile.ts'

const PER_FIELD = fuzzProfile.cases(30, 1000)
const PAYLOADS = fuzzProfile.cases(20, 1000)
const LIVE_CASES = fuzzProfile.cases(3, 200)
/**
 * Requests in flight at once: one can be parsed and answered while chDB runs the other's
 * statement. More did not help (1 and 6 took the same time on the loaded 2 cores, where CPU is
 * the limit) and only made each request's time a wait in chDB's queue.
 */
const IN_FLIGHT = 2
const TOKENS = {
  a: 'token-tenant-a-0123456789',
  b: 'token-tenant-b-0123456789',
  admin: 'token-admin-x-0123456789',
}

const golden: RecordEvent[] = []
decodeBatch(
  readFileSync(join(import.meta.dirname, '../../services/common/test/fixtures/golden/records.bin')),
  golden,
  newDecodeErrors(),
  { stringArgs: (nr) => DEFAULT_SECURITY_SYSCALLS[syscallName(nr)] ?? [] },
)

/** What enrichment gives each tenant's events; every value of B is a mark no A row has. */
function tenant(t: 'a' | 'b') {
  const meta: EventMeta = {
    node: 'node-iso',
    namespace: `tenant-${t}`,
    pod: `pod-${t}-1`,
    podUid: `uid-${t}-1`,
    container: `ctr-${t}`,
    workloadKind: 'Deployment',
    workloadName: `wl-${t}`,
    function: `fn-${t}`,
    labels: { app: `app-${t}` },
    session: `sess-${t}-1`,
  }
  return {
    meta,
    argMark: `mark-${t}`,
    remote: t === 'a' ? '192.0.2.11' : '198.51.100.66',
    syscall: t === 'a' ? { nr: 0, name: 'read' } : { nr: 101, name: 'ptrace' },
  }
}
const A = tenant('a')
const B = tenant('b')
const B_MARKS = [
  'tenant-b',
  'pod-b-1',
  'uid-b-1',
  'ctr-b',
  'wl-b',
  'fn-b',
  'app-b',
  'sess-b-1',
  'mark-b',
  '198.51.100.66',
  'ptrace',
]

/** Wall clock: the capture placed ten minutes ago (inside every table's TTL). */
const clock = new WallClock(
  BigInt(Date.now() - 10 * 60_000) * 1_000_000n - BigInt(Math.round(golden[0]!.bootNs)),
)

function eventsOf(t: ReturnType<typeof tenant>): CapturedEvent[] {
  const out: CapturedEvent[] = golden.map((e) => {
    const copy = { ...e, meta: t.meta } as CapturedEvent
    if (copy.kind === 'exec') copy.args = [...copy.args, t.argMark]
    return copy
  })
  const bootNs = golden.at(-1)!.bootNs
  out.push({
    kind: 'traffic',
    bootNs,
    intervalNs: 1e9,
    cgroupId: 1,
    direction: 'egress',
    protocol: 6,
    family: 4,
    remoteAddr: t.remote,
    remotePort: 443,
    localPort: 40_000,
    packets: 3,
    bytes: 1500,
    meta: t.meta,
  })
  out.push({
    kind: 'syscall_count',
    bootNs,
    intervalNs: 1e9,
    cgroupId: 1,
    syscallNr: t.syscall.nr,
    syscall: t.syscall.name,
    count: 7,
    meta: t.meta,
  })
  return out
}

/** The collector's records: one EventBatch per topic, written by its own encoder. */
function records(t: ReturnType<typeof tenant>, n: number): InRecord[] {
  const byTopic = new Map<string, CapturedEvent[]>()
  for (const e of eventsOf(t)) {
    const topic = TOPICS[familyOf(e)]
    byTopic.set(topic, [...(byTopic.get(topic) ?? []), e])
  }
  return [...byTopic].map(([topic, events], i) => {
    const w = protobuf.Writer.create()
    for (const e of events) writeEvent(w, e, clock)
    const head = v1.EventBatch.encode({
      node: 'node-iso',
      bootId: 'boot-iso',
      batchId: `iso-${t.meta.namespace}-${i}`,
      sequence: Long.fromNumber(n + i, true),
    }).finish()
    return {
      topic,
      partition: 0,
      offset: String(n + i),
      key: null,
      value: Buffer.concat([head, w.finish()]),
    }
  })
}

/**
 * Runs `check` on every input with at most IN_FLIGHT running; resolves with each call's time,
 * ms, in input order, or rejects with the first failure (no new call starts after it).
 */
async function inPool<T>(inputs: readonly T[], check: (x: T) => Promise<void>): Promise<number[]> {
  const times = new Array<number>(inputs.length)
  let next = 0
  let failed = false
  const worker = async () => {
    while (!failed && next < inputs.length) {
      const i = next++
      const start = performance.now()
      try {
        await check(inputs[i]!)
      } catch (err) {
        failed = true
        throw err
      }
      times[i] = performance.now() - start
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
  return times
}

/** p50 and p99 of times in ms, rounded to 0.1 ms, for the report. */
function percentiles(times: number[]): { p50: number; p99: number } {
  const sorted = [...times].sort((a, b) => a - b)
  const at = (q: number) =>
    Math.round(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]! * 10) / 10
  return { p50: at(0.5), p99: at(0.99) }
}

interface Gql {
  data: unknown
  errors?: { message: string; extensions?: { code?: string } }[]
}

async function gql(api: Api, token: string, query: string, variables: object): Promise<Gql> {
  const res = await api.fetch('http://localhost/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  })
  return (await res.json()) as Gql
}

/** One query per root field, selecting everything that could carry another tenant's data. */
const ROOT_FIELDS: Record<string, string> = {
  execEvents: `query ($filter: EventFilter!, $after: String) { execEvents(filter: $filter, first: 100, after: $after) { edges { cursor node { namespace pod container comm args sessionId exitCode } } } }`,
  execSessions: `query ($filter: EventFilter!) { execSessions(filter: $filter, first: 100) { edges { node { id namespace pod commands { namespace comm args } } } } }`,
  execSession: `query ($id: ID!) { execSession(id: $id) { id namespace pod commands { comm args } } }`,
  connections: `query ($filter: EventFilter!) { connections(filter: $filter, first: 100) { edges { node { namespace pod comm sourceAddress destinationAddress } } } }`,
  serviceMap: `query ($filter: EventFilter!) { serviceMap(filter: $filter) { nodes { id namespace name } edges { source target bytesSent } } }`,
  trafficSeries: `query ($filter: EventFilter!, $step: String) { trafficSeries(filter: $filter, step: $step) { time ingressBytes egressBytes } }`,
  syscallCounts: `query ($filter: EventFilter!) { syscallCounts(filter: $filter, first: 100) { syscall count } }`,
  seccompProfile: `query ($ns: String!, $pod: String, $container: String) { seccompProfile(namespace: $ns, pod: $pod, container: $container) { pods syscalls { name pods } runtimeSyscalls { name } } }`,
  networkPolicy: `query ($ns: String!, $pod: String) { networkPolicy(namespace: $ns, pod: $pod) { ingress { peerSpec } egress { peerSpec } } }`,
  collectorHealth: `query ($node: String) { collectorHealth(node: $node) { node totalDrops } }`,
}

/** Refusals a scoped token may get; anything else (an internal error) fails the test. */
const REFUSALS = new Set(['FORBIDDEN_NAMESPACE', 'BAD_USER_INPUT', 'BAD_CURSOR'])

function assertNoB(r: Gql, label: string) {
  const text = JSON.stringify(r.data ?? null)
  for (const mark of B_MARKS)
    assert.ok(!text.includes(mark), `${label}: the answer shows ${mark}: ${text.slice(0, 300)}`)
  for (const e of r.errors ?? [])
    assert.ok(REFUSALS.has(e.extensions?.code ?? ''), `${label}: ${JSON.stringify(e)}`)
}

const bValue = fc.constantFrom(
  B.meta.namespace!,
  B.meta.pod!,
  B.meta.container!,
  B.meta.function!,
  B.meta.session!,
  'app-b',
)
const anyValue = fc.oneof(bValue, fc.constantFrom(A.meta.namespace!, A.meta.pod!, 'node-iso'))
const filter = fc.record(
  {
    namespace: fc.oneof(bValue, fc.constant(A.meta.namespace!)),
    pod: anyValue,
    container: anyValue,
    function: anyValue,
    node: fc.constant('node-iso'),
    // One match per key: two values for one key match nothing, not even the live sentinel.
    labels: fc.uniqueArray(
      fc.record({
        key: fc.constantFrom('app', 'app-b'),
        value: fc.option(anyValue, { nil: undefined }),
      }),
      { maxLength: 2, selector: (l) => l.key },
    ),
  },
  { requiredKeys: [] },
)
const variables = fc.record({
  filter,
  ns: fc.oneof(bValue, fc.constant(A.meta.namespace!)),
  pod: fc.option(anyValue, { nil: null }),
  container: fc.option(anyValue, { nil: null }),
  id: fc.oneof(fc.constant(B.meta.session!), anyValue),
  node: fc.option(fc.constant('node-iso'), { nil: null }),
  step: fc.constantFrom('1m', '5m'),
})

/** Payloads that would matter if any reached SQL text: quotes, comments, unions, parameters. */
const injection = fc.oneof(
  fc.constantFrom(
    "' OR 1=1 --",
    "tenant-a' OR namespace != '",
    "tenant-b') OR ('1'='1",
    "\\' OR 1=1 --",
    '{p0:String}',
    '{namespace:String}',
    "'; DROP TABLE ebbflow.process_events; --",
    'tenant-a\u0000tenant-b',
    '%',
    '_',
    '.*',
    "x' UNION ALL SELECT name, name FROM system.tables --",
    '`namespace`',
    "' || '",
    '$$ OR 1=1 $$',
  ),
  fc
    .tuple(
      fc.constantFrom("'", '"', '`', '\\', "\\'", ''),
      fc.constantFrom(
        ' OR 1=1',
        ' OR namespace LIKE ',
        ') OR (1=1',
        ' UNION SELECT 1',
        '; SELECT 1',
        '%',
        '',
      ),
      fc.string({ maxLength: 12 }),
      fc.constantFrom('--', '#', '/*', "'", ''),
    )
    .map((parts) => parts.join('')),
)

describe('tenant isolation and injection, generated queries', {
  timeout: fuzzProfile.soak ? 3_600_000 : 180_000,
}, () => {
  let tmp: string
  let store: ChdbStore
  let api: Api
  // Each live case gets its own source, closed when the case is done: closing ends the
  // subscription from the server's side at once (an in-process response stream cancelled by
  // its reader only notices at yoga's next keep-alive ping, 12 s later).
  let live = new MemoryLiveSource()
  const liveSource: LiveSource = { subscribe: () => live.subscribe() }
  let published: InRecord[] = []
  const timings: Record<string, { queries: number; p50: number; p99: number }> = {}
  const injectionTimings: Record<string, { queries: number; p50: number; p99: number }> = {}
  let started = 0

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-tenants-'))
    store = await ChdbStore.open(join(tmp, 'data'))
    await migrate(store)
    const ingestor = new Ingestor({
      store,
      deadLetters: new StoreDeadLetters(store),
      metrics: new IngestMetrics(),
      logger: createLogger('test', 'silent'),
      source: 'tenants',
    })
    published = [...records(A, 0), ...records(B, 100)]
    const result = await ingestor.ingestBlock(published, 'tenants-1')
    assert.equal(result.deadLetters, 0, 'the capture did not ingest cleanly')
    api = createApi({
      store,
      tokens: { [TOKENS.a]: ['tenant-a'], [TOKENS.b]: ['tenant-b'], [TOKENS.admin]: ['*'] },
      live: liveSource,
      logger: createLogger('api', 'silent'),
    })
    started = performance.now()
  })
  after(async () => {
    live.close()
    await store?.close()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  it('shows B its own rows through every field that names them (the marks can be found)', async () => {
    const seen = new Set<string>()
    const vars = {
      filter: {},
      ns: 'tenant-b',
      pod: null,
      container: null,
      id: 'sess-b-1',
      node: null,
      step: '1m',
    }
    for (const query of Object.values(ROOT_FIELDS)) {
      const r = await gql(api, TOKENS.b, query, vars)
      assert.equal(r.errors, undefined, JSON.stringify(r.errors))
      const text = JSON.stringify(r.data)
      for (const m of B_MARKS) if (text.includes(m)) seen.add(m)
    }
    for (const m of ['tenant-b', 'pod-b-1', 'sess-b-1', 'mark-b', 'ptrace'])
      assert.ok(
        seen.has(m),
        `B's own queries never show ${m}: the isolation checks would prove nothing`,
      )
  })

  for (const [field, query] of Object.entries(ROOT_FIELDS)) {
    it(`${field}: ${PER_FIELD} generated queries by A aimed at B return none of B's rows`, async () => {
      const cases = fc.sample(variables, { numRuns: PER_FIELD, seed: fuzzProfile.seed })
      assert.equal(cases.length, PER_FIELD)
      const times = await inPool(cases, async (vars) => {
        const r = await gql(api, TOKENS.a, query, vars)
        assertNoB(r, `${field} ${JSON.stringify(vars)}`)
      })
      timings[field] = { queries: times.length, ...percentiles(times) }
    })
  }

  it(`live tail: ${LIVE_CASES} generated subscriptions by A aimed at B receive none of B's events`, async () => {
    const events = published.flatMap((r) => batchEvents(decodeEventBatch(r.value!)))
    const exec = events.find((e) => e.kind === 'exec')!
    await fc.assert(
      fc.asyncProperty(filter, async (f) => {
        live = new MemoryLiveSource()
        const res = await api.fetch('http://localhost/graphql', {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'text/event-stream',
            authorization: `Bearer ${TOKENS.a}`,
          },
          body: JSON.stringify({
            query:
              'subscription ($filter: EventFilter!) { events(filter: $filter) { family kind node namespace pod container function data } }',
            variables: { filter: f },
          }),
        })
        let text = ''
        let ended = false
        const reader = res.body!.getReader()
        const decoder = new TextDecoder()
        const reading = (async () => {
          for (;;) {
            const chunk = await reader
              .read()
              .catch(() => ({ done: true as const, value: undefined }))
            if (chunk.done) break
            text += decoder.decode(chunk.value)
          }
          ended = true
        })()
        const deadline = Date.now() + 10_000
        const until = async (done: () => boolean, what: string) => {
          while (!done()) {
            assert.ok(
              Date.now() < deadline,
              `live tail: no ${what} within 10 s: ${text.slice(0, 300)}`,
            )
            await new Promise((r) => setTimeout(r, 5))
          }
        }
        // A namespace outside A's scope is refused outright (B's, or any other name).
        if (f.namespace !== undefined && f.namespace !== A.meta.namespace) {
          await until(() => text.includes('FORBIDDEN_NAMESPACE') || ended, 'refusal')
          assert.match(text, /FORBIDDEN_NAMESPACE/)
        } else {
          await until(() => live.subscriberCount > 0 || ended, 'subscription')
          assert.ok(!ended, `live tail ended early: ${text.slice(0, 300)}`)
          for (const e of events) live.publish(e)
          // Then one event of A that matches the filter: once it arrives, every B event
          // published before it has had its chance to leak.
          const labels: Record<string, string> = {}
          for (const l of f.labels ?? []) labels[l.key] = l.value ?? 'any'
          const sentinel = {
            ...exec,
            args: ['sentinel-mark'],
            meta: {
              ...A.meta,
              pod: f.pod ?? A.meta.pod,
              container: f.container ?? A.meta.container,
              function: f.function ?? A.meta.function,
              labels: { ...A.meta.labels, ...labels },
            },
          }
          live.publish(sentinel)
          await until(() => text.includes('sentinel-mark'), 'sentinel event')
        }
        live.close()
        await until(() => ended, 'end of the stream after the source closed')
        await reading
        const messages = text
          .split('\n')
          .filter((l) => l.startsWith('data:') && l.slice(5).trim() !== '')
          .filter((l) => !l.includes('sentinel-mark'))
        for (const m of messages) {
          const body = JSON.parse(m.slice(5)) as Gql
          assertNoB(body, `live ${JSON.stringify(f)}`)
        }
      }),
      // A failing case costs up to its 10 s deadline: report it as found, unshrunk.
      { numRuns: LIVE_CASES, seed: fuzzProfile.seed, endOnFailure: true },
    )
  })

  // 10,000 requests in the soak: past the runner's 10-minute default on a loaded machine.
  it(`${PAYLOADS} injection payloads in every string argument match nothing and break nothing`, {
    timeout: fuzzProfile.soak ? 1_800_000 : 180_000,
  }, async () => {
    const payloads = fc.sample(injection, { numRuns: PAYLOADS, seed: fuzzProfile.seed })
    assert.equal(payloads.length, PAYLOADS)
    const fields = Object.entries(ROOT_FIELDS)
    // Each (payload, root field) pair is one request, checked on its own.
    const pairs = payloads.flatMap((s) => fields.map(([field, query]) => ({ s, field, query })))
    const times = await inPool(pairs, async ({ s, field, query }) => {
      const vars = {
        filter: {
          namespace: s,
          pod: s,
          container: s,
          function: s,
          node: s,
          labels: [{ key: s, value: s }],
        },
        ns: s,
        pod: s,
        container: s,
        id: s,
        node: s,
        after: null,
        step: '1m',
      }
      const r = await gql(api, TOKENS.admin, query, vars)
      const label = `${field} ${JSON.stringify(s)}`
      for (const e of r.errors ?? [])
        assert.ok(REFUSALS.has(e.extensions?.code ?? ''), `${label}: ${JSON.stringify(e)}`)
      const text = JSON.stringify(r.data ?? null)
      for (const mark of [...B_MARKS, 'tenant-a', 'mark-a', 'pod-a-1'])
        assert.ok(
          !text.includes(mark),
          `${label}: a payload matched rows (${mark}): ${text.slice(0, 300)}`,
        )
    })
    for (const [field] of fields) {
      const own = times.filter((_, i) => pairs[i]!.field === field)
      injectionTimings[field] = { queries: own.length, ...percentiles(own) }
    }
    // The tables are whole: every exec of both tenants is still there.
    const all = await gql(api, TOKENS.admin, ROOT_FIELDS.execEvents!, { filter: {} })
    const execs = golden.filter((e) => e.kind === 'exec').length * 2
    assert.equal((all.data as { execEvents: { edges: unknown[] } }).execEvents.edges.length, execs)
    fuzzProfile.report('tenant-isolation', {
      perRootField: PER_FIELD,
      rootFields: Object.keys(ROOT_FIELDS).length,
      liveSubscriptions: LIVE_CASES,
      injectionPayloads: PAYLOADS,
      queriesWithInjection: PAYLOADS * Object.keys(ROOT_FIELDS).length,
      leaks: 0,
      injectionsMatched: 0,
      inFlight: IN_FLIGHT,
      // Since the data was stored: the generated queries, the live tail and the payloads.
      seconds: Math.round((performance.now() - started) / 100) / 10,
      // The test process's CPU, setup included (chDB runs in it).
      cpuSeconds: Math.round(process.cpuUsage().user / 1e5 + process.cpuUsage().system / 1e5) / 10,
      generatedMs: timings,
      injectionMs: injectionTimings,
    })
  })
})
