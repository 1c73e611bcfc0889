import { SYSCALLS_X86_64 } from './syscalls-x86_64.generated.ts'

const names: string[] = []
for (const [name, nr] of Object.entries(SYSCALLS_X86_64)) names[nr] = name

/** The syscall's name, or `syscall_<nr>` for one newer than the UAPI headers we built with. */
export function syscallName(nr: number): string {
  return names[nr] ?? `syscall_${nr}`
}

export function syscallNumber(name: string): number | undefined {
  return SYSCALLS_X86_64[name]
}

/**
 * Security-relevant syscalls that emit one record each (with arguments) by default, and
 * which of their arguments are user strings worth copying (0-based argument indexes).
 */
export const DEFAULT_SECURITY_SYSCALLS: Readonly<Record<string, readonly number[]>> = {
  ptrace: [],
  process_vm_readv: [],
  process_vm_writev: [],
  mount: [0, 1], // source, target
  umount2: [0],
  move_mount: [1],
  fsopen: [0],
  setns: [],
  unshare: [],
  bpf: [],
  init_module: [2], // param_values
  finit_module: [1],
  delete_module: [0],
  kexec_load: [],
  kexec_file_load: [3], // cmdline
  setuid: [],
  setgid: [],
  setreuid: [],
  setregid: [],
  setresuid: [],
  setresgid: [],
  setfsuid: [],
  setfsgid: [],
  setgroups: [],
  capset: [],
  chroot: [0],
  pivot_root: [0, 1],
  keyctl: [],
  add_key: [0, 1],
  request_key: [0, 1],
  perf_event_open: [],
  open_by_handle_at: [],
  userfaultfd: [],
  personality: [],
  iopl: [],
  ioperm: [],
  swapon: [0],
  swapoff: [0],
  reboot: [],
}
