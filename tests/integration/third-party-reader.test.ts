// A reader that is not ours: records fetched from the broker with kcat (librdkafka) decode
// with `protoc --decode` using only the files in proto/ — the wire contract stands alone.
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { KafkaTransport, Publisher, TOPICS, WallClock } from '@ebbflow/collector'
import { bootTimeNs } from '@ebbflow/native'
import { syntheticEvents } from './events-fixture.ts'

const repo = join(import.meta.dirname, '../..')
const kafkaSh = join(repo, 'infra/kafka/kafka.sh')
const missing = ['java', 'kcat', 'protoc'].filter(
  (tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0,
)
const skip =
  missing.length > 0 ? `needs ${missing.join(', ')} (scripts/setup.sh installs them)` : false

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))))
    })
  })
}

describe('third-party reader (kcat + protoc)', { skip }, () => {
  let dir: string
  let bootstrap: string

  before(async () => {
    execFileSync(kafkaSh, ['fetch'], { stdio: ['ignore', 'ignore', 'inherit'] })
    dir = mkdtempSync(join(tmpdir(), 'ebbflow-kcat-'))
    const port = await freePort()
    bootstrap = execFileSync(kafkaSh, ['start', '--port', String(port), '--dir', dir], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }).trim()
  })

  after(() => {
    if (dir) {
      spawnSync(kafkaSh, ['stop', '--dir', dir], { stdio: 'ignore' })
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('decodes a published EventBatch with protoc and proto/ alone', {
    timeout: 60_000,
  }, async () => {
    const node = `node-${randomUUID().slice(0, 8)}`
    const publisher = new Publisher(new KafkaTransport({ brokers: [bootstrap] }), {
      node,
      clock: WallClock.fromBootTime(bootTimeNs()),
      bootNow: bootTimeNs,
      queueBudgetBytes: 16 * 1024 * 1024,
      batchMaxEvents: 500,
      batchMaxBytes: 256 * 1024,
      lingerMs: 20,
      instanceId: randomUUID(),
      maxBackoffMs: 500,
    })
    publisher.publish(syntheticEvents(200))
    assert.ok(await publisher.drain(30_000), 'the broker acknowledged every batch')
    await publisher.close()

    // One message, raw value bytes (kcat undoes the producer's gzip).
    const raw = execFileSync(
      'kcat',
      [
        '-C',
        '-b',
        bootstrap,
        '-t',
        TOPICS.exec,
        '-o',
        'beginning',
        '-c',
        '1',
        '-e',
        '-q',
        '-f',
        '%s',
      ],
      { maxBuffer: 16 * 1024 * 1024 },
    )
    assert.ok(raw.length > 0, 'kcat fetched a record')
    const text = execFileSync(
      'protoc',
      [
        `--proto_path=${join(repo, 'proto')}`,
        '--decode=ebbflow.v1.EventBatch',
        'ebbflow/v1/events.proto',
      ],
      { input: raw, encoding: 'utf8' },
    )
    assert.match(text, new RegExp(`node: "${node}"`))
    assert.match(text, /filename: "\/usr\/bin\/python3"/)
    assert.match(text, /batch_id: "[0-9a-f-]+-ebbflow\.exec\.v1-\d+"/)
  })
})
