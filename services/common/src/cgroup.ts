// cgroup v2: where it is mounted, and a cgroup's id (the inode number of its directory, which
// is what bpf_get_current_cgroup_id() returns).
import { readFileSync, statSync } from 'node:fs'
import { KernelSupportError } from './errors.ts'

/**
 * The cgroup v2 mount point from /proc/self/mountinfo: /sys/fs/cgroup on unified hosts,
 * /sys/fs/cgroup/unified on hybrid ones.
 */
export function findCgroup2Mount(mountinfo = '/proc/self/mountinfo'): string {
  for (const line of readFileSync(mountinfo, 'utf8').split('\n')) {
    // "<id> <parent> <maj:min> <root> <mount point> <options> [optional...] - <fstype> <source> <super options>"
    const sep = line.indexOf(' - ')
    if (sep < 0) continue
    const fstype = line.slice(sep + 3).split(' ')[0]
    if (fstype === 'cgroup2') {
      const mountPoint = line.slice(0, sep).split(' ')[4]
      if (mountPoint) return mountPoint.replace(/\\040/g, ' ')
    }
  }
  throw new KernelSupportError(
    'NO_CGROUP2',
    'no cgroup v2 hierarchy is mounted (none in /proc/self/mountinfo); mount one with `mount -t cgroup2 none /sys/fs/cgroup/unified`',
  )
}

export function cgroupId(path: string): number {
  return Number(statSync(path, { bigint: true }).ino)
}
