// `ebbflow collect` as its own process, for tests and benches that measure or drive it from
// outside: started, waited for until its capture is attached, stopped.
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'

export interface CollectProcess {
  child: ChildProcess
  /** What it printed, when started with `stdout: 'pipe'`. */
  stdout: () => string
  stderr: () => string
  /** The script the process's Node runs (a launcher execs Node: its second argument). */
  entry: string
  /** Seconds from the spawn to "capture attached". */
  attachSeconds: number
  /** SIGTERM, then the exit code once it has exited. */
  stop: () => Promise<number | null>
}

/**
 * Spawns `command args…` (a Node or bin/ebbflow running `collect`) and waits until attached.
 * Its stdout is kept only when asked for (`'ignore'` sends it to /dev/null, as a measured run
 * wants).
 */
export async function startCollect(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; stdout?: 'pipe' | 'ignore' } = {},
): Promise<CollectProcess> {
  const child = spawn(command, args, {
    stdio: ['ignore', options.stdout ?? 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  })
  let out = ''
  let err = ''
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d))
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await exited
    }
    return child.exitCode
  }
  const t0 = performance.now()
  try {
    while (!/capture attached/.test(err)) {
      if (child.exitCode !== null) throw new Error(`collect exited ${child.exitCode}: ${err}`)
      if (performance.now() - t0 > 60_000) throw new Error(`collect did not attach: ${err}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  } catch (e) {
    await stop()
    throw e
  }
  const attachSeconds = (performance.now() - t0) / 1000
  const entry = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0')[1] ?? ''
  return { child, stdout: () => out, stderr: () => err, entry, attachSeconds, stop }
}
