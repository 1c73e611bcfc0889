// @ebbflow/api: the GraphQL API over the store.
export * from './app.ts'
export * from './config.ts'
export * from './kafka-live.ts'
export type { LiveEvent, LiveSource } from './live.ts'
export { MemoryLiveSource } from './live.ts'
export * from './main.ts'
export { buildSchema } from './schema.ts'
export * from './server.ts'
