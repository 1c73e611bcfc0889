// Every view's state lives in the URL's fragment (#/view?key=value…), so any screen can be
// bookmarked or shared and the server only ever serves `/`.

export const VIEWS = [
  'live',
  'processes',
  'sessions',
  'map',
  'syscalls',
  'files',
  'health',
] as const
export type View = (typeof VIEWS)[number]

export interface Route {
  view: View
  params: URLSearchParams
}

export function currentRoute(): Route {
  const [path = '', query = ''] = location.hash.replace(/^#\/?/, '').split('?', 2)
  const view = (VIEWS as readonly string[]).includes(path) ? (path as View) : 'live'
  return { view, params: new URLSearchParams(query) }
}

export function href(view: View, params: Record<string, string | null | undefined> = {}): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params))
    if (v !== null && v !== undefined && v !== '') q.set(k, v)
  const s = q.toString()
  return `#/${view}${s ? `?${s}` : ''}`
}

/**
 * Changes the current view's state. `replace` records it in the URL without a new history
 * entry or a re-render (the view already shows it: a playback step, a paused tail).
 */
export function update(
  changes: Record<string, string | null | undefined>,
  options: { replace?: boolean } = {},
): void {
  const { view, params } = currentRoute()
  const next: Record<string, string> = Object.fromEntries(params)
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === undefined || v === '') delete next[k]
    else next[k] = v
  }
  const url = href(view, next)
  if (options.replace) history.replaceState(null, '', url)
  // The same state again (Apply without changes) means: load it again.
  else if (url === location.hash) window.dispatchEvent(new Event(REFRESH))
  else location.hash = url
}

/** Asks the shell to render the current view again, with fresh data. */
export const REFRESH = 'ebbflow:refresh'

/** The time window of a view: `from`/`to` as given, or the last `range` (default 1h). */
export function window_(params: URLSearchParams): { from: string; to: string | null } {
  const from = params.get('from')
  if (from) return { from, to: params.get('to') }
  const range = params.get('range') ?? '1h'
  return { from: new Date(Date.now() - rangeMs(range)).toISOString(), to: null }
}

export const RANGES = ['5m', '15m', '1h', '6h', '24h', '7d'] as const

export function rangeMs(range: string): number {
  const m = /^(\d+)([smhd])$/.exec(range)
  if (!m) return 3600_000
  return (
    Number(m[1]) * { s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd']
  )
}
