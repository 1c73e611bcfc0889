// What capture needs from the process before anything is loaded, so a missing privilege is
// named instead of surfacing as a bare EPERM from the kernel.
import { existsSync, readFileSync } from 'node:fs'
import { KernelSupportError } from '@ebbflow/common'

const CAP = {
  CAP_NET_ADMIN: 12,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_RESOURCE: 24,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
} as const
type CapName = keyof typeof CAP

export function effectiveCapabilities(status = '/proc/self/status'): Set<CapName> {
  const line = readFileSync(status, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('CapEff:'))
  const mask = BigInt(`0x${line?.split(/\s+/)[1] ?? '0'}`)
  const have = new Set<CapName>()
  for (const [name, bit] of Object.entries(CAP) as [CapName, number][]) {
    if ((mask >> BigInt(bit)) & 1n) have.add(name)
  }
  return have
}

/**
 * Throws a KernelSupportError that names every missing capability and the missing BTF.
 * CAP_SYS_ADMIN stands in for CAP_BPF + CAP_PERFMON (kernels before 5.8 know only it);
 * cgroup_skb attachment needs CAP_NET_ADMIN.
 */
export function checkCapturePrerequisites(options: { net: boolean; btfPath?: string }): void {
  const problems: string[] = []
  const have = effectiveCapabilities()
  const tracing = have.has('CAP_SYS_ADMIN') || (have.has('CAP_BPF') && have.has('CAP_PERFMON'))
  if (!tracing) {
    const missing = (['CAP_BPF', 'CAP_PERFMON'] as const).filter((c) => !have.has(c))
    problems.push(
      `missing capabilities ${missing.join(', ')} (or CAP_SYS_ADMIN): run as root or grant them`,
    )
  }
  if (options.net && !have.has('CAP_NET_ADMIN')) {
    problems.push(
      'missing capability CAP_NET_ADMIN, needed to attach cgroup_skb traffic counters (or leave out the net family)',
    )
  }
  const btf = options.btfPath ?? '/sys/kernel/btf/vmlinux'
  if (!existsSync(btf)) {
    problems.push(
      `no kernel BTF at ${btf}: the kernel needs CONFIG_DEBUG_INFO_BTF=y for CO-RE programs`,
    )
  }
  if (problems.length > 0) {
    throw new KernelSupportError(
      'CAPTURE_PREREQUISITES',
      `cannot capture:\n  - ${problems.join('\n  - ')}`,
    )
  }
}
