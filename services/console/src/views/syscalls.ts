// Syscalls: how often a workload (or everything in view) made each system call over a window,
// and, for a pod's workload, the seccomp profile and NetworkPolicy built from what it did, as
// files to download; above them, the counts over time of its busiest calls (uPlot).
import 'uplot/dist/uPlot.min.css'
import uPlot from 'uplot'
import { download, gql } from '../api.ts'
import { eventFilter, filterBar, WHERE } from '../controls.ts'
import { fill, h, note } from '../dom.ts'
import { count, place, timeMs } from '../format.ts'
import { window_ } from '../route.ts'

const COUNTS = `query($filter: EventFilter!) {
  syscallCounts(filter: $filter, first: 200) { syscall nr count }
}`
const SECCOMP = `query($namespace: String!, $pod: String, $from: DateTime, $to: DateTime) {
  seccompProfile(namespace: $namespace, pod: $pod, from: $from, to: $to) {
    observed workloadName pods ociProfile manifest
  }
}`
const POLICY = `query($namespace: String!, $pod: String, $from: DateTime, $to: DateTime) {
  networkPolicy(namespace: $namespace, pod: $pod, from: $from, to: $to) {
    workloadName manifest warnings
  }
}`

const SERIES = `query($filter: EventFilter!, $step: String) {
  syscallSeries(filter: $filter, step: $step) { time syscall count }
}`
/** Lines drawn: the busiest calls of the window; the table below lists every one. */
const SERIES_LINES = 5
const COLORS = ['#88c0d0', '#d08770', '#a3be8c', '#b48ead', '#ebcb8b']

function stepFor(ms: number): string {
  if (ms <= 15 * 60_000) return '10s'
  if (ms <= 2 * 3600_000) return '1m'
  if (ms <= 24 * 3600_000) return '5m'
  return '1h'
}

/** The busiest calls' counts per step, one line each, in `where`. */
function drawSeries(
  where: HTMLElement,
  points: { time: string; syscall: string; count: number }[],
): uPlot | undefined {
  if (points.length === 0) {
    fill(where, note('No system calls counted over time in this window.'))
    return undefined
  }
  const totals = new Map<string, number>()
  for (const p of points) totals.set(p.syscall, (totals.get(p.syscall) ?? 0) + p.count)
  const names = [...totals]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, SERIES_LINES)
    .map(([n]) => n)
  const times = [...new Set(points.map((p) => timeMs(p.time) / 1000))].sort((a, b) => a - b)
  const at = new Map(times.map((t, i) => [t, i]))
  const columns = names.map(() => times.map(() => 0))
  for (const p of points) {
    const k = names.indexOf(p.syscall)
    if (k >= 0) columns[k]![at.get(timeMs(p.time) / 1000)!]! += p.count
  }
  // The lines' totals in words too: the chart alone cannot be read by a screen reader (or a test).
  const all = [...totals].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
  const legend = h(
    'details',
    { class: 'series-totals' },
    h('summary', {}, `Totals over time (${all.length} calls, the ${names.length} busiest drawn)`),
    h(
      'ul',
      {},
      all.map(([n, total]) => h('li', { 'data-syscall': n }, `${n}: ${count(total)}`)),
    ),
  )
  fill(where, legend)
  return new uPlot(
    {
      width: 560,
      height: 200,
      series: [
        {},
        ...names.map((n, i) => ({
          label: n,
          stroke: COLORS[i % COLORS.length]!,
          // uPlot asks with null where the cursor is on no point.
          value: (_u: uPlot, v: number | null) => (v == null ? '–' : count(v)),
        })),
      ],
      axes: [
        { stroke: '#aab' },
        {
          stroke: '#aab',
          values: (_u, vs) => vs.map((v) => (v == null ? '' : count(v))),
          size: 60,
        },
      ],
    },
    [times, ...columns],
    where,
  )
}

/** A file name from free text: namespace and pod names are safe already, be sure anyway. */
const safe = (s: string) => s.replace(/[^\w.-]+/g, '_')

export function syscallsView(root: HTMLElement, params: URLSearchParams): () => void {
  const window = window_(params)
  const filter = eventFilter(params, window)
  const ns = params.get('ns')
  const pod = params.get('pod')
  const body = h('div', {}, note('Loading system calls…'))
  const downloads = h('div', { class: 'toolbar downloads' })
  const message = h('div', {})
  const chart = h('div', { class: 'chart syscall-series', 'aria-label': 'system calls over time' })
  fill(root, h('h1', {}, 'Syscalls'), filterBar(params, WHERE), downloads, message, chart, body)
  const abort = new AbortController()
  let plot: uPlot | undefined
  const span = (filter.to ? timeMs(filter.to) : Date.now()) - timeMs(filter.from!)
  gql<{ syscallSeries: { time: string; syscall: string; count: number }[] }>(
    SERIES,
    { filter, step: stepFor(span) },
    abort.signal,
  ).then(
    ({ syscallSeries: points }) => {
      if (!abort.signal.aborted) plot = drawSeries(chart, points)
    },
    (err: unknown) => {
      if (!abort.signal.aborted) fill(chart, note(`Over time: ${(err as Error).message}`, 'error'))
    },
  )
  const who = place({ namespace: ns, pod })
  const vars = { namespace: ns, pod, from: filter.from, to: filter.to ?? null }
  const base = ns ? `${safe(ns)}${pod ? `-${safe(pod)}` : ''}` : ''
  const fail = (what: string) => (err: unknown) => {
    if (!abort.signal.aborted) fill(message, note(`${what}: ${(err as Error).message}`, 'error'))
  }
  const seccomp = h(
    'button',
    { type: 'button', class: 'seccomp', disabled: !ns },
    'Seccomp profile (JSON)',
  )
  const spo = h(
    'button',
    { type: 'button', class: 'spo', disabled: !ns },
    'SeccompProfile manifest',
  )
  const policy = h(
    'button',
    { type: 'button', class: 'policy', disabled: !ns },
    'NetworkPolicy manifest',
  )
  fill(
    downloads,
    seccomp,
    spo,
    policy,
    ns
      ? null
      : h(
          'span',
          { class: 'status' },
          'Profiles are built per workload: choose a namespace (and pod).',
        ),
  )
  seccomp.addEventListener('click', () => {
    gql<{ seccompProfile: { observed: boolean; ociProfile: unknown } }>(
      SECCOMP,
      vars,
      abort.signal,
    ).then((d) => {
      if (!d.seccompProfile.observed)
        fill(
          message,
          note(
            'No system calls were seen for it in this window: a profile would deny everything.',
            'error',
          ),
        )
      else
        download(
          `seccomp-${base}.json`,
          `${JSON.stringify(d.seccompProfile.ociProfile, null, 2)}\n`,
        )
    }, fail('Seccomp profile'))
  })
  spo.addEventListener('click', () => {
    gql<{ seccompProfile: { manifest: unknown } }>(SECCOMP, vars, abort.signal).then(
      (d) =>
        download(
          `seccompprofile-${base}.json`,
          `${JSON.stringify(d.seccompProfile.manifest, null, 2)}\n`,
        ),
      fail('SeccompProfile'),
    )
  })
  policy.addEventListener('click', () => {
    gql<{ networkPolicy: { manifest: unknown; warnings: string[] } }>(
      POLICY,
      vars,
      abort.signal,
    ).then((d) => {
      download(
        `networkpolicy-${base}.json`,
        `${JSON.stringify(d.networkPolicy.manifest, null, 2)}\n`,
      )
      if (d.networkPolicy.warnings.length)
        fill(
          message,
          h(
            'ul',
            { class: 'warnings' },
            d.networkPolicy.warnings.map((w) => h('li', {}, w)),
          ),
        )
    }, fail('NetworkPolicy'))
  })

  gql<{ syscallCounts: { syscall: string; nr: number; count: number }[] }>(
    COUNTS,
    { filter },
    abort.signal,
  ).then(
    (d) => {
      const rows = d.syscallCounts
      if (rows.length === 0) {
        fill(body, note(`No system calls counted for ${who} in this window.`))
        return
      }
      const max = rows[0]!.count
      const total = rows.reduce((n, r) => n + r.count, 0)
      fill(
        body,
        h('p', { class: 'status' }, `${who}: ${count(total)} calls of ${rows.length} kinds`),
        h(
          'table',
          { class: 'syscalls' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', {}, 'Syscall'),
              h('th', {}, 'nr'),
              h('th', {}, 'Count'),
              h('th', {}, ''),
            ),
          ),
          h(
            'tbody',
            {},
            rows.map((r) => {
              const bar = h('meter', { min: 0, max, value: r.count, 'aria-label': r.syscall })
              return h(
                'tr',
                { 'data-syscall': r.syscall },
                h('td', { class: 'mono' }, r.syscall),
                h('td', { class: 'num' }, r.nr),
                h('td', { class: 'num' }, count(r.count)),
                h('td', { class: 'bar' }, bar),
              )
            }),
          ),
        ),
      )
    },
    (err: unknown) => {
      if (!abort.signal.aborted)
        fill(body, note(`System calls: ${(err as Error).message}`, 'error'))
    },
  )
  return () => {
    abort.abort()
    plot?.destroy()
  }
}
