// A Bot API stand-in for bench/egress.mjs: answers every sendMessage the way Telegram does (a
// Message), for any token, on a free loopback port that it prints first. Counts what it answered.
import http from 'node:http'

let answered = 0
const server = http.createServer((request, response) => {
  if (request.url === '/count') {
    response.end(JSON.stringify({ answered }))
    return
  }
  const chunks = []
  request.on('data', (chunk) => chunks.push(chunk))
  request.on('end', () => {
    let chatId = 0
    let text = ''
    try {
      const params = JSON.parse(Buffer.concat(chunks).toString('utf8'))
      chatId = params.chat_id
      text = params.text
    } catch {}
    answered++
    const body = JSON.stringify({
      ok: true,
      result: { message_id: answered, date: 1763712000, chat: { id: chatId, type: 'private' }, text },
    })
    response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    response.end(body)
  })
})
server.keepAliveTimeout = 30_000
server.listen(0, '127.0.0.1', () => console.log(server.address().port))
