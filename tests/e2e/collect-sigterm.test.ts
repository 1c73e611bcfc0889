// `ebbflow collect` in Kubernetes mode (list+watch of this node's pods on a real kube-apiserver,
// over its TLS and keep-alive connections) exits promptly on SIGTERM, as it does without
// Kubernetes: it took 20-40 s while the Kubernetes client's pooled connection stayed open.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { isRoot } from '../support/capture.ts'
import { KubeApiServer, kubeApiServerUnavailable } from '../support/kube-apiserver.ts'

const cli = join(import.meta.dirname, '../../services/cli/src/main.ts')

describe('ebbflow collect --kubernetes on, SIGTERM', {
  skip: isRoot() ? (kubeApiServerUnavailable() ?? false) : 'needs root to load BPF programs',
  timeout: 90_000,
}, () => {
  it('exits 0 within 5 s while the pod watch is open', async () => {
    const kube = KubeApiServer.start()
    const child = spawn(
      process.execPath,
      [
        cli,
        'collect',
        '--output',
        'json',
        '--families',
        'exec',
        '--kubernetes',
        'on',
        '--kubeconfig',
        kube.kubeconfig,
        '--node-name',
        'node-sigterm',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    )
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
    })
    try {
      const deadline = Date.now() + 60_000
      while (!stderr.includes('capture attached')) {
        assert.equal(child.exitCode, null, stderr)
        assert.ok(Date.now() < deadline, `collect did not start: ${stderr}`)
        await new Promise((r) => setTimeout(r, 50))
      }
      // The watch is open once the API server counts it (nothing else here watches pods).
      while ((await kube.openWatches('pods')) === 0) {
        assert.ok(Date.now() < deadline, 'no watch request reached the API server')
        await new Promise((r) => setTimeout(r, 100))
      }
      const started = performance.now()
      child.kill('SIGTERM')
      const [code] = await once(child, 'exit')
      const ms = performance.now() - started
      assert.equal(code, 0, stderr)
      assert.ok(ms < 5000, `exit took ${Math.round(ms)} ms`)
      process.stderr.write(
        `# collect (Kubernetes mode) exited ${Math.round(ms)} ms after SIGTERM\n`,
      )
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
      kube.stop()
    }
  })
})
