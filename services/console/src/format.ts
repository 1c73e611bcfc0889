// How values read on screen: one place for times, durations and byte counts.

/** The API's DateTime (RFC 3339 with up to nanoseconds) as milliseconds since the epoch. */
export function timeMs(value: string): number {
  // Date.parse takes at most milliseconds: keep three fraction digits.
  return Date.parse(value.replace(/(\.\d{3})\d+/, '$1'))
}

/** Local wall-clock time with milliseconds, e.g. 14:03:07.123. */
export function clock(value: string | null | undefined): string {
  if (!value) return ''
  const d = new Date(timeMs(value))
  const pad = (n: number, w = 2) => String(n).padStart(w, '0')
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`
}

/** Date and time, for the start of a session or a health report. */
export function dateTime(value: string | null | undefined): string {
  if (!value) return ''
  return `${new Date(timeMs(value)).toLocaleDateString()} ${clock(value)}`
}

export function duration(ns: number | null | undefined): string {
  if (ns === null || ns === undefined) return ''
  if (ns < 1e3) return `${ns} ns`
  if (ns < 1e6) return `${(ns / 1e3).toFixed(1)} µs`
  if (ns < 1e9) return `${(ns / 1e6).toFixed(1)} ms`
  if (ns < 60e9) return `${(ns / 1e9).toFixed(2)} s`
  return `${Math.floor(ns / 60e9)} min ${Math.round((ns % 60e9) / 1e9)} s`
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return ''
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`
}

export function count(n: number): string {
  return n.toLocaleString('en-US')
}

/** argv as a shell would show it: words with spaces or quotes are quoted. */
export function argv(args: readonly string[]): string {
  return args
    .map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`))
    .join(' ')
}

/** Where an event happened: namespace/pod, or the node for host processes. */
export function place(e: {
  namespace?: string | null
  pod?: string | null
  node?: string | null
}): string {
  if (e.namespace && e.pod) return `${e.namespace}/${e.pod}`
  if (e.namespace) return e.namespace
  return e.node ? `host ${e.node}` : 'host'
}
