// The web console in a real browser (Debian's chromium, driven by playwright-core) against
// `ebbflow up` capturing for real: the test runs a workload in a child cgroup (execs, a TCP
// exchange, a burst of one rare syscall) and an exec session in a container-like cgroup, then
// finds each of them on the console's views by the names and numbers it used itself.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { hostname, networkInterfaces, tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type Browser, chromium, type Page } from 'playwright-core'
import { isRoot } from '../support/capture.ts'
import { createCgroup, type TestCgroup } from '../support/cgroup.ts'
import { freePort } from '../support/kafka-broker.ts'

const root = join(import.meta.dirname, '../..')
const bin = join(root, 'bin/ebbflow')
const CHROMIUM = '/usr/bin/chromium'
const reports = join(root, 'bench/reports')

const skip = !isRoot()
  ? 'needs root (ebbflow up loads BPF programs)'
  : !existsSync(CHROMIUM)
    ? `no browser at ${CHROMIUM} (scripts/setup.sh installs Debian's chromium)`
    : false

/** An address of this machine other than loopback: the service map leaves loopback out. */
function outsideAddress(): string {
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address
  return '127.0.0.1'
}

/** Runs argv in a cgroup below `parent` (created here), as a container's process would run. */
function runIn(path: string, argv: string[]): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      '/bin/sh',
      ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', path, ...argv],
      {
        stdio: 'ignore',
      },
    )
    child.on('error', reject)
    child.on('close', resolve)
  })
}

/**
 * Polls a view: loads `url`, waits a moment for `text` inside `selector`, else loads it again
 * (rows reach the store within a second or two of the workload).
 */
async function untilShown(
  page: Page,
  url: string,
  selector: string,
  text: string | RegExp,
  also: () => Promise<boolean> = async () => true,
) {
  const deadline = Date.now() + 45_000
  for (;;) {
    // A URL that differs only in its fragment is not loaded again by goto: reload it.
    if (page.url() === url) await page.reload()
    else await page.goto(url)
    try {
      await page.locator(selector).filter({ hasText: text }).first().waitFor({ timeout: 2500 })
      if (await also()) return
      throw new Error('not yet')
    } catch (err) {
      if (Date.now() > deadline)
        throw new Error(
          `${url}: no ${selector} with ${text} in: ${((await page.locator('main').textContent()) ?? '').slice(0, 1500)}`,
          { cause: err },
        )
    }
  }
}

describe('the web console in a browser', { skip, timeout: 180_000 }, () => {
  let tmp: string
  let cg: TestCgroup
  let container: string
  let echo: Server
  let echoPort: number
  let up: ChildProcess
  let upLog = ''
  let base: string
  let browser: Browser
  let page: Page
  const errors: string[] = []
  const marker = `console-${randomUUID().slice(0, 8)}`
  const address = outsideAddress()
  const from = new Date(Date.now() - 1000).toISOString()
  const SYSCALL_BURST = 5000

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-console-'))
    mkdirSync(reports, { recursive: true })
    cg = createCgroup('console')
    // A container of a pod as the kubelet lays it out: sessions are followed in containers.
    container = join(
      cg.path,
      'kubepods.slice',
      `kubepods-besteffort-pod${randomUUID()}.slice`,
      `cri-containerd-${randomBytes(32).toString('hex')}.scope`,
    )
    mkdirSync(container, { recursive: true })
    echo = createServer((s) => s.pipe(s))
    await new Promise<void>((r) => echo.listen(0, address, r))
    echoPort = (echo.address() as { port: number }).port

    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    up = spawn(bin, ['up', '--data-dir', join(tmp, 'data'), '--port', String(port)], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, EBBFLOW_COUNTER_INTERVAL_MS: '500', EBBFLOW_LOG_LEVEL: 'info' },
    })
    up.stderr!.setEncoding('utf8').on('data', (d: string) => {
      upLog += d
    })
    const deadline = Date.now() + 60_000
    while (!/ebbflow is up/.test(upLog)) {
      if (up.exitCode !== null) throw new Error(`ebbflow up exited ${up.exitCode}: ${upLog}`)
      if (Date.now() > deadline) throw new Error(`ebbflow up did not start: ${upLog}`)
      await new Promise((r) => setTimeout(r, 100))
    }
    assert.match(upLog, new RegExp(`console at ${base}/`), 'up prints the console address')

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage'],
    })
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } })
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(`${page.url()}: ${m.text()}`)
    })
    page.on('pageerror', (e) => errors.push(`${page.url()}: ${e.message}`))
  })

  after(async () => {
    await browser?.close()
    if (up && up.exitCode === null) {
      const exited = new Promise((r) => up.once('exit', r))
      up.kill('SIGTERM')
      await exited
    }
    echo?.close()
    if (container) for (let p = container; p !== cg.path; p = join(p, '..')) rmdirSync(p)
    await cg?.remove()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  const shot = (name: string) =>
    page.screenshot({ path: join(reports, `console-${name}.png`), fullPage: false })

  it('shows live events as they happen, and holds them while paused', async () => {
    await page.goto(`${base}/#/live?kind=exec`)
    await page.locator('.status').filter({ hasText: /^live/ }).waitFor({ timeout: 5000 })
    assert.equal((await cg.run(['/bin/true', `live-${marker}`])).code, 0)
    await page
      .locator('table.events td')
      .filter({ hasText: `live-${marker}` })
      .first()
      .waitFor({ timeout: 10_000 })
    await shot('live')

    await page.getByRole('button', { name: 'Pause' }).click()
    assert.match(page.url(), /paused=1/, 'the pause is in the URL')
    assert.equal((await cg.run(['/bin/true', `paused-${marker}`])).code, 0)
    await page
      .locator('.status')
      .filter({ hasText: /paused · [1-9]/ })
      .waitFor({ timeout: 10_000 })
    assert.equal(await page.locator('table.events').getByText(`paused-${marker}`).count(), 0)
    await page.getByRole('button', { name: 'Resume' }).click()
    await page
      .locator('table.events td')
      .filter({ hasText: `paused-${marker}` })
      .first()
      .waitFor({ timeout: 5000 })
  })

  it('finds the workload: processes, a connection, syscalls; a session played back in order', async () => {
    assert.equal((await cg.run(['/bin/sh', '-c', 'exit 3', marker])).code, 3)
    const tcp = await cg.run([
      '/bin/bash',
      '-c',
      `exec 3<>/dev/tcp/${address}/${echoPort}; printf hello >&3; read -r -n 5 reply <&3; exec 3>&-; echo "reply=$reply"`,
      marker,
    ])
    assert.equal(tcp.stdout.trim(), 'reply=hello', tcp.stderr)
    assert.equal(
      (await cg.run(['/usr/bin/perl', '-e', `getpriority(0, 0) for 1 .. ${SYSCALL_BURST}`, marker]))
        .code,
      0,
    )
    // The container's own main process first, then a session: a shell started from outside it.
    const main = spawn(
      '/bin/sh',
      ['-c', 'echo $$ > "$0/cgroup.procs" && exec sleep 60', container],
      {
        stdio: 'ignore',
      },
    )
    try {
      await new Promise((r) => setTimeout(r, 300))
      const session = [
        `/bin/echo one-${marker}`,
        `/bin/ls /two-${marker}`,
        `/bin/true three-${marker}`,
      ]
      assert.equal(await runIn(container, ['/bin/sh', '-c', `${session.join('; ')}; exit 0`]), 0)

      // Processes: the marked ones, with the exit code the test caused (once its exit is in).
      const q = `#/processes?from=${encodeURIComponent(from)}&q=${marker}`
      await untilShown(page, `${base}/${q}`, 'table.processes tr', "'exit 3'", async () => {
        const row = page.locator('table.processes tr').filter({ hasText: "/bin/sh -c 'exit 3'" })
        return (await row.first().locator('td').nth(3).textContent())?.trim() === '3'
      })
      await untilShown(page, `${base}/${q}`, 'table.processes tr', `/bin/echo one-${marker}`)
      await shot('processes')

      // The session, reached from its process as a user would, then stepped through.
      await page
        .locator('table.processes tr')
        .filter({ hasText: `/bin/echo one-${marker}` })
        .getByRole('link', { name: 'session' })
        .first()
        .click()
      await page.locator('.xterm-rows').waitFor({ timeout: 5000 })
      // xterm.js draws on the next frame: its rows are read until they show what is expected.
      const screen = async () =>
        (await page.locator('.xterm-rows > div').allTextContents())
          .map((l) => l.replace(/\u00a0/g, ' ').trimEnd())
          .join('\n')
      // The commands typed at the prompt so far (a long one wraps: its first row is enough).
      const typed = async () =>
        (await screen())
          .split('\n')
          .filter((l) => /\$ \S/.test(l))
          .map((l) => l.slice(l.indexOf('$ ') + 2))
      const untilTyped = async (n: number, what: string) => {
        const deadline = Date.now() + 3000
        while ((await typed()).length !== n) {
          if (Date.now() > deadline) throw new Error(`${what}: ${await screen()}`)
          await new Promise((r) => setTimeout(r, 50))
        }
        return typed()
      }
      // Step 1 is the shell the session started with; then its commands, in the order they ran.
      await page.getByRole('button', { name: 'next command' }).click()
      assert.match((await untilTyped(1, 'step 1'))[0]!, /^\/bin\/sh -c/)
      for (const [i, command] of session.entries()) {
        await page.getByRole('button', { name: 'next command' }).click()
        const shown = await untilTyped(i + 2, `step ${i + 2}`)
        assert.equal(shown.at(-1), command, `step ${i + 2}`)
        assert.match(page.url(), new RegExp(`step=${i + 2}`), 'the step is in the URL')
      }
      assert.match(await screen(), /\[exit 2 ·/, 'ls of a missing path exited 2')
      await shot('session')
      // Jump back to the first command, then play at 20× to the end.
      await page.locator('button.jump[data-step="1"]').click()
      await untilTyped(1, 'back at step 1')
      await page.locator('select[name=speed]').selectOption('20')
      await page.getByRole('button', { name: 'Play' }).click()
      const deadline = Date.now() + 5000
      while (!(await screen()).includes('end of session')) {
        if (Date.now() > deadline) throw new Error(`did not play to the end: ${await screen()}`)
        await new Promise((r) => setTimeout(r, 50))
      }
      assert.deepEqual((await typed()).slice(1), session)

      const sessionId = new URLSearchParams(new URL(page.url()).hash.split('?')[1]).get('id')
      await untilShown(
        page,
        `${base}/#/sessions?from=${encodeURIComponent(from)}`,
        `table.sessions tr[data-session="${sessionId}"]`,
        /./,
      )
      const cells = await page
        .locator(`table.sessions tr[data-session="${sessionId}"] td`)
        .allTextContents()
      assert.equal(cells[4], String(session.length + 1), 'the shell and its three commands')
      await shot('sessions')
    } finally {
      main.kill()
    }

    // Service map: this host talked to the echo server's port (a table mirrors the drawing).
    const map = `${base}/#/map?from=${encodeURIComponent(from)}&q=${echoPort}`
    await untilShown(page, map, 'table.connections tr', `${address}:${echoPort}`)
    const conn = page
      .locator('table.connections tr')
      .filter({ hasText: `${address}:${echoPort}` })
      .filter({ hasText: 'bash' })
    const cells = await conn.first().locator('td').allTextContents()
    assert.deepEqual([cells[5], cells[6]], ['5 B', '5 B'], 'hello, and hello back')
    if (address !== '127.0.0.1') {
      await page.locator('details.edge-list summary').click()
      const edge = page
        .locator('table.edges tr')
        .filter({ hasText: address })
        .filter({ hasText: String(echoPort) })
      assert.ok(
        (await edge.count()) > 0,
        (await page.locator('details.edge-list').textContent()) ?? '',
      )
    }
    await page.waitForTimeout(300) // the layout settles before the picture
    await shot('map')

    // Syscalls: the burst of getpriority, at least as many as the test made.
    await untilShown(
      page,
      `${base}/#/syscalls?from=${encodeURIComponent(from)}`,
      'table.syscalls tr',
      /getpriority/,
    )
    const row = page.locator('table.syscalls tr[data-syscall=getpriority]')
    const counted = Number((await row.locator('td').nth(2).textContent())?.replaceAll(',', ''))
    assert.ok(counted >= SYSCALL_BURST, `getpriority counted ${counted}`)
    // … and over time: the chart's line for getpriority sums to at least the burst.
    const line = page.locator('.syscall-series li[data-syscall=getpriority]')
    await line.waitFor({ state: 'attached', timeout: 10_000 })
    const overTime = Number((await line.textContent())?.split(': ')[1]?.replaceAll(',', ''))
    assert.ok(overTime >= SYSCALL_BURST, `getpriority over time ${overTime}`)
    assert.ok((await page.locator('.syscall-series canvas').count()) > 0, 'the chart is drawn')
    await shot('syscalls')

    // Health: this node reports, with the batch accounting of its collector: batches stored,
    // none missing, none unaccounted, and a rate over the last minute.
    await untilShown(page, `${base}/#/health`, 'section.node h2', hostname())
    const node = page.locator('section.node').filter({ hasText: hostname() }).first()
    const acct = node.locator('table.accounting tr[data-family=exec]').first()
    await acct.waitFor({ timeout: 10_000 })
    const acctCells = await acct.locator('td').allTextContents()
    assert.ok(Number(acctCells[2]!.replaceAll(',', '')) > 0, `stored batches ${acctCells}`)
    assert.deepEqual([acctCells[4], acctCells[6]], ['0', '0'], 'no gap, nothing unaccounted')
    assert.equal((await node.locator('dd.unaccounted').textContent())?.trim(), '0')
    assert.ok(
      Number((await node.locator('dd.rate').textContent())?.replaceAll(',', '')) > 0,
      'events/s shown',
    )
    await shot('health')
    assert.deepEqual(errors, [], 'no errors in the browser console')
  })
})
