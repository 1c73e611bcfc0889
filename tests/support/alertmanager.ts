// A real Alertmanager (Debian's prometheus-alertmanager, API v2) on 127.0.0.1 for the alerting
// tests, routing every alert to one webhook with short group timings. Clustering is off, so it
// binds nothing but its web port.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const ALERTMANAGER_BIN = 'prometheus-alertmanager'

/** Why Alertmanager cannot run here, or undefined when it can. */
export function alertmanagerMissing(): string | undefined {
  const r = spawnSync(ALERTMANAGER_BIN, ['--version'], { encoding: 'utf8' })
  return r.error ? `${ALERTMANAGER_BIN} is not installed (scripts/setup.sh installs it)` : undefined
}

export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (!address || typeof address === 'string') throw new Error('no port')
  return address.port
}

export class LocalAlertmanager {
  readonly dir = mkdtempSync(join(tmpdir(), 'ebbflow-am-'))
  private child: ChildProcess | undefined
  readonly url: string
  readonly port: number
  private stderr = ''

  constructor(port: number, webhookUrl: string, groupBy: readonly string[]) {
    this.port = port
    this.url = `http://127.0.0.1:${port}`
    writeFileSync(
      join(this.dir, 'alertmanager.yml'),
      JSON.stringify({
        route: {
          receiver: 'hook',
          group_by: groupBy,
          group_wait: '1s',
          group_interval: '1s',
          repeat_interval: '1h',
        },
        receivers: [{ name: 'hook', webhook_configs: [{ url: webhookUrl, send_resolved: true }] }],
      }),
    )
  }

  async start(timeoutMs = 15_000): Promise<void> {
    this.child = spawn(
      ALERTMANAGER_BIN,
      [
        `--config.file=${join(this.dir, 'alertmanager.yml')}`,
        `--storage.path=${join(this.dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${this.port}`,
        '--cluster.listen-address=',
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    )
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000)
    })
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (this.child.exitCode !== null)
        throw new Error(`alertmanager exited (${this.child.exitCode}): ${this.stderr}`)
      const ready = await fetch(`${this.url}/-/ready`).then(
        (r) => r.ok,
        () => false,
      )
      if (ready) return
      if (Date.now() > deadline)
        throw new Error(`alertmanager not ready in ${timeoutMs} ms: ${this.stderr}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  /** Stops the process this object started, and waits until it is gone. */
  async stop(): Promise<void> {
    const child = this.child
    this.child = undefined
    if (!child || child.exitCode !== null) return
    const gone = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    await gone
  }

  async close(): Promise<void> {
    await this.stop()
    rmSync(this.dir, { recursive: true, force: true })
  }
}
