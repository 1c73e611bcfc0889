export * from '@ebbflow/common/wire'
export * from './kafka-publisher.ts'
export * from './publisher.ts'
export * from './transport.ts'
