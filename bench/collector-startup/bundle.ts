// bench/collector-startup/bundle.ts: `bin/ebbflow collect` (host mode, default families, JSON
// lines to a discarded stdout) started from the CLI bundled ahead of time (scripts/bundle-cli.ts)
// and from the TypeScript sources (EBBFLOW_BUNDLE=0), alternating per round
// (EBBFLOW_BENCH_ROUNDS, default 5), measured from outside the process: wall and CPU seconds
// until the capture is attached, and VmRSS 2 s after. Medians. Needs root (BPF).
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { bundleCli } from '../../scripts/bundle-cli.ts'
import { startCollect } from '../../tests/support/collect-process.ts'

const ROUNDS = Number(process.env.EBBFLOW_BENCH_ROUNDS ?? 5)
const launcher = join(import.meta.dirname, '../../bin/ebbflow')
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

if (process.getuid?.() !== 0) {
  process.stdout.write(`${JSON.stringify({ bench: 'collector-bundle', skipped: 'needs root' })}\n`)
  process.exit(0)
}

interface Start {
  attachSeconds: number
  attachCpuSeconds: number
  rssMiB: number
}

async function start(bundled: boolean): Promise<Start> {
  const c = await startCollect(launcher, ['collect', '--output', 'json'], {
    env: { EBBFLOW_BUNDLE: bundled ? '1' : '0' },
    stdout: 'ignore',
  })
  const { child, attachSeconds } = c
  try {
    const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const attachCpuSeconds = (Number(f[11]) + Number(f[12])) / 100
    await new Promise((r) => setTimeout(r, 2000))
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8')
    const rssMiB = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)![1]) / 1024
    if (c.entry.endsWith('main.mjs') !== bundled) throw new Error(`ran ${c.entry}`)
    return { attachSeconds, attachCpuSeconds, rssMiB }
  } finally {
    await c.stop()
  }
}

await bundleCli()
const runs: Record<'sources' | 'bundle', Start[]> = { sources: [], bundle: [] }
for (let i = 0; i < ROUNDS; i++) {
  // A B, then B A: neither always goes first.
  const order = i % 2 === 0 ? [false, true] : [true, false]
  for (const bundled of order) runs[bundled ? 'bundle' : 'sources'].push(await start(bundled))
}
const summary = (xs: Start[]) => ({
  attachSeconds: Number(median(xs.map((x) => x.attachSeconds)).toFixed(2)),
  attachCpuSeconds: Number(median(xs.map((x) => x.attachCpuSeconds)).toFixed(2)),
  rssMiB: Number(median(xs.map((x) => x.rssMiB)).toFixed(1)),
  rssMiBEach: xs.map((x) => Number(x.rssMiB.toFixed(1))),
})
process.stdout.write(
  `${JSON.stringify(
    {
      bench: 'collector-bundle',
      rounds: ROUNDS,
      loadAverage: loadavg().map((l) => Number(l.toFixed(2))),
      sources: summary(runs.sources),
      bundle: summary(runs.bundle),
    },
    null,
    2,
  )}\n`,
)
