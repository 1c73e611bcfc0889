// The publishers the collector's config asks for: Kafka (distributed) or in-process (embedded).
import type { Logger } from '@ebbflow/common'
import { bootTimeNs } from '@ebbflow/native'
import { collectorClock } from '../clock.ts'
import type { CollectorConfig } from '../config.ts'
import { Publisher } from './publisher.ts'
import { InProcessTransport, KafkaTransport } from './transport.ts'

type PublishConfig = Pick<
  CollectorConfig,
  'nodeName' | 'queueBudgetBytes' | 'batchMaxEvents' | 'batchMaxBytes' | 'lingerMs'
>

function options(config: PublishConfig, logger: Logger | undefined, instanceId?: string) {
  return {
    node: config.nodeName,
    // The collector's one offset to wall time: the JSON lines and the live tail use it too.
    clock: collectorClock(),
    bootNow: bootTimeNs,
    queueBudgetBytes: config.queueBudgetBytes,
    batchMaxEvents: config.batchMaxEvents,
    batchMaxBytes: config.batchMaxBytes,
    lingerMs: config.lingerMs,
    ...(logger ? { logger } : {}),
    ...(instanceId ? { instanceId } : {}),
  }
}

/** A CaptureSink publishing to Kafka (idempotent, acks=-1, zstd, key = node name). */
export class KafkaPublisher extends Publisher {
  constructor(
    config: PublishConfig & {
      kafkaBrokers: string[]
      kafkaCompression?: CollectorConfig['kafkaCompression']
    },
    logger?: Logger,
    instanceId?: string,
  ) {
    super(
      new KafkaTransport({
        brokers: config.kafkaBrokers,
        compression: config.kafkaCompression ?? 'zstd',
      }),
      options(config, logger, instanceId),
    )
  }
}

/** The embedded mode's publisher: the same batches, read in-process from `transport.consume()`. */
export class InProcessPublisher extends Publisher {
  readonly transport: InProcessTransport

  constructor(config: PublishConfig, logger?: Logger, capacityBytes?: number) {
    const transport = new InProcessTransport(capacityBytes)
    super(transport, options(config, logger))
    this.transport = transport
  }
}
