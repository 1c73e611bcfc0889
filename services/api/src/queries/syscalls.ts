// Syscall counts, and the seccomp profile advised from them.

import { userError } from '../errors.ts'
import type { QueryContext } from '../query-context.ts'
import { type EventFilter, filterConditions, num, Params, where } from '../sql.ts'
import { parseStep } from './network.ts'

export async function syscallCounts(ctx: QueryContext, filter: EventFilter, first?: number | null) {
  const size = first ?? ctx.limits.defaultPageSize
  if (!Number.isInteger(size) || size < 0 || size > ctx.limits.maxPageSize)
    throw userError(
      'PAGE_TOO_LARGE',
      `first must be between 0 and ${ctx.limits.maxPageSize} (got ${size})`,
    )
  const p = new Params()
  const rows = await ctx.runner.select<{ syscall: string; nr: number; total: string }>(
    `SELECT syscall, any(syscall_nr) AS nr, sum(count) AS total
     FROM ebbflow.syscall_counts ${where(filterConditions(filter, ctx.scope, p))}
     GROUP BY syscall ORDER BY total DESC, syscall LIMIT ${size}`,
    p,
  )
  return rows.map((r) => ({ syscall: r.syscall, nr: num(r.nr), count: num(r.total) }))
}

/**
 * Processes of the container runtime: they run in the container's cgroup while it starts,
 * before the workload's own code, so their syscalls are not the workload's.
 */
export const RUNTIME_COMMS = [
  'runc',
  'runc:[0:PARENT]',
  'runc:[1:CHILD]',
  'runc:[2:INIT]',
  'crun',
  'youki',
  'runsc',
  'runsc-gofer',
  'runsc-sandbox',
  'conmon',
  'containerd-shim',
  'containerd-shim-runc-v2',
]

/** x86_64 numbers are what the collector records; x86 and x32 are the ABIs it can run. */
const ARCHITECTURES = ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']

export interface SyscallEvidence {
  name: string
  nr: number
  count: number
  pods: string[]
  containers: string[]
}

export interface WorkloadRef {
  namespace: string
  kind: string
  name: string
}

export interface ProfileArgs {
  namespace: string
  pod?: string | null
  container?: string | null
  from?: string | null
  to?: string | null
  includeRuntime?: boolean | null
}

/**
 * The workload a pod belongs to, by its latest row in `table`; undefined when the pod was
 * not seen. A pod without a controller is its own workload.
 */
export async function resolveWorkload(
  ctx: QueryContext,
  table: 'syscall_counts' | 'tcp_connections' | 'file_accesses',
  args: { namespace: string; pod: string; from?: string | null; to?: string | null },
): Promise<
  { kind: string; name: string; pod: string; labels: Record<string, string> } | undefined
> {
  const p = new Params()
  const conditions = filterConditions(
    { namespace: args.namespace, pod: args.pod, from: args.from, to: args.to },
    ctx.scope,
    p,
  )
  const rows = await ctx.runner.select<{
    w_kind: string
    w_name: string
    w_labels: Record<string, string>
  }>(
    `SELECT workload_kind AS w_kind, workload_name AS w_name, labels AS w_labels
     FROM ebbflow.${table} ${where(conditions)} ORDER BY time DESC LIMIT 1`,
    p,
  )
  const r = rows[0]
  if (!r) return undefined
  return { kind: r.w_kind, name: r.w_name, pod: args.pod, labels: r.w_labels }
}

/** The rows of a workload: every replica (pod) of its controller, or the one pod. */
export function workloadConditions(
  target: { kind: string; name: string; pod: string } | undefined,
  p: Params,
): string[] {
  if (!target) return []
  if (target.name === '') return [`pod = ${p.add('String', target.pod)}`]
  return [
    `workload_kind = ${p.add('String', target.kind)}`,
    `workload_name = ${p.add('String', target.name)}`,
  ]
}

/** DNS-1123 name for a generated object. */
export function objectName(...parts: string[]): string {
  const name = parts
    .filter((x) => x !== '')
    .join('-')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '')
  return name || 'ebbflow'
}

export async function seccompProfile(ctx: QueryContext, args: ProfileArgs) {
  const target =
    args.pod == null
      ? undefined
      : await resolveWorkload(ctx, 'syscall_counts', {
          namespace: args.namespace,
          pod: args.pod,
          from: args.from,
          to: args.to,
        })
  const seen = args.pod == null || target !== undefined
  const p = new Params()
  const conditions = [
    ...filterConditions({ namespace: args.namespace, from: args.from, to: args.to }, ctx.scope, p),
    ...workloadConditions(target, p),
  ]
  // The runtime's start-up rows have no container name yet, so they are kept with a
  // container filter too.
  if (args.container != null)
    conditions.push(`(container = ${p.add('String', args.container)} OR container = '')`)
  const rows = seen
    ? await ctx.runner.select<{
        syscall: string
        nr: number
        total: string
        pods: string[]
        containers: string[]
        runtime: number
      }>(
        `SELECT syscall, any(syscall_nr) AS nr, sum(count) AS total,
           arraySort(groupUniqArray(pod)) AS pods, arraySort(groupUniqArray(container)) AS containers,
           container = '' AS runtime
         FROM ebbflow.syscall_counts ${where(conditions)}
         GROUP BY syscall, runtime ORDER BY syscall`,
        p,
      )
    : []
  const q = new Params()
  const runtimeConditions = [
    ...filterConditions({ namespace: args.namespace, from: args.from, to: args.to }, ctx.scope, q),
    ...workloadConditions(target, q),
    `has(${q.add('Array(String)', RUNTIME_COMMS)}, comm)`,
  ]
  const runtimeEvents = seen
    ? await ctx.runner.select<{ syscall: string; nr: number; total: string; pods: string[] }>(
        `SELECT syscall, any(syscall_nr) AS nr, count() AS total,
           arraySort(groupUniqArray(pod)) AS pods
         FROM ebbflow.syscall_events ${where(runtimeConditions)} GROUP BY syscall ORDER BY syscall`,
        q,
      )
    : []
  const workload: SyscallEvidence[] = []
  const runtime = new Map<string, SyscallEvidence>()
  for (const r of rows) {
    const e = {
      name: r.syscall,
      nr: num(r.nr),
      count: num(r.total),
      pods: r.pods,
      containers: r.containers.filter((c) => c !== ''),
    }
    if (num(r.runtime) === 1) runtime.set(e.name, e)
    else workload.push(e)
  }
  for (const r of runtimeEvents) {
    const prior = runtime.get(r.syscall)
    if (prior) {
      prior.count += num(r.total)
      prior.pods = [...new Set([...prior.pods, ...r.pods])].sort()
    } else
      runtime.set(r.syscall, {
        name: r.syscall,
        nr: num(r.nr),
        count: num(r.total),
        pods: r.pods,
        containers: [],
      })
  }
  const runtimeList = [...runtime.values()].sort((a, b) => (a.name < b.name ? -1 : 1))
  const allowed = new Set(workload.map((s) => s.name))
  if (args.includeRuntime) for (const s of runtimeList) allowed.add(s.name)
  const names = [...allowed].sort()
  const oci = {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    architectures: ARCHITECTURES,
    syscalls: names.length > 0 ? [{ names, action: 'SCMP_ACT_ALLOW' }] : [],
  }
  const pods = [...new Set(workload.flatMap((s) => s.pods))].sort()
  // SeccompProfile is cluster-scoped in the operator's CRD (v0.10, applied by
  // tests/manifests/apiserver-apply.test.ts): a namespace would be dropped on apply and two
  // namespaces' `web` would overwrite each other, so the namespace goes into the name.
  const name = objectName(
    args.namespace,
    target ? target.name || target.pod : '',
    args.container ?? '',
  )
  const manifest = {
    apiVersion: 'security-profiles-operator.x-k8s.io/v1beta1',
    kind: 'SeccompProfile',
    metadata: {
      name,
      annotations: {
        'ebbflow.io/namespace': args.namespace,
        'ebbflow.io/generated-from': 'syscall_counts',
        'ebbflow.io/workload': target ? `${target.kind || 'Pod'}/${target.name || target.pod}` : '',
        'ebbflow.io/window': `${args.from ?? ''}..${args.to ?? ''}`,
      },
    },
    spec: {
      defaultAction: oci.defaultAction,
      architectures: oci.architectures,
      syscalls: oci.syscalls,
    },
  }
  return {
    namespace: args.namespace,
    workloadKind: target ? target.kind || 'Pod' : null,
    workloadName: target ? target.name || target.pod : null,
    pods,
    container: args.container ?? null,
    from: args.from ?? null,
    to: args.to ?? null,
    observed: workload.length > 0,
    defaultAction: oci.defaultAction,
    architectures: oci.architectures,
    syscalls: workload,
    runtimeSyscalls: runtimeList,
    ociProfile: oci,
    manifest,
  }
}

/**
 * System calls over time for the workloads the filter selects: the count per step and syscall
 * from the raw per-interval counts (syscall_counts), at most limits.maxSeriesPoints points.
 */
export async function syscallSeries(ctx: QueryContext, filter: EventFilter, step: string) {
  const seconds = parseStep(step)
  const p = new Params()
  const max = ctx.limits.maxSeriesPoints
  const rows = await ctx.runner.select<{ bucket: string; syscall: string; total: string }>(
    `SELECT toString(toStartOfInterval(time, toIntervalSecond(${p.add('UInt32', seconds)}))) AS bucket,
       syscall, sum(count) AS total
     FROM ebbflow.syscall_counts ${where(filterConditions(filter, ctx.scope, p))}
     GROUP BY bucket, syscall ORDER BY bucket, syscall LIMIT ${max + 1}`,
    p,
  )
  if (rows.length > max)
    throw userError(
      'RESULT_TOO_LARGE',
      `the series has more than ${max} points; use a larger step or a shorter window`,
    )
  return rows.map((r) => ({
    time: r.bucket.includes('.') ? r.bucket : `${r.bucket}.000000000`,
    syscall: r.syscall,
    count: num(r.total),
  }))
}
