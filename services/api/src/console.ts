// The web console (services/console, built into static files by scripts/setup.sh) on the API's
// own port: `/` and `/assets/*`. Everything else goes on to the GraphQL server, so the console
// is same-origin with `/graphql` and needs no CORS. Kept apart from app.ts so the API's own
// request handling stays one module.
import { statSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import sirv from 'sirv'

/** Where the console's build writes; the API and the console ship together in one checkout. */
export const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL('../../console/dist', import.meta.url))

/**
 * Only this origin's scripts, styles, images and connections. Styles also allow inline
 * `<style>` elements: xterm.js and Cytoscape.js inject theirs at run time; scripts stay
 * strictly same-origin, which is what keeps injected markup inert.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ')

export type ConsoleHandler = (req: IncomingMessage, res: ServerResponse, next: () => void) => void

function securityHeaders(res: ServerResponse): void {
  res.setHeader('content-security-policy', CONTENT_SECURITY_POLICY)
  res.setHeader('x-content-type-options', 'nosniff')
  res.setHeader('referrer-policy', 'no-referrer')
  res.setHeader('cross-origin-opener-policy', 'same-origin')
}

function isConsolePath(pathname: string): boolean {
  return pathname === '/' || pathname === '/index.html' || pathname.startsWith('/assets/')
}

/**
 * Serves the console's files from `dir`, or, when it was not built, a page at `/` saying how
 * to build it. Requests for other paths, and other methods than GET and HEAD, go to `next`.
 */
export function consoleHandler(dir: string = DEFAULT_CONSOLE_DIR): ConsoleHandler {
  const index = join(dir, 'index.html')
  // sirv lists the files and their sizes once. A rebuild (scripts/setup.sh run again while the
  // server runs) writes a new index.html naming new assets: the list is made again then.
  let files: ReturnType<typeof sirv> | undefined
  let builtAt = -1
  const current = () => {
    let mtime: number
    try {
      mtime = statSync(index).mtimeMs
    } catch {
      return undefined
    }
    if (mtime !== builtAt || !files) {
      builtAt = mtime
      files = sirv(dir, {
        etag: true,
        dotfiles: false,
        setHeaders(res, pathname) {
          securityHeaders(res)
          // Assets carry their content hash in their name; index.html names the current ones.
          res.setHeader(
            'cache-control',
            pathname.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
          )
        },
      })
    }
    return files
  }
  return (req, res, next) => {
    const pathname = (req.url ?? '/').split('?', 1)[0]!
    if ((req.method !== 'GET' && req.method !== 'HEAD') || !isConsolePath(pathname)) return next()
    const serve = current()
    if (serve) {
      serve(req, res, () => {
        securityHeaders(res)
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
        res.end('not found\n')
      })
      return
    }
    if (pathname !== '/') return next()
    securityHeaders(res)
    res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' })
    res.end(
      'The web console is not built. Run scripts/setup.sh (or npm run -w @ebbflow/console build).\nGraphQL answers at /graphql.\n',
    )
  }
}
