// One chDB store per test file (opening one costs about a second), filled with the fixture,
// and a helper that posts GraphQL to the API without a socket.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLogger } from '@ebbflow/common'
import { ChdbStore, migrate } from '@ebbflow/store'
import { type Api, type ApiOptions, createApi } from '../src/app.ts'
import { fill } from './fixture.ts'

export const TOKENS = {
  shop: 'token-shop-0123456789',
  bank: 'token-bank-0123456789',
  nobody: 'token-none-0123456789',
  admin: 'token-admin-012345678',
  both: 'token-both-0123456789',
}

export const TOKEN_MAP: Record<string, string[]> = {
  [TOKENS.shop]: ['shop'],
  [TOKENS.bank]: ['bank'],
  [TOKENS.nobody]: [],
  [TOKENS.admin]: ['*'],
  [TOKENS.both]: ['shop', 'bank'],
}

export interface Harness {
  store: ChdbStore
  api: Api
  make(options?: Partial<ApiOptions>): Api
  close(): Promise<void>
}

export async function openHarness(): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'ebbflow-api-'))
  const store = await ChdbStore.open(dir)
  await migrate(store)
  await fill(store)
  const logger = createLogger('api-test', 'silent')
  const make = (options: Partial<ApiOptions> = {}) =>
    createApi({ store, tokens: TOKEN_MAP, logger, ...options })
  return {
    store,
    api: make(),
    make,
    close: async () => {
      await store.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export interface GqlResult {
  status: number
  // biome-ignore lint/suspicious/noExplicitAny: test responses are checked field by field
  data: any
  errors: { message: string; extensions?: { code?: string } }[] | undefined
}

export async function gql(
  api: Api,
  query: string,
  variables: Record<string, unknown> = {},
  token: string | null = TOKENS.shop,
): Promise<GqlResult> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (token !== null) headers.authorization = `Bearer ${token}`
  const res = await api.fetch('http://localhost/graphql', {
    method: 'POST',
    headers,
    body: JSON.stringify({ query, variables }),
  })
  const body = (await res.json()) as { data?: unknown; errors?: GqlResult['errors'] }
  return { status: res.status, data: body.data, errors: body.errors }
}
