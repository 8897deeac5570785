/**
 * @module
 * Closing a connection whose request body we refused to read (too large, or not worth reading
 * from an unauthenticated client) without losing our answer.
 *
 * Closing a TCP socket that still has unread data makes the kernel send RST, and an RST can make
 * the client discard our answer before reading it. So, as web servers do ("lingering close"):
 * stop reading, send the answer, half-close (FIN), and give the client a moment to read before the
 * socket is destroyed. Reading stays stopped throughout: the client's surplus fills the kernel
 * buffers and then its own, never our memory or CPU.
 */

import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'

/** How long a client gets to read our answer after the FIN before the socket is destroyed. */
export const LINGER_MS = 1000

function ignore(): void {}

/**
 * Arranges for the connection to close after `outgoing` is sent, reading nothing more of `incoming`.
 * The answer says `Connection: close` (RFC 9112 section 9.6), so a keep-alive client does not send
 * its next request down a connection we are closing: it would be lost, or worse, handled after
 * its answer could no longer be delivered.
 */
export function closeAfterAnswer(incoming: IncomingMessage, outgoing: ServerResponse): void {
  // A consumer that never consumes: Node would otherwise "dump" the unread body after the
  // answer, reading and discarding it to the end, however long that is.
  if (incoming.listenerCount('data') === 0) incoming.on('data', ignore)
  incoming.pause()
  const socket = incoming.socket
  // Node ends the last answer of a connection with socket.destroySoon(): a destroy as soon as the
  // FIN is out, an RST on the unread body. It lingers instead.
  socket.destroySoon = () => endAndLinger(socket)
  outgoing.setHeader('connection', 'close')
}

/**
 * Half-closes `socket` (FIN) and destroys it {@link LINGER_MS} later, unless the client closes it
 * first: a client that never sends its own FIN cannot hold the socket open.
 */
export function endAndLinger(socket: Duplex): void {
  socket.end()
  const timer = setTimeout(() => socket.destroy(), LINGER_MS)
  timer.unref()
  socket.once('close', () => clearTimeout(timer))
}
