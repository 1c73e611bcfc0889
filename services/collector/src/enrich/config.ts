// Configuration of the enrichment stage. It reads process.env only through loadEnrichConfig's
// default argument. The node's name is not here: the collector's configuration owns it
// (NODE_NAME, read once) and startEnrichment takes it from there, so the name on the Kafka key,
// on the events and in the pod watch's field selector is one value.
import { existsSync } from 'node:fs'
import { ConfigError, commaList, parseConfig } from '@ebbflow/common'
import { z } from 'zod'

const list = commaList

const ms = (max: number) => z.coerce.number().int().min(0).max(max)

export const enrichConfigSchema = z.object({
  /** Where pod metadata comes from: `auto` uses Kubernetes when a kubeconfig is given or the
   * collector runs in a pod (service account mounted), else host mode; `on` requires it; `off`
   * is host mode (systemd units and container ids only). Default: auto. A missing or
   * unreachable API server never stops capture. */
  kubernetes: z.enum(['auto', 'on', 'off']).default('auto'),
  /** Kubeconfig file (KUBECONFIG). Default: none; the in-cluster service account when present.
   * ~/.kube/config is deliberately not read in auto mode: on a laptop it names a remote
   * cluster whose pods are not on this machine. */
  kubeconfig: z.string().min(1).optional(),
  /** Longest an event from a container whose pod is not yet known waits for it before it is
   * sent with what is known and `unresolved`. Default: 2000 ms. */
  lateMetadataMs: ms(60_000).default(2000),
  /** How long a deleted pod stays resolvable, for the last events of short-lived pods.
   * Default: 120000 ms. */
  deletedPodGraceMs: ms(24 * 3_600_000).default(120_000),
  /** Most pods cached (deleted ones included; those go first). A node runs at most a few
   * hundred; short-lived function pods in their grace period add to it. Default: 5000. */
  maxPods: z.coerce.number().int().min(1).max(1_000_000).default(5000),
  /** Most events held for late metadata; past it the oldest are sent unresolved.
   * Default: 50000. */
  maxPendingEvents: z.coerce.number().int().min(0).max(10_000_000).default(50_000),
  /** Pod label keys kept on events; empty keeps all, up to maxLabels. Default: all. */
  labelAllowlist: list.prefault(''),
  /** Most labels kept per pod (keys in sorted order). Default: 32. */
  maxLabels: z.coerce.number().int().min(0).max(1024).default(32),
  /** Extra label keys naming a function, tried before the Knative, OpenFaaS, Fission and
   * Kubeless ones. Default: none. */
  functionLabels: list.prefault(''),
  /** Most cgroups remembered by id. Default: 65536. */
  cgroupCacheMax: z.coerce.number().int().min(16).max(10_000_000).default(65_536),
  /** Shortest time between two walks of the cgroup mount on a cache miss. Default: 250 ms. */
  cgroupRescanMinMs: ms(60_000).default(250),
  /** First wait before a failed pod list/watch is retried; doubles up to 30 s. Default: 500 ms. */
  kubeBackoffMs: z.coerce.number().int().min(10).max(60_000).default(500),
})

export type EnrichConfig = z.output<typeof enrichConfigSchema>
export type EnrichConfigInput = { [K in keyof z.input<typeof enrichConfigSchema>]?: string }

export const enrichEnvNames: Readonly<Record<keyof EnrichConfigInput, string>> = {
  kubernetes: 'EBBFLOW_KUBERNETES',
  kubeconfig: 'KUBECONFIG',
  lateMetadataMs: 'EBBFLOW_LATE_METADATA_MS',
  deletedPodGraceMs: 'EBBFLOW_DELETED_POD_GRACE_MS',
  maxPods: 'EBBFLOW_MAX_PODS',
  maxPendingEvents: 'EBBFLOW_MAX_PENDING_EVENTS',
  labelAllowlist: 'EBBFLOW_LABEL_ALLOWLIST',
  maxLabels: 'EBBFLOW_MAX_LABELS',
  functionLabels: 'EBBFLOW_FUNCTION_LABELS',
  cgroupCacheMax: 'EBBFLOW_CGROUP_CACHE_MAX',
  cgroupRescanMinMs: 'EBBFLOW_CGROUP_RESCAN_MIN_MS',
  kubeBackoffMs: 'EBBFLOW_KUBE_BACKOFF_MS',
}

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token'

/** Explicit values, then the environment, then defaults; throws ConfigError listing every problem. */
export function loadEnrichConfig(
  explicit: EnrichConfigInput = {},
  env: NodeJS.ProcessEnv = process.env,
): EnrichConfig {
  // An empty KUBECONFIG (as a manifest may set) means unset here.
  const { data, problems } = parseConfig(enrichConfigSchema, enrichEnvNames, explicit, env, {
    emptyIsUnset: true,
  })
  if (data?.kubeconfig && !existsSync(data.kubeconfig)) {
    problems.push(`kubeconfig (KUBECONFIG): no such file ${JSON.stringify(data.kubeconfig)}`)
  } else if (data?.kubernetes === 'on' && !data.kubeconfig && !inCluster(env)) {
    problems.push(
      'kubernetes (EBBFLOW_KUBERNETES): "on" needs KUBECONFIG or an in-cluster service account',
    )
  }
  if (problems.length > 0 || !data) throw new ConfigError(problems)
  return data
}

/** Running in a pod with its service account token mounted. */
export function inCluster(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.KUBERNETES_SERVICE_HOST) && existsSync(SERVICE_ACCOUNT_TOKEN)
}
