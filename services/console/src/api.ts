// The one way the console reaches the server: GraphQL over same-origin fetch, with the bearer
// token the user typed kept in sessionStorage (gone when the tab closes).
import { h } from './dom.ts'

const ENDPOINT = '/graphql'
const TOKEN_KEY = 'ebbflow.token'

export class ApiError extends Error {
  readonly code: string | undefined
  constructor(message: string, code?: string) {
    super(message)
    this.code = code
  }
}

function headers(accept: string): Record<string, string> {
  const token = sessionStorage.getItem(TOKEN_KEY)
  return {
    'content-type': 'application/json',
    accept,
    ...(token ? { authorization: `Bearer ${token}` } : {}),
  }
}

let asking: Promise<void> | undefined

/**
 * Asks for a token once, however many requests were refused at the same time; the requests
 * are sent again with it.
 */
function askToken(reason: string): Promise<void> {
  asking ??= new Promise<void>((resolve) => {
    const input = h('input', {
      type: 'password',
      name: 'token',
      autocomplete: 'off',
      required: true,
      'aria-label': 'API token',
    })
    const dialog = h(
      'dialog',
      { class: 'token' },
      h(
        'form',
        { method: 'dialog' },
        h('h2', {}, 'API token'),
        h('p', {}, `The API answered: ${reason}. Paste a bearer token from its tokens file.`),
        input,
        h('button', { type: 'submit' }, 'Use token'),
      ),
    )
    dialog.addEventListener('close', () => {
      sessionStorage.setItem(TOKEN_KEY, input.value.trim())
      dialog.remove()
      asking = undefined
      resolve()
    })
    document.body.append(dialog)
    dialog.showModal()
  })
  return asking
}

interface GraphQLBody<T> {
  data?: T
  errors?: { message: string; extensions?: { code?: string } }[]
}

async function reasonOf(res: Response): Promise<string> {
  try {
    const body = (await res.json()) as GraphQLBody<unknown>
    return body.errors?.[0]?.message ?? `HTTP ${res.status}`
  } catch {
    return `HTTP ${res.status}`
  }
}

export async function gql<T>(
  query: string,
  variables: Record<string, unknown> = {},
  signal?: AbortSignal,
): Promise<T> {
  for (;;) {
    const res = await fetch(ENDPOINT, {
      method: 'POST',
      headers: headers('application/graphql-response+json, application/json'),
      body: JSON.stringify({ query, variables }),
      ...(signal ? { signal } : {}),
    })
    if (res.status === 401) {
      await askToken(await reasonOf(res))
      continue
    }
    const body = (await res.json()) as GraphQLBody<T>
    const first = body.errors?.[0]
    if (first) throw new ApiError(first.message, first.extensions?.code)
    if (!body.data) throw new ApiError(`HTTP ${res.status} without data`)
    return body.data
  }
}

/**
 * A subscription over server-sent events (graphql-yoga's single-connection mode), read from a
 * fetch body so the Authorization header can be sent (EventSource cannot send headers).
 * Resolves when the stream ends or `signal` aborts it.
 */
export async function subscribe<T>(
  query: string,
  variables: Record<string, unknown>,
  onData: (data: T) => void,
  signal: AbortSignal,
): Promise<void> {
  for (;;) {
    let res: Response
    try {
      res = await fetch(ENDPOINT, {
        method: 'POST',
        headers: headers('text/event-stream'),
        body: JSON.stringify({ query, variables }),
        signal,
      })
    } catch (err) {
      if (signal.aborted) return
      throw err
    }
    if (res.status === 401) {
      await askToken(await reasonOf(res))
      continue
    }
    if (!res.ok || !res.body) throw new ApiError(await reasonOf(res))
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
    let buffer = ''
    try {
      for (;;) {
        const { value, done } = await reader.read()
        if (done) return
        buffer += value
        let end = buffer.indexOf('\n\n')
        while (end >= 0) {
          const message = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          end = buffer.indexOf('\n\n')
          let event = 'message'
          let data = ''
          for (const line of message.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim()
            else if (line.startsWith('data:')) data += line.slice(5).trim()
          }
          if (event === 'complete') return
          if (event !== 'next' || data === '') continue
          const body = JSON.parse(data) as GraphQLBody<T>
          const first = body.errors?.[0]
          if (first) throw new ApiError(first.message, first.extensions?.code)
          if (body.data) onData(body.data)
        }
      }
    } catch (err) {
      if (signal.aborted) return
      throw err
    }
  }
}

/** Hands the browser a file to save. */
export function download(name: string, text: string, type = 'application/json'): void {
  const url = URL.createObjectURL(new Blob([text], { type }))
  const a = h('a', { href: url, download: name })
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}
