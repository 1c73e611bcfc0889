// Two `ebbflow ingest` processes in one group over three partitions per topic; one of them is
// SIGKILLed at random moments (CI: 6 times; soak: 50) while the test keeps publishing and the
// other takes its partitions over. Every exec the test published must be stored, compared by
// identity (node, boot id, tgid, time, kind), not by counts.
//
// The store is chDB, one folder per process: two processes cannot open one folder, and no
// ClickHouse server runs here. So each ingester writes its own folder and the test reads the
// union. Effectively once then holds per folder (a block repeated into the folder that stored
// it adds nothing), and the union may hold one copy of a block in each folder when the killed
// member had stored it but not committed and the survivor took the partition over. The test
// demands zero missing, zero duplicates inside a folder, and bounds the cross-folder copies by
// the blocks in flight at the kills (kills × rows per block); it reports how many there were.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { TOPICS } from '@ebbflow/common/wire'
import type { Producer } from 'kafkajs'
import { startBroker, type TestBroker } from '../support/kafka-broker.ts'
import {
  baseTimeNs,
  type Cli,
  createTopics,
  execBatch,
  ingest,
  kafka,
  repeated,
  rng,
  SOAK,
  sleep,
  storedExecIds,
  waitFor,
} from './support.ts'

const hasJava = spawnSync('java', ['-version']).status === 0
const KILLS = SOAK ? 50 : 6
const PER_BATCH = 50
const MAX_ROWS = 200
const SEED = Number(process.env.EBBFLOW_FAULT_SEED ?? Date.now() % 1_000_000)

describe('ingester SIGKILLed while another member takes over', {
  skip: hasJava ? false : 'needs Java 17+ for the local Kafka broker',
  timeout: SOAK ? 1_800_000 : 240_000,
}, () => {
  let broker: TestBroker
  let tmp: string
  let producer: Producer
  const procs: Cli[] = []

  before(async () => {
    broker = await startBroker()
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-kills-'))
    await createTopics(broker.bootstrap, 3)
    producer = kafka(broker.bootstrap).producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
  })
  after(async () => {
    for (const p of procs) p.kill()
    await Promise.all(procs.map((p) => p.exited))
    await producer?.disconnect()
    await broker?.stop()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  it(`stores every published exec, none twice in a folder (${KILLS} kills)`, async () => {
    const random = rng(SEED)
    const node = 'node-kills'
    const bootId = `boot-${SEED}`
    const t0 = baseTimeNs()
    const published: string[] = []
    let sequence = 0
    let tgid = 1
    let publishing = true
    const env = { EBBFLOW_INGEST_MAX_ROWS: String(MAX_ROWS), EBBFLOW_INGEST_MAX_WAIT_MS: '100' }

    // Batches go round the three partitions at a steady pace for the whole test.
    const publisher = (async () => {
      while (publishing) {
        const messages = []
        for (let p = 0; p < 3; p++) {
          const b = execBatch(node, bootId, sequence++, tgid, PER_BATCH, t0)
          tgid += PER_BATCH
          messages.push({ value: b.value, partition: p, ids: b.ids })
        }
        await producer.send({
          topic: TOPICS.exec,
          acks: -1,
          messages: messages.map(({ value, partition }) => ({ value, partition })),
        })
        for (const m of messages) published.push(...m.ids)
        await sleep(150)
      }
    })()

    const survivorDir = join(tmp, 'survivor')
    const victimDir = join(tmp, 'victim')
    mkdirSync(survivorDir)
    mkdirSync(victimDir)
    const group = `kills-${SEED}`
    const survivor = ingest(broker.bootstrap, survivorDir, group, env)
    procs.push(survivor)
    await survivor.waitForLine(/joined the group/, 60_000)

    for (let k = 0; k < KILLS; k++) {
      const victim = ingest(broker.bootstrap, victimDir, group, env)
      procs.push(victim)
      await victim.waitForLine(/joined the group/, 60_000)
      // Somewhere inside the victim's work: fetching, inserting one table after another, or
      // between its insert and its commit — the moment is random, its seed is printed.
      await sleep(200 + random() * 2500)
      victim.kill('SIGKILL')
      await victim.exited
    }
    publishing = false
    await publisher

    // The survivor alone must bring every partition to its end.
    const admin = kafka(broker.bootstrap).admin()
    await admin.connect()
    const ends = await admin.fetchTopicOffsets(TOPICS.exec)
    await waitFor(
      'the group to commit every partition to its end',
      async () => {
        const [t] = await admin.fetchOffsets({ groupId: group, topics: [TOPICS.exec] })
        return ends.every(
          (e) => t!.partitions.find((p) => p.partition === e.partition)?.offset === e.high,
        )
      },
      120_000,
      500,
    )
    await admin.disconnect()
    await survivor.stop()

    const inSurvivor = storedExecIds(survivorDir, node)
    const inVictim = storedExecIds(victimDir, node)
    const union = new Set([...inSurvivor, ...inVictim])
    const missing = published.filter((id) => !union.has(id))
    const sent = new Set(published)
    const extra = [...union].filter((id) => !sent.has(id))
    const crossCopies = inSurvivor.length + inVictim.length - union.size
    process.stdout.write(
      `${JSON.stringify({
        seed: SEED,
        kills: KILLS,
        published: published.length,
        survivorRows: inSurvivor.length,
        victimRows: inVictim.length,
        missing: missing.length,
        crossFolderCopies: crossCopies,
      })}\n`,
    )
    assert.deepEqual(missing.slice(0, 5), [], `seed ${SEED}: ${missing.length} missing`)
    assert.deepEqual(extra, [], 'nothing stored that was not published')
    assert.equal(repeated(inSurvivor).size, 0, 'no duplicate in the survivor folder')
    assert.equal(repeated(inVictim).size, 0, 'no duplicate in the victim folder')
    assert.ok(
      crossCopies <= KILLS * MAX_ROWS * 2,
      `${crossCopies} copies across folders: more than the blocks in flight at ${KILLS} kills`,
    )
  })
})
