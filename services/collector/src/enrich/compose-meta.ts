// Composition: the metadata of one cgroup from what is known of it — its identity read from
// the cgroup path, and the pod that identity names in the pod index. Pure: no cache, no clock.
import type { EventMeta } from '@ebbflow/common'
import type { CgroupIdentity } from './cgroup-path.ts'
import type { PodIndex } from './pods.ts'

export interface ComposedMeta {
  meta: EventMeta
  /** Everything the identity promises is known: no reason to wait for more. */
  complete: boolean
}

/** `ident` undefined: the cgroup's path is not known (yet). `pods` undefined: host mode. */
export function composeMeta(
  node: string,
  ident: CgroupIdentity | undefined,
  pods: PodIndex | undefined,
): ComposedMeta {
  const meta: EventMeta = { node }
  if (!ident) return { meta, complete: false }
  meta.cgroupPath = ident.path
  if (ident.systemdUnit) meta.systemdUnit = ident.systemdUnit
  if (ident.podUid) meta.podUid = ident.podUid
  if (ident.qosClass) meta.qosClass = ident.qosClass
  if (ident.containerId) meta.containerId = ident.containerId
  if (ident.runtime) meta.runtime = ident.runtime
  if (!ident.podUid || !pods) return { meta, complete: true }
  const byContainer = ident.containerId ? pods.byContainerId(ident.containerId) : undefined
  const pod = byContainer?.pod ?? pods.byUid(ident.podUid)
  if (pod) {
    meta.namespace = pod.namespace
    meta.pod = pod.name
    meta.workloadKind = pod.workloadKind
    meta.workloadName = pod.workloadName
    if (pod.serviceAccount) meta.serviceAccount = pod.serviceAccount
    meta.labels = pod.labels
    if (pod.function) meta.function = pod.function
    if (pod.functionRevision) meta.functionRevision = pod.functionRevision
  }
  if (byContainer) {
    meta.container = byContainer.container.name
    if (byContainer.container.image) meta.image = byContainer.container.image
    if (byContainer.container.runtime) meta.runtime = byContainer.container.runtime
  }
  // The pod's sandbox (pause) container never appears in its statuses: its few events wait out
  // the delay once and then go out flagged.
  const complete =
    pod !== undefined && (ident.containerId === undefined || byContainer !== undefined)
  return { meta, complete }
}
