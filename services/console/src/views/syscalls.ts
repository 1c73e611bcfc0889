// Syscalls: how often a workload (or everything in view) made each system call over a window,
// and, for a pod's workload, the seccomp profile and NetworkPolicy built from what it did, as
// files to download.
import { download, gql } from '../api.ts'
import { eventFilter, filterBar, WHERE } from '../controls.ts'
import { fill, h, note } from '../dom.ts'
import { count, place } from '../format.ts'
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
  fill(root, h('h1', {}, 'Syscalls'), filterBar(params, WHERE), downloads, message, body)
  const abort = new AbortController()
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
  return () => abort.abort()
}
