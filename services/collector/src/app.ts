// Builds the collector: capture → sink. main.ts (or `ebbflow collect`) starts and stops it.
import { createLogger, type Logger } from '@ebbflow/common'
import { type CaptureSink, KernelCapture } from './capture.ts'
import type { CollectorConfig } from './config.ts'

export interface Collector {
  capture: KernelCapture
  logger: Logger
  /** Reads the counters one last time, flushes the buffers and detaches everything. */
  stop(): Promise<void>
}

export function startCollector(
  config: CollectorConfig,
  sink: CaptureSink,
  logger = createLogger('collector', config.logLevel),
): Collector {
  const capture = KernelCapture.start(config, sink, logger)
  logger.info(
    {
      families: capture.report.families,
      bufferKind: capture.report.bufferKind,
      kernel: capture.report.features.kernelRelease,
      cgroupRoot: capture.report.cgroupRoot,
    },
    'capture attached',
  )
  let stopping: Promise<void> | undefined
  return {
    capture,
    logger,
    stop() {
      stopping ??= (async () => {
        capture.finalCounters()
        await capture.stop()
        logger.info({ stats: capture.stats() }, 'capture stopped')
      })()
      return stopping
    },
  }
}
