// Bundles the CLI ahead of time (esbuild) into services/cli/dist: the collector runs on every
// node, and a bundle starts with ~9 MiB less and ~30 % less CPU than type-stripping the
// sources and resolving their modules one by one (bench/collector-startup/bundle.ts). One chunk
// per dynamic import, so `collect` loads only the collector's code, not the API's or chDB's.
//
//   npm run bundle:cli        (scripts/setup.sh and the Dockerfile run it)
//
// Each source keeps its own location (`ownLocation`): the paths it computes from it (the
// console's files, the migrations, the BPF objects, the native addon's build, the .proto, the
// CLI's package.json) stay right, so every source of the project is inside and Node strips no
// TypeScript at start. Left outside: chDB (native) and pino-pretty (loaded on a terminal only).
// bin/ebbflow runs it for `collect` while it is newer than every source; otherwise the sources.
import { readFileSync, rmSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { join, relative } from 'node:path'
import { pathToFileURL } from 'node:url'
import { type BuildOptions, build, type Plugin } from 'esbuild'

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

/**
 * Gives each bundled source of this project its own location back: `import.meta.url` in a
 * source becomes the URL of that source, computed from the chunk's own URL (so the tree can be
 * moved, as the image does). Without it a source's paths are relative to the chunk, which is
 * right only for sources at the chunk's depth (services/NAME/src); the native addon's loader
 * (native/src) finds its build beside its own sources, so it stayed outside the bundle and was
 * type-stripped at start, which loads Node's TypeScript stripper: ~17 MiB more RSS in every
 * collector (bench/RESULTS.md, issue 20).
 */
function ownLocation(outdir: string): Plugin {
  return {
    name: 'own-location',
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, (args) => {
        if (!args.path.startsWith(ROOT) || args.path.includes('/node_modules/')) return undefined
        const text = readFileSync(args.path, 'utf8')
        // Nothing to rewrite: esbuild loads the file itself.
        if (!/import\.meta\.(url|dirname)\b/.test(text)) return undefined
        const rel = relative(outdir, args.path)
        // The path checked here and the one computed at run time name the same file.
        const fromChunk = new URL(rel, pathToFileURL(join(outdir, 'chunk.mjs')))
        if (fromChunk.pathname !== pathToFileURL(args.path).pathname)
          throw new Error(`own-location: ${rel} does not lead from ${outdir} to ${args.path}`)
        const url = `new URL(${JSON.stringify(rel)}, import.meta.url).href`
        const dirname = text.includes('import.meta.dirname')
          ? "import { dirname as __ownDirname } from 'node:path'\nimport { fileURLToPath as __ownPath } from 'node:url'\n"
          : ''
        return {
          contents:
            dirname +
            text
              .replaceAll('import.meta.url', url)
              .replaceAll('import.meta.dirname', `__ownDirname(__ownPath(${url}))`),
          loader: 'ts',
        }
      })
    },
  }
}

/**
 * Node's own modules, imported by a source with `import … from 'node:x'`, are taken with
 * `process.getBuiltinModule` when first used. An ES import of a built-in builds its namespace
 * from every export, which runs the lazy ones: `node:http`'s loads undici and http2, `node:fs`'s
 * and `node:util`'s some 34 more modules. In the collector that was ~8 MiB of RSS for code it
 * never runs (bench/RESULTS.md, issue 20).
 */
function builtinsOnDemand(): Plugin {
  const names = new Set(builtinModules)
  return {
    name: 'builtins-on-demand',
    setup(b) {
      b.onResolve({ filter: /^(node:)?[a-z0-9_/]+$/ }, (args) => {
        if (args.kind !== 'import-statement') return undefined
        const name = args.path.replace(/^node:/, '')
        if (!args.path.startsWith('node:') && !names.has(name)) return undefined
        return { path: name, namespace: 'node-builtin' }
      })
      b.onLoad({ filter: /.*/, namespace: 'node-builtin' }, (args) => ({
        contents: `module.exports = process.getBuiltinModule(${JSON.stringify(`node:${args.path}`)})`,
        loader: 'js',
      }))
    },
  }
}

export async function bundleCli(outdir = CLI_BUNDLE_DIR): Promise<number> {
  rmSync(outdir, { recursive: true, force: true })
  const result = await build({
    ...NODE_BUNDLE,
    entryPoints: { main: join(ROOT, 'services/cli/src/main.ts') },
    outdir,
    // Native packages stay outside, found in node_modules at run time (kafkajs, as patched,
    // falls back to its own CRC-32C without @node-rs/crc32).
    external: ['chdb', 'pino-pretty', '@node-rs/crc32'],
    plugins: [ownLocation(outdir), builtinsOnDemand()],
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
