// Live: events as the collectors capture them (the `events` subscription), newest on top.
// Pausing freezes the table; what arrives meanwhile is kept (up to the table's size) and shown
// on resume.
import { ApiError, subscribe } from '../api.ts'
import { type FilterField, filterBar } from '../controls.ts'
import { fill, h, note } from '../dom.ts'
import { argv, bytes, clock, count, place } from '../format.ts'
import { update } from '../route.ts'

interface LiveEvent {
  family: string
  kind: string
  time: string | null
  node: string | null
  namespace: string | null
  pod: string | null
  container: string | null
  data: Record<string, unknown>
}

const SUBSCRIPTION = `subscription($filter: EventFilter!, $families: [Family!]) {
  events(filter: $filter, families: $families) {
    family kind time node namespace pod container data
  }
}`

export const KINDS = ['exec', 'exit', 'fork', 'tcp', 'syscall', 'syscall_count', 'traffic']
const FAMILY_OF: Record<string, string> = {
  exec: 'EXEC',
  exit: 'EXEC',
  fork: 'EXEC',
  tcp: 'NET',
  traffic: 'NET',
  syscall: 'SYSCALL',
  syscall_count: 'SYSCALL',
}
/** Rows on screen; older ones scroll away. */
const MAX_ROWS = 300

const FIELDS: FilterField[] = [
  { key: 'ns', label: 'Namespace', placeholder: 'any' },
  { key: 'pod', label: 'Pod', placeholder: 'any' },
]

export function summary(e: LiveEvent): string {
  const d = e.data
  const s = (k: string) => String(d[k] ?? '')
  switch (e.kind) {
    case 'exec':
      return `${s('pid')} ${argv((d.args as string[] | undefined) ?? [s('filename')])}`
    case 'exit':
      return `${s('pid')} ${s('comm')} exit ${s('exitCode')}${d.signal ? ` signal ${s('signal')}` : ''}`
    case 'fork':
      return `${s('pid')} ${s('comm')} → ${s('childPid')}`
    case 'tcp':
      return `${s('tcp')} ${s('comm')} ${s('saddr')}:${s('sport')} → ${s('daddr')}:${s('dport')}${
        e.data.tcp === 'close'
          ? ` sent ${bytes(Number(d.bytesSent))} received ${bytes(Number(d.bytesReceived))}`
          : ''
      }`
    case 'syscall':
      return `${s('pid')} ${s('comm')} ${s('syscall')}`
    case 'syscall_count':
      return `${s('syscall')} × ${count(Number(d.count))}`
    case 'traffic':
      return `${s('direction')} ${s('remoteAddr')}:${s('remotePort')} ${bytes(Number(d.bytes))}`
    default:
      return ''
  }
}

export function liveView(root: HTMLElement, params: URLSearchParams): () => void {
  const kind = params.get('kind') ?? ''
  let paused = params.get('paused') === '1'
  const kindSelect = h(
    'label',
    {},
    'Kind',
    h(
      'select',
      { name: 'kind' },
      h('option', { value: '' }, 'any'),
      KINDS.map((k) => h('option', { value: k, selected: k === kind }, k)),
    ),
  )
  const pauseButton = h('button', { type: 'button', class: 'pause' }, paused ? 'Resume' : 'Pause')
  const status = h('span', { class: 'status', role: 'status' }, 'connecting…')
  const tbody = h('tbody', {})
  const table = h(
    'table',
    { class: 'events' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', {}, 'Time'),
        h('th', {}, 'Kind'),
        h('th', {}, 'Where'),
        h('th', {}, 'Event'),
      ),
    ),
    tbody,
  )
  const message = h('div', {})
  fill(
    root,
    h('h1', {}, 'Live'),
    filterBar(params, FIELDS, { range: false, extra: [kindSelect] }),
    h('div', { class: 'toolbar' }, pauseButton, status),
    message,
    table,
  )

  let held: LiveEvent[] = []
  let seen = 0
  let frame = 0
  const rowOf = (e: LiveEvent) =>
    h(
      'tr',
      { 'data-kind': e.kind },
      h('td', { class: 'time' }, clock(e.time)),
      h('td', {}, e.kind),
      h('td', {}, place(e)),
      h('td', { class: 'mono' }, summary(e)),
    )
  const flush = () => {
    frame = 0
    if (paused || held.length === 0) return
    const batch = held.slice(-MAX_ROWS).reverse()
    held = []
    tbody.prepend(...batch.map(rowOf))
    while (tbody.rows.length > MAX_ROWS) tbody.lastElementChild?.remove()
  }
  const setStatus = () => {
    status.textContent = paused
      ? `paused · ${count(held.length)} waiting · ${count(seen)} received`
      : `live · ${count(seen)} received`
  }
  pauseButton.addEventListener('click', () => {
    paused = !paused
    pauseButton.textContent = paused ? 'Resume' : 'Pause'
    update({ paused: paused ? '1' : null }, { replace: true })
    setStatus()
    flush()
  })

  const filter: Record<string, string> = {}
  if (params.get('ns')) filter.namespace = params.get('ns')!
  if (params.get('pod')) filter.pod = params.get('pod')!
  const abort = new AbortController()
  subscribe<{ events: LiveEvent }>(
    SUBSCRIPTION,
    { filter, families: kind ? [FAMILY_OF[kind]] : null },
    ({ events: e }) => {
      if (kind && e.kind !== kind) return
      seen++
      held.push(e)
      if (held.length > MAX_ROWS) held.splice(0, held.length - MAX_ROWS)
      setStatus()
      if (!paused && frame === 0) frame = requestAnimationFrame(flush)
    },
    abort.signal,
  ).then(
    () => {
      if (!abort.signal.aborted) status.textContent = 'the stream ended'
    },
    (err: unknown) => {
      fill(
        message,
        note(
          err instanceof ApiError
            ? `Live events: ${err.message}`
            : `Live events failed: ${String(err)}`,
          'error',
        ),
      )
      status.textContent = 'stopped'
    },
  )
  setStatus()
  return () => {
    abort.abort()
    cancelAnimationFrame(frame)
  }
}
