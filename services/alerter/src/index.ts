// @ebbflow/alerter: SQL alert rules on a schedule, state in the store, Alertmanager and webhooks.
export * from './alerter.ts'
export * from './config.ts'
export * from './duration.ts'
export * from './main.ts'
export * from './notify.ts'
export * from './rules.ts'
export * from './state.ts'
export * from './store-state.ts'
