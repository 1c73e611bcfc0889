// The one place that picks the store from configuration: a ClickHouse server when a URL is
// set, chDB in the data folder otherwise. Callers never fork on which one they got.
import { ChdbStore } from './chdb-store.ts'
import { ClickHouseStore } from './clickhouse-store.ts'
import type { StoreConfig } from './config.ts'
import type { Store } from './store.ts'

export interface OpenedStore {
  store: Store
  /** Where the rows go, for the start-up log: the folder or the URL without credentials. */
  where: string
  kind: 'chdb' | 'clickhouse'
}

export async function openStore(
  config: Pick<StoreConfig, 'dataDir' | 'clickhouse'>,
): Promise<OpenedStore> {
  if (config.clickhouse) {
    const url = new URL(config.clickhouse)
    url.username = ''
    url.password = ''
    return {
      store: new ClickHouseStore({ url: config.clickhouse }),
      where: url.toString(),
      kind: 'clickhouse',
    }
  }
  return { store: await ChdbStore.open(config.dataDir), where: config.dataDir, kind: 'chdb' }
}
