// Two `ebbflow ingest` processes in one group over three partitions per topic; one of them is
// SIGKILLed (CI: 6 times; soak: 50) while the test keeps publishing and the other takes its
// partitions over. Every other kill is at a named fault point (EBBFLOW_FAULT, faults.ts), in
// turn: after a block was fetched and before its insert, between two tables of one block, and
// between a block's insert and its offset commit; the others at a random moment. Every exec
// the test published must be stored, compared by identity (node, boot id, tgid, time, kind),
// not by counts. The publisher stays at most MAX_BEHIND batches ahead of the group's commits.
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
import { FAULT_POINTS } from '@ebbflow/ingester'
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
/** Batches published past the group's committed offsets, at most (5 blocks per partition). */
const MAX_BEHIND = 60
const SEED = Number(process.env.EBBFLOW_FAULT_SEED ?? Date.now() % 1_000_000)

describe('ingester SIGKILLed while another member takes over', {
  skip: hasJava ? false : 'needs Java 17+ for the local Kafka broker',
  timeout: SOAK ? 1_800_000 : 420_000,
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

    const group = `kills-${SEED}`
    // Batches go round the three partitions at a steady pace for the whole test, but never
    // more than MAX_BEHIND batches past what the group has committed: the members always have
    // blocks to work on when a kill lands, and on a loaded machine the backlog the survivor
    // must finish at the end stays bounded (it used to outgrow the test's deadline).
    const lagAdmin = kafka(broker.bootstrap).admin()
    await lagAdmin.connect()
    const publisher = (async () => {
      while (publishing) {
        // A new group's coordinator may still be loading: a retriable error, asked again.
        const offsets = await lagAdmin
          .fetchOffsets({ groupId: group, topics: [TOPICS.exec] })
          .catch((err: { retriable?: boolean }) => {
            if (err.retriable) return undefined
            throw err
          })
        const parts = offsets?.[0]?.partitions
        const committed = parts?.reduce((n, p) => n + Math.max(0, Number(p.offset)), 0)
        if (committed === undefined || sequence - committed > MAX_BEHIND) {
          await sleep(150)
          continue
        }
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
      await lagAdmin.disconnect()
    })()

    const survivorDir = join(tmp, 'survivor')
    const victimDir = join(tmp, 'victim')
    mkdirSync(survivorDir)
    mkdirSync(victimDir)
    const survivor = ingest(broker.bootstrap, survivorDir, group, env)
    procs.push(survivor)
    await survivor.waitForLine(/joined the group/, 60_000)

    const firedAt: string[] = []
    for (let k = 0; k < KILLS; k++) {
      // Even kills at the named points in turn (on its 1st to 3rd pass), odd ones at random.
      const point = k % 2 === 0 ? FAULT_POINTS[(k / 2) % FAULT_POINTS.length] : undefined
      const fault = point ? { EBBFLOW_FAULT: `${point}:kill@${1 + Math.floor(random() * 3)}` } : {}
      process.stdout.write(
        `# kill ${k + 1}/${KILLS} at ${point ?? 'a random moment'}, ${Math.round(performance.now() / 1000)} s\n`,
      )
      const victim = ingest(broker.bootstrap, victimDir, group, { ...env, ...fault })
      procs.push(victim)
      await victim.waitForLine(/joined the group/, 60_000)
      if (point) {
        // The victim kills itself there once it has partitions and a block to store.
        await waitFor(`the victim to die at ${point}`, () => !victim.running, 60_000)
        const { signal } = await victim.exited
        assert.equal(signal, 'SIGKILL', `the victim died of ${signal}, not at ${point}`)
        // Its last lines may still be in the pipe when the exit is seen.
        await waitFor(
          'its fault line',
          () => victim.matching(/fault point reached/).length > 0,
          5000,
        ).catch((err: Error) => {
          throw new Error(`${err.message}; its last lines:\n${victim.lines.slice(-15).join('\n')}`)
        })
        const line = victim.matching(/fault point reached/)[0]!
        assert.equal((JSON.parse(line) as { point: string }).point, point)
        firedAt.push(point)
      } else {
        // Somewhere inside the victim's work; the moment is random, its seed is printed.
        await sleep(200 + random() * 2500)
        victim.kill('SIGKILL')
        await victim.exited
      }
    }
    // Every named point was hit (and its kill counted in the figures below).
    for (const p of FAULT_POINTS) assert.ok(firedAt.includes(p), `no kill at ${p}`)
    publishing = false
    await publisher

    // The survivor alone must bring every partition to its end.
    const admin = kafka(broker.bootstrap).admin()
    await admin.connect()
    const ends = await admin.fetchTopicOffsets(TOPICS.exec)
    let last = ''
    await waitFor(
      'the group to commit every partition to its end',
      async () => {
        const [t] = await admin.fetchOffsets({ groupId: group, topics: [TOPICS.exec] })
        last = JSON.stringify({ ends: ends.map((e) => e.high), committed: t!.partitions })
        return ends.every(
          (e) => t!.partitions.find((p) => p.partition === e.partition)?.offset === e.high,
        )
      },
      120_000,
      500,
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}: ${last}; the survivor's last lines:\n${survivor.lines.slice(-25).join('\n')}`,
      )
    })
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
        namedKills: firedAt,
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
