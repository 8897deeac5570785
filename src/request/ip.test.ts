import { describe, expect, it } from 'vitest'
import { type Cidr, CidrSet, formatIp, PRIVATE_NETWORKS, parseCidr, parseIp } from './ip.js'

const cidrs = (...texts: string[]) => new CidrSet(texts.map((text) => parseCidr(text) as Cidr))
const ip = (text: string) => {
  const parsed = parseIp(text)
  if (!parsed) throw new Error(`not an address: ${text}`)
  return parsed
}

describe('parseIp / formatIp', () => {
  it.each([
    ['149.154.167.99', '149.154.167.99'],
    ['0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', '255.255.255.255'],
    ['::1', '::1'],
    ['::', '::'],
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:0:0:0:2:1', '2001:db8::2:1'],
    ['fe80::1:2:3:4', 'fe80::1:2:3:4'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    // IPv4-mapped IPv6, as a dual-stack socket reports IPv4 peers, becomes plain IPv4.
    ['::ffff:149.154.167.99', '149.154.167.99'],
    ['::ffff:959a:a763', '149.154.167.99'],
    ['::ffff:127.0.0.1', '127.0.0.1'],
  ])('%s -> %s', (text, canonical) => {
    expect(formatIp(ip(text))).toBe(canonical)
  })

  it.each([
    '',
    '1.2.3',
    '1.2.3.4.5',
    '256.1.1.1',
    '01.2.3.4', // a leading zero reads as octal to some parsers
    '1.2.3.4 ',
    '1..2.3',
    'a.b.c.d',
    ':::',
    '1::2::3',
    '1:2:3:4:5:6:7:8:9',
    '12345::1',
    'fe80::1%eth0',
    '::ffff:256.1.1.1',
    '1.2.3.4:80',
    '[::1]',
  ])('rejects %j', (text) => {
    expect(parseIp(text)).toBeUndefined()
  })
})

describe('parseCidr', () => {
  it('accepts networks and single addresses', () => {
    expect(parseCidr('149.154.160.0/20')).toMatchObject({ prefix: 20 })
    expect(parseCidr('10.1.2.3')).toMatchObject({ prefix: 32 })
    expect(parseCidr('2001:db8::/32')).toMatchObject({ prefix: 32 })
    expect(parseCidr('::1')).toMatchObject({ prefix: 128 })
    expect(parseCidr('0.0.0.0/0')).toMatchObject({ prefix: 0 })
  })

  it('reads IPv4-mapped networks as IPv4', () => {
    const cidr = parseCidr('::ffff:10.0.0.0/104') as Cidr
    expect(cidr.prefix).toBe(8)
    expect(formatIp(cidr.ip)).toBe('10.0.0.0')
  })

  it.each([
    ['10.1.2.3/8', '"10.1.2.3/8" has host bits set; did you mean 10.0.0.0/8?'],
    ['149.154.167.99/20', '"149.154.167.99/20" has host bits set; did you mean 149.154.160.0/20?'],
    ['10.0.0.0/33', '"10.0.0.0/33" has an invalid prefix length'],
    ['10.0.0.0/', '"10.0.0.0/" has an invalid prefix length'],
    ['10.0.0.0/8/8', '"10.0.0.0/8/8" has an invalid prefix length'],
    ['2001:db8::/129', '"2001:db8::/129" has an invalid prefix length'],
    ['telegram.org', '"telegram.org" is not an IP address or CIDR network'],
    [
      '::ffff:10.0.0.0/8',
      '"::ffff:10.0.0.0/8" mixes IPv4-mapped and IPv6 space; write the IPv4 network instead',
    ],
  ])('%s: %s', (text, message) => {
    expect(parseCidr(text)).toBe(message)
  })
})

describe('CidrSet', () => {
  const telegram = cidrs('149.154.160.0/20', '91.108.4.0/22')

  it.each([
    ['149.154.160.0', true],
    ['149.154.167.99', true],
    ['149.154.175.255', true],
    ['149.154.176.0', false],
    ['149.154.159.255', false],
    ['91.108.4.1', true],
    ['91.108.7.255', true],
    ['91.108.8.0', false],
    ['::ffff:149.154.167.99', true],
    ['2001:db8::1', false],
  ])('telegram has %s: %s', (text, expected) => {
    expect(telegram.has(ip(text))).toBe(expected)
  })

  it('matches IPv6 networks across word boundaries', () => {
    const set = cidrs('2001:db8:abcd:12::/63', 'fd00::/8', '::1')
    expect(set.has(ip('2001:db8:abcd:12::1'))).toBe(true)
    expect(set.has(ip('2001:db8:abcd:13:ffff::1'))).toBe(true)
    expect(set.has(ip('2001:db8:abcd:14::1'))).toBe(false)
    expect(set.has(ip('fdff::1'))).toBe(true)
    expect(set.has(ip('fe00::1'))).toBe(false)
    expect(set.has(ip('::1'))).toBe(true)
    expect(set.has(ip('::2'))).toBe(false)
    expect(set.has(ip('127.0.0.1'))).toBe(false)
  })

  it('/0 matches every address of its family', () => {
    expect(cidrs('0.0.0.0/0').has(ip('8.8.8.8'))).toBe(true)
    expect(cidrs('0.0.0.0/0').has(ip('::1'))).toBe(false)
    expect(cidrs('::/0').has(ip('2001:db8::1'))).toBe(true)
  })

  it('an empty set matches nothing', () => {
    expect(new CidrSet([]).has(ip('127.0.0.1'))).toBe(false)
  })

  it('knows private ranges', () => {
    for (const text of [
      '10.2.3.4',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '127.0.0.1',
      '100.64.0.1',
      '::1',
      'fd12::1',
    ]) {
      expect(PRIVATE_NETWORKS.has(ip(text)), text).toBe(true)
    }
    for (const text of ['172.32.0.1', '149.154.167.99', '8.8.8.8', '2001:db8::1']) {
      expect(PRIVATE_NETWORKS.has(ip(text)), text).toBe(false)
    }
  })
})
