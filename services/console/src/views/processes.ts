// Processes: the process tree of each pod (or of the host) over a time window, from the execs
// and their exits. A process's parent is the latest exec of its parent pid before it; a search
// keeps the matching processes and their ancestors, so each match stays in its tree.
import { gql } from '../api.ts'
import { eventFilter, filterBar, WHERE } from '../controls.ts'
import { fill, h, note } from '../dom.ts'
import { argv, clock, count, duration, place } from '../format.ts'
import { href, update, window_ } from '../route.ts'

export interface Exec {
  time: string
  node: string
  namespace: string | null
  pod: string | null
  container: string | null
  pid: number
  tgid: number
  ppid: number
  comm: string
  filename: string
  args: string[]
  exitCode: number | null
  signal: number | null
  durationNs: number | null
  sessionId: string | null
  seenAtStart: boolean
}

const QUERY = `query($filter: EventFilter!, $after: String) {
  execEvents(filter: $filter, first: 500, after: $after) {
    edges { node { time node namespace pod container pid tgid ppid comm filename args exitCode signal durationNs sessionId seenAtStart } }
    pageInfo { hasNextPage endCursor }
  }
}`

/** Execs read per window: enough for a busy pod's hour, bounded for the browser. */
const MAX_EXECS = 5000

interface TreeNode {
  exec: Exec
  children: TreeNode[]
  match: boolean
  keep: boolean
}

export function buildForest(execs: Exec[], search: string): TreeNode[] {
  const nodes = execs.map((exec) => ({ exec, children: [], match: false, keep: false }) as TreeNode)
  // Latest exec per (node, tgid) so far, in time order: a child's parent is the one running then.
  const byPid = new Map<string, TreeNode>()
  const roots: TreeNode[] = []
  const parentOf = new Map<TreeNode, TreeNode>()
  for (const n of nodes) {
    const parent = byPid.get(`${n.exec.node}/${n.exec.ppid}`)
    const same = byPid.get(`${n.exec.node}/${n.exec.tgid}`)
    // A process that execs again (sh -c exec …) continues its own line.
    const up = same ?? parent
    if (up) {
      up.children.push(n)
      parentOf.set(n, up)
    } else roots.push(n)
    byPid.set(`${n.exec.node}/${n.exec.tgid}`, n)
  }
  const needle = search.toLowerCase()
  for (const n of nodes) {
    n.match =
      needle === '' ||
      n.exec.comm.toLowerCase().includes(needle) ||
      n.exec.filename.toLowerCase().includes(needle) ||
      n.exec.args.join(' ').toLowerCase().includes(needle) ||
      String(n.exec.pid) === needle
    if (!n.match) continue
    for (let a: TreeNode | undefined = n; a && !a.keep; a = parentOf.get(a)) a.keep = true
  }
  return roots.filter((r) => r.keep)
}

function exitText(e: Exec): string {
  if (e.exitCode === null) return 'running'
  if (e.signal) return `signal ${e.signal}`
  return String(e.exitCode)
}

export function processesView(root: HTMLElement, params: URLSearchParams): () => void {
  const window = window_(params)
  const search = params.get('q') ?? ''
  const group = params.get('group') ?? ''
  const body = h('div', {}, note('Loading processes…'))
  fill(
    root,
    h('h1', {}, 'Processes'),
    filterBar(params, [...WHERE, { key: 'q', label: 'Search', placeholder: 'argv, name or pid' }]),
    body,
  )
  const abort = new AbortController()
  void (async () => {
    const execs: Exec[] = []
    let after: string | null = null
    let more = false
    for (;;) {
      const d: {
        execEvents: {
          edges: { node: Exec }[]
          pageInfo: { hasNextPage: boolean; endCursor: string | null }
        }
      } = await gql(QUERY, { filter: eventFilter(params, window), after }, abort.signal)
      for (const e of d.execEvents.edges) execs.push(e.node)
      more = d.execEvents.pageInfo.hasNextPage
      if (!more || execs.length >= MAX_EXECS) break
      after = d.execEvents.pageInfo.endCursor
    }
    const groups = new Map<string, Exec[]>()
    for (const e of execs) {
      const key = place(e)
      const list = groups.get(key)
      if (list) list.push(e)
      else groups.set(key, [e])
    }
    const shown = [...groups.entries()]
      .filter(([key]) => group === '' || key === group)
      .map(([key, list]) => [key, buildForest(list, search)] as const)
      .filter(([, forest]) => forest.length > 0)
    const rows: HTMLElement[] = []
    const walk = (n: TreeNode, depth: number) => {
      if (!n.keep) return
      const e = n.exec
      rows.push(
        h(
          'tr',
          { class: n.match && search ? 'match' : undefined, 'data-pid': e.pid },
          h('td', { class: 'time' }, clock(e.time)),
          h('td', { class: 'num' }, e.pid),
          h(
            'td',
            { class: 'mono tree' },
            h('span', { class: 'indent', 'data-depth': depth }, '│ '.repeat(depth)),
            h('b', {}, e.comm),
            ' ',
            argv(e.args.length ? e.args : [e.filename]),
          ),
          h(
            'td',
            { class: `num ${e.exitCode !== null && e.exitCode !== 0 ? 'bad' : ''}` },
            exitText(e),
          ),
          h('td', { class: 'num' }, duration(e.durationNs)),
          h(
            'td',
            {},
            e.sessionId
              ? h('a', { href: href('sessions', { id: e.sessionId }) }, 'session')
              : e.seenAtStart
                ? 'before start'
                : '',
          ),
        ),
      )
      // A process that execs again stays at its depth: it is the same process.
      for (const c of n.children) walk(c, c.exec.tgid === e.tgid ? depth : depth + 1)
    }
    const sections = shown.map(([key, forest]) => {
      rows.length = 0
      for (const r of forest) walk(r, 0)
      return h(
        'section',
        { class: 'group', 'data-group': key },
        h('h2', {}, key, ' ', h('small', {}, `${count(rows.length)} processes`)),
        h(
          'table',
          { class: 'processes' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', {}, 'Started'),
              h('th', {}, 'PID'),
              h('th', {}, 'Process'),
              h('th', {}, 'Exit'),
              h('th', {}, 'Duration'),
              h('th', {}, ''),
            ),
          ),
          h('tbody', {}, rows.splice(0)),
        ),
      )
    })
    const groupSelect = h(
      'select',
      { name: 'group', 'aria-label': 'Pod or host' },
      h('option', { value: '' }, `every pod and host (${groups.size})`),
      [...groups.keys()].sort().map((k) => h('option', { value: k, selected: k === group }, k)),
    )
    groupSelect.addEventListener('change', () => update({ group: groupSelect.value }))
    fill(
      body,
      h(
        'div',
        { class: 'toolbar' },
        groupSelect,
        h(
          'span',
          { class: 'status' },
          `${count(execs.length)} execs${more ? ` (the first ${count(execs.length)}; narrow the window for the rest)` : ''}`,
        ),
      ),
      sections.length
        ? sections
        : note(search ? `No process matches “${search}”.` : 'No processes in this window.'),
    )
  })().catch((err: unknown) => {
    if (!abort.signal.aborted) fill(body, note(`Processes: ${(err as Error).message}`, 'error'))
  })
  return () => abort.abort()
}
