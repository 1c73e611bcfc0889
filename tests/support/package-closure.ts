// The packages a workspace reaches through its dependencies, found the way Node resolves them
// (node_modules folders upward, workspace links followed), for the collector's closure test
// and bench/collector-startup.
import { existsSync, readFileSync, realpathSync } from 'node:fs'
import { dirname, join } from 'node:path'

interface Manifest {
  name: string
  dependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
}

export interface ReachedPackage {
  dir: string
  /** The chain of package names that led here, the start first. */
  via: string[]
}

/** The folder of package `name` as seen from folder `from` (Node's node_modules lookup). */
function resolvePackage(name: string, from: string): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name, 'package.json')
    if (existsSync(candidate)) return dirname(realpathSync(candidate))
    if (dir === dirname(dir)) return undefined
  }
}

/**
 * Every package reachable from the package in `dir` through dependencies and optional
 * dependencies (devDependencies are for its own tests), by name. A required dependency that is
 * not installed throws; an optional one for another platform is legitimately absent.
 */
export function packageClosure(dir: string): Map<string, ReachedPackage> {
  const reached = new Map<string, ReachedPackage>()
  const seen = new Set<string>()
  const queue: { dir: string; via: string[] }[] = [{ dir: realpathSync(dir), via: [] }]
  while (queue.length > 0) {
    const { dir: at, via } = queue.shift()!
    if (seen.has(at)) continue
    seen.add(at)
    const manifest = JSON.parse(readFileSync(join(at, 'package.json'), 'utf8')) as Manifest
    const here = [...via, manifest.name]
    if (!reached.has(manifest.name)) reached.set(manifest.name, { dir: at, via: here })
    const optional = manifest.optionalDependencies ?? {}
    for (const name of Object.keys({ ...manifest.dependencies, ...optional })) {
      const found = resolvePackage(name, at)
      if (found) queue.push({ dir: found, via: here })
      else if (!(name in optional)) throw new Error(`${here.join(' → ')} → ${name}: not installed`)
    }
  }
  return reached
}
