// Bundles the CLI ahead of time (esbuild) into services/cli/dist: the collector runs on every
// node, and a bundle starts with ~9 MiB less and ~30 % less CPU than type-stripping the
// sources and resolving their modules one by one (bench/collector-startup/bundle.ts). One chunk
// per dynamic import, so `collect` loads only the collector's code, not the API's or chDB's.
//
//   npm run bundle:cli        (scripts/setup.sh and the Dockerfile run it)
//
// The bundle sits at the same depth as services/*/src, so the paths the sources compute from
// their own location (the console's files, the migrations, the BPF objects, the CLI's
// package.json) stay right. Left outside: the native addon and the proto package (they find
// their files beside their own sources), chDB (native) and pino-pretty (loaded by name).
// bin/ebbflow runs it for `collect` while it is newer than every source; otherwise the sources.
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { type BuildOptions, build } from 'esbuild'

const ROOT = join(import.meta.dirname, '..')
export const CLI_BUNDLE_DIR = join(ROOT, 'services/cli/dist')

/**
 * What every Node bundle of this project shares (this one and the serverless functions'):
 * ES modules for Node 24, a chunk per dynamic import beside the entry (paths the sources
 * compute from their own location are relative to whichever chunk holds them).
 */
export const NODE_BUNDLE: BuildOptions & { metafile: true } = {
  outExtension: { '.js': '.mjs' },
  splitting: true,
  chunkNames: '[name]-[hash]',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  // The CommonJS dependencies inside (kafkajs, pino, the Kubernetes client) call require() for
  // Node's own modules.
  banner: {
    js: "import { createRequire as __ebbflowCreateRequire } from 'node:module'; const require = __ebbflowCreateRequire(import.meta.url);",
  },
  legalComments: 'linked',
  metafile: true,
  logLevel: 'warning',
}

export async function bundleCli(outdir = CLI_BUNDLE_DIR): Promise<number> {
  rmSync(outdir, { recursive: true, force: true })
  const result = await build({
    ...NODE_BUNDLE,
    entryPoints: { main: join(ROOT, 'services/cli/src/main.ts') },
    outdir,
    external: ['chdb', '@ebbflow/native', '@ebbflow/proto', 'pino-pretty'],
    // Whitespace and syntax only: names stay, so stack traces in the logs still read.
    minifyWhitespace: true,
    minifySyntax: true,
  })
  return Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0)
}

if (import.meta.main) {
  const bytes = await bundleCli()
  process.stdout.write(`services/cli/dist: ${(bytes / 1024 / 1024).toFixed(1)} MB\n`)
}
