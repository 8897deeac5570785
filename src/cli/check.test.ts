import { describe, expect, it } from 'vitest'
import { describeAccess } from './check.js'

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
