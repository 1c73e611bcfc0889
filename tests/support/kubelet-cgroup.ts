// A container's cgroup as kubelet's cgroupfs driver lays it out
// (`<mount>/kubepods/burstable/pod<uid>/<container id>`), and processes that enter it the way a
// container runtime puts them there: a process whose parent is this test (outside the cgroup)
// writes itself into cgroup.procs, then execs the workload — the container's main process, or
// a `kubectl exec` shell (runc exec does the same from outside the container's process tree).
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs'
import { join } from 'node:path'
import { cgroupId, findCgroup2Mount } from '@ebbflow/common'

export interface KubeletCgroup {
  path: string
  id: number
  /** Starts argv inside the cgroup with piped stdio; the child's pid is the workload's. */
  enter(argv: string[]): ChildProcessWithoutNullStreams
  /** The tgids in the cgroup now. */
  procs(): number[]
  /** Waits for the cgroup to empty, then removes the levels this call made. */
  remove(): Promise<void>
}

export function kubeletCgroup(podUid: string, containerId: string): KubeletCgroup {
  const mount = findCgroup2Mount()
  const made: string[] = []
  let dir = mount
  for (const level of ['kubepods', 'burstable', `pod${podUid}`, containerId]) {
    dir = join(dir, level)
    if (!existsSync(dir)) {
      mkdirSync(dir)
      made.push(dir)
    }
  }
  const path = dir
  const procs = () =>
    readFileSync(join(path, 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map(Number)
  return {
    path,
    id: cgroupId(path),
    enter(argv) {
      return spawn('/bin/sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', path, ...argv])
    },
    procs,
    async remove() {
      const deadline = Date.now() + 5000
      while (procs().length > 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20))
      // Innermost first; a level another test also uses (ENOTEMPTY) stays.
      for (const d of made.reverse()) {
        try {
          rmdirSync(d)
        } catch {}
      }
    },
  }
}

/** Resolves with the next `count` lines the stream prints, or rejects at the deadline. */
export function readLines(
  stream: NodeJS.ReadableStream,
  count: number,
  timeoutMs = 10_000,
): Promise<string[]> {
  return new Promise((resolve, reject) => {
    let text = ''
    const timer = setTimeout(() => {
      stream.off('data', onData)
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${count} lines, got ${text}`))
    }, timeoutMs)
    const onData = (d: Buffer) => {
      text += d.toString()
      const lines = text.split('\n')
      if (lines.length > count) {
        clearTimeout(timer)
        stream.off('data', onData)
        resolve(lines.slice(0, count))
      }
    }
    stream.on('data', onData)
  })
}
