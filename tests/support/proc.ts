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
 * CPU seconds (user + system) so far of each thread of process `pid` (default: this one),
 * summed by thread name with a trailing number dropped, so a pool's threads add up: Node's main thread,
 * V8's and libuv's workers, chDB's query and merge pools. A thread that ended before the read
 * is missing.
 */
export function threadCpuSeconds(pid: number | 'self' = 'self'): Map<string, number> {
  const out = new Map<string, number>()
  const tick = 100 // USER_HZ: /proc counts CPU time in 1/100 s
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
    } catch {
      continue // the thread ended between the listing and the read
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/\d+$/, '')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    out.set(name, (out.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) / tick)
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
