export * from './kafka-publisher.ts'
export * from './publisher.ts'
export * from './transport.ts'
export * from './wire.ts'
