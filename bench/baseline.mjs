// The baseline: the least a Node forwarder can do. It reads the body, posts it over a keep-alive
// connection pool to the upstream, and passes the answer back; no checks, no logs, no metrics.
// botgate's figures are reported as ratios to this one, measured in the same run.
import http from 'node:http'

const upstreamPort = Number(process.argv[2])
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 })
const server = http.createServer((request, response) => {
  const chunks = []
  request.on('data', (chunk) => chunks.push(chunk))
  request.on('end', () => {
    const body = Buffer.concat(chunks)
    const forward = http.request(
      {
        host: '127.0.0.1',
        port: upstreamPort,
        path: '/',
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': body.length },
      },
      (answer) => {
        const parts = []
        answer.on('data', (chunk) => parts.push(chunk))
        answer.on('end', () => {
          const out = Buffer.concat(parts)
          response.writeHead(answer.statusCode ?? 502, {
            'content-type': answer.headers['content-type'] ?? 'application/json',
            'content-length': out.length,
          })
          response.end(out)
        })
      },
    )
    forward.on('error', () => response.writeHead(502).end())
    forward.end(body)
  })
})
server.keepAliveTimeout = 60_000
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () =>
  process.stdout.write(`${server.address().port}\n`),
)
process.on('SIGTERM', () => process.exit(0))
