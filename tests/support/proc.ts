// A child process whose output is kept, with waits on a condition, on its output and on its
// exit: every test that runs an ebbflow command as a user would uses these.
import type { ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

export async function until<T>(
  what: string,
  read: () => Promise<T> | T,
  ok: (v: T) => boolean,
  timeoutMs = 30_000,
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last = await read()
  while (!ok(last)) {
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last)?.slice(0, 1500)}`,
      )
    await new Promise((r) => setTimeout(r, everyMs))
    last = await read()
  }
  return last
}

/** A child process whose output is kept, with waits on its output and its exit. */
export class Proc {
  readonly child: ChildProcess
  stdout = ''
  stderr = ''
  readonly exited: Promise<number | null>

  constructor(child: ChildProcess) {
    this.child = child
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      this.stdout += d
    })
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d
    })
    child.stdin?.on('error', () => {})
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null) resolve(child.exitCode)
      else child.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null)))
    })
  }

  get pid(): number {
    return this.child.pid!
  }

  async output(
    re: RegExp,
    what: string,
    timeoutMs = 30_000,
    everyMs = 50,
  ): Promise<RegExpExecArray> {
    let exited = false
    void this.exited.then(() => {
      exited = true
    })
    const m = await until(
      what,
      () => re.exec(this.stdout) ?? re.exec(this.stderr) ?? (exited ? 'exited' : null),
      (v) => v !== null,
      timeoutMs,
      everyMs,
    ).catch((err: Error) => {
      // A process that never says it is ready usually said why on stderr.
      throw new Error(`${err.message}; its stderr ends: ${this.stderr.slice(-2000)}`, {
        cause: err,
      })
    })
    if (m === 'exited' || m === null)
      throw new Error(
        `${what}: the process exited first; stdout ${this.stdout} stderr ${this.stderr}`,
      )
    return m
  }

  async exit(timeoutMs = 30_000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no exit within ${timeoutMs} ms: ${this.stderr.slice(-2000)}`)),
        timeoutMs,
      )
    })
    try {
      return await Promise.race([this.exited, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** SIGTERM, then the exit code (SIGKILL after the deadline). */
  async stop(timeoutMs = 60_000): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.exited
    this.child.kill('SIGTERM')
    try {
      return await this.exit(timeoutMs)
    } catch (err) {
      this.child.kill('SIGKILL')
      throw err
    }
  }
}

/**
 * Each live thread of process `pid` (default: this one) by thread id: its name and its CPU
 * seconds so far, from the scheduler's own nanosecond count (schedstat; utime and stime in
 * /proc's stat come in ticks of 10 ms, as large as the differences some benches measure). A
 * thread that ended before the read is missing.
 */
export function threadCpu(
  pid: number | 'self' = 'self',
): Map<string, { name: string; seconds: number }> {
  const out = new Map<string, { name: string; seconds: number }>()
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const dir = `/proc/${pid}/task/${tid}`
      const ns = Number(readFileSync(`${dir}/schedstat`, 'utf8').split(' ')[0])
      out.set(tid, { name: readFileSync(`${dir}/comm`, 'utf8').trimEnd(), seconds: ns / 1e9 })
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out
}

/**
 * The CPU seconds process `pid`'s threads used since `before` (a threadCpu read): a thread
 * that ended in between counts for nothing, one that started counts whole.
 */
export function processCpuSince(
  before: Map<string, { seconds: number }>,
  pid: number | 'self' = 'self',
): number {
  let seconds = 0
  for (const [tid, t] of threadCpu(pid)) seconds += t.seconds - (before.get(tid)?.seconds ?? 0)
  return seconds
}

/**
 * CPU seconds so far of each thread of process `pid` (default: this one), summed by thread
 * name with a trailing number dropped, so a pool's threads add up: Node's main thread, V8's
 * and libuv's workers, chDB's query and merge pools. A thread that ended before the read is
 * missing.
 */
export function threadCpuSeconds(pid: number | 'self' = 'self'): Map<string, number> {
  const out = new Map<string, number>()
  for (const { name, seconds } of threadCpu(pid).values()) {
    const pool = name.replace(/\d+$/, '')
    out.set(pool, (out.get(pool) ?? 0) + seconds)
  }
  return out
}

/**
 * The CPU seconds each thread name of `pid` spent since `before` (a threadCpuSeconds read), the
 * largest first, those of at least one tick (10 ms).
 */
export function threadCpuSince(
  before: Map<string, number>,
  pid: number | 'self' = 'self',
): Record<string, number> {
  return Object.fromEntries(
    [...threadCpuSeconds(pid)]
      .map(([name, s]) => [name, Number((s - (before.get(name) ?? 0)).toFixed(2))] as const)
      .filter(([, s]) => s >= 0.01)
      .sort((a, b) => b[1] - a[1]),
  )
}
