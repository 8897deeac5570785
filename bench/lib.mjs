// Process and measurement helpers shared by the benchmarks.
import { execFileSync, spawn } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import autocannon from 'autocannon'

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100

/** Starts a node script that prints its port on the first line of stdout. */
export function startNode(script, args = [], env = process.env) {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env })
  return new Promise((resolve, reject) => {
    let text = ''
    const timer = setTimeout(() => reject(new Error(`${script} did not start`)), 10_000)
    child.stdout.on('data', (chunk) => {
      text += chunk
      const line = text.split('\n')[0]
      if (text.includes('\n')) {
        clearTimeout(timer)
        child.stdout.removeAllListeners('data')
        child.stdout.resume()
        resolve({ child, port: Number(line) })
      }
    })
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)))
  })
}

/** Starts `botgate serve` with its logs in a file; resolves once it listens. */
export async function startBotgate(main, configFile, logFile, env = process.env) {
  const { openSync } = await import('node:fs')
  const out = openSync(logFile, 'w')
  const child = spawn(process.execPath, [main, 'serve', '--config', configFile], {
    stdio: ['ignore', out, 'inherit'],
    env,
  })
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    await sleep(100)
    if (child.exitCode !== null) throw new Error(`botgate exited with ${child.exitCode}`)
    const line = readFileSync(logFile, 'utf8')
      .split('\n')
      .find((l) => l.includes('"botgate listening"'))
    if (line) {
      const { webhook, admin } = JSON.parse(line)
      return { child, webhook, admin }
    }
  }
  throw new Error('botgate did not start')
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

export function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve()
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
  })
}

/** CPU time (user + system) a process has used, in milliseconds. */
export function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK
}

/**
 * The whole machine's CPU time so far, in clock ticks summed over its CPUs: all of it, the part
 * stolen by the hypervisor (time a virtual CPU wanted to run and the host ran something else) and
 * the idle part. Undefined where there is no /proc/stat.
 */
export function machineTicks() {
  let line
  try {
    line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]
  } catch {
    return undefined
  }
  // cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest time is in user)
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.split(/\s+/).slice(1, 9).map(Number)
  return { total: user + nice + system + idle + iowait + irq + softirq + steal, steal, idle: idle + iowait }
}

/** Resident set size of a process, in MB. */
export function rssMb(pid) {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return match ? Number(match[1]) / 1024 : Number.NaN
}

export function hasWrk() {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' })
    return true
  } catch (error) {
    return error.status === 1 // wrk --version exits 1 after printing its version
  }
}

function wrkDuration(text) {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text)
  if (!match) return Number.NaN
  return Number(match[1]) * { us: 0.001, ms: 1, s: 1000, m: 60_000 }[match[2]]
}

/** Where the update id goes in the body template: every request carries a fresh one. */
export const UPDATE_ID = /"update_id":\s*\d+/

/**
 * The next unused update id. Ids stay in the range Telegram's have: 32-bit integers (the Bot API
 * marks the ids that may need more bits, and update_id is not one of them; the sample updates' are
 * 9-digit numbers). Larger ones would make V8 box every id as a heap number where a real gateway
 * keeps a small integer, in the dedupe marks and the log line.
 */
let nextId = 100_000_000
/** Ids set aside per load-generator thread and second: more requests than Node serves in one. */
const IDS_PER_THREAD_SECOND = 100_000

/**
 * Drives `url` with POSTs of `body`, each with its own update_id (a gateway with dedupe would
 * otherwise answer every repeat as a duplicate without forwarding it); returns req/s, p50 and p99
 * in ms, and counts.
 */
export async function load({ tool, url, headers, body, connections, seconds }) {
  const [before, after] = body.split(UPDATE_ID)
  if (after === undefined) throw new Error('the body has no "update_id": N to vary')
  const threads = tool === 'wrk' && connections >= 100 ? 2 : 1
  const perThread = IDS_PER_THREAD_SECOND * Math.ceil(seconds)
  const first = nextId
  nextId += threads * perThread
  if (nextId > 2 ** 31)
    throw new Error(
      'this many runs of this length would send update ids past 32 bits: fewer rounds or seconds',
    )
  if (tool === 'wrk') {
    const script = path.join(tmpdir(), `botgate-bench-${process.pid}.lua`)
    // The request is written out whole, its headers in one fixed order, as a real sender
    // (Telegram's servers, a proxy in front of botgate) writes them every time. Headers given to
    // wrk through `wrk.headers`, a Lua table, come out in an order that changes from run to run and
    // from thread to thread (LuaJIT seeds its string hashes): each new order is a new hidden class
    // for Node's headers object, and botgate's compiled request path, which reads its headers, was
    // thrown away and recompiled at the start of every round.
    const target = new URL(url)
    const head = [
      `POST ${target.pathname}${target.search} HTTP/1.1`,
      `Host: ${target.host}`,
      ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
      'Content-Length: ',
    ].join('\r\n')
    const lines = [
      // Each thread counts up from its own block of ids, each run from its own: ids never repeat.
      'local threads = 0',
      `function setup(thread) thread:set("base", ${first} + threads * ${perThread}); threads = threads + 1 end`,
      'function init(args) counter = base end',
      `local before, after = ${JSON.stringify(`${before}"update_id":`)}, ${JSON.stringify(after)}`,
      `local head = ${JSON.stringify(head)}`,
      'function request() counter = counter + 1; local body = before .. counter .. after; return head .. #body .. "\\r\\n\\r\\n" .. body end',
    ]
    writeFileSync(script, `${lines.join('\n')}\n`)
    const args = ['-t', String(threads), '-c', String(connections), '-d', `${seconds}s`, '--latency']
    let out
    try {
      out = execFileSync('wrk', [...args, '-s', script, url], { encoding: 'utf8' })
    } finally {
      rmSync(script, { force: true })
    }
    const number = (re) => Number((re.exec(out) ?? [])[1] ?? 0)
    const total = number(/(\d+) requests in/)
    const errors = number(/Non-2xx or 3xx responses: (\d+)/) + number(/Socket errors: connect (\d+)/)
    return {
      rps: number(/Requests\/sec:\s+([\d.]+)/),
      // Anchored: a Stdev column such as `60.50%` must not pass for the 50% line.
      p50: wrkDuration((/^\s*50%\s+(\S+)/m.exec(out) ?? [])[1] ?? ''),
      p99: wrkDuration((/^\s*99%\s+(\S+)/m.exec(out) ?? [])[1] ?? ''),
      total,
      errors,
    }
  }
  let counter = first
  const result = await autocannon({
    url,
    method: 'POST',
    headers,
    connections,
    duration: seconds,
    requests: [
      { setupRequest: (request) => ({ ...request, body: `${before}"update_id":${++counter}${after}` }) },
    ],
  })
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    total: result.requests.total,
    errors: result.non2xx + result.errors,
  }
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}
