// Exec sessions: the `kubectl exec` sessions of a window, and one of them played back as a
// terminal would have shown it — each command typed at a prompt, its exit code and run time
// when it ended — at the pace it happened (or faster), with pause and jump to any command.
import '@xterm/xterm/css/xterm.css'
import { Terminal } from '@xterm/xterm'
import { gql } from '../api.ts'
import { eventFilter, filterBar, WHERE } from '../controls.ts'
import { fill, h, note } from '../dom.ts'
import { argv, clock, count, dateTime, duration, place, timeMs } from '../format.ts'
import { href, update, window_ } from '../route.ts'

interface SessionSummary {
  id: string
  node: string
  namespace: string | null
  pod: string | null
  container: string | null
  uid: number
  startedAt: string
  lastCommandAt: string
  endedAt: string | null
  exitCode: number | null
  commandCount: number
}

interface Command {
  time: string
  pid: number
  ppid: number
  comm: string
  filename: string
  args: string[]
  exitCode: number | null
  signal: number | null
  durationNs: number | null
}

const LIST = `query($filter: EventFilter!) {
  execSessions(filter: $filter, last: 100) {
    edges { node { id node namespace pod container uid startedAt lastCommandAt endedAt exitCode commandCount } }
  }
}`

const ONE = `query($id: ID!) {
  execSession(id: $id) {
    id node namespace pod container uid startedAt endedAt exitCode commandCount truncated
    commands { time pid ppid comm filename args exitCode signal durationNs }
  }
}`

const SPEEDS = ['0.5', '1', '2', '5', '20']
/** A quiet stretch longer than this plays as this long: nobody wants to watch a pause. */
const MAX_GAP_MS = 2000

export function sessionsView(root: HTMLElement, params: URLSearchParams): () => void {
  const id = params.get('id')
  return id ? playbackView(root, params, id) : listView(root, params)
}

function listView(root: HTMLElement, params: URLSearchParams): () => void {
  const window = window_(params)
  const body = h('div', {}, note('Loading sessions…'))
  fill(root, h('h1', {}, 'Exec sessions'), filterBar(params, WHERE), body)
  const abort = new AbortController()
  gql<{ execSessions: { edges: { node: SessionSummary }[] } }>(
    LIST,
    { filter: eventFilter(params, window) },
    abort.signal,
  ).then(
    (d) => {
      const sessions = d.execSessions.edges.map((e) => e.node).reverse()
      if (sessions.length === 0) {
        fill(body, note('No exec sessions in this window.'))
        return
      }
      fill(
        body,
        h(
          'table',
          { class: 'sessions' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', {}, 'Started'),
              h('th', {}, 'Where'),
              h('th', {}, 'Container'),
              h('th', {}, 'uid'),
              h('th', {}, 'Commands'),
              h('th', {}, 'Exit'),
            ),
          ),
          h(
            'tbody',
            {},
            sessions.map((s) =>
              h(
                'tr',
                { 'data-session': s.id },
                h(
                  'td',
                  {},
                  h('a', { href: href('sessions', { id: s.id }) }, dateTime(s.startedAt)),
                ),
                h('td', {}, place(s)),
                h('td', {}, s.container ?? ''),
                h('td', { class: 'num' }, s.uid),
                h('td', { class: 'num' }, count(s.commandCount)),
                h('td', { class: 'num' }, s.exitCode ?? (s.endedAt ? '' : 'open')),
              ),
            ),
          ),
        ),
      )
    },
    (err: unknown) => {
      if (!abort.signal.aborted) fill(body, note(`Sessions: ${(err as Error).message}`, 'error'))
    },
  )
  return () => abort.abort()
}

function playbackView(root: HTMLElement, params: URLSearchParams, id: string): () => void {
  const body = h('div', {}, note('Loading the session…'))
  fill(root, h('h1', {}, h('a', { href: href('sessions') }, 'Exec sessions'), ' › playback'), body)
  const abort = new AbortController()
  let stopPlayer = () => {}
  gql<{ execSession: (SessionSummary & { commands: Command[]; truncated: boolean }) | null }>(
    ONE,
    { id },
    abort.signal,
  ).then(
    (d) => {
      const s = d.execSession
      if (!s) {
        fill(body, note(`No session ${id} (or not one you may read).`, 'error'))
        return
      }
      stopPlayer = player(body, s, params)
    },
    (err: unknown) => {
      if (!abort.signal.aborted) fill(body, note(`Session: ${(err as Error).message}`, 'error'))
    },
  )
  return () => {
    abort.abort()
    stopPlayer()
  }
}

function player(
  body: HTMLElement,
  s: SessionSummary & { commands: Command[]; truncated: boolean },
  params: URLSearchParams,
): () => void {
  const commands = s.commands
  const term = new Terminal({
    convertEol: true,
    disableStdin: true,
    rows: 18,
    cols: 100,
    fontSize: 13,
    scrollback: 5000,
    theme: { background: '#10141a' },
  })
  const screen = h('div', { class: 'terminal', 'aria-label': 'session playback' })
  const playButton = h('button', { type: 'button', class: 'play' }, 'Play')
  const back = h(
    'button',
    { type: 'button', class: 'back', 'aria-label': 'previous command' },
    '‹ Back',
  )
  const next = h(
    'button',
    { type: 'button', class: 'next', 'aria-label': 'next command' },
    'Step ›',
  )
  const speed = h(
    'select',
    { name: 'speed', 'aria-label': 'speed' },
    SPEEDS.map((v) =>
      h('option', { value: v, selected: (params.get('speed') ?? '1') === v }, `${v}×`),
    ),
  )
  const position = h('span', { class: 'status', role: 'status' })
  const list = h(
    'ol',
    { class: 'commands' },
    commands.map((c, i) =>
      h(
        'li',
        { 'data-step': i + 1 },
        h(
          'button',
          { type: 'button', class: 'jump', 'data-step': i + 1 },
          h('span', { class: 'time' }, clock(c.time)),
          ' ',
          argv(c.args.length ? c.args : [c.filename]),
          ' ',
          h('small', {}, c.exitCode === null ? '' : `exit ${c.exitCode}`),
        ),
      ),
    ),
  )
  fill(
    body,
    h(
      'p',
      { class: 'session-meta' },
      `${place(s)}${s.container ? ` · ${s.container}` : ''} · uid ${s.uid} · started ${dateTime(s.startedAt)} · ${count(s.commandCount)} commands`,
      s.truncated ? ' (the first ones only)' : '',
    ),
    h('div', { class: 'toolbar' }, back, playButton, next, speed, position),
    h('div', { class: 'playback' }, screen, list),
  )
  term.open(screen)

  // `step` commands are on screen; the prompt waits for the next one.
  let step = 0
  let playing = false
  let timer: ReturnType<typeof setTimeout> | undefined
  const prompt = () => `\x1b[32m${s.pod ?? s.node}\x1b[0m:\x1b[34m~\x1b[0m$ `
  const shownAs = (c: Command) => {
    const exit =
      c.exitCode === null
        ? '\x1b[33m[still running]\x1b[0m'
        : c.signal
          ? `\x1b[31m[signal ${c.signal}]\x1b[0m`
          : c.exitCode === 0
            ? `\x1b[2m[exit 0 · ${duration(c.durationNs)}]\x1b[0m`
            : `\x1b[31m[exit ${c.exitCode} · ${duration(c.durationNs)}]\x1b[0m`
    return `${prompt()}${argv(c.args.length ? c.args : [c.filename])}\n${exit}\n`
  }
  const render = () => {
    term.reset()
    term.write(`\x1b[2m# session ${s.id} · ${dateTime(s.startedAt)}\x1b[0m\n`)
    for (const c of commands.slice(0, step)) term.write(shownAs(c))
    if (step < commands.length) term.write(prompt())
    else term.write('\x1b[2m# end of session\x1b[0m\n')
    position.textContent = `${step} / ${commands.length}`
    for (const li of list.children)
      li.classList.toggle('done', Number((li as HTMLElement).dataset.step) <= step)
    list.children[step - 1]?.scrollIntoView({ block: 'nearest' })
    update({ step: String(step) }, { replace: true })
  }
  const go = (to: number) => {
    step = Math.max(0, Math.min(commands.length, to))
    render()
    if (step >= commands.length) pause()
  }
  const schedule = () => {
    clearTimeout(timer)
    if (!playing || step >= commands.length) return
    const gap = step === 0 ? 300 : timeMs(commands[step]!.time) - timeMs(commands[step - 1]!.time)
    timer = setTimeout(
      () => {
        go(step + 1)
        schedule()
      },
      Math.min(Math.max(gap, 0), MAX_GAP_MS) / Number(speed.value),
    )
  }
  const pause = () => {
    playing = false
    clearTimeout(timer)
    playButton.textContent = 'Play'
  }
  playButton.addEventListener('click', () => {
    if (playing) return pause()
    if (step >= commands.length) go(0)
    playing = true
    playButton.textContent = 'Pause'
    schedule()
  })
  back.addEventListener('click', () => {
    pause()
    go(step - 1)
  })
  next.addEventListener('click', () => {
    pause()
    go(step + 1)
  })
  speed.addEventListener('change', () => {
    update({ speed: speed.value }, { replace: true })
    schedule()
  })
  list.addEventListener('click', (ev) => {
    const b = (ev.target as HTMLElement).closest('button.jump') as HTMLElement | null
    if (!b) return
    pause()
    go(Number(b.dataset.step))
  })
  go(Number(params.get('step') ?? '0') || 0)
  return () => {
    pause()
    term.dispose()
  }
}
