// Child cgroups of the cgroup v2 mount stand in for containers: a test workload moves itself
// into one before it execs, so everything it does is charged to that cgroup's id.
import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, rmdirSync } from 'node:fs'
import { join } from 'node:path'
import { cgroupId, findCgroup2Mount } from '@ebbflow/common'

export interface TestCgroup {
  path: string
  id: number
  /** Runs argv inside the cgroup; resolves with the exit code and stdout. */
  run(
    argv: string[],
    options?: { input?: string },
  ): Promise<{ code: number | null; stdout: string; stderr: string; pid: number }>
  /** Starts argv inside the cgroup and returns the child (for servers). */
  start(argv: string[]): ReturnType<typeof spawn>
  remove(): Promise<void>
}

let counter = 0

export function createCgroup(label: string): TestCgroup {
  const root = findCgroup2Mount()
  const path = join(root, `ebbflow-test-${process.pid}-${label}-${counter++}`)
  mkdirSync(path)
  const id = cgroupId(path)
  // The wrapper shell moves itself into the cgroup, then becomes the workload (same pid).
  const wrap = (argv: string[]) => [
    '/bin/sh',
    '-c',
    'echo $$ > "$0/cgroup.procs" && exec "$@"',
    path,
    ...argv,
  ]
  const start = (argv: string[]) => {
    const [cmd, ...args] = wrap(argv)
    return spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'] })
  }
  return {
    path,
    id,
    start,
    run(argv, options = {}) {
      return new Promise((resolve, reject) => {
        const child = start(argv)
        let stdout = ''
        let stderr = ''
        child.stdout!.on('data', (d) => {
          stdout += d
        })
        child.stderr!.on('data', (d) => {
          stderr += d
        })
        child.on('error', reject)
        child.on('close', (code) => resolve({ code, stdout, stderr, pid: child.pid! }))
        // A workload that exits before reading its stdin closes the pipe: not an error.
        child.stdin!.on('error', (err: NodeJS.ErrnoException) => {
          if (err.code !== 'EPIPE') reject(err)
        })
        child.stdin!.end(options.input ?? '')
      })
    },
    async remove() {
      for (let i = 0; i < 100; i++) {
        const procs = readFileSync(join(path, 'cgroup.procs'), 'utf8').trim()
        if (procs === '') break
        await new Promise((r) => setTimeout(r, 20))
      }
      rmdirSync(path)
    },
  }
}
