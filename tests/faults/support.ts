// What the fault tests share: the real CLI as child processes (their log lines kept and
// waited on), the event topics with three partitions, exec batches whose identities the test
// chose, and reading a chDB folder once its ingester has stopped.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { join } from 'node:path'
import { TOPICS } from '@ebbflow/common/wire'
import { Long, v1 } from '@ebbflow/proto'
import { Kafka, logLevel } from 'kafkajs'

/** `npm run soak` sets it: the full figures instead of the short CI profile. */
export const SOAK = process.env.EBBFLOW_SOAK === '1'
export const bin = join(import.meta.dirname, '../../bin/ebbflow')

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  everyMs = 100,
): Promise<void> {
  const end = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

/** One `ebbflow` process: every line it wrote, in order, and its exit. */
export class Cli {
  readonly lines: string[] = []
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  private readonly child: ChildProcess

  constructor(args: string[], env: Record<string, string> = {}) {
    this.child = spawn(bin, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    })
    for (const s of [this.child.stdout!, this.child.stderr!]) {
      let rest = ''
      s.setEncoding('utf8')
      s.on('data', (d: string) => {
        const parts = (rest + d).split('\n')
        rest = parts.pop()!
        this.lines.push(...parts)
      })
    }
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => resolve({ code, signal })),
    )
  }

  get pid(): number {
    return this.child.pid!
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  /** Lines from index `from` on that match. */
  matching(re: RegExp, from = 0): string[] {
    return this.lines.slice(from).filter((l) => re.test(l))
  }

  async waitForLine(re: RegExp, timeoutMs: number, from = 0): Promise<string> {
    await waitFor(
      `${re} in the output of ebbflow (pid ${this.pid})`,
      () => {
        if (this.matching(re, from).length > 0) return true
        if (!this.running)
          throw new Error(`ebbflow exited before ${re}:\n${this.lines.slice(-20).join('\n')}`)
        return false
      },
      timeoutMs,
    )
    return this.matching(re, from)[0]!
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.running) this.child.kill(signal)
  }

  async stop(timeoutMs = 30_000): Promise<void> {
    if (!this.running) return
    this.child.kill('SIGTERM')
    const t = setTimeout(() => this.kill('SIGKILL'), timeoutMs)
    await this.exited
    clearTimeout(t)
  }
}

/** `ebbflow ingest` on its own chDB folder, in group `group`, metrics off. */
export function ingest(brokers: string, dataDir: string, group: string, env = {}): Cli {
  return new Cli(['ingest', '--kafka', brokers, '--data-dir', dataDir], {
    EBBFLOW_GROUP_ID: group,
    EBBFLOW_METRICS_PORT: '-1',
    // The least the ingester accepts: a killed member's partitions move on after 6 s.
    EBBFLOW_INGEST_SESSION_TIMEOUT_MS: '6000',
    EBBFLOW_LOG_LEVEL: 'info',
    ...env,
  })
}

export function kafka(brokers: string): Kafka {
  return new Kafka({ clientId: 'faults-test', brokers: [brokers], logLevel: logLevel.NOTHING })
}

/** The event topics (and the dead-letter topic) with `partitions` partitions each. */
export async function createTopics(brokers: string, partitions: number, extra: string[] = []) {
  const admin = kafka(brokers).admin()
  await admin.connect()
  await admin.createTopics({
    waitForLeaders: true,
    topics: [...Object.values(TOPICS), ...extra].map((topic) => ({
      topic,
      numPartitions: partitions,
      replicationFactor: 1,
    })),
  })
  await admin.disconnect()
}

/** Wall-clock nanoseconds a few minutes ago: inside every table's TTL. */
export const baseTimeNs = (): bigint => BigInt(Date.now() - 300_000) * 1_000_000n

/** The identity of an exec: (node, boot id, tgid, time, kind), as the store's columns print it. */
export function identity(node: string, bootId: string, tgid: number, timeNs: bigint): string {
  return `${node}|${bootId}|${tgid}|${timeNs}|exec`
}

/**
 * One EventBatch of `count` execs with tgids from `tgid0`, times `t0 + tgid`: every event's
 * identity is the test's own choice. Returns the record and the identities it carries.
 */
export function execBatch(
  node: string,
  bootId: string,
  sequence: number,
  tgid0: number,
  count: number,
  t0: bigint,
): { value: Buffer; ids: string[] } {
  const ids: string[] = []
  const exec = Array.from({ length: count }, (_, i) => {
    const tgid = tgid0 + i
    const time = t0 + BigInt(tgid)
    ids.push(identity(node, bootId, tgid, time))
    return {
      timeNs: Long.fromString(time.toString(), true),
      task: { pid: tgid, tgid, ppid: 1, comm: 'fault' },
      filename: '/bin/fault',
      args: ['fault', String(tgid)],
    }
  })
  const value = Buffer.from(
    v1.EventBatch.encode({
      node,
      bootId,
      collectorInstanceId: `${node}-instance`,
      batchId: `${node}-${bootId}-${sequence}`,
      sequence,
      firstTimeNs: exec[0]!.timeNs,
      lastTimeNs: exec[exec.length - 1]!.timeNs,
      exec,
    }).finish(),
  )
  return { value, ids }
}

/** The exec identities a stopped ingester's chDB folder holds, one entry per row (read in a
 * child process: chDB opens a single folder per process). */
export function storedExecIds(dataDir: string, node: string): string[] {
  const out = execFileSync(
    process.execPath,
    [join(import.meta.dirname, 'read-execs.ts'), dataDir, node],
    { encoding: 'utf8', maxBuffer: 1 << 30 },
  )
  return out.split('\n').filter((l) => l.length > 0)
}

/** Each id with how often it occurs, for the ones that occur more than once. */
export function repeated(ids: Iterable<string>): Map<string, number> {
  const n = new Map<string, number>()
  for (const id of ids) n.set(id, (n.get(id) ?? 0) + 1)
  for (const [id, c] of n) if (c === 1) n.delete(id)
  return n
}

/** Fisher–Yates with a seeded generator: a failure's order can be replayed from its seed. */
export function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Runs `statements` on a chDB folder no process holds open (in a child process). */
export function execFolder(dataDir: string, ...statements: string[]): void {
  execFileSync(
    process.execPath,
    [join(import.meta.dirname, 'read-query.ts'), dataDir, '--exec', ...statements],
    { stdio: 'pipe' },
  )
}

/** The rows of `sql` over a chDB folder no process holds open (read in a child process). */
export function queryFolder<T>(dataDir: string, sql: string): T[] {
  const out = execFileSync(
    process.execPath,
    [join(import.meta.dirname, 'read-query.ts'), dataDir, sql],
    { encoding: 'utf8', maxBuffer: 1 << 30 },
  )
  return JSON.parse(out) as T[]
}
