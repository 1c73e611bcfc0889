// Builds the console into static files for the API to serve: dist/index.html and
// dist/assets/*-<hash>.{js,css}. Asset names carry their content hash, so the server can let
// browsers cache them for good while index.html is revalidated on every load.
// Run by scripts/setup.sh (`npm run -w @ebbflow/console build`).
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import { build } from 'esbuild'

const here = import.meta.dirname
const out = join(here, 'dist')

const result = await build({
  entryPoints: [join(here, 'src/main.ts')],
  bundle: true,
  format: 'esm',
  target: ['chrome120', 'firefox120', 'safari17'],
  minify: true,
  sourcemap: 'linked',
  outdir: join(out, 'assets'),
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  logLevel: 'warning',
  legalComments: 'linked',
  write: false,
})

rmSync(out, { recursive: true, force: true })
mkdirSync(join(out, 'assets'), { recursive: true })
let script = ''
let style = ''
for (const file of result.outputFiles) {
  writeFileSync(file.path, file.contents)
  const name = basename(file.path)
  if (name.endsWith('.js')) script = name
  else if (name.endsWith('.css')) style = name
}
if (!script) throw new Error('esbuild wrote no script')

// No inline script or style: the server's Content-Security-Policy allows only this origin.
writeFileSync(
  join(out, 'index.html'),
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ebbflow</title>
<link rel="icon" href="data:,">
${style ? `<link rel="stylesheet" href="/assets/${style}">\n` : ''}<script type="module" src="/assets/${script}"></script>
</head>
<body></body>
</html>
`,
)
