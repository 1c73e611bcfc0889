// bin/ebbflow without the project's own Node (a machine or an image where `node` on PATH is
// the runtime): it must run the CLI with a Node 24 from PATH and refuse an older one by name.
// The launcher is copied into a folder of its own, whose `services` points at this tree, so it
// finds no `.tools` next to it.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { after, describe, it } from 'node:test'

const root = join(import.meta.dirname, '../..')
const dir = mkdtempSync(join(tmpdir(), 'ebbflow-launcher-'))
mkdirSync(join(dir, 'bin'))
copyFileSync(join(root, 'bin/ebbflow'), join(dir, 'bin/ebbflow'))
symlinkSync(join(root, 'services'), join(dir, 'services'))
after(() => rmSync(dir, { recursive: true, force: true }))

const run = (pathDirs: string[]) =>
  spawnSync(join(dir, 'bin/ebbflow'), ['--version'], {
    env: { ...process.env, PATH: [...pathDirs, '/usr/bin', '/bin'].join(':') },
    encoding: 'utf8',
    timeout: 30_000,
  })

describe('bin/ebbflow with the Node on PATH', () => {
  it('runs the CLI with a Node 24', () => {
    const r = run([dirname(process.execPath)])
    assert.equal(r.status, 0, r.stderr)
    const own = JSON.parse(readFileSync(join(root, 'services/cli/package.json'), 'utf8'))
    assert.equal(r.stdout.trim(), own.version)
  })

  it('refuses an older Node, naming the version it needs', () => {
    // A `node` that is this one, reporting itself as 20 (the version Debian 12 ships).
    const old = join(dir, 'old')
    mkdirSync(old)
    writeFileSync(
      join(old, 'pretend-20.mjs'),
      "Object.defineProperty(process, 'versions', { value: { ...process.versions, node: '20.19.2' } })\n",
    )
    writeFileSync(
      join(old, 'node'),
      `#!/bin/sh\nexec '${process.execPath}' --import='${join(old, 'pretend-20.mjs')}' "$@"\n`,
    )
    chmodSync(join(old, 'node'), 0o755)
    const r = run([old])
    assert.equal(r.status, 1)
    assert.match(r.stderr, /Node 24 or newer is needed/)
    assert.equal(r.stdout, '')
  })
})
