// The benchmark's bot: a keep-alive HTTP server that counts the updates it receives and answers
// each with a small sendMessage webhook reply, as a typical bot does. Prints its port on stdout.
// DELAY_MS: each answer waits this long (a slow bot: a database, a model, an API of its own).
import http from 'node:http'

const delayMs = Number(process.env.DELAY_MS ?? 0)

const reply = JSON.stringify({ method: 'sendMessage', chat_id: 318273645, text: 'Got it!' })
let received = 0
const server = http.createServer((request, response) => {
  if (request.method === 'GET') {
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ received }))
    return
  }
  request.on('data', () => {})
  request.on('end', () => {
    received++
    const answer = () => {
      response.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(reply),
      })
      response.end(reply)
    }
    if (delayMs > 0) setTimeout(answer, delayMs)
    else answer()
  })
})
server.keepAliveTimeout = 60_000
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () =>
  process.stdout.write(`${server.address().port}\n`),
)
process.on('SIGTERM', () => process.exit(0))
