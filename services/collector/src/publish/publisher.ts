// Decoded events → EventBatches per family topic → a bounded queue → a Transport (Kafka or
// in-process). Capture never waits on the broker: records() and counters() only encode and
// enqueue. When the broker is slow or down, batches wait in the queue and are retried; past
// the memory budget the OLDEST queued batches are dropped and counted by family. Oldest,
// because after an outage the recent records are the ones an operator looks at first, and
// keeping the newest means what arrives once the broker is back joins up with live data; the
// gap is reported as Drops records (reason queue_full) and in stats().
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { CapturedEvent, CounterEvent, Family, Logger, RecordEvent } from '@ebbflow/common'
import { FAMILIES } from '@ebbflow/common'
import {
  BatchWriter,
  familyOf,
  TOPICS,
  type WallClock,
  writeEvent,
  writeQueueDrops,
  writeRawSyscall,
} from '@ebbflow/common/wire'
import { v1 } from '@ebbflow/proto'
import type { CaptureSink, RawSyscallWriter } from '../capture.ts'
import type { Transport } from './transport.ts'

export interface PublisherOptions {
  node: string
  clock: WallClock
  /** Memory held by queued batches, at most. */
  queueBudgetBytes: number
  batchMaxEvents: number
  batchMaxBytes: number
  lingerMs: number
  /** CLOCK_BOOTTIME now, for stamping the publisher's own drop records. */
  bootNow: () => number
  logger?: Logger
  /** Default: a random uuid. */
  instanceId?: string
  /** Default: /proc/sys/kernel/random/boot_id. */
  bootId?: string
  /** Longest wait between retries while the transport fails. Default: 2000 ms. */
  maxBackoffMs?: number
}

export interface PublisherStats {
  queuedBatches: number
  queuedBytes: number
  /** Events held: in queued batches and in partial batches not yet closed. With
   * publishedEvents and droppedEvents it accounts for every event handed to the publisher. */
  queuedEvents: number
  publishedBatches: number
  publishedEvents: number
  /** Events dropped past the memory budget, by family (cumulative). */
  droppedEvents: Record<Family, number>
  droppedBatches: number
  failedSends: number
  connected: boolean
}

interface Pending {
  writer: BatchWriter
  events: number
  /** Boot-time range of the batch's events. */
  minBootNs: number
  maxBootNs: number
}

interface QueuedBatch {
  family: Family
  /** The batch's bytes: the start of a buffer that may be reused once they are sent. */
  value: Buffer
  /** Events in the batch (its own queue_full record not included). */
  events: number
  /** queue_full drops this batch reports; counted again if the batch itself is dropped. */
  carriedDrops: number
  /** The whole batches those drops were in (the sequence numbers the store will miss). */
  carriedBatches: number
}

function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  } catch {
    return ''
  }
}

export class Publisher implements CaptureSink {
  readonly instanceId: string
  readonly bootId: string
  private readonly o: PublisherOptions
  private readonly out: Transport
  private readonly pending = new Map<Family, Pending>()
  /** One writer per family, reset after each batch: its buffer has grown to a batch's size. */
  private readonly writers = new Map<Family, BatchWriter>()
  private readonly sequence: Record<Family, number> = { exec: 0, net: 0, syscall: 0, file: 0 }
  /** queue_full drops not yet carried by a batch. */
  private readonly unsentDrops: Record<Family, number> = { exec: 0, net: 0, syscall: 0, file: 0 }
  /** Batches (sequence numbers) dropped and not yet reported by a batch. */
  private readonly unsentBatches: Record<Family, number> = { exec: 0, net: 0, syscall: 0, file: 0 }
  private readonly queue: QueuedBatch[] = []
  /** Buffers of batches acknowledged or dropped, for the next batches (see takeBuffer). */
  private readonly spare: ArrayBuffer[] = []
  private inFlight = 0
  private queuedBytes = 0
  private readonly stats_: PublisherStats
  private pumping: Promise<void> | undefined
  private wake: (() => void) | undefined
  private closing = false
  private idleWaiters: (() => void)[] = []
  /**
   * One linger for every family: set by the first event held while none is set, it closes
   * every partial batch at once, and they go out together in one produce request. Per-family
   * timers sent each family's batch in a request of its own (at rest, the syscall counts and
   * the traffic counters of the same second were two requests).
   */
  private lingerTimer: NodeJS.Timeout | undefined
  /** Set while flushDue closes batches: the pump starts once, after the last. */
  private holdPump = false

  constructor(transport: Transport, options: PublisherOptions) {
    this.out = transport
    this.o = options
    this.instanceId = options.instanceId ?? randomUUID()
    this.bootId = options.bootId ?? readBootId()
    this.stats_ = {
      queuedBatches: 0,
      queuedBytes: 0,
      queuedEvents: 0,
      publishedBatches: 0,
      publishedEvents: 0,
      droppedEvents: { exec: 0, net: 0, syscall: 0, file: 0 },
      droppedBatches: 0,
      failedSends: 0,
      connected: false,
    }
  }

  records(events: RecordEvent[], family: Family): void {
    for (const e of events) this.add(family, e)
  }

  counters(events: CounterEvent[]): void {
    for (const e of events) this.add(familyOf(e), e)
  }

  /** Any decoded event, routed to its family's topic. */
  publish(events: readonly CapturedEvent[]): void {
    for (const e of events) this.add(familyOf(e), e)
  }

  /** The clock that turns the batches' boot times into wall time. */
  get clock(): WallClock {
    return this.o.clock
  }

  stats(): PublisherStats {
    return {
      ...this.stats_,
      droppedEvents: { ...this.stats_.droppedEvents },
      queuedBatches: this.queue.length,
      queuedBytes: this.queuedBytes,
      queuedEvents:
        this.queue.reduce((n, b) => n + b.events, 0) +
        [...this.pending.values()].reduce((n, p) => n + p.events, 0),
    }
  }

  /** Enriched syscall records written from the ring's bytes, as add() writes their events. */
  rawSyscallWriter(): RawSyscallWriter {
    return (batch, view, at, bootNs, stringArgs, meta) => {
      const p = this.pendingOf('syscall')
      writeRawSyscall(p.writer, batch, view, at, bootNs, stringArgs, meta, this.o.clock)
      this.added('syscall', p, bootNs)
    }
  }

  private pendingOf(family: Family): Pending {
    let p = this.pending.get(family)
    if (!p) {
      p = this.newPending(family)
      this.pending.set(family, p)
    }
    return p
  }

  private add(family: Family, e: CapturedEvent): void {
    const p = this.pendingOf(family)
    writeEvent(p.writer, e, this.o.clock)
    this.added(family, p, e.bootNs)
  }

  private added(family: Family, p: Pending, bootNs: number): void {
    if (bootNs < p.minBootNs) p.minBootNs = bootNs
    if (bootNs > p.maxBootNs) p.maxBootNs = bootNs
    p.events++
    if (p.events >= this.o.batchMaxEvents || p.writer.len >= this.o.batchMaxBytes)
      this.flush(family)
    else if (!this.lingerTimer)
      this.lingerTimer = setTimeout(() => this.flushDue(), this.o.lingerMs)
  }

  /** The linger ran out: every family's partial batch is closed, then sent in one request. */
  private flushDue(): void {
    this.lingerTimer = undefined
    this.holdPump = true
    try {
      for (const f of FAMILIES) if (this.pending.has(f)) this.flush(f)
    } finally {
      this.holdPump = false
    }
    if (this.queue.length > 0) this.kick()
  }

  private newPending(family: Family): Pending {
    let writer = this.writers.get(family)
    if (!writer) {
      writer = new BatchWriter()
      this.writers.set(family, writer)
    }
    return {
      writer,
      events: 0,
      minBootNs: Number.POSITIVE_INFINITY,
      maxBootNs: Number.NEGATIVE_INFINITY,
    }
  }

  /** Closes the family's partial batch into the queue. */
  private flush(family: Family): void {
    let p = this.pending.get(family)
    // A batch of queue_full counts alone when nothing else is coming for that family.
    if (!p && this.unsentDrops[family] > 0) p = this.newPending(family)
    if (!p || (p.events === 0 && this.unsentDrops[family] === 0)) return
    this.pending.delete(family)
    if (this.pending.size === 0 && this.lingerTimer) {
      clearTimeout(this.lingerTimer)
      this.lingerTimer = undefined
    }
    const carriedDrops = this.unsentDrops[family]
    const carriedBatches = this.unsentBatches[family]
    if (carriedDrops > 0) {
      writeQueueDrops(
        p.writer,
        family,
        carriedDrops,
        this.o.bootNow(),
        this.o.clock,
        carriedBatches,
      )
      this.unsentDrops[family] = 0
      this.unsentBatches[family] = 0
    }
    const seq = this.sequence[family]++
    const topic = TOPICS[family]
    const head = v1.EventBatch.encode({
      node: this.o.node,
      collectorInstanceId: this.instanceId,
      bootId: this.bootId,
      sequence: seq,
      batchId: `${this.instanceId}-${topic}-${seq}`,
      firstTimeNs: p.events > 0 ? this.o.clock.toWall(p.minBootNs) : null,
      lastTimeNs: p.events > 0 ? this.o.clock.toWall(p.maxBootNs) : null,
    }).finish()
    // Fields of one message may come in any order and repeated ones concatenate: the header
    // followed by the events written one by one is one EventBatch.
    const body = p.writer.finish()
    const value = this.takeBuffer(head.length + body.length)
    value.set(head, 0)
    value.set(body, head.length)
    p.writer.reset() // after the copy above
    this.enqueue({ family, value, events: p.events, carriedDrops, carriedBatches })
  }

  private enqueue(batch: QueuedBatch): void {
    this.queue.push(batch)
    this.queuedBytes += batch.value.length
    while (this.queuedBytes > this.o.queueBudgetBytes && this.queue.length > this.inFlight) {
      // Index inFlight: the batches before it are being sent and cannot be taken back.
      const [dropped] = this.queue.splice(this.inFlight, 1)
      if (!dropped) break
      this.queuedBytes -= dropped.value.length
      this.giveBack(dropped.value)
      const lost = dropped.events
      this.stats_.droppedEvents[dropped.family] += lost
      this.stats_.droppedBatches++
      this.unsentDrops[dropped.family] += lost + dropped.carriedDrops
      this.unsentBatches[dropped.family] += 1 + dropped.carriedBatches
    }
    if (!this.holdPump) this.kick()
  }

  /**
   * A buffer for a batch of `n` bytes: a spare one if one fits without holding more than twice
   * that, else a new one. Under load every batch is ~batchMaxBytes, and a new 512 KiB buffer
   * per batch was external memory that kept V8 running full collections (bench/RESULTS.md,
   * "collector cost"). The transport copies the bytes into its request, so a batch's buffer is
   * free once it is acknowledged.
   */
  private takeBuffer(n: number): Buffer {
    for (let i = this.spare.length - 1; i >= 0; i--) {
      const b = this.spare[i]!
      if (b.byteLength >= n && b.byteLength <= 2 * n) {
        this.spare.splice(i, 1)
        return Buffer.from(b, 0, n)
      }
    }
    // Not from Node's shared pool: a pooled slice would keep its whole pool alive and cannot
    // be handed back.
    return Buffer.from(new ArrayBuffer(n), 0, n)
  }

  /** A few large buffers are kept: enough for the batches sent while the next ones fill. Only
   * when the transport copied the bytes: the in-process one hands them on to its reader. */
  private giveBack(value: Buffer): void {
    if (
      !this.out.copiesRecords ||
      value.byteOffset !== 0 ||
      value.buffer.byteLength < 64 * 1024 ||
      this.spare.length >= 4
    )
      return
    this.spare.push(value.buffer as ArrayBuffer)
  }

  private kick(): void {
    if (this.wake) {
      const w = this.wake
      this.wake = undefined
      w()
    }
    if (!this.pumping) this.pumping = this.pump().finally(() => (this.pumping = undefined))
  }

  private async pump(): Promise<void> {
    let backoff = 100
    let outage = false
    while (this.queue.length > 0) {
      // Several queued batches per request, as many as the transport takes: fewer round trips
      // when catching up.
      const cap = this.out.requestMaxBytes ?? 1 << 20
      let n = 0
      let bytes = 0
      while (n < this.queue.length && (n === 0 || bytes + this.queue[n]!.value.length <= cap)) {
        bytes += this.queue[n]!.value.length
        n++
      }
      this.inFlight = n
      const sending = this.queue.slice(0, n)
      try {
        await this.out.send(
          sending.map((b) => ({ topic: TOPICS[b.family], key: this.o.node, value: b.value })),
        )
        this.queue.splice(0, n)
        this.inFlight = 0
        for (const b of sending) {
          this.queuedBytes -= b.value.length
          this.giveBack(b.value)
          this.stats_.publishedBatches++
          this.stats_.publishedEvents += b.events
        }
        this.stats_.connected = true
        // Report what the budget cost as soon as the transport takes records again.
        for (const f of FAMILIES) if (this.unsentDrops[f] > 0 && !this.pending.has(f)) this.flush(f)
        if (outage) this.o.logger?.info({ queued: this.queue.length }, 'transport is back')
        outage = false
        backoff = 100
      } catch (err) {
        this.inFlight = 0
        this.stats_.failedSends++
        this.stats_.connected = false
        if (!outage)
          this.o.logger?.warn(
            { err: (err as Error).message, queued: this.queue.length },
            'publishing failed; holding batches and retrying',
          )
        outage = true
        if (this.closing && this.closeDeadline < Date.now()) return
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, backoff)
          this.wake = () => {
            clearTimeout(t)
            resolve()
          }
        })
        backoff = Math.min(backoff * 2, this.o.maxBackoffMs ?? 2000)
      }
    }
    for (const w of this.idleWaiters.splice(0)) w()
  }

  private closeDeadline = 0

  /** Flushes partial batches and resolves once the queue is empty (or `timeoutMs` passed). */
  async drain(timeoutMs = 10_000): Promise<boolean> {
    for (const f of FAMILIES) this.flush(f)
    if (this.queue.length === 0) return true
    return new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs)
      this.idleWaiters.push(() => {
        clearTimeout(t)
        resolve(this.queue.length === 0)
      })
      this.kick()
    })
  }

  /** Drains for at most `timeoutMs`, then closes the transport. Whatever is left is lost. */
  async close(timeoutMs = 10_000): Promise<PublisherStats> {
    this.closing = true
    this.closeDeadline = Date.now() + timeoutMs
    await this.drain(timeoutMs)
    this.closeDeadline = 0
    if (this.wake) this.wake()
    await this.pumping
    await this.out.close()
    return this.stats()
  }
}
