// A reader that is not ours: records fetched from the broker with kcat (librdkafka) decode
// with `protoc --decode` using only the files in proto/ — the wire contract stands alone.
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { TOPICS } from '@ebbflow/collector'
import {
  brokerUnavailable,
  startBroker,
  type TestBroker,
  testPublisher,
} from '../support/kafka-broker.ts'
import { syntheticEvents } from './events-fixture.ts'

const repo = join(import.meta.dirname, '../..')
const missing = ['kcat', 'protoc'].filter(
  (tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0,
)
const skip =
  missing.length > 0
    ? `needs ${missing.join(', ')} (scripts/setup.sh installs them)`
    : (brokerUnavailable() ?? false)

describe('third-party reader (kcat + protoc)', { skip, timeout: 180_000 }, () => {
  let broker: TestBroker | undefined
  let bootstrap: string

  before(async () => {
    broker = await startBroker()
    bootstrap = broker.bootstrap
  })

  after(async () => {
    await broker?.stop()
  })

  it('decodes a published EventBatch with protoc and proto/ alone', {
    timeout: 60_000,
  }, async () => {
    const node = `node-${randomUUID().slice(0, 8)}`
    const { publisher } = testPublisher([bootstrap], { node, queueBudgetBytes: 16 * 1024 * 1024 })
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
