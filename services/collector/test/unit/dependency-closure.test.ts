// The collector runs on every node: its package graph must not carry the store (chDB is a
// native library of some hundred megabytes; the ClickHouse client is only for services that
// write or read rows). This walks the installed packages the way Node resolves them, from the
// collector's own dependencies (devDependencies are for its tests), and fails on either name.
import assert from 'node:assert/strict'
import { existsSync, readFileSync, realpathSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { describe, it } from 'node:test'

const ROOT = join(import.meta.dirname, '../../../..')
const STORE_PACKAGES = ['chdb', '@clickhouse/client']

interface Manifest {
  name: string
  dependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
}

/** The folder of package `name` as seen from folder `from` (Node's node_modules lookup). */
function resolvePackage(name: string, from: string): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name, 'package.json')
    if (existsSync(candidate)) return dirname(realpathSync(candidate))
    if (dir === dirname(dir)) return undefined
  }
}

/** Every package reachable through dependencies from the package in `dir`, name → path of names. */
function closure(dir: string): Map<string, string[]> {
  const reached = new Map<string, string[]>()
  const seen = new Set<string>()
  const queue: { dir: string; path: string[] }[] = [{ dir, path: [] }]
  while (queue.length > 0) {
    const { dir: at, path } = queue.shift()!
    if (seen.has(at)) continue
    seen.add(at)
    const manifest = JSON.parse(readFileSync(join(at, 'package.json'), 'utf8')) as Manifest
    const here = [...path, manifest.name]
    if (!reached.has(manifest.name)) reached.set(manifest.name, here)
    const optional = manifest.optionalDependencies ?? {}
    for (const name of Object.keys({ ...manifest.dependencies, ...optional })) {
      const found = resolvePackage(name, at)
      // An optional dependency for another platform is legitimately absent; a required one is not.
      if (!found) {
        assert.ok(name in optional, `${here.join(' → ')} → ${name}: not installed`)
        continue
      }
      queue.push({ dir: found, path: here })
    }
  }
  return reached
}

describe('the collector package graph', () => {
  it('does not reach chDB or the ClickHouse client', () => {
    const reached = closure(join(ROOT, 'services/collector'))
    // The walk itself works: it reaches what the collector does use, through a workspace.
    for (const name of ['@ebbflow/common', '@ebbflow/native', 'kafkajs', 'pino', 'protobufjs'])
      assert.ok(reached.has(name), `${name} not reached: the walk is broken`)
    for (const name of STORE_PACKAGES)
      assert.equal(reached.get(name)?.join(' → '), undefined, `the collector reaches ${name}`)
  })

  it('the store package does reach both (the walk would see them)', () => {
    const reached = closure(join(ROOT, 'services/store'))
    for (const name of STORE_PACKAGES) assert.ok(reached.has(name), `${name} not reached`)
  })
})
