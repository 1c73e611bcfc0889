// The store: schema migrations, the Store interface and its chDB implementation, and the
// mapping of decoded events to rows. Imported as `@ebbflow/common/store/index` (not from the
// package root) so services that never store anything do not load chDB.
export * from './batch-sql.ts'
export * from './chdb-store.ts'
export * from './clickhouse-store.ts'
export * from './cluster.ts'
export * from './config.ts'
export * from './migrate.ts'
export * from './open.ts'
export * from './rows.ts'
export * from './schema-version.ts'
export * from './store.ts'
