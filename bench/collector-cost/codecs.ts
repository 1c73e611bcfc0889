// bench/collector-cost/codecs: bytes per event on the broker and events per CPU second to
// acknowledgement, by record batch compression, on real captured events. First the collector
// (every family, host-mode enrichment) captures a mixed workload for a few seconds: an exec
// storm with argv, file reads, loopback TCP connections and getppid calls recorded one by one,
// plus the syscall counters; then the same events are published through the collector's
// Publisher (acks=all, idempotent) once per codec, in alternating rounds, to a local broker.
// Codecs: none, gzip (kafkajs), lz4 (npm lz4-napi, LZ4 frames as Kafka stores them) and zstd
// (node:zlib, built into Node 22.15+). The codec packages kafkajs documents (kafkajs-lz4 on
// npm lz4 0.6, @kafkajs/zstd on cppzst 2.0.6) do not build against Node 24's headers.
// Prints one JSON report and writes it to bench/reports/codecs.json.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { zstdCompressSync, zstdDecompressSync } from 'node:zlib'
import {
  type CaptureSink,
  familyOf,
  loadCollectorConfig,
  loadEnrichConfig,
  startCollector,
  TOPICS,
} from '@ebbflow/collector'
import {
  type CapturedEvent,
  type CounterEvent,
  createLogger,
  type RecordEvent,
} from '@ebbflow/common'
import kafkajs from 'kafkajs'
import { compressFrameSync, decompressFrameSync } from 'lz4-napi'

import { createCgroup } from '../../tests/support/cgroup.ts'
import { freePort, testPublisher, topicBytes } from '../../tests/support/kafka-broker.ts'

const { CompressionCodecs, CompressionTypes } = kafkajs

const ROUNDS = Number(process.env.EBBFLOW_BENCH_ROUNDS ?? 3)
const repo = join(import.meta.dirname, '../..')
const kafkaSh = join(repo, 'infra/kafka/kafka.sh')

// kafkajs codecs: compress gets an Encoder (its bytes in .buffer), decompress a Buffer.
const codec = (compress: (b: Buffer) => Buffer, decompress: (b: Buffer) => Buffer) => () => ({
  compress: async (encoder: { buffer: Buffer }) => compress(encoder.buffer),
  decompress: async (buffer: Buffer) => decompress(buffer),
})
CompressionCodecs[CompressionTypes.LZ4] = codec(compressFrameSync, decompressFrameSync)
CompressionCodecs[CompressionTypes.ZSTD] = codec(
  (b) => zstdCompressSync(b),
  (b) => zstdDecompressSync(b),
)

class KeepingSink implements CaptureSink {
  events: CapturedEvent[] = []
  records(events: RecordEvent[]): void {
    this.events.push(...events)
  }
  counters(events: CounterEvent[]): void {
    this.events.push(...events)
  }
}

async function captureMix(): Promise<CapturedEvent[]> {
  const sink = new KeepingSink()
  const logger = createLogger('bench', 'warn')
  const collector = startCollector(
    loadCollectorConfig({ securitySyscalls: 'getppid', counterIntervalMs: '1000' }, {}),
    loadEnrichConfig({ kubernetes: 'off' }, {}),
    sink,
    logger,
  )
  const cg = createCgroup('bench-codecs')
  const server = createServer((s) => s.end('x')).listen(0, '127.0.0.1')
  await new Promise((r) => server.once('listening', r))
  const port = (server.address() as { port: number }).port
  try {
    await new Promise((r) => setTimeout(r, 1500))
    const work = [
      cg.run([
        '/bin/sh',
        '-c',
        'i=0; while [ $i -lt 2000 ]; do /bin/true --flag value-$i /tmp/x; cat /etc/hostname >/dev/null; i=$((i+1)); done',
      ]),
      cg.run([
        'perl',
        '-e',
        'for (1..100000) { getppid(); select(undef,undef,undef,0.00002) if $_ % 100 == 0 }',
      ]),
    ]
    for (let i = 0; i < 300; i++) {
      await new Promise<void>((resolve) => {
        const s = connect(port, '127.0.0.1', () => s.on('data', () => s.end()))
        s.on('close', () => resolve())
        s.on('error', () => resolve())
      })
    }
    await Promise.all(work)
    await new Promise((r) => setTimeout(r, 1500))
  } finally {
    await collector.stop()
    server.close()
    await cg.remove()
  }
  return sink.events
}

const dir = mkdtempSync(join(tmpdir(), 'ebbflow-codecs-'))
let report: Record<string, unknown>
try {
  execFileSync(kafkaSh, ['fetch'], { stdio: ['ignore', 'ignore', 'inherit'] })
  const bootstrap = execFileSync(
    kafkaSh,
    ['start', '--port', String(await freePort()), '--dir', dir],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  ).trim()
  const events = await captureMix()
  const perFamily = { exec: 0, net: 0, syscall: 0, file: 0 }
  for (const e of events) perFamily[familyOf(e)]++
  const codecs = ['none', 'gzip', 'lz4', 'zstd'] as const
  const runs: Record<
    string,
    { perCpuSecond: number[]; perSecond: number[]; bytes: Record<string, number[]> }
  > = Object.fromEntries(
    codecs.map((c) => [
      c,
      { perCpuSecond: [], perSecond: [], bytes: { exec: [], net: [], syscall: [], file: [] } },
    ]),
  )
  const data = join(dir, 'data')
  for (let round = 0; round < ROUNDS; round++) {
    for (const compression of codecs) {
      const before = Object.fromEntries(
        Object.entries(TOPICS).map(([f, t]) => [f, topicBytes(data, t)]),
      )
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
      publisher.publish(events)
      const stats = await publisher.close(120_000)
      const cpu = process.cpuUsage(cpu0)
      const wall = (performance.now() - t0) / 1000
      if (stats.publishedEvents !== events.length)
        throw new Error(`${compression}: ${stats.publishedEvents} of ${events.length} acknowledged`)
      runs[compression]!.perCpuSecond.push(events.length / ((cpu.user + cpu.system) / 1e6))
      runs[compression]!.perSecond.push(events.length / wall)
      for (const [f, t] of Object.entries(TOPICS)) {
        const n = perFamily[f as keyof typeof perFamily]
        if (n > 0) runs[compression]!.bytes[f]!.push((topicBytes(data, t) - before[f]!) / n)
      }
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? null
  report = {
    bench: 'codecs',
    events: events.length,
    perFamily,
    rounds: ROUNDS,
    results: Object.fromEntries(
      codecs.map((c) => [
        c,
        {
          eventsPerCpuSecond: median(runs[c]!.perCpuSecond),
          eventsPerSecond: median(runs[c]!.perSecond),
          bytesPerEvent: Object.fromEntries(
            Object.entries(runs[c]!.bytes).map(([f, v]) => [f, median(v)]),
          ),
        },
      ]),
    ),
    raw: runs,
  }
} finally {
  spawnSync(kafkaSh, ['stop', '--dir', dir], { stdio: 'ignore' })
  rmSync(dir, { recursive: true, force: true })
}
const text = `${JSON.stringify(report, null, 2)}\n`
const reports = join(import.meta.dirname, '../reports')
mkdirSync(reports, { recursive: true })
writeFileSync(join(reports, 'codecs.json'), text)
process.stdout.write(text)
