// The acceptance suite in the distributed mode, each part a command of its own as in a cluster:
// `ebbflow collect --kafka` → a real broker → `ebbflow ingest` → chDB → `ebbflow api
// --tokens-file`. chDB locks its folder to one process, so the ingester hands the folder to the
// API once it has stored everything the collectors published (with a ClickHouse server both
// would run at once). The forced loss is a second, short collector with one-page ring buffers.
// The main collector compresses with zstd (the default) and the loss collector with gzip: one
// ingester reads both, and the broker's log is checked to hold both codecs.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { TOPICS } from '@ebbflow/common/wire'
import { Kafka, logLevel } from 'kafkajs'
import { isRoot } from '../support/capture.ts'
import {
  brokerUnavailable,
  logCodecs,
  startBroker,
  type TestBroker,
} from '../support/kafka-broker.ts'
import {
  acceptanceSuite,
  bin,
  COUNTER_INTERVAL_MS,
  execStorm,
  freePort,
  Proc,
  until,
  type World,
} from './scenario.ts'

function command(w: World, args: string[], env: NodeJS.ProcessEnv = process.env): Proc {
  return w.track(new Proc(spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env })))
}

async function stopped(p: Proc, what: string): Promise<void> {
  const code = await p.stop()
  if (code !== 0) throw new Error(`${what} exited ${code}: ${p.stderr.slice(-3000)}`)
}

/** Waits until the group has committed every record of the topics (nothing is left to store). */
async function drained(bootstrap: string, groupId: string): Promise<void> {
  const admin = new Kafka({ brokers: [bootstrap], logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  try {
    const topics = Object.values(TOPICS)
    await until(
      `group ${groupId} to commit the end of ${topics.join(', ')}`,
      async () => {
        const behind: string[] = []
        const committed = await admin.fetchOffsets({ groupId, topics })
        for (const topic of topics) {
          const ends = await admin.fetchTopicOffsets(topic)
          for (const end of ends) {
            const at = committed
              .find((c) => c.topic === topic)
              ?.partitions.find((p) => p.partition === end.partition)?.offset
            if (Number(at ?? -1) < Number(end.high) && Number(end.high) > 0)
              behind.push(`${topic}/${end.partition} at ${at} of ${end.high}`)
          }
        }
        return behind
      },
      (behind) => behind.length === 0,
      90_000,
      500,
    )
  } finally {
    await admin.disconnect()
  }
}

const skip = !isRoot()
  ? 'needs root to load BPF programs and create cgroups'
  : (brokerUnavailable() ?? false)

acceptanceSuite({
  name: 'distributed',
  skip,
  async start(w: World) {
    let broker: TestBroker | undefined = await startBroker()
    const bootstrap = broker.bootstrap
    const dataDir = join(w.dir, 'data')
    const groupId = `acceptance-${w.tag}`
    let api: Proc | undefined
    const stopBroker = async () => {
      await broker?.stop()
      broker = undefined
    }
    try {
      const ingest = command(w, [
        'ingest',
        '--kafka',
        bootstrap,
        '--data-dir',
        dataDir,
        '--group-id',
        groupId,
        '--metrics-port',
        '-1',
      ])
      const collect = command(w, ['collect', '--kafka', bootstrap], w.collectorEnv())
      const loss = command(
        w,
        [
          'collect',
          '--kafka',
          bootstrap,
          '--kafka-compression',
          'gzip',
          '--families',
          'exec',
          '--ring-buffer-bytes',
          '4096',
          '--node-name',
          w.lossNode,
          '--kubernetes',
          'off',
        ],
        { ...process.env, EBBFLOW_COUNTER_INTERVAL_MS: String(COUNTER_INTERVAL_MS) },
      )
      await Promise.all([
        ingest.output(/"msg":"ingesting"/, 'ebbflow ingest to start', 120_000),
        collect.output(/"msg":"capture attached"/, 'ebbflow collect to attach', 120_000),
        loss.output(/"msg":"capture attached"/, 'the loss collector to attach', 120_000),
      ])
      // The loss collector's storm runs beside the scenario; stopping it reads its counters
      // (drops included) one last time and flushes them to the broker.
      const lossDone = (async () => {
        await execStorm()
        await stopped(loss, 'the loss collector')
      })()
      lossDone.catch(() => {})
      return {
        // Everything is stored before the API starts: a check that waits finds nothing more.
        pollMs: 5_000,
        async settle() {
          await lossDone
          // Stopping the collector reads its counters a last time and flushes its publisher.
          await stopped(collect, 'ebbflow collect')
          await drained(bootstrap, groupId)
          await stopped(ingest, 'ebbflow ingest')
          // What went over the wire: zstd batches from the main collector, gzip from the loss
          // collector (a container broker's log is not readable here).
          if (broker?.dir) {
            const codecs = logCodecs(join(broker.dir, 'data'), [TOPICS.exec])
            if (!codecs.has(4) || !codecs.has(1))
              throw new Error(
                `the exec topic's batches should be zstd (4) and gzip (1), found ${[...codecs].join(', ')}`,
              )
          }
          // As a CronJob runs it: one pass of the built-in shell rule over what was stored (a
          // window of 10 minutes covers the scenario), state and history kept in the store.
          const alert = command(w, [
            'alert',
            '--once',
            '--rules',
            w.shellRuleFile('10m'),
            '--data-dir',
            dataDir,
          ])
          const alertCode = await alert.exit(120_000)
          if (alertCode !== 0)
            throw new Error(
              `ebbflow alert --once exited ${alertCode}: ${alert.stderr.slice(-3000)}`,
            )
          const port = await freePort()
          api = command(w, [
            'api',
            '--data-dir',
            dataDir,
            '--tokens-file',
            w.tokensFile,
            '--port',
            String(port),
            '--kafka',
            bootstrap,
          ])
          await api.output(/"msg":"api listening"/, 'ebbflow api to listen', 120_000)
          return `http://127.0.0.1:${port}/graphql`
        },
        async lossHealth(q) {
          return (
            await q(
              `query($node: String) { collectorHealth(node: $node) {
                node totalDrops drops { family reason count } } }`,
              { node: w.lossNode },
            )
          ).collectorHealth
        },
        async stop() {
          try {
            if (api) await stopped(api, 'ebbflow api')
          } finally {
            await stopBroker()
          }
        },
      }
    } catch (err) {
      await stopBroker()
      throw err
    }
  },
})
