// Micro-benchmark of the update schema (SPEC section 4, check 8): validations per second on one
// core (this process's one JavaScript thread), for the typical message of bench/update.json and
// for the average over the sample corpus (test/fixtures/updates, every sample whose envelope is
// readable), in standard and strict mode. The baseline, measured in the same run on the same
// bodies, is JSON.parse: the gateway parses every body anyway, so the ratio says what the schema
// adds to that. Target (issue 3): >= 100,000 typical updates per second.
//
//   npm run bench:validate -- [--seconds 1] [--rounds 5]
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { median } from './lib.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '1' }, rounds: { type: 'string', default: '5' } },
})
const seconds = Number(values.seconds)
const rounds = Number(values.rounds)
const TARGET = 100_000

const { validateUpdate } = await import(path.join(root, 'dist/telegram/schema.js'))
const { readEnvelope } = await import(path.join(root, 'dist/telegram/update.js'))
const { BOT_API_VERSION } = await import(path.join(root, 'dist/telegram/generated/update-types.js'))

/** A sample as the gateway holds it after check 7: its body text, the parsed object, its type. */
function sample(text) {
  const raw = JSON.parse(text)
  const update = readEnvelope(raw)
  return typeof update === 'string' ? undefined : { text, raw, type: update.type }
}

const typical = [sample(readFileSync(path.join(root, 'bench/update.json'), 'utf8'))]
const fixtures = path.join(root, 'test/fixtures/updates')
const corpus = readdirSync(fixtures)
  .filter((name) => name.endsWith('.json'))
  .map((name) => sample(readFileSync(path.join(fixtures, name), 'utf8')))
  .filter((item) => item !== undefined)

/** Operations per second of `run` over `items`, round-robin, for about `seconds`. */
function rate(items, run) {
  let done = 0
  let sink = 0
  const start = process.hrtime.bigint()
  const end = start + BigInt(Math.round(seconds * 1e9))
  let now = start
  while (now < end) {
    for (let i = 0; i < 1000; i++) {
      if (run(items[(done + i) % items.length]) !== undefined) sink++
    }
    done += 1000
    now = process.hrtime.bigint()
  }
  // `sink` keeps the results alive so the work cannot be optimised away.
  if (sink < 0) console.log(sink)
  return done / (Number(now - start) / 1e9)
}

const cases = {
  'JSON.parse (baseline)': (item) => JSON.parse(item.text),
  standard: (item) => validateUpdate(item.raw, item.type, 'standard'),
  strict: (item) => validateUpdate(item.raw, item.type, 'strict'),
}

/** @type {Record<string, Record<string, number[]>>} */
const results = {}
for (const [set, items] of Object.entries({ typical, corpus })) {
  results[set] = {}
  for (const name of Object.keys(cases)) results[set][name] = []
  rate(items, cases.standard) // warm-up: let the optimiser settle before measuring
  for (let round = 0; round < rounds; round++) {
    // Interleaved rounds: drift (frequency scaling, a neighbour's load) hits every case alike.
    for (const [name, run] of Object.entries(cases)) results[set][name].push(rate(items, run))
  }
}

const format = (value) => `${(value / 1e6).toFixed(2)}M/s`
console.log(
  `update schema, ${BOT_API_VERSION}, node ${process.version}, one core: medians of ${rounds} rounds of ${seconds}s`,
)
console.log(`${''.padEnd(38)}standard     strict  JSON.parse  standard vs parse`)
for (const [set, label] of [
  ['typical', 'typical message (bench/update.json)'],
  ['corpus', `corpus average (${corpus.length} samples)`],
]) {
  const standard = median(results[set].standard)
  const strict = median(results[set].strict)
  const parse = median(results[set]['JSON.parse (baseline)'])
  console.log(
    `${label.padEnd(38)}${format(standard).padStart(8)} ${format(strict).padStart(10)} ${format(parse).padStart(11)}` +
      `${`${(standard / parse).toFixed(1)}x as fast`.padStart(19)}`,
  )
}
const typicalStandard = median(results.typical.standard)
console.log(
  `target: >= ${TARGET.toLocaleString('en')} typical updates/s: ${typicalStandard >= TARGET ? 'met' : 'MISSED'}` +
    ` (${(typicalStandard / TARGET).toFixed(0)}x)`,
)
