// One synthetic exec event for tests that need many distinct ones (publisher, transport):
// process `i` (pid and tgid i + 1, stamped 1 ms + i ns after boot) running `/bin/x` with the
// given arguments after its own path.
import type { ExecEvent } from '@ebbflow/common/events/types'

export function syntheticExec(i: number, ...args: string[]): ExecEvent {
  const argv = ['/bin/x', ...args]
  return {
    kind: 'exec',
    bootNs: 1_000_000 + i,
    cgroupId: 1,
    pid: i + 1,
    tgid: i + 1,
    ppid: 1,
    uid: 0,
    gid: 0,
    pidnsIno: 1,
    mntnsIno: 1,
    comm: 'x',
    parentComm: 'y',
    filename: '/bin/x',
    args: argv,
    argsTotalBytes: argv.reduce((n, a) => n + Buffer.byteLength(a) + 1, 0),
    argsTruncated: false,
    filenameTruncated: false,
    argsReadFailed: false,
  }
}
