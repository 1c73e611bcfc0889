// The store: schema migrations, the Store interface with its chDB and ClickHouse
// implementations, and the tables the ingester writes. A package of its own, apart from
// @ebbflow/common, so that a service that never stores anything (the collector) does not carry
// chDB or the ClickHouse client in its dependencies.
export * from './batch-sql.ts'
export * from './chdb-store.ts'
export * from './clickhouse-store.ts'
export * from './cluster.ts'
export * from './config.ts'
export * from './migrate.ts'
export * from './open.ts'
export * from './schema-version.ts'
export * from './store.ts'
export * from './tables.ts'
