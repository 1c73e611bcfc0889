// `ebbflow collect` as its own process, for tests and benches that measure or drive it from
// outside: started, waited for until its capture is attached, stopped (a Proc: its output kept,
// SIGTERM to stop).
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { Proc } from './proc.ts'

export class CollectProcess extends Proc {
  /** The script the process's Node runs (a launcher execs Node: its second argument). */
  entry = ''
  /** Seconds from the spawn to "capture attached". */
  attachSeconds = 0
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
  const t0 = performance.now()
  const c = new CollectProcess(
    spawn(command, args, {
      stdio: ['ignore', options.stdout ?? 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
    }),
  )
  try {
    await c.output(/capture attached/, 'collect to attach', 60_000, 20)
  } catch (e) {
    await c.stop()
    throw e
  }
  c.attachSeconds = (performance.now() - t0) / 1000
  c.entry = readFileSync(`/proc/${c.pid}/cmdline`, 'utf8').split('\0')[1] ?? ''
  return c
}
