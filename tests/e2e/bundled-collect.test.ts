// `bin/ebbflow collect` runs the CLI bundled ahead of time (scripts/bundle-cli.ts) while the
// bundle is newer than the sources, and the sources otherwise. The bundle is what a node runs,
// so it is driven as a user meets it: real BPF, an exec this test makes, its JSON line; and in
// Kubernetes mode against a real kube-apiserver (the client library is bundled too).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { utimesSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { bundleCli, CLI_BUNDLE_DIR } from '../../scripts/bundle-cli.ts'
import { isRoot } from '../support/capture.ts'
import { type CollectProcess, startCollect } from '../support/collect-process.ts'
import { KubeApiServer, kubeApiServerUnavailable } from '../support/kube-apiserver.ts'

const root = join(import.meta.dirname, '../..')
const launcher = join(root, 'bin/ebbflow')
const bundle = join(CLI_BUNDLE_DIR, 'main.mjs')

const collect = (args: string[], env?: NodeJS.ProcessEnv) =>
  startCollect(launcher, ['collect', '--output', 'json', '--families', 'exec', ...args], {
    ...(env ? { env } : {}),
  })

/** Runs a shell with a unique argument and waits for its exec in the collector's JSON lines. */
async function seesExec(r: CollectProcess): Promise<Record<string, unknown>> {
  const marker = `ebbflow-bundle-${randomUUID()}`
  const sh = spawnSync('/bin/sh', ['-c', 'exit 0', marker])
  assert.equal(sh.status, 0)
  const deadline = Date.now() + 10_000
  for (;;) {
    const line = r.stdout.split('\n').find((l) => l.includes(marker))
    if (line) {
      const e = JSON.parse(line) as Record<string, unknown>
      assert.equal(e.kind, 'exec')
      assert.equal(e.filename, '/bin/sh')
      assert.deepEqual(e.args, ['/bin/sh', '-c', 'exit 0', marker])
      assert.equal(e.ppid, process.pid)
      assert.equal(e.pid, sh.pid)
      return e
    }
    if (Date.now() > deadline) throw new Error(`no exec of ${marker}: ${r.stderr.slice(-1000)}`)
    await new Promise((res) => setTimeout(res, 50))
  }
}

describe('bin/ebbflow collect, bundled', {
  skip: isRoot() ? false : 'needs root to load BPF programs',
  timeout: 180_000,
}, () => {
  before(async () => {
    await bundleCli()
  })
  // A bundle left older than the sources would only make the launcher run the sources.
  after(async () => {
    await bundleCli()
  })

  it('runs the fresh bundle, which captures a real exec, with no TypeScript left to strip', async () => {
    // Every source is in the bundle: a Node that cannot run TypeScript runs it. A source left
    // outside (the native addon's loader and the proto package were) made Node load its
    // TypeScript stripper at start, ~17 MiB of every collector's memory (bench/RESULTS.md).
    const r = await collect([], { NODE_OPTIONS: '--no-experimental-strip-types' })
    try {
      assert.equal(r.entry, bundle)
      await seesExec(r)
    } finally {
      assert.equal(await r.stop(), 0, r.stderr.slice(-1000))
    }
  })

  it('runs the sources when a source is newer than the bundle', async () => {
    utimesSync(bundle, new Date(0), new Date(0))
    const r = await collect([])
    try {
      assert.equal(r.entry, join(root, 'services/cli/src/main.ts'))
      await seesExec(r)
    } finally {
      await r.stop()
      await bundleCli()
    }
  })

  it('runs the bundle in Kubernetes mode against a real API server', {
    skip: kubeApiServerUnavailable() ?? false,
  }, async () => {
    const kube = KubeApiServer.start()
    try {
      const r = await collect([
        '--kubernetes',
        'on',
        '--kubeconfig',
        kube.kubeconfig,
        '--node-name',
        'node-bundled',
      ])
      try {
        assert.equal(r.entry, bundle)
        // The bundled client listed and watches this node's pods on the API server.
        const deadline = Date.now() + 30_000
        while ((await kube.openWatches('pods')) === 0) {
          assert.ok(Date.now() < deadline, 'no watch request reached the API server')
          await new Promise((res) => setTimeout(res, 100))
        }
        await seesExec(r)
      } finally {
        assert.equal(await r.stop(), 0, r.stderr.slice(-1000))
      }
    } finally {
      kube.stop()
    }
  })
})
