// One synthetic syscall record (perl's getppid, as the security-syscall path records it) for
// the wire and event-time tests; `fields` replaces any of its values.
import type { SyscallEvent } from '@ebbflow/common/events/types'

export function syntheticSyscall(fields: Partial<SyscallEvent> = {}): SyscallEvent {
  return {
    kind: 'syscall',
    bootNs: 1,
    cgroupId: 77,
    pid: 10,
    tgid: 10,
    ppid: 1,
    uid: 0,
    gid: 0,
    pidnsIno: 4026531836,
    mntnsIno: 4026531841,
    comm: 'perl',
    syscallNr: 110,
    syscall: 'getppid',
    args: [],
    strings: [],
    ...fields,
  }
}
