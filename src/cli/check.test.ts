import { describe, expect, it } from 'vitest'
import { describeAccess, describeOutbound, maskCredential } from './check.js'

describe('describeAccess', () => {
  it('says "any" for every section a policy leaves out', () => {
    expect(describeAccess({})).toBe('chats any; users any; commands any')
  })

  it('sums up an internal bot in one line, never listing ids', () => {
    expect(
      describeAccess({
        chats: { types: ['private'], deny: [-1001] },
        users: { allow: [101, 102, 'team'], bots: 'drop', mode: 'shadow' },
        commands: { allow: ['start', 'report'], other_bots: 'drop' },
        content: {
          max_text: 500,
          args: { report: { pattern: '^[0-9]+$' } },
          deny: ['casino', 'crypto'],
          media: { allow: ['photo'] },
          forwarded: 'drop',
        },
        bans: { ips: { failures: 5, within: '10m', ban: '1h' } },
      }),
    ).toBe(
      'chats private, 1 denied; users only 2 ids + roles team, no bots (shadow); commands 2 allowed; ' +
        'content max_text 500, 1 arg rules, 2 deny patterns, media photo, no forwards; bans ip > 5 failures/10m for 1h',
    )
  })
})

describe('describeOutbound', () => {
  it('says what the egress allows and denies without an outbound section', () => {
    expect(describeOutbound(undefined)).toEqual([
      'methods allowed any; denied setWebhook, deleteWebhook, logOut, close, getUpdates',
      'chats any',
    ])
  })

  it('drops a guarded method listed by name (any case) from the denied ones', () => {
    expect(describeOutbound({ allow_methods: ['any', 'deletewebhook'] })[0]).toBe(
      'methods allowed any, deletewebhook; denied setWebhook, logOut, close, getUpdates',
    )
    expect(describeOutbound({ allow_methods: ['messaging', 'sendInvoice'] })[0]).toBe(
      'methods allowed messaging, sendInvoice; denied every method not listed',
    )
  })

  it('lists the chats as configured, per method too', () => {
    expect(
      describeOutbound({
        chats: { allow: ['heard_from', -1001, '@shop_news'], methods: { forwardMessage: [555] } },
      })[1],
    ).toBe('chats allowed heard_from, -1001, @shop_news; forwardMessage 555; heard_from_ttl 30d')
    expect(describeOutbound({ chats: { methods: { banChatMember: ['any'] } } })[1]).toBe(
      'chats banChatMember any',
    )
  })
})

describe('maskCredential', () => {
  it('shows the first 4 characters and the length', () => {
    expect(maskCredential('4242:local-credential-ZYXWVUTSRQPONMLKJIHGF')).toBe('4242... (43 chars)')
  })
})
