/**
 * @module
 * Checks 5 to 7 of SPEC section 3: what the bytes are. The media type and encoding are read from
 * the headers before a byte of body is; the body is read up to the limit and no further (also
 * for chunked bodies, whose size nobody announces); the bytes must be one UTF-8 JSON object.
 */

import { isUtf8 } from 'node:buffer'
import type { IncomingMessage } from 'node:http'
import { type Reject, reject } from '../pipeline/verdict.js'

const UNSUPPORTED_MEDIA_TYPE = reject(415, 'unsupported_media_type')
const BODY_TOO_LARGE = reject(413, 'body_too_large')
export const MALFORMED_JSON = reject(400, 'malformed_json')

/**
 * Check 5: `Content-Type: application/json` with any parameters (Telegram sends no charset, some
 * proxies add one), and no `Content-Encoding` other than identity: a compressed body could not be
 * size-checked before inflating and would reach the upstream in a form it may not expect.
 */
export function checkMediaType(incoming: IncomingMessage): Reject | undefined {
  const type = incoming.headers['content-type']
  if (type === undefined) return UNSUPPORTED_MEDIA_TYPE
  const semicolon = type.indexOf(';')
  const essence = (semicolon < 0 ? type : type.slice(0, semicolon)).trim()
  if (essence.length !== 16 || essence.toLowerCase() !== 'application/json') return UNSUPPORTED_MEDIA_TYPE
  const encoding = incoming.headers['content-encoding']
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') return UNSUPPORTED_MEDIA_TYPE
  return undefined
}

/**
 * Whether the request still has body bytes we have not read. An answer given before reading them
 * closes the connection, so a client cannot make us receive (and discard) a body nobody wants.
 */
export function hasUnreadBody(incoming: IncomingMessage): boolean {
  if (incoming.complete || incoming.readableEnded) return false
  const length = incoming.headers['content-length']
  if (length !== undefined) return length !== '0'
  return incoming.headers['transfer-encoding'] !== undefined
}

/** Why a body read ended without a body: too large, too slow, or the client went away mid-body. */
export type BodyFailure = { readonly reject: Reject; readonly detail: string }

/** Told to a body read under way when Node reports a client error on its connection. */
const INTERRUPTED = Symbol('botgate.bodyInterrupted')

/** Requests whose body can no longer be read, and why; a body read that starts later ends at once. */
const interrupted = new WeakMap<IncomingMessage, BodyFailure>()

/** `timeouts.body` passed before the body was complete. */
export const BODY_TIMED_OUT: BodyFailure = {
  reject: reject(408, 'request_timeout'),
  detail: 'body not complete within timeouts.body',
}

/** Node's parser could not read the body (a broken chunk, for one): `code` is its error code. */
export function unreadableBody(code: string): BodyFailure {
  return { reject: reject(400, 'bad_request'), detail: code }
}

/**
 * Ends the body read of `incoming` with `failure`: now if it is under way, else as soon as it
 * starts. The pipeline then answers it (408, 400) and closes the connection. Later calls for the
 * same request change nothing.
 */
export function interruptBody(incoming: IncomingMessage, failure: BodyFailure): void {
  // The first failure stands: a broken chunk is not a timeout because the timer fired later.
  if (interrupted.has(incoming)) return
  interrupted.set(incoming, failure)
  incoming.emit(INTERRUPTED, failure)
}

const TOO_LARGE_DECLARED: BodyFailure = { reject: BODY_TOO_LARGE, detail: 'content-length over the limit' }
const TOO_LARGE_READ: BodyFailure = { reject: BODY_TOO_LARGE, detail: 'body over the limit' }
const ABORTED: BodyFailure = { reject: MALFORMED_JSON, detail: 'client aborted the body' }

/**
 * Check 6: reads the body, at most `limit` bytes. A declared `Content-Length` over the limit is
 * refused before reading; an undeclared (chunked) body is refused at the first byte past the
 * limit, and the stream is paused there: the caller closes the connection instead of draining it.
 */
export function readBody(incoming: IncomingMessage, limit: number): Promise<Buffer | BodyFailure> {
  const declared = incoming.headers['content-length']
  const length = declared === undefined ? -1 : Number(declared)
  if (length > limit) return Promise.resolve(TOO_LARGE_DECLARED)
  // The connection broke, or Node gave up on it, while an earlier check was waiting (on Redis):
  // no 'end' or 'close' is coming any more.
  const early = incoming.destroyed ? ABORTED : interrupted.get(incoming)
  if (early !== undefined) return Promise.resolve(early)
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let size = 0
    const finish = (result: Buffer | BodyFailure) => {
      incoming.off('data', onData)
      incoming.off('end', onEnd)
      incoming.off('close', onAbort)
      incoming.off(INTERRUPTED, onInterrupt)
      resolve(result)
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        incoming.pause()
        finish(TOO_LARGE_READ)
      } else {
        chunks.push(chunk)
      }
    }
    const onEnd = () => finish(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size))
    const onAbort = () => finish(ABORTED)
    const onInterrupt = (failure: BodyFailure) => {
      incoming.pause()
      finish(failure)
    }
    incoming.on('data', onData)
    incoming.on('end', onEnd)
    incoming.on(INTERRUPTED, onInterrupt)
    // A client that goes away mid-body makes the stream close without 'end' (an 'error' comes
    // first, and Node does not throw it when unhandled on a request: the server owns it).
    incoming.on('close', onAbort)
  })
}

/**
 * Check 7: one JSON object in valid UTF-8 (RFC 8259 section 8.1); undefined means {@link MALFORMED_JSON}. Invalid UTF-8 is refused rather
 * than repaired: the upstream receives these exact bytes and must not decode them differently
 * from the way the gateway checked them.
 */
export function parseJsonObject(body: Buffer): Record<string, unknown> | undefined {
  if (body.length === 0 || !isUtf8(body)) return undefined
  let value: unknown
  try {
    value = JSON.parse(body.toString('utf8'))
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
  return value as Record<string, unknown>
}
