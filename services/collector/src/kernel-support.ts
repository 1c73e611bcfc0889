// The kernel features the BPF objects need, by event family, and the refusal a collector gives
// on a kernel without them. Each feature is probed (native/src/features.cc), not read off the
// version number: distributions backport features, and a kernel may be built without one. The
// versions are where each feature entered mainline Linux, for the message and the README.
import { type Family, KernelSupportError } from '@ebbflow/common'
import type { Features } from '@ebbflow/native'

/** The probed features: every boolean of Features. */
export type KernelFeature = {
  [K in keyof Features]: Features[K] extends boolean ? K : never
}[keyof Features]

export interface KernelRequirement {
  feature: KernelFeature
  /** What the kernel lacks, in the words of the message. */
  what: string
  /** The mainline Linux release that brought it, as "major.minor". */
  since: string
  /** The families whose objects cannot load or attach without it. */
  families: readonly Family[]
}

const EVERY_FAMILY: readonly Family[] = ['exec', 'net', 'syscall', 'file']

export const KERNEL_REQUIREMENTS: readonly KernelRequirement[] = [
  {
    feature: 'btf',
    what: 'kernel BTF at /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF), which CO-RE objects relocate against',
    since: '5.4',
    families: EVERY_FAMILY,
  },
  { feature: 'ringbuf', what: 'BPF ring buffers', since: '5.8', families: EVERY_FAMILY },
  {
    feature: 'currentTaskBtf',
    what: 'the bpf_get_current_task_btf helper',
    since: '5.11',
    families: EVERY_FAMILY,
  },
  {
    feature: 'cgroupSkb',
    what: 'cgroup_skb programs (traffic counters)',
    since: '4.10',
    families: ['net'],
  },
  {
    feature: 'sockCgroupPointer',
    what: 'a cgroup pointer in struct sock_cgroup_data (a socket’s cgroup)',
    since: '5.15',
    families: ['net'],
  },
  { feature: 'bpfLoop', what: 'the bpf_loop helper', since: '5.17', families: ['file'] },
  { feature: 'findVma', what: 'the bpf_find_vma helper', since: '5.17', families: ['file'] },
]

function versionParts(v: string): number[] {
  return v.split('.').map(Number)
}

function newer(a: string, b: string): boolean {
  const [x, y] = [versionParts(a), versionParts(b)]
  return (x[0] ?? 0) - (y[0] ?? 0) > 0 || (x[0] === y[0] && (x[1] ?? 0) > (y[1] ?? 0))
}

function needed(families: readonly Family[]): KernelRequirement[] {
  return KERNEL_REQUIREMENTS.filter((r) => r.families.some((f) => families.includes(f)))
}

/** The oldest mainline Linux that has every feature these families need, as "major.minor". */
export function minimumKernel(families: readonly Family[]): string {
  return needed(families).reduce((min, r) => (newer(r.since, min) ? r.since : min), '0.0')
}

/** Why this kernel cannot run these families, or undefined when it can. */
export function kernelSupportProblem(
  features: Features,
  families: readonly Family[],
): string | undefined {
  const missing = needed(families).filter((r) => !features[r.feature])
  if (missing.length === 0) return undefined
  const lacks = missing.map((r) => {
    const who = r.families.length === EVERY_FAMILY.length ? 'every family' : r.families.join(', ')
    return `${r.what} (Linux ${r.since}+; ${who})`
  })
  return (
    `kernel ${features.kernelRelease} lacks what the BPF programs need: ${lacks.join('; ')}. ` +
    `The families ${families.join(', ')} need Linux ${minimumKernel(families)} or newer ` +
    '(or an older kernel with these features backported)'
  )
}

/** Throws KernelSupportError KERNEL_TOO_OLD where this kernel cannot run these families. */
export function checkKernelSupport(features: Features, families: readonly Family[]): void {
  const problem = kernelSupportProblem(features, families)
  if (problem) throw new KernelSupportError('KERNEL_TOO_OLD', problem)
}
