// The file family end to end, and the Landlock advice proven on the real kernel: a workload
// script runs in a test cgroup ("pod" lander-1 of Deployment lander) under real capture; its
// records go collector publisher → in-process queue → ingester → chDB; GraphQL's fileAccess
// shows the files the script touched, and landlockRuleset's JSON, applied by a small
// launcher (tests/support/landlock-run.py), lets the same workload run and refuses a file it
// never touched with EACCES.
//
// The pod's metadata is stamped by the test on its own cgroup's events: this machine has no
// kubelet to place a pod in that cgroup (enrichment itself is tested elsewhere).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { type Api, createApi, startApiServer } from '@ebbflow/api'
import {
  type CaptureSink,
  InProcessTransport,
  KernelCapture,
  loadCollectorConfig,
  Publisher,
  WallClock,
} from '@ebbflow/collector'
import { type CounterEvent, createLogger, type Family, type RecordEvent } from '@ebbflow/common'
import { IngestMetrics, Ingestor, InProcessIngester, StoreDeadLetters } from '@ebbflow/ingester'
import { bootTimeNs } from '@ebbflow/native'
import { ChdbStore, migrate, type Store } from '@ebbflow/store'
import { chromium } from 'playwright-core'
import { isRoot } from '../support/capture.ts'
import { createCgroup } from '../support/cgroup.ts'

const logger = createLogger('test', 'silent')
const CHROMIUM = '/usr/bin/chromium'
const LAUNCHER = join(dirname(fileURLToPath(import.meta.url)), '../support/landlock-run.py')
const landlockAbi = (): number => {
  const r = spawnSync('/usr/bin/python3', [
    '-c',
    'import ctypes; print(ctypes.CDLL(None).syscall(444, None, 0, 1))',
  ])
  return Number(r.stdout?.toString().trim() ?? -1)
}
const skip = !isRoot()
  ? 'needs root for the BPF programs'
  : landlockAbi() < 5
    ? 'the kernel has no Landlock ABI 5 (filesystem rights up to IOCTL_DEV)'
    : false

const META = {
  node: 'files-node',
  namespace: 'files-e2e',
  pod: 'lander-1',
  container: 'app',
  workloadKind: 'Deployment',
  workloadName: 'lander',
  function: 'lander-fn',
}

// Reads one file, lists a folder, writes a new file, moves a file it wrote from one folder to
// another (rename(2) across directories: Landlock's REFER), overwrites an existing file (">":
// O_TRUNC, Landlock's TRUNCATE) and appends to another (">>": a write without O_TRUNC); with a
// second argument, also reads that.
const WORKLOAD = `set -e
cat "$1/data/in.txt" > "$1/out/result.txt"
ls "$1/data" > /dev/null
echo moved > "$1/stage/t.txt"
mv "$1/stage/t.txt" "$1/done/t.txt"
echo state > "$1/keep/state.txt"
echo line >> "$1/keep/log.txt"
if [ -n "$2" ]; then cat "$1/$2"; fi
`

/** Only the test cgroup's events, stamped with the pod that cgroup stands for. */
class PodSink implements CaptureSink {
  private readonly cgroupId: number
  private readonly publisher: Publisher
  /** Accesses counted so far per "access path", as published. */
  readonly counted = new Map<string, number>()
  constructor(cgroupId: number, publisher: Publisher) {
    this.cgroupId = cgroupId
    this.publisher = publisher
  }
  records(events: RecordEvent[], _family: Family): void {
    const mine = events.filter((e) => e.kind === 'file' && e.cgroupId === this.cgroupId)
    for (const e of mine) {
      e.meta = { ...META }
      if (e.kind === 'file') {
        const k = `${e.access} ${e.path}`
        this.counted.set(k, (this.counted.get(k) ?? 0) + e.count)
      }
    }
    if (mine.length > 0) this.publisher.publish(mine)
  }
  counters(_events: CounterEvent[]): void {}
}

describe('file family → chDB → GraphQL, and its Landlock ruleset applied', {
  skip,
  timeout: 180_000,
}, () => {
  let tmp: string
  let work: string
  let store: Store
  let api: Api
  let post: (q: string) => Promise<Record<string, unknown>>
  /** What the first test observed and was advised, for the console's. */
  let advised: { ruleset: unknown; rules: { path: string }[] } | undefined
  const touched: [path: string, access: string][] = []

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-files-e2e-'))
    work = realpathSync(mkdtempSync(join(tmpdir(), 'ebbflow-lander-')))
    mkdirSync(join(work, 'data'))
    mkdirSync(join(work, 'out'))
    mkdirSync(join(work, 'stage'))
    mkdirSync(join(work, 'done'))
    mkdirSync(join(work, 'keep'))
    writeFileSync(join(work, 'keep/state.txt'), 'old state\n')
    writeFileSync(join(work, 'keep/log.txt'), '')
    writeFileSync(join(work, 'data/in.txt'), 'payload\n')
    writeFileSync(join(work, 'secret.txt'), 'not for the workload\n')
    writeFileSync(join(work, 'workload.sh'), WORKLOAD)
    store = await ChdbStore.open(join(tmp, 'data'))
    await migrate(store)
    api = createApi({ store, tokens: { 'token-all-0123456789': ['*'] }, logger })
    post = async (query) => {
      const res = await api.fetch('http://127.0.0.1/graphql', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: 'Bearer token-all-0123456789',
        },
        body: JSON.stringify({ query }),
      })
      const body = (await res.json()) as { data?: Record<string, unknown>; errors?: unknown }
      assert.equal(body.errors, undefined, JSON.stringify(body.errors))
      return body.data!
    }
  })

  /** Before each run: the names the workload creates do not exist. */
  const reset = () => {
    for (const f of ['out/result.txt', 'done/t.txt', 'stage/t.txt'])
      rmSync(join(work, f), { force: true })
  }

  after(async () => {
    await store?.close()
    for (const d of [tmp, work]) if (d) rmSync(d, { recursive: true, force: true })
  })

  it('serves what the workload touched, and a ruleset that confines it', async () => {
    // Observe the workload, unconfined, in its "pod".
    const cg = createCgroup('lander')
    const transport = new InProcessTransport()
    const clock = WallClock.fromBootTime(bootTimeNs())
    const publisher = new Publisher(transport, {
      node: META.node,
      clock,
      bootNow: bootTimeNs,
      queueBudgetBytes: 1 << 24,
      batchMaxEvents: 1000,
      batchMaxBytes: 1 << 20,
      lingerMs: 5,
    })
    const ingester = new InProcessIngester(
      new Ingestor({
        store,
        deadLetters: new StoreDeadLetters(store),
        metrics: new IngestMetrics(),
        logger,
        source: 'in-process',
      }),
      logger,
      { maxWaitMs: 20 },
    )
    const consuming = ingester.consume(transport.consume())
    const sink = new PodSink(cg.id, publisher)
    const capture = KernelCapture.start(
      loadCollectorConfig({ families: 'file', flushMs: '10', counterIntervalMs: '3600000' }, {}),
      sink,
      logger,
    )
    try {
      for (let run = 0; run < 2; run++) {
        reset()
        const r = await cg.run(['/bin/sh', join(work, 'workload.sh'), work])
        assert.equal(r.code, 0, r.stderr)
      }
      // Sightings reach the sink through the ring a moment after the workload ends; the second
      // run's repeats once the counters are read after them.
      const done = () =>
        (sink.counted.get(`read ${work}/data/in.txt`) ?? 0) >= 2 &&
        (sink.counted.get(`write ${work}/out/result.txt`) ?? 0) >= 2
      for (const deadline = Date.now() + 10_000; !done(); ) {
        if (Date.now() > deadline) throw new Error(`accesses counted: ${[...sink.counted]}`)
        await new Promise((r) => setTimeout(r, 50))
        capture.pollCounters()
      }
    } finally {
      await capture.stop()
      await publisher.close()
      await transport.close()
      await consuming
      await cg.remove()
    }

    // fileAccess: the files the script touched, with the kinds of access the test made.
    type Summary = {
      path: string
      access: string
      directory: boolean
      count: number
      processes: string[]
      pods: string[]
    }
    type Page = {
      fileAccess: {
        edges: { node: Summary; cursor: string }[]
        pageInfo: { hasNextPage: boolean; endCursor: string | null }
      }
    }
    const FIELDS = 'path access directory count firstSeen lastSeen processes pods'
    const page = async (first: number, after: string | null) =>
      (
        (await post(
          `{ fileAccess(filter: { namespace: "files-e2e", pod: "lander-1" }, first: ${first}${
            after ? `, after: ${JSON.stringify(after)}` : ''
          }) { edges { cursor node { ${FIELDS} } } pageInfo { hasNextPage endCursor } } }`,
        )) as Page
      ).fileAccess
    const whole = await page(500, null)
    assert.equal(whole.pageInfo.hasNextPage, false)
    const data = { fileAccess: whole.edges.map((e) => e.node) }
    const got = (path: string, access: string) =>
      data.fileAccess.find((a) => a.path === path && a.access === access)
    // Pages of 4 by cursor: the same entries in the same order, none twice, most used first.
    const paged: Summary[] = []
    for (let after: string | null = null, n = 0; ; n++) {
      assert.ok(n < 100, 'paging ends')
      const p: Page['fileAccess'] = await page(4, after)
      assert.ok(p.edges.length <= 4)
      paged.push(...p.edges.map((e) => e.node))
      if (!p.pageInfo.hasNextPage) break
      after = p.pageInfo.endCursor
    }
    assert.deepEqual(paged, data.fileAccess)
    const counts = paged.map((a) => a.count)
    assert.deepEqual(
      counts,
      [...counts].sort((a, b) => b - a),
      'most used first',
    )
    const badCursor = await api.fetch('http://127.0.0.1/graphql', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: 'Bearer token-all-0123456789',
      },
      body: JSON.stringify({
        query: `{ fileAccess(filter: {}, after: "${whole.edges[0]!.cursor.slice(0, -2)}x") { edges { cursor } } }`,
      }),
    })
    const badBody = (await badCursor.json()) as {
      errors?: { message: string; extensions?: { code?: string } }[]
    }
    assert.deepEqual(
      badBody.errors?.map((e) => [e.message, e.extensions?.code]),
      [['not a cursor of this connection (file)', 'BAD_CURSOR']],
    )
    const expect = [
      [`${work}/workload.sh`, 'read', 'sh'],
      [`${work}/data/in.txt`, 'read', 'cat'],
      [`${work}/out/result.txt`, 'create', 'sh'],
      [`${work}/out/result.txt`, 'write', 'sh'],
      [`${work}/data`, 'read', 'ls'],
      [realpathSync('/usr/bin/cat'), 'exec', 'cat'],
      [`${work}/keep/state.txt`, 'write', 'sh'],
      [`${work}/keep/state.txt`, 'truncate', 'sh'],
      [`${work}/keep/log.txt`, 'write', 'sh'],
    ] as const
    for (const [path, access, comm] of expect) {
      touched.push([path, access])
      const a = got(path, access)
      assert.ok(
        a,
        `${access} ${path} in ${JSON.stringify(data.fileAccess.map((x) => `${x.access} ${x.path}`))}`,
      )
      // Two runs: the second run's accesses are repeats of the first's sightings.
      assert.equal(a.count, 2, `${access} ${path} counted once per run`)
      assert.ok(a.processes.includes(comm), `${access} ${path} by ${a.processes}`)
      assert.deepEqual(a.pods, ['lander-1'])
    }
    assert.equal(got(`${work}/data`, 'read')!.directory, true)
    assert.equal(got(`${work}/secret.txt`, 'read'), undefined, 'the secret was never read')
    assert.equal(got(`${work}/keep/log.txt`, 'truncate'), undefined, '">>" truncates nothing')

    // The advice, as a launcher would apply it.
    const advice = (
      (await post(
        `{ landlockRuleset(namespace: "files-e2e", pod: "lander-1") {
             workloadKind workloadName observed ruleset summary rules { path directory allowedAccess } } }`,
      )) as {
        landlockRuleset: {
          workloadKind: string
          workloadName: string
          observed: boolean
          ruleset: { rules: { path: string; allowedAccess: string[]; allowedAccessMask: number }[] }
          summary: string
          rules: { path: string; directory: boolean; allowedAccess: string[] }[]
        }
      }
    ).landlockRuleset
    assert.equal(advice.workloadKind, 'Deployment')
    assert.equal(advice.workloadName, 'lander')
    assert.equal(advice.observed, true)
    assert.match(advice.summary, /Landlock ruleset for Deployment\/lander/)
    const out = advice.rules.find((r) => r.path === `${work}/out`)
    assert.ok(out?.directory, 'the folder the workload creates files in is a hierarchy rule')
    assert.ok(out.allowedAccess.includes('MAKE_REG') && out.allowedAccess.includes('WRITE_FILE'))
    assert.ok(
      !advice.rules.some(
        (r) => r.path === work || r.path === '/' || r.path === `${work}/secret.txt`,
      ),
      `no rule reaches the secret: ${advice.summary}`,
    )
    // The same pod named as a function: the same rules.
    const byFunction = (
      (await post(
        `{ landlockRuleset(namespace: "files-e2e", function: "lander-fn") { function rules { path directory allowedAccess } } }`,
      )) as { landlockRuleset: { function: string; rules: unknown[] } }
    ).landlockRuleset
    assert.equal(byFunction.function, 'lander-fn')
    assert.deepEqual(byFunction.rules, advice.rules)
    // The move: REFER on both folders it crossed (EXDEV without), and on no other rule.
    const rule = (dir: string) => advice.rules.find((r) => r.path === `${work}/${dir}`)
    for (const [dir, needs] of [
      ['stage', ['MAKE_REG', 'REMOVE_FILE', 'REFER']],
      ['done', ['MAKE_REG', 'REFER']],
    ] as const)
      for (const right of needs)
        assert.ok(rule(dir)?.allowedAccess.includes(right), `${right} on ${dir}: ${advice.summary}`)
    assert.deepEqual(
      advice.rules.filter((r) => r.allowedAccess.includes('REFER')).map((r) => r.path),
      [`${work}/done`, `${work}/stage`],
      'REFER only where the workload moved a file',
    )
    // TRUNCATE where the script truncated (">"), not where it only appended (">>").
    const rightsOf = (path: string) => advice.rules.find((r) => r.path === path)?.allowedAccess
    assert.deepEqual(rightsOf(`${work}/keep/state.txt`), ['WRITE_FILE', 'TRUNCATE'])
    assert.deepEqual(rightsOf(`${work}/keep/log.txt`), ['WRITE_FILE'])
    advised = advice
    const rulesetFile = join(tmp, 'ruleset.json')
    writeFileSync(rulesetFile, JSON.stringify(advice.ruleset))

    const confined = (...extra: string[]) =>
      spawnSync(
        '/usr/bin/python3',
        [LAUNCHER, rulesetFile, '--', '/bin/sh', join(work, 'workload.sh'), work, ...extra],
        { encoding: 'utf8', timeout: 30_000 },
      )
    reset()
    const ok = confined()
    assert.equal(ok.status, 0, `confined workload: ${ok.stderr}`)
    assert.equal(readFileSync(join(work, 'out/result.txt'), 'utf8'), 'payload\n')
    assert.equal(readFileSync(join(work, 'done/t.txt'), 'utf8'), 'moved\n')
    assert.equal(readFileSync(join(work, 'keep/state.txt'), 'utf8'), 'state\n')
    // The file written without a truncate: appending works under the ruleset, truncating it
    // does not (Landlock refuses the O_TRUNC open with EACCES).
    const onLog = (redirect: string) =>
      spawnSync(
        '/usr/bin/python3',
        [
          LAUNCHER,
          rulesetFile,
          '--',
          '/bin/sh',
          '-c',
          `echo more ${redirect} "$0"`,
          `${work}/keep/log.txt`,
        ],
        { encoding: 'utf8', timeout: 30_000 },
      )
    const appended = onLog('>>')
    assert.equal(appended.status, 0, `append under the ruleset: ${appended.stderr}`)
    const truncated = onLog('>')
    assert.notEqual(truncated.status, 0, 'O_TRUNC on a file only appended to is refused')
    assert.match(truncated.stderr, /Permission denied/)
    assert.match(readFileSync(join(work, 'keep/log.txt'), 'utf8'), /more\n$/, 'log kept')
    // The same ruleset without REFER: the kernel refuses the move (EXDEV), and mv's fallback,
    // a copy, needs a read the workload never made (EACCES): the file stays where it was.
    const REFER_BIT = 1 << 13 // LANDLOCK_ACCESS_FS_REFER
    const noRefer = advice.ruleset
    const noReferFile = join(tmp, 'no-refer.json')
    writeFileSync(
      noReferFile,
      JSON.stringify({
        ...noRefer,
        rules: noRefer.rules.map((r) => ({
          ...r,
          allowedAccess: r.allowedAccess.filter((x) => x !== 'REFER'),
          allowedAccessMask: r.allowedAccessMask & ~REFER_BIT,
        })),
      }),
    )
    reset()
    const moveDenied = spawnSync(
      '/usr/bin/python3',
      [LAUNCHER, noReferFile, '--', '/bin/sh', join(work, 'workload.sh'), work],
      { encoding: 'utf8', timeout: 30_000 },
    )
    assert.notEqual(moveDenied.status, 0, 'the move fails without REFER')
    assert.match(moveDenied.stderr, /mv: .*(Invalid cross-device link|Permission denied)/)
    assert.ok(existsSync(join(work, 'stage/t.txt')) && !existsSync(join(work, 'done/t.txt')))
    reset()
    const denied = confined('secret.txt')
    assert.notEqual(denied.status, 0)
    assert.match(denied.stderr, /secret\.txt: Permission denied/, 'EACCES for the file outside')
    assert.equal(denied.stdout, '', 'nothing of the secret came out')
    // The control: without the ruleset the same read works (so EACCES came from Landlock).
    const open = spawnSync('/bin/sh', [join(work, 'workload.sh'), work, 'secret.txt'], {
      encoding: 'utf8',
    })
    assert.equal(open.status, 0, open.stderr)
  })

  it('the console shows the workload’s files, and a ruleset that confines it once copied', {
    skip: existsSync(CHROMIUM)
      ? false
      : `no browser at ${CHROMIUM} (scripts/setup.sh installs Debian's chromium)`,
  }, async () => {
    assert.ok(advised, 'the first test observed the workload')
    const server = await startApiServer({ api, port: 0, host: '127.0.0.1' })
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage'],
    })
    try {
      const context = await browser.newContext({
        permissions: ['clipboard-read', 'clipboard-write'],
      })
      const page = await context.newPage()
      const errors: string[] = []
      page.on('pageerror', (e) => errors.push(e.message))
      // The token the console keeps once a user typed it (its dialog is tested elsewhere).
      await context.addInitScript(() =>
        sessionStorage.setItem('ebbflow.token', 'token-all-0123456789'),
      )
      // Five rows a page: every row below comes through the API's cursor, More by More.
      await page.goto(`${server.consoleUrl}#/files?ns=files-e2e&pod=lander-1&range=1h&per=5`)
      await page
        .locator('table.files tbody tr')
        .first()
        .waitFor({ timeout: 20_000 })
        .catch(async (err: unknown) => {
          const shown = (await page.locator('main').textContent()) ?? ''
          throw new Error(`no file table: ${shown.slice(0, 1500)} ${errors}`, { cause: err })
        })
      const more = page.getByRole('button', { name: 'More' })
      for (let clicks = 0; await more.isVisible(); clicks++) {
        assert.ok(clicks < 100, 'More ends')
        const before = await page.locator('table.files tbody tr').count()
        await more.click()
        await page.waitForFunction(
          (n) => document.querySelectorAll('table.files tbody tr').length > n,
          before,
          { timeout: 10_000 },
        )
      }
      // Every path the workload touched, with its access kind, both runs counted.
      for (const [path, access] of touched) {
        const row = page.locator(`table.files tr[data-path="${path}"][data-access="${access}"]`)
        assert.equal(await row.count(), 1, `${access} ${path} on the page`)
        assert.equal((await row.locator('td').nth(2).textContent())?.trim(), '2')
      }
      const shownPaths = await page
        .locator('table.files tbody tr')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-path')))
      assert.ok(!shownPaths.includes(`${work}/secret.txt`), 'the secret was never read')
      const lsRow = page.locator(`table.files tr[data-path="${work}/data"][data-access="read"]`)
      assert.equal(
        (await lsRow.locator('td').nth(5).textContent())?.trim(),
        'ls',
        'the process that listed it',
      )

      const summary = (await page.locator('pre.ruleset-summary').textContent()) ?? ''
      assert.match(summary, /Landlock ruleset for Deployment\/lander/)
      assert.ok(summary.includes(`beneath ${work}/out`), summary)
      // The JSON as a user copies it, applied by the launcher: the workload runs.
      await page.getByRole('button', { name: 'Copy JSON' }).click()
      await page.getByRole('button', { name: 'Copied' }).waitFor({ timeout: 5000 })
      const copied = await page.evaluate(() => navigator.clipboard.readText())
      assert.deepEqual(JSON.parse(copied), advised.ruleset)
      const rulesetFile = join(tmp, 'copied.json')
      writeFileSync(rulesetFile, copied)
      reset()
      const ok = spawnSync(
        '/usr/bin/python3',
        [LAUNCHER, rulesetFile, '--', '/bin/sh', join(work, 'workload.sh'), work],
        { encoding: 'utf8', timeout: 30_000 },
      )
      assert.equal(ok.status, 0, `confined by the copied ruleset: ${ok.stderr}`)
      assert.equal(readFileSync(join(work, 'out/result.txt'), 'utf8'), 'payload\n')
      assert.deepEqual(errors, [])
    } finally {
      await browser.close()
      await server.close()
    }
  })
})
