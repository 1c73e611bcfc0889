// @kubernetes/client-node costs about 86 MiB of resident memory when imported (it carries
// every API model): it is loaded on first use, so a collector in host mode never pays for it.
import { createRequire } from 'node:module'

type ClientNode = typeof import('@kubernetes/client-node')

let loaded: ClientNode | undefined

export function clientNode(): ClientNode {
  loaded ??= createRequire(import.meta.url)('@kubernetes/client-node') as ClientNode
  return loaded
}
