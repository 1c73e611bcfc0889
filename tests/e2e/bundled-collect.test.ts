// `bin/ebbflow collect` runs the CLI bundled ahead of time (scripts/bundle-cli.ts) while the
// bundle is newer than the sources, and the sources otherwise. The bundle is what a node runs,
// so it is driven as a user meets it: real BPF, an exec this test makes, its JSON line; and in
// Kubernetes mode against a real kube-apiserver (the client library is bundled too).
import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { readFileSync, utimesSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { bundleCli, CLI_BUNDLE_DIR } from '../../scripts/bundle-cli.ts'
import { isRoot } from '../support/capture.ts'
import { KubeApiServer, kubeApiServerUnavailable } from '../support/kube-apiserver.ts'

const root = join(import.meta.dirname, '../..')
const launcher = join(root, 'bin/ebbflow')
const bundle = join(CLI_BUNDLE_DIR, 'main.mjs')

interface Running {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  /** The script the launcher's Node runs. */
  entry: string
}

async function collect(args: string[]): Promise<Running> {
  const child = spawn(launcher, ['collect', '--output', 'json', '--families', 'exec', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d))
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d))
  const deadline = Date.now() + 60_000
  while (!/capture attached/.test(err)) {
    if (child.exitCode !== null) throw new Error(`collect exited ${child.exitCode}: ${err}`)
    if (Date.now() > deadline) throw new Error(`collect did not attach: ${err}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  // The launcher execs Node: the child's pid is Node's, its second argument the entry.
  const argv = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0')
  return { child, stdout: () => out, stderr: () => err, entry: argv[1] ?? '' }
}

async function stop(r: Running): Promise<number | null> {
  if (r.child.exitCode === null) {
    r.child.kill('SIGTERM')
    await new Promise((resolve) => r.child.once('exit', resolve))
  }
  return r.child.exitCode
}

/** Runs a shell with a unique argument and waits for its exec in the collector's JSON lines. */
async function seesExec(r: Running): Promise<Record<string, unknown>> {
  const marker = `ebbflow-bundle-${randomUUID()}`
  const sh = spawnSync('/bin/sh', ['-c', 'exit 0', marker])
  assert.equal(sh.status, 0)
  const deadline = Date.now() + 10_000
  for (;;) {
    const line = r
      .stdout()
      .split('\n')
      .find((l) => l.includes(marker))
    if (line) {
      const e = JSON.parse(line) as Record<string, unknown>
      assert.equal(e.kind, 'exec')
      assert.equal(e.filename, '/bin/sh')
      assert.deepEqual(e.args, ['/bin/sh', '-c', 'exit 0', marker])
      assert.equal(e.ppid, process.pid)
      assert.equal(e.pid, sh.pid)
      return e
    }
    if (Date.now() > deadline) throw new Error(`no exec of ${marker}: ${r.stderr().slice(-1000)}`)
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

  it('runs the fresh bundle, which captures a real exec', async () => {
    const r = await collect([])
    try {
      assert.equal(r.entry, bundle)
      await seesExec(r)
    } finally {
      assert.equal(await stop(r), 0, r.stderr().slice(-1000))
    }
  })

  it('runs the sources when a source is newer than the bundle', async () => {
    utimesSync(bundle, new Date(0), new Date(0))
    const r = await collect([])
    try {
      assert.equal(r.entry, join(root, 'services/cli/src/main.ts'))
      await seesExec(r)
    } finally {
      await stop(r)
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
        assert.equal(await stop(r), 0, r.stderr().slice(-1000))
      }
    } finally {
      kube.stop()
    }
  })
})
