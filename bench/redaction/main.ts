// bench/redaction: what the collector's redaction (the default rules, services/collector/src/
// redact.ts) costs per exec, for the arguments exec'd on real nodes and for 4 KB arguments
// written to make regular expressions backtrack (the kernel captures up to 4 KB of argv, and
// any pod can exec such arguments at will: before the rules were made linear, 16–26 ms of the
// collector's CPU per exec). Medians of 5 timings of EBBFLOW_BENCH_REDACT_CALLS calls each.
// Prints one JSON report and writes it to bench/reports/redaction.json.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { DEFAULT_REDACT_RULES, Redactor } from '@ebbflow/collector/redact'

const CALLS = Number(process.env.EBBFLOW_BENCH_REDACT_CALLS ?? 200)
const redactor = new Redactor(DEFAULT_REDACT_RULES)
const word = (w: string) => w.repeat(Math.ceil(4000 / w.length)).slice(0, 4000)
const classpath = Array.from(
  { length: 120 },
  (_, i) => `/opt/app/lib/com.example.module${i}-component-${i % 7}-3.2.${i}.jar`,
).join(':')
const CASES: Record<string, string[]> = {
  // What nodes exec: a short command, a shell loop, a test runner, a JVM with its class path.
  '/bin/true': ['/bin/true'],
  'sh -c loop': ['/bin/sh', '-c', 'i=0; while [ $i -lt 3000 ]; do /bin/true; i=$((i+1)); done'],
  'node test runner': [
    '/usr/local/bin/node',
    '--experimental-strip-types',
    '--test',
    '--test-reporter=spec',
    '/src/app/tests/integration/ingest-kafka.test.ts',
    '--test-timeout=600000',
  ],
  'java, 7 KB class path': ['/usr/bin/java', '-Xmx512m', '-cp', classpath, 'org.example.Main'],
  // Written to backtrack: long runs of scheme or name characters, with and without secret words.
  '4 KB of letters': ['/bin/x', word('a')],
  '--passpass…': ['/bin/x', `--${word('pass')}`],
  '"passpass…': ['/bin/x', `"${word('pass')}`],
  '?passpass…': ['/bin/x', `?${word('pass')}`],
  PASSPASS: ['/bin/x', word('PASS')],
  'x-x-x-…': ['/bin/x', word('x-')],
  'bearerbearer…': ['/bin/x', word('bearer')],
  '-----BEGIN A…': ['/bin/x', word('-----BEGIN A')],
  // Full of matches: ~570 tokens to replace in one argument.
  'bearer bearer …': ['/bin/x', word('bearer ')],
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const perExecUs: Record<string, number> = {}
for (const [name, args] of Object.entries(CASES)) {
  redactor.args(args, args[0]!) // compile
  const runs: number[] = []
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < CALLS; i++) redactor.args(args, args[0]!)
    runs.push(Number(process.hrtime.bigint() - t0) / CALLS / 1000)
  }
  perExecUs[name] = Math.round(median(runs) * 100) / 100
}
const report = { bench: 'redaction', node: process.version, calls: CALLS, perExecUs }
const text = `${JSON.stringify(report, null, 2)}\n`
const dir = join(import.meta.dirname, '../reports')
mkdirSync(dir, { recursive: true })
writeFileSync(join(dir, 'redaction.json'), text)
process.stdout.write(text)
