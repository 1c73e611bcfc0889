// bench/transport: events/s from the collector's publish queue until the broker acknowledged
// them (acks=-1, idempotent), and bytes per event on the wire per family, gzip against none.
// Starts its own local broker (infra/kafka). The events are synthetic but shaped like real
// ones (tests/integration/events-fixture.ts); bytes on the wire are the topic logs' size on
// the broker, which stores record batches as they were sent.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { familyOf, TOPICS } from '@ebbflow/collector'
import type { CapturedEvent } from '@ebbflow/common'
import { syntheticEvents } from '../../tests/integration/events-fixture.ts'
import { freePort, testPublisher, topicBytes } from '../../tests/support/kafka-broker.ts'

const EVENTS = Number(process.env.EBBFLOW_BENCH_TRANSPORT_EVENTS ?? 500_000)
const repo = join(import.meta.dirname, '../..')
const kafkaSh = join(repo, 'infra/kafka/kafka.sh')

const dir = mkdtempSync(join(tmpdir(), 'ebbflow-transport-'))
try {
  execFileSync(kafkaSh, ['fetch'], { stdio: ['ignore', 'ignore', 'inherit'] })
  const port = await freePort()
  const bootstrap = execFileSync(kafkaSh, ['start', '--port', String(port), '--dir', dir], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim()
  const events: CapturedEvent[] = syntheticEvents(EVENTS)
  const perFamily = { exec: 0, net: 0, syscall: 0, file: 0 }
  for (const e of events) {
    perFamily[familyOf(e)]++
  }

  const results: Record<string, unknown> = {}
  for (const compression of ['none', 'gzip'] as const) {
    // Both runs share the topics: measure each run's growth of the logs (kafka.sh keeps them
    // in <dir>/data).
    const data = join(dir, 'data')
    const before = Object.fromEntries(Object.values(TOPICS).map((t) => [t, topicBytes(data, t)]))
    const { publisher } = testPublisher(
      [bootstrap],
      {
        node: 'bench-node',
        queueBudgetBytes: 512 * 1024 * 1024,
        batchMaxEvents: 5000,
        batchMaxBytes: 512 * 1024,
        lingerMs: 100,
      },
      { compression },
    )
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    for (let i = 0; i < events.length; i += 10_000) publisher.publish(events.slice(i, i + 10_000))
    if (!(await publisher.drain(120_000)))
      throw new Error('the broker did not acknowledge everything')
    const seconds = (performance.now() - t0) / 1000
    const cpu = process.cpuUsage(cpu0)
    const stats = await publisher.close()
    await new Promise((r) => setTimeout(r, 500)) // let the broker flush its page cache view
    const bytes = Object.fromEntries(
      (Object.entries(TOPICS) as [keyof typeof perFamily, string][]).map(([family, topic]) => [
        family,
        +((topicBytes(data, topic) - before[topic]!) / perFamily[family]).toFixed(1),
      ]),
    )
    results[compression] = {
      eventsPerSecondToAck: Math.round(events.length / seconds),
      collectorCpuSeconds: (cpu.user + cpu.system) / 1e6,
      eventsPerCpuSecond: Math.round(events.length / ((cpu.user + cpu.system) / 1e6)),
      bytesPerEventOnWire: bytes,
      droppedEvents: stats.droppedEvents,
    }
  }
  const report = {
    bench: 'transport',
    node: process.version,
    events: EVENTS,
    eventsPerFamily: perFamily,
    results,
    targets: { eventsPerSecondPerCore: 500_000, syscallCountBytes: 24, execBytes: 120 },
  }
  const text = `${JSON.stringify(report, null, 2)}\n`
  mkdirSync(join(import.meta.dirname, '../reports'), { recursive: true })
  writeFileSync(join(import.meta.dirname, '../reports/transport.json'), text)
  process.stdout.write(text)
} finally {
  spawnSync(kafkaSh, ['stop', '--dir', dir], { stdio: 'ignore' })
  rmSync(dir, { recursive: true, force: true })
}
