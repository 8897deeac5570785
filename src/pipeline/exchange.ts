/**
 * @module
 * The state of one request as it travels the pipeline: created by the listener, filled in by the
 * steps (client address, body, update facts), read at the end by the log line and the metrics.
 */

import type { IncomingMessage } from 'node:http'
import type { ClientAddress } from '../request/client-ip.js'
import type { Chain, Store } from '../store/index.js'
import type { UpdateFacts } from '../telegram/update.js'
import type { Answer } from './answer.js'
import type { Reason } from './verdict.js'

/**
 * Something a request holds until its answer is known, then settles with that answer: dedupe's
 * in-flight mark (src/checks/dedupe). Declared here, by the exchange that carries it, so that the
 * pipeline depends on no check.
 */
export interface HeldMark {
  /** Called once, after the answer is decided; must not throw (a failure is reported, not raised). */
  settle(answer: Answer): void
}

export class Exchange {
  readonly incoming: IncomingMessage
  readonly requestId: string
  /** `performance.now()` when the request reached the gateway. */
  readonly startedAt: number
  client: ClientAddress | undefined = undefined
  /** The exact bytes received; forwarded unchanged. */
  body: Buffer | undefined = undefined
  /** What the update checks found, once the envelope was read. */
  update: UpdateFacts | undefined = undefined
  /** The dedupe mark this request holds, settled once the answer is known. */
  dedupe: HeldMark | undefined = undefined
  /** Verdicts that shadow-mode checks would have given: logged and counted, not enforced. */
  would: Reason[] | undefined = undefined
  /** Milliseconds the upstream took, when it was called. */
  upstreamMs: number | undefined = undefined
  /** The upstream's HTTP status, when it answered. */
  upstreamStatus: number | undefined = undefined
  /** A short note for the log line (which header was wrong, why a reply was withheld); never user content. */
  detail: string | undefined = undefined
  /** The chain the checks' store steps join now (see {@link chainOn}). */
  #chain: Chain | undefined = undefined
  /** False after a chain failed: from then on each store operation is its own call. */
  #chains = true

  constructor(incoming: IncomingMessage, requestId: string, startedAt: number) {
    this.incoming = incoming
    this.requestId = requestId
    this.startedAt = startedAt
  }

  /**
   * The chain this update's store steps join (src/store/index.ts, `Chain`), opened on first use;
   * undefined when the store cannot chain now, or a chain of this update failed: then the check
   * asks the store one operation at a time. Every check of an update uses the gateway's one store.
   */
  chainOn(store: Store): Chain | undefined {
    if (this.#chain === undefined && this.#chains) this.#chain = store.chain?.()
    return this.#chain
  }

  /** The runner waits for the open chain's answers: steps from now on open another. */
  endChain(): void {
    this.#chain = undefined
  }

  /** A chain failed: the checks run again, each store operation its own call (see run.ts). */
  stopChains(): void {
    this.#chain = undefined
    this.#chains = false
  }

  /** Records what a shadowed check would have done. */
  noteShadow(reason: Reason): void {
    if (this.would === undefined) this.would = [reason]
    else this.would.push(reason)
  }
}
