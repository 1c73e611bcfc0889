// A NetworkPolicy advised from the TCP connections a workload made and accepted.
import type { QueryContext } from '../query-context.ts'
import type { Params } from '../sql.ts'
import { addressBook, flowsWithPeers, type Peer, type Workload } from './network.ts'
import { objectName, resolveWorkload, workloadConditions } from './syscalls.ts'

/** Labels that differ between replicas or revisions: selecting on them would miss pods. */
const VOLATILE_LABELS = new Set([
  'pod-template-hash',
  'controller-revision-hash',
  'pod-template-generation',
  'statefulset.kubernetes.io/pod-name',
  'apps.kubernetes.io/pod-index',
  'batch.kubernetes.io/controller-uid',
  'batch.kubernetes.io/job-name',
  'controller-uid',
  'job-name',
])

function stableLabels(labels: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const k of Object.keys(labels).sort()) if (!VOLATILE_LABELS.has(k)) out[k] = labels[k]!
  return out
}

export interface FlowEvidence {
  port: number
  connections: number
  bytesSent: number
  bytesReceived: number
  firstSeen: string
  lastSeen: string
}

export interface PolicyRule {
  peer: {
    kind: 'Pod' | 'External'
    namespace: string | null
    workload: string | null
    address: string | null
    labels: Record<string, string> | null
  }
  ports: number[]
  peerSpec: Record<string, unknown>
  evidence: FlowEvidence[]
}

export interface PolicyArgs {
  namespace: string
  pod?: string | null
  from?: string | null
  to?: string | null
}

function peerSpec(
  peer: Peer,
  ownNamespace: string,
): { key: string; rule: PolicyRule['peer']; spec: Record<string, unknown> } {
  const w: Workload | undefined = peer.workload
  const labels = w ? stableLabels(w.labels) : {}
  if (w && Object.keys(labels).length > 0) {
    const podSelector = { matchLabels: labels }
    const spec =
      w.namespace === ownNamespace
        ? { podSelector }
        : {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': w.namespace } },
            podSelector,
          }
    return {
      key: w.id,
      rule: {
        kind: 'Pod',
        namespace: w.namespace,
        workload: `${w.kind}/${w.name}`,
        address: null,
        labels,
      },
      spec,
    }
  }
  const cidr = `${peer.address}/${peer.address.includes(':') ? 128 : 32}`
  return {
    key: `cidr/${cidr}`,
    rule: {
      kind: 'External',
      namespace: null,
      workload: null,
      address: peer.address,
      labels: null,
    },
    spec: { ipBlock: { cidr } },
  }
}

type Flow = Awaited<ReturnType<typeof flowsWithPeers>>[number]

function rules(flows: Flow[], ownNamespace: string): PolicyRule[] {
  const byPeer = new Map<string, PolicyRule>()
  for (const f of flows) {
    // A connection that never opened was refused or timed out: nothing to admit.
    if (f.opened === 0) continue
    const { key, rule, spec } = peerSpec(f.peer, ownNamespace)
    let r = byPeer.get(key)
    if (!r) {
      r = { peer: rule, ports: [], peerSpec: spec, evidence: [] }
      byPeer.set(key, r)
    }
    const same = r.evidence.find((e) => e.port === f.port)
    if (same) {
      same.connections += f.opened
      same.bytesSent += f.sent
      same.bytesReceived += f.received
      if (f.firstSeen < same.firstSeen) same.firstSeen = f.firstSeen
      if (f.lastSeen > same.lastSeen) same.lastSeen = f.lastSeen
    } else
      r.evidence.push({
        port: f.port,
        connections: f.opened,
        bytesSent: f.sent,
        bytesReceived: f.received,
        firstSeen: f.firstSeen,
        lastSeen: f.lastSeen,
      })
  }
  const out = [...byPeer.values()]
  for (const r of out) {
    r.evidence.sort((a, b) => a.port - b.port)
    r.ports = r.evidence.map((e) => e.port)
  }
  return out.sort((a, b) => {
    const ka = JSON.stringify(a.peerSpec)
    const kb = JSON.stringify(b.peerSpec)
    return ka < kb ? -1 : ka > kb ? 1 : 0
  })
}

/**
 * Connections into the target. A client the caller can see counts from its own side (its
 * connect), as the service map does; the target's accept side counts for clients outside the
 * caller's view, and for known clients whose own side was not captured.
 */
async function ingressFlows(
  ctx: QueryContext,
  args: PolicyArgs,
  target: { kind: string; name: string; pod: string } | undefined,
  book: Map<string, Workload>,
  extra: (p: Params) => string[],
): Promise<Flow[]> {
  const isTarget = (w: Workload) =>
    w.namespace === args.namespace &&
    (!target ||
      (target.name === ''
        ? w.kind === 'Pod' && w.name === target.pod
        : w.kind === target.kind && w.name === target.name))
  const byId = new Map([...book.values()].map((w) => [w.id, w]))
  const window = { from: args.from, to: args.to }
  const clients: Flow[] = []
  for (const f of await flowsWithPeers(ctx, window, 'active', book)) {
    const client = byId.get(f.self.id)
    if (!f.peer.workload || !isTarget(f.peer.workload) || !client) continue
    // Seen from the target: what the client sent, the target received.
    clients.push({
      ...f,
      peer: { workload: client, address: f.peer.address },
      sent: f.received,
      received: f.sent,
    })
  }
  const seen = new Set(clients.map((f) => `${f.peer.workload!.id}\0${f.port}`))
  const accepted = (await flowsWithPeers(ctx, filterOf(args), 'passive', book, extra)).filter(
    (f) => !f.peer.workload || !seen.has(`${f.peer.workload.id}\0${f.port}`),
  )
  return [...clients, ...accepted]
}

function filterOf(args: PolicyArgs) {
  return { namespace: args.namespace, from: args.from, to: args.to }
}

export async function networkPolicy(ctx: QueryContext, args: PolicyArgs) {
  const warnings: string[] = []
  const target =
    args.pod == null
      ? undefined
      : await resolveWorkload(ctx, 'tcp_connections', {
          namespace: args.namespace,
          pod: args.pod,
          from: args.from,
          to: args.to,
        })
  const seen = args.pod == null || target !== undefined
  if (!seen) warnings.push(`no TCP connections of pod ${args.pod} in the window`)
  const book = seen ? await addressBook(ctx, args) : new Map<string, Workload>()
  const filter = filterOf(args)
  const extra = (p: Params) => workloadConditions(target, p)
  const egress = seen
    ? rules(await flowsWithPeers(ctx, filter, 'active', book, extra), args.namespace)
    : []
  const ingress = seen
    ? rules(await ingressFlows(ctx, args, target, book, extra), args.namespace)
    : []
  let podSelector: Record<string, unknown> = {}
  if (target) {
    const labels = stableLabels(target.labels)
    if (Object.keys(labels).length === 0)
      warnings.push(
        `pod ${args.pod} has no labels to select it by; the policy selects every pod of the namespace`,
      )
    else podSelector = { matchLabels: labels }
  }
  warnings.push(
    'only TCP is observed: add UDP rules the workload needs (DNS on port 53 to kube-dns, for one)',
  )
  const toSpec = (r: PolicyRule) => ({
    peers: [r.peerSpec],
    ports: r.ports.map((port) => ({ protocol: 'TCP', port })),
  })
  const manifest = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name: objectName(target?.name || target?.pod || args.namespace, 'ebbflow'),
      namespace: args.namespace,
      annotations: { 'ebbflow.io/window': `${args.from ?? ''}..${args.to ?? ''}` },
    },
    spec: {
      podSelector,
      policyTypes: ['Ingress', 'Egress'],
      ingress: ingress.map((r) => {
        const s = toSpec(r)
        return { from: s.peers, ports: s.ports }
      }),
      egress: egress.map((r) => {
        const s = toSpec(r)
        return { to: s.peers, ports: s.ports }
      }),
    },
  }
  return {
    namespace: args.namespace,
    workloadKind: target ? target.kind || 'Pod' : null,
    workloadName: target ? target.name || target.pod : null,
    podSelector,
    ingress,
    egress,
    manifest,
    warnings,
  }
}
