// bench/collector-startup: what the collector costs to start, each run a fresh process that
// imports @ebbflow/collector and starts it as `ebbflow collect` does in host mode (every family,
// JSON lines to a discarded stdout), measured from the inside: RSS of Node alone, after the
// imports, and once the first captured events have gone out (a deadline, not a sleep), with the
// CPU seconds of the start. Also the size on disk of the collector's installed package closure.
// EBBFLOW_BENCH_ROOTS (comma-separated checkouts, default this one) compares checkouts side by
// side, alternating A B, B A … for EBBFLOW_BENCH_ROUNDS rounds (default 6): the machine is
// shared, so only a comparison in one run means anything.
// Prints one JSON report and writes it to bench/reports/collector-startup.json.
import { spawn } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { packageClosure } from '../../tests/support/package-closure.ts'

const env = process.env
const ROUNDS = Number(env.EBBFLOW_BENCH_ROUNDS ?? 6)
const HERE = join(import.meta.dirname, '../..')
const ROOTS = (env.EBBFLOW_BENCH_ROOTS ?? HERE).split(',').filter((r) => r.length > 0)

const rssMiB = () => {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))
  return m ? Number(m[1]) / 1024 : 0
}
const cpuSeconds = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

// ---- child: one collector started in checkout `root` -----------------------------------------
async function child(root: string) {
  const nodeMiB = rssMiB()
  const cpu0 = cpuSeconds()
  const collector = await import(pathToFileURL(join(root, 'services/collector/src/index.ts')).href)
  const { createLogger } = await import(
    pathToFileURL(join(root, 'services/common/src/index.ts')).href
  )
  const importedMiB = rssMiB()
  const importCpuSeconds = cpuSeconds() - cpu0
  const config = {
    ...collector.loadCollectorConfig({ output: 'json' }, {}),
    enrich: collector.loadEnrichConfig({ kubernetes: 'off' }, {}),
  }
  // The JSON lines go to the discarded stdout; the report goes to stderr's last line.
  const running = await collector.start(config, { logger: createLogger('bench', 'warn') })
  const deadline = Date.now() + 30_000
  const seen = () =>
    Object.values(
      running.collector.capture.stats().perFamily as Record<string, { records: number }>,
    )
      .map((f) => f.records)
      .reduce((a, b) => a + b, 0)
  while (seen() === 0) {
    if (Date.now() > deadline) throw new Error('no event captured in 30 s')
    await new Promise((r) => setTimeout(r, 10))
  }
  const startedMiB = rssMiB()
  const startCpuSeconds = cpuSeconds() - cpu0
  await running.stop()
  process.stderr.write(
    `${JSON.stringify({ nodeMiB, importedMiB, startedMiB, importCpuSeconds, startCpuSeconds })}\n`,
  )
}

if (process.argv[2] === '--child') {
  await child(process.argv[3]!)
  process.exit(0)
}

interface Sample {
  nodeMiB: number
  importedMiB: number
  startedMiB: number
  importCpuSeconds: number
  startCpuSeconds: number
}

async function runChild(root: string): Promise<Sample> {
  const c = spawn(process.execPath, [import.meta.filename, '--child', root], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let err = ''
  c.stderr.setEncoding('utf8').on('data', (d: string) => (err += d))
  const code = await new Promise<number | null>((r) => c.on('close', r))
  if (code !== 0) throw new Error(`collector in ${root} failed (exit ${code}): ${err.slice(-2000)}`)
  return JSON.parse(err.trim().split('\n').at(-1)!)
}

/** Bytes under `dir`, symbolic links not followed. */
function diskBytes(dir: string): number {
  let total = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) total += diskBytes(p)
    else if (e.isFile()) total += statSync(p).size
  }
  return total
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const samples = new Map<string, Sample[]>(ROOTS.map((r) => [r, []]))
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? ROOTS : [...ROOTS].reverse()
  for (const root of order) samples.get(root)!.push(await runChild(root))
}
const checkouts = ROOTS.map((root) => {
  const closure = packageClosure(join(root, 'services/collector'))
  // Workspace packages are this repository's sources, not installed dependencies.
  const installed = [...closure.values()].filter((p) => p.dir.includes('/node_modules/'))
  const s = samples.get(root)!
  return {
    root,
    rounds: s.length,
    medianMiB: {
      node: median(s.map((x) => x.nodeMiB)),
      imported: median(s.map((x) => x.importedMiB)),
      started: median(s.map((x) => x.startedMiB)),
    },
    medianCpuSeconds: {
      imports: median(s.map((x) => x.importCpuSeconds)),
      toFirstEvent: median(s.map((x) => x.startCpuSeconds)),
    },
    closure: {
      packages: closure.size,
      installedMiB: installed.reduce((a, p) => a + diskBytes(p.dir), 0) / 2 ** 20,
      reachesChdb: closure.has('chdb'),
      reachesClickhouseClient: closure.has('@clickhouse/client'),
    },
    samples: s,
  }
})
const report = {
  bench: 'collector-startup',
  machine: { cpus: cpus().length, node: process.version, loadAverage: loadavg() },
  checkouts,
}
const text = `${JSON.stringify(report, null, 2)}\n`
const reports = join(import.meta.dirname, '../reports')
mkdirSync(reports, { recursive: true })
writeFileSync(join(reports, 'collector-startup.json'), text)
process.stdout.write(text)
