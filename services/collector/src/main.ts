// Starts the collector from its configuration: capture → enrichment → the publisher the
// configuration names (Kafka, or JSON lines on stdout), or the one the caller hands in
// (`ebbflow up`: the in-process queue). `ebbflow collect` and `ebbflow up` both call start.
import { createLogger, type Logger } from '@ebbflow/common'
import { type Collector, startCollector } from './app.ts'
import type { CaptureSink } from './capture.ts'
import type { CollectorConfig } from './config.ts'
import type { EnrichConfig } from './enrich/config.ts'
import { JsonLinesSink } from './json-sink.ts'
import { KafkaPublisher, type Publisher, type PublisherStats } from './publish/index.ts'

/** The collector's settings with those of its enrichment stage. */
export type CollectorStartConfig = CollectorConfig & { enrich: EnrichConfig }

export interface CollectorDeps {
  logger?: Logger
  /** Where events go instead of config.output; start flushes and closes it at stop. */
  publisher?: Publisher
  /** Also handed every event, after enrichment and redaction (`up`'s live tail). */
  tap?: CaptureSink
}

export interface RunningCollector {
  collector: Collector
  /** Capture stops, the last events are flushed, the publisher closes. */
  stop(): Promise<PublisherStats | undefined>
}

export async function start(
  config: CollectorStartConfig,
  deps: CollectorDeps = {},
): Promise<RunningCollector> {
  const { enrich, ...collectorConfig } = config
  const logger = deps.logger ?? createLogger('collector', config.logLevel)
  const publisher =
    deps.publisher ?? (config.output === 'kafka' ? new KafkaPublisher(config, logger) : undefined)
  const out: CaptureSink = publisher ?? new JsonLinesSink(process.stdout)
  const tap = deps.tap
  const sink: CaptureSink = tap
    ? {
        records(events, family) {
          out.records(events, family)
          tap.records(events, family)
        },
        counters(events) {
          out.counters(events)
          tap.counters(events)
        },
      }
    : out
  let collector: Collector
  try {
    collector = startCollector(collectorConfig, enrich, sink, logger)
  } catch (err) {
    await publisher?.close().catch(() => undefined)
    throw err
  }
  let stopping: Promise<PublisherStats | undefined> | undefined
  return {
    collector,
    stop() {
      stopping ??= (async () => {
        await collector.stop()
        if (!publisher) return undefined
        const stats = await publisher.close()
        logger.info({ stats }, 'publisher flushed and closed')
        return stats
      })()
      return stopping
    },
  }
}
