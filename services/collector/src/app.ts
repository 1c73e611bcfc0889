// Builds the collector: capture → enrichment (pod, container, function names) → sink.
// `ebbflow collect` starts and stops it.
import { createLogger, type ExecEvent, findCgroup2Mount, type Logger } from '@ebbflow/common'
import { bootTimeNs } from '@ebbflow/native'
import { type CaptureSink, KernelCapture } from './capture.ts'
import type { CollectorConfig } from './config.ts'
import type { EnrichConfig } from './enrich/config.ts'
import { type Enricher, type Enrichment, startEnrichment } from './enrich/enricher.ts'
import { type ProcScan, type ProcScanStats, StartScanDedup, scanProcfs } from './procfs.ts'
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
    // Redaction is of exec argv: syscall records pass by.
    rawSyscalls: () => sink.rawSyscalls?.(),
  }
}

export interface Collector {
  capture: KernelCapture
  enrichment: Enrichment
  logger: Logger
  /** The /proc read at start (absent when skipped: no exec family, or procScanMax 0). */
  procScan?: ProcScanStats
  /** Reads the counters one last time, flushes the buffers and detaches everything. */
  stop(): Promise<void>
}

/**
 * Reads /proc once and hands an exec event per running process to the enricher; `dedup`, the
 * sink the capture feeds, then drops the captured execs the read already told. Call right
 * after the capture attached, in the same synchronous run (no captured batch may reach the
 * enricher before these). Returns undefined when skipped (no exec family, or procScanMax 0).
 */
export function announceRunningProcesses(
  config: Pick<CollectorConfig, 'families' | 'procScanMax' | 'argsMax' | 'cgroupRoot'>,
  dedup: StartScanDedup,
  enricher: Pick<Enricher, 'seenAtStart'>,
  logger: Logger,
  /** Applied to each read exec before it leaves (secrets in argv), after the dedup saw it. */
  redact: (e: ExecEvent) => ExecEvent = (e) => e,
): ProcScanStats | undefined {
  if (!config.families.includes('exec') || config.procScanMax === 0) return undefined
  let scan: ProcScan
  try {
    scan = scanProcfs({
      cgroupRoot: config.cgroupRoot ?? findCgroup2Mount(),
      argsMax: config.argsMax,
      maxProcesses: config.procScanMax,
      selfPid: process.pid,
      now: bootTimeNs,
    })
  } catch (err) {
    // Only /proc itself unlisted gets here (a process gone or odd is skipped): capture goes on.
    logger.warn(
      { err },
      'reading /proc at start failed: processes already running are known only once they exec',
    )
    return undefined
  }
  dedup.expect(scan)
  enricher.seenAtStart(scan.events.map(redact), scan.processes)
  logger.debug({ ...scan.stats }, 'processes running at start read from /proc')
  if (scan.stats.leftOut > 0)
    logger.warn(
      { leftOut: scan.stats.leftOut, procScanMax: config.procScanMax },
      'more processes than procScanMax at start: the rest are known only once they exec',
    )
  return scan.stats
}

export function startCollector(
  config: CollectorConfig,
  enrichConfig: EnrichConfig,
  sink: CaptureSink,
  logger = createLogger('collector', config.logLevel),
): Collector {
  // Before enrichment, which may hold events while it waits for their pod.
  const redactor = Redactor.fromConfig(config)
  const enrichment = startEnrichment(enrichConfig, sink, logger, {
    nodeName: config.nodeName,
    cgroupRoot: config.cgroupRoot,
  })
  const dedup = new StartScanDedup(redactingSink(enrichment.enricher, redactor))
  let capture: KernelCapture | undefined
  let procScan: ProcScanStats | undefined
  try {
    // Captured execs are compared with the /proc read as they were, then redacted.
    capture = KernelCapture.start(config, dedup, logger)
    // After the attach, so that a process starting meanwhile is captured or read, never
    // neither. Synchronous: no captured batch reaches the enricher before the read's events.
    procScan = announceRunningProcesses(config, dedup, enrichment.enricher, logger, (e) =>
      redactor.exec(e),
    )
  } catch (err) {
    void capture?.stop()
    void enrichment.stop()
    throw err
  }
  const attached = capture
  logger.info(
    {
      families: attached.report.families,
      kernel: attached.report.features.kernelRelease,
      cgroupRoot: attached.report.cgroupRoot,
      enrichment: enrichment.mode,
    },
    'capture attached',
  )
  let stopping: Promise<void> | undefined
  return {
    capture: attached,
    enrichment,
    logger,
    ...(procScan ? { procScan } : {}),
    stop() {
      stopping ??= (async () => {
        attached.finalCounters()
        await attached.stop()
        // After the last batch: sends the events still waiting for their pod.
        await enrichment.stop()
        logger.info(
          {
            stats: attached.stats(),
            enrichment: enrichment.enricher.stats(),
            startDuplicatesDropped: dedup.dropped,
            redactedArgs: redactor.redacted,
          },
          'capture stopped',
        )
      })()
      return stopping
    },
  }
}
