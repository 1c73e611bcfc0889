// A real Kafka broker for tests: a container through testcontainers where a Docker
// engine answers, the local KRaft broker from its jars (infra/kafka/kafka.sh) everywhere else.
// Both run the same Kafka version (KAFKA_VERSION below, infra/kafka/pom.xml, docker-compose.yml).
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  KafkaTransport,
  type KafkaTransportOptions,
  Publisher,
  type PublisherOptions,
  WallClock,
} from '@ebbflow/collector'
import { bootTimeNs } from '@ebbflow/native'

export const KAFKA_VERSION = '4.4.0'
const kafkaSh = join(import.meta.dirname, '../../infra/kafka/kafka.sh')

export interface TestBroker {
  kind: 'local' | 'container'
  bootstrap: string
  /** The local broker's folder (its kafka.pid names the JVM, for pausing it). */
  dir?: string
  stop(): Promise<void>
  /** The local broker only: stops its JVM (SIGTERM, SIGKILL after 30 s), keeping its folder. */
  halt?(): Promise<void>
  /** The local broker only: starts it again on the same port and folder (its topics, records
   * and committed offsets kept). */
  resume?(): Promise<void>
}

/**
 * The compression codecs of the record batches a local broker holds for these topics, read
 * from its own log segments (each batch's attributes & 7: 0 none, 1 gzip, 2 snappy, 3 lz4,
 * 4 zstd), so a test sees what went over the wire rather than what a client was asked for.
 */
export function logCodecs(dataDir: string, topics: readonly string[]): Set<number> {
  const codecs = new Set<number>()
  for (const topic of topics)
    for (const part of readdirSync(dataDir).filter((d) => d.startsWith(`${topic}-`)))
      for (const f of readdirSync(join(dataDir, part)).filter((n) => n.endsWith('.log'))) {
        const log = readFileSync(join(dataDir, part, f))
        for (let at = 0; at + 23 <= log.length; at += 12 + log.readInt32BE(at + 8))
          codecs.add(log.readInt16BE(at + 21) & 7)
      }
  return codecs
}

/** Bytes of the log segments a local broker holds for a topic (every partition). */
export function topicBytes(dataDir: string, topic: string): number {
  let total = 0
  for (const part of readdirSync(dataDir).filter((d) => d.startsWith(`${topic}-`)))
    for (const f of readdirSync(join(dataDir, part)).filter((n) => n.endsWith('.log')))
      total += statSync(join(dataDir, part, f)).size
  return total
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))))
    })
  })
}

/** A Docker engine that answers `docker info` (the client alone is not enough). */
export function dockerAvailable(): boolean {
  return spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 5000 }).status === 0
}

/** Why no broker can run here, or undefined when one can. */
export function brokerUnavailable(): string | undefined {
  if (dockerAvailable()) return undefined
  if (spawnSync('java', ['-version'], { stdio: 'ignore' }).status !== 0) {
    return 'needs a Docker engine or Java 17+ for the local Kafka broker'
  }
  return undefined
}

export async function startBroker(): Promise<TestBroker> {
  if (dockerAvailable()) {
    // @testcontainers/kafka drives Confluent's images; the official apache/kafka image of the
    // same version as the local broker is configured through its KAFKA_* variables instead.
    const { GenericContainer, Wait } = await import('testcontainers')
    const port = await freePort()
    const container = await new GenericContainer(`apache/kafka:${KAFKA_VERSION}`)
      .withExposedPorts({ container: 9092, host: port })
      .withEnvironment({
        KAFKA_NODE_ID: '1',
        KAFKA_PROCESS_ROLES: 'broker,controller',
        KAFKA_LISTENERS: 'PLAINTEXT://:9092,CONTROLLER://:9093',
        KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://127.0.0.1:${port}`,
        KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
        KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
        KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
        KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
        KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
        KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
        KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      })
      .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
      .withStartupTimeout(120_000)
      .start()
    return {
      kind: 'container',
      bootstrap: `127.0.0.1:${port}`,
      async stop() {
        await container.stop()
      },
    }
  }
  execFileSync(kafkaSh, ['fetch'], { stdio: ['ignore', 'ignore', 'inherit'] })
  // The controller listens on port + 1, which no one reserved: another process can take it
  // between the choice and the bind. Such a start fails fast; try again with another port.
  let dir = ''
  let bootstrap = ''
  let port = 0
  for (let attempt = 1; ; attempt++) {
    dir = mkdtempSync(join(tmpdir(), 'ebbflow-broker-'))
    port = await freePort()
    try {
      bootstrap = execFileSync(kafkaSh, ['start', '--port', String(port), '--dir', dir], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      }).trim()
      break
    } catch (err) {
      spawnSync(kafkaSh, ['stop', '--dir', dir], { stdio: 'ignore' })
      rmSync(dir, { recursive: true, force: true })
      if (attempt === 3) throw err
    }
  }
  return {
    kind: 'local',
    bootstrap,
    dir,
    async stop() {
      spawnSync(kafkaSh, ['stop', '--dir', dir], { stdio: 'ignore' })
      rmSync(dir, { recursive: true, force: true })
    },
    async halt() {
      await run(kafkaSh, ['stop', '--dir', dir])
    },
    async resume() {
      await run(kafkaSh, ['start', '--port', String(port), '--dir', dir])
    },
  }
}

/** A child to its end without blocking the event loop (a test keeps counting meanwhile). */
function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d) => {
      stderr += d
    })
    child.on('error', reject)
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: ${code}\n${stderr}`)),
    )
  })
}

/** A Publisher to `brokers` with test-sized defaults; `over` changes any option. */
export function testPublisher(
  brokers: string[],
  over: Partial<PublisherOptions> = {},
  transport: Omit<KafkaTransportOptions, 'brokers'> = {},
): { options: PublisherOptions; publisher: Publisher } {
  const options: PublisherOptions = {
    node: 'node-a',
    clock: WallClock.fromBootTime(bootTimeNs()),
    bootNow: bootTimeNs,
    queueBudgetBytes: 64 * 1024 * 1024,
    batchMaxEvents: 500,
    batchMaxBytes: 256 * 1024,
    lingerMs: 20,
    instanceId: randomUUID(),
    maxBackoffMs: 500,
    ...over,
  }
  return {
    options,
    publisher: new Publisher(new KafkaTransport({ brokers, ...transport }), options),
  }
}
