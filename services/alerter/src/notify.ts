// Where alerts go: Alertmanager's API v2 (`POST /api/v2/alerts`, which deduplicates re-sends
// itself) and plain JSON webhooks (one POST per transition, retried with backoff).
import { EbbflowError } from '@ebbflow/common'
import type { PostableAlert } from './state.ts'

export type Fetch = typeof fetch

/** Sends to every Alertmanager; resolves to the ones that failed (with why). */
export async function postToAlertmanagers(
  urls: readonly string[],
  alerts: readonly PostableAlert[],
  timeoutMs: number,
  fetchFn: Fetch = fetch,
): Promise<{ url: string; error: EbbflowError }[]> {
  const body = JSON.stringify(alerts)
  const results = await Promise.all(
    urls.map(async (url) => {
      try {
        await post(
          fetchFn,
          new URL('api/v2/alerts', withSlash(url)).toString(),
          body,
          timeoutMs,
          {},
        )
        return undefined
      } catch (err) {
        return { url, error: asDeliveryError(url, err) }
      }
    }),
  )
  return results.filter((r): r is { url: string; error: EbbflowError } => r !== undefined)
}

export interface RetryPolicy {
  attempts: number
  /** First pause; doubled after each failed attempt. */
  backoffMs: number
  timeoutMs: number
}

/** POSTs one JSON body, retrying what a retry can cure (network, timeouts, 5xx, 429). */
export async function postWithRetries(
  url: string,
  payload: unknown,
  policy: RetryPolicy,
  headers: Record<string, string> = {},
  fetchFn: Fetch = fetch,
): Promise<{ attempts: number }> {
  const body = JSON.stringify(payload)
  let pause = policy.backoffMs
  for (let attempt = 1; ; attempt++) {
    try {
      await post(fetchFn, url, body, policy.timeoutMs, headers)
      return { attempts: attempt }
    } catch (err) {
      const e = asDeliveryError(url, err)
      if (!e.retriable || attempt >= policy.attempts) {
        ;(e as EbbflowError & { attempts?: number }).attempts = attempt
        throw e
      }
      await new Promise((r) => setTimeout(r, pause))
      pause *= 2
    }
  }
}

async function post(
  fetchFn: Fetch,
  url: string,
  body: string,
  timeoutMs: number,
  headers: Record<string, string>,
): Promise<void> {
  const res = await fetchFn(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
    signal: AbortSignal.timeout(timeoutMs),
  })
  const text = await res.text().catch(() => '')
  if (!res.ok)
    throw new EbbflowError(
      'NOTIFY_REJECTED',
      `${url} answered ${res.status}: ${text.slice(0, 200)}`,
      { retriable: res.status >= 500 || res.status === 429 },
    )
}

function asDeliveryError(url: string, err: unknown): EbbflowError {
  if (err instanceof EbbflowError) return err
  const cause = (err as { cause?: { code?: string } })?.cause
  const why = cause?.code ?? (err as Error)?.name ?? 'error'
  return new EbbflowError(
    'NOTIFY_UNREACHABLE',
    `${url} unreachable: ${why} (${(err as Error)?.message})`,
    {
      cause: err,
      retriable: true,
    },
  )
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`
}
