// `ebbflow api --kafka`: the live tail of the distributed mode reads the event topics itself
// (from their end, committing nothing) and streams each event to a subscriber over SSE,
// filtered like any other subscription.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { loadApiConfig, start as startApi } from '@ebbflow/api'
import type { CapturedEvent } from '@ebbflow/common'
import { startBroker, type TestBroker, testPublisher } from '../support/kafka-broker.ts'
import { readSseData } from '../support/sse.ts'
import { syntheticEvents } from './events-fixture.ts'

const hasJava = spawnSync('java', ['-version']).status === 0
const skip = hasJava ? false : 'needs Java 17+ for the local Kafka broker'

describe('live tail from Kafka (ebbflow api --kafka)', { skip, timeout: 120_000 }, () => {
  let broker: TestBroker
  let tmp: string

  before(async () => {
    broker = await startBroker()
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-live-'))
  })

  after(async () => {
    await broker?.stop()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  it('streams published exec events that pass the filter, each at the time its collector stamped', async () => {
    const server = await startApi(
      loadApiConfig({
        port: '0',
        open: 'true',
        logLevel: 'silent',
        kafkaBrokers: broker.bootstrap,
        dataDir: join(tmp, 'data'),
      }),
    )
    const { publisher, options } = testPublisher([broker.bootstrap], { node: 'live-node' })
    const controller = new AbortController()
    let publishing: NodeJS.Timeout | undefined
    try {
      const res = await fetch(server.url, {
        method: 'POST',
        signal: controller.signal,
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({
          query: `subscription { events(filter: { pod: "web-0" }, families: [EXEC]) {
            family kind time node namespace pod data } }`,
        }),
      })
      assert.equal(res.status, 200)
      // The tail starts at the topics' end once its consumer has joined: publish until the
      // events come through. Only exec events of pod web-0 may pass the filter.
      const events: CapturedEvent[] = syntheticEvents(90)
      // The times the collector stamped the passing events with: its clock's offset (this test
      // made the publisher) plus each event's boot time, as RFC 3339 with nine digits.
      const stamped = new Set(
        events
          .filter((e) => e.kind === 'exec' && e.meta?.pod === 'web-0')
          .map((e) => {
            const ns = options.clock.offsetNs + BigInt(e.bootNs)
            const s = new Date(Number(ns / 1_000_000n)).toISOString().slice(0, 19)
            return `${s}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}Z`
          }),
      )
      assert.equal(stamped.size, 1)
      publishing = setInterval(() => publisher.publish(events), 300)
      const got = (await readSseData(res, 3, 60_000)) as {
        data: {
          events: {
            family: string
            kind: string
            time: string
            pod: string
            namespace: string
            data: Record<string, unknown>
          }
        }
      }[]
      for (const g of got) {
        assert.equal(g.data.events.family, 'EXEC')
        assert.equal(g.data.events.kind, 'exec')
        assert.equal(g.data.events.pod, 'web-0')
        assert.equal(g.data.events.namespace, 'default')
        assert.equal(g.data.events.data.filename, '/usr/bin/python3')
        assert.ok(stamped.has(g.data.events.time), `${g.data.events.time} was never stamped`)
        // The collector's boot clock stays on its node: the time above is the event's one time.
        assert.ok(!('bootNs' in g.data.events.data) && !('timeNs' in g.data.events.data))
      }
    } finally {
      clearInterval(publishing)
      controller.abort()
      await publisher.close()
      await server.stop()
    }
  })
})
