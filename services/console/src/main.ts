// The console's shell: navigation, and the view the URL names. Each view renders into the
// main element and returns what stops it (timers, streams, widgets) when the URL moves on.
import './style.css'
import { fill, h, note } from './dom.ts'
import { currentRoute, href, REFRESH, type View } from './route.ts'
import { filesView } from './views/files.ts'
import { healthView } from './views/health.ts'
import { liveView } from './views/live.ts'
import { mapView } from './views/map.ts'
import { processesView } from './views/processes.ts'
import { sessionsView } from './views/sessions.ts'
import { syscallsView } from './views/syscalls.ts'

export type Render = (root: HTMLElement, params: URLSearchParams) => (() => void) | undefined

const VIEWS: Record<View, { title: string; render: Render }> = {
  live: { title: 'Live', render: liveView },
  processes: { title: 'Processes', render: processesView },
  sessions: { title: 'Exec sessions', render: sessionsView },
  map: { title: 'Service map', render: mapView },
  syscalls: { title: 'Syscalls', render: syscallsView },
  files: { title: 'Files', render: filesView },
  health: { title: 'Health', render: healthView },
}

const nav = h('nav', {})
const main = h('main', {})
document.body.append(
  h('header', {}, h('a', { class: 'brand', href: '#/live' }, 'ebbflow'), nav),
  main,
)

let stop: (() => void) | undefined
let shown = ''

function show(): void {
  const { view, params } = currentRoute()
  // The view already shows a state it wrote with replaceState.
  const key = `${view}?${params}`
  if (key === shown) return
  shown = key
  stop?.()
  stop = undefined
  fill(
    nav,
    Object.entries(VIEWS).map(([id, v]) =>
      h('a', { href: href(id as View), 'aria-current': id === view ? 'page' : undefined }, v.title),
    ),
  )
  document.title = `${VIEWS[view].title} · ebbflow`
  const root = h('section', { class: `view view-${view}`, 'data-view': view })
  fill(main, root)
  try {
    stop = VIEWS[view].render(root, params)
  } catch (err) {
    fill(root, note(`This view failed: ${(err as Error).message}`, 'error'))
  }
}

window.addEventListener('hashchange', show)
window.addEventListener(REFRESH, () => {
  shown = ''
  show()
})
show()
