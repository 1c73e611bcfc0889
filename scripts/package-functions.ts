// Packages the serverless functions: for each, one esbuild bundle (index.mjs) with the files
// it reads at run time beside it, in a folder and a Lambda zip.
//
//   npm run package:functions [-- --out DIR]      default DIR: dist/functions
//
//   DIR/ingest/  DIR/ingest.zip   AWS Lambda for an MSK / self-managed Kafka trigger (index.handler)
//   DIR/alert/   DIR/alert.zip    `ebbflow alert --once` for a schedule (index.handler)
//
// chDB stays out of the bundle: it is a native module with a ~400 MB library, past a zip's
// limit. A function writes to a ClickHouse server (EBBFLOW_CLICKHOUSE); one that keeps chDB in
// /tmp needs `npm install chdb` in its folder, as infra/lambda/Dockerfile does.
import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { parseArgs } from 'node:util'
import { build, type Plugin } from 'esbuild'

const ROOT = join(import.meta.dirname, '..')
const { values } = parseArgs({
  options: { out: { type: 'string', default: join(ROOT, 'dist/functions') } },
})
const out = values.out!

/**
 * Paths the sources compute from their own location, pointed at the copies beside the bundle.
 * A `from` that is no longer in its file stops the build: the copy would be silently missed.
 */
const RELOCATIONS: { file: RegExp; from: string; to: string }[] = [
  {
    file: /services\/common\/src\/store\/migrate\.ts$/,
    from: `'../../../../infra/clickhouse/migrations'`,
    to: `'./migrations'`,
  },
  {
    file: /proto\/src\/reflect\.ts$/,
    from: `join(import.meta.dirname, '..')`,
    to: `join(import.meta.dirname, 'proto')`,
  },
]

const relocate: Plugin = {
  name: 'relocate',
  setup(b) {
    for (const r of RELOCATIONS)
      b.onLoad({ filter: r.file }, (args) => {
        const text = readFileSync(args.path, 'utf8')
        if (!text.includes(r.from))
          throw new Error(`${relative(ROOT, args.path)} no longer contains ${r.from}`)
        return { contents: text.replace(r.from, r.to), loader: 'ts' }
      })
  },
}

/**
 * pino-pretty formats logs for a terminal; a function's stderr never is one, and its module
 * costs start-up time: the bundle gets a stand-in that says so if it is ever asked for.
 */
const noPretty: Plugin = {
  name: 'no-pretty',
  setup(b) {
    b.onResolve({ filter: /^pino-pretty$/ }, () => ({
      path: 'pino-pretty',
      namespace: 'no-pretty',
    }))
    b.onLoad({ filter: /.*/, namespace: 'no-pretty' }, () => ({
      contents: `export function prettyFactory() { throw new Error('pretty logs are not in the function bundle: set the log format to json') }`,
      loader: 'js',
    }))
  },
}

interface Fn {
  name: string
  entry: string
  /** Folders copied beside the bundle: [from (repo-relative), to]. */
  files: [string, string][]
}

const FUNCTIONS: Fn[] = [
  {
    name: 'ingest',
    entry: 'services/ingester/src/lambda.ts',
    files: [
      ['infra/clickhouse/migrations', 'migrations'],
      ['proto/ebbflow', 'proto/ebbflow'],
    ],
  },
  {
    name: 'alert',
    entry: 'services/alerter/src/function.ts',
    files: [
      ['infra/clickhouse/migrations', 'migrations'],
      ['proto/ebbflow', 'proto/ebbflow'],
      ['infra/alerts', 'alerts'],
    ],
  },
]

const report: Record<string, { bundleBytes: number; zip: string }> = {}
for (const fn of FUNCTIONS) {
  const dir = join(out, fn.name)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const result = await build({
    entryPoints: [join(ROOT, fn.entry)],
    outfile: join(dir, 'index.mjs'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    minify: true,
    // Lambda's runtime loads the handler's file as given; the CommonJS dependencies inside
    // (kafkajs, pino) call require() for Node's own modules.
    banner: {
      js: "import { createRequire as __ebbflowCreateRequire } from 'node:module'; const require = __ebbflowCreateRequire(import.meta.url);",
    },
    external: ['chdb'],
    plugins: [relocate, noPretty],
    legalComments: 'linked',
    metafile: true,
    logLevel: 'warning',
  })
  for (const [from, to] of fn.files) cpSync(join(ROOT, from), join(dir, to), { recursive: true })
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify({ name: `ebbflow-${fn.name}-function`, private: true, type: 'module' }, null, 2)}\n`,
  )
  const zip = join(out, `${fn.name}.zip`)
  rmSync(zip, { force: true })
  execFileSync('zip', ['-q', '-r', '-X', zip, '.'], { cwd: dir })
  const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0)
  report[fn.name] = { bundleBytes: bytes, zip: relative(process.cwd(), zip) }
}
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
