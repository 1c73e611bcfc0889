// Builds the collector: capture → enrichment (pod, container, function names) → sink.
// `ebbflow collect` starts and stops it.
import { createLogger, type Logger } from '@ebbflow/common'
import { type CaptureSink, KernelCapture } from './capture.ts'
import type { CollectorConfig } from './config.ts'
import type { EnrichConfig } from './enrich/config.ts'
import { type Enrichment, startEnrichment } from './enrich/enricher.ts'
import { Redactor } from './redact.ts'

/** Hands the sink every exec with its secrets replaced: nothing after it sees them. */
export function redactingSink(sink: CaptureSink, redactor: Redactor): CaptureSink {
  return {
    records(events, family) {
      if (family === 'exec')
        for (let i = 0; i < events.length; i++) {
          const e = events[i]!
          if (e.kind === 'exec') events[i] = redactor.exec(e)
        }
      sink.records(events, family)
    },
    counters(events) {
      sink.counters(events)
    },
  }
}

export interface Collector {
  capture: KernelCapture
  enrichment: Enrichment
  logger: Logger
  /** Reads the counters one last time, flushes the buffers and detaches everything. */
  stop(): Promise<void>
}

export function startCollector(
  config: CollectorConfig,
  enrichConfig: EnrichConfig,
  sink: CaptureSink,
  logger = createLogger('collector', config.logLevel),
): Collector {
  // Before enrichment, which may hold events while it waits for their pod.
  const redactor = Redactor.fromConfig(config)
  const enrichment = startEnrichment(enrichConfig, sink, logger, { cgroupRoot: config.cgroupRoot })
  const redacted = redactingSink(enrichment.enricher, redactor)
  let capture: KernelCapture
  try {
    capture = KernelCapture.start(config, redacted, logger)
  } catch (err) {
    void enrichment.stop()
    throw err
  }
  logger.info(
    {
      families: capture.report.families,
      bufferKind: capture.report.bufferKind,
      kernel: capture.report.features.kernelRelease,
      cgroupRoot: capture.report.cgroupRoot,
      enrichment: enrichment.mode,
    },
    'capture attached',
  )
  let stopping: Promise<void> | undefined
  return {
    capture,
    enrichment,
    logger,
    stop() {
      stopping ??= (async () => {
        capture.finalCounters()
        await capture.stop()
        // After the last batch: sends the events still waiting for their pod.
        await enrichment.stop()
        logger.info(
          {
            stats: capture.stats(),
            enrichment: enrichment.enricher.stats(),
            redactedArgs: redactor.redacted,
          },
          'capture stopped',
        )
      })()
      return stopping
    },
  }
}
