import { describe, expect, it } from 'vitest'
import { ClientIpResolver } from './client-ip.js'
import { type Cidr, CidrSet, parseCidr } from './ip.js'

const resolver = (...trusted: string[]) =>
  new ClientIpResolver(new CidrSet(trusted.map((t) => parseCidr(t) as Cidr)))

describe('ClientIpResolver', () => {
  it('uses the socket peer when no proxy is trusted, whatever X-Forwarded-For says', () => {
    const client = resolver().resolve('203.0.113.9', '149.154.167.99')
    expect(client).toMatchObject({ text: '203.0.113.9', trustedPeer: false })
  })

  it('normalises an IPv4-mapped peer', () => {
    expect(resolver().resolve('::ffff:149.154.167.99', undefined).text).toBe('149.154.167.99')
  })

  it('ignores X-Forwarded-For from a peer that is not trusted', () => {
    expect(resolver('10.0.0.0/8').resolve('203.0.113.9', '149.154.167.99').text).toBe('203.0.113.9')
  })

  it('takes the rightmost untrusted hop from a trusted peer', () => {
    const client = resolver('10.0.0.0/8').resolve('10.0.0.5', '149.154.167.99')
    expect(client).toMatchObject({ text: '149.154.167.99', trustedPeer: true })
    expect(client.peer?.words).toEqual([0x0a000005])
  })

  it('defeats a spoofed entry on the left: only the right end was written by our proxies', () => {
    // The client sent "X-Forwarded-For: 149.154.167.99"; our proxy appended its real address.
    expect(resolver('10.0.0.0/8').resolve('10.0.0.5', '149.154.167.99, 198.51.100.7').text).toBe(
      '198.51.100.7',
    )
  })

  it('skips every trusted hop of a proxy chain', () => {
    const walk = resolver('10.0.0.0/8', '192.168.0.0/16')
    expect(walk.resolve('10.0.0.5', '1.1.1.1, 149.154.167.99, 192.168.1.1, 10.9.9.9').text).toBe(
      '149.154.167.99',
    )
  })

  it('reads repeated X-Forwarded-For headers as one list', () => {
    expect(resolver('10.0.0.0/8').resolve('10.0.0.5', ['1.1.1.1', '149.154.167.99, 10.0.0.2']).text).toBe(
      '149.154.167.99',
    )
  })

  it('ignores ports and brackets', () => {
    const walk = resolver('10.0.0.0/8')
    expect(walk.resolve('10.0.0.5', '149.154.167.99:51234').text).toBe('149.154.167.99')
    expect(walk.resolve('10.0.0.5', '[2001:db8::7]:443').text).toBe('2001:db8::7')
    expect(walk.resolve('10.0.0.5', '2001:DB8::7').text).toBe('2001:db8::7')
  })

  it('normalises IPv4-mapped hops', () => {
    expect(resolver('10.0.0.0/8').resolve('::ffff:10.0.0.5', '::ffff:149.154.167.99').text).toBe(
      '149.154.167.99',
    )
  })

  it('fails closed on a hop that is not an address', () => {
    const client = resolver('10.0.0.0/8').resolve('10.0.0.5', '149.154.167.99, not-an-ip')
    expect(client.ip).toBeUndefined()
    expect(client.text).toBe('not-an-ip')
  })

  it('when every hop is trusted, the leftmost is the client', () => {
    expect(resolver('10.0.0.0/8').resolve('10.0.0.5', '10.1.1.1, 10.2.2.2').text).toBe('10.1.1.1')
  })

  it('uses the peer when a trusted proxy sends no X-Forwarded-For, or an empty one', () => {
    expect(resolver('10.0.0.0/8').resolve('10.0.0.5', undefined).text).toBe('10.0.0.5')
    expect(resolver('10.0.0.0/8').resolve('10.0.0.5', ' , ').text).toBe('10.0.0.5')
  })

  it('answers a repeated (peer, header) pair from its cache, and the same as a fresh resolver would', () => {
    const walk = resolver('10.0.0.0/8')
    const first = walk.resolve('10.0.0.5', '149.154.167.99')
    expect(walk.resolve('10.0.0.5', '149.154.167.99')).toBe(first)
    // The cache key keeps peers and headers apart: another peer, or no header, is its own answer.
    expect(walk.resolve('203.0.113.9', '149.154.167.99').text).toBe('203.0.113.9')
    expect(walk.resolve('10.0.0.5', undefined).text).toBe('10.0.0.5')
    expect(walk.resolve('10.0.0.5', '149.154.167.99').text).toBe('149.154.167.99')
  })

  it('resolves long headers and a stream of distinct ones correctly, past the cache bound', () => {
    const walk = resolver('10.0.0.0/8')
    const long = `${'10.1.1.1, '.repeat(40)}149.154.167.99`
    expect(walk.resolve('10.0.0.5', long).text).toBe('149.154.167.99')
    for (let i = 0; i < 3000; i++) {
      const hop = `198.51.${i >> 8}.${i & 255}`
      expect(walk.resolve('10.0.0.5', `1.1.1.1, ${hop}`).text).toBe(hop)
    }
    expect(walk.resolve('10.0.0.5', '149.154.167.99').text).toBe('149.154.167.99')
  })
})
