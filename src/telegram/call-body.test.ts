import { describe, expect, it } from 'vitest'
import { fieldValues, multipartParts, parseCallBody, withoutField } from './call-body.js'

const part = (name: string, value: string, filename?: string) =>
  `--b0\r\nContent-Disposition: form-data; name="${name}"${filename === undefined ? '' : `; filename="${filename}"`}\r\n\r\n${value}\r\n`

describe('multipart bodies', () => {
  const body = Buffer.from(
    `preamble\r\n${part('method', 'sendDocument')}${part('document', 'x\r\ny', 'a.txt')}${part('chat_id', '-100')}--b0--\r\n`,
  )

  it('reads parts, their names, files and values', () => {
    const parts = multipartParts(body, 'b0')
    expect(parts.map((p) => [p.name, p.filename, p.value.toString()])).toEqual([
      ['method', undefined, 'sendDocument'],
      ['document', 'a.txt', 'x\r\ny'],
      ['chat_id', undefined, '-100'],
    ])
  })

  it('takes a field out and leaves the rest byte for byte', () => {
    const parsed = parseCallBody('multipart/form-data; boundary=b0', body)
    if (parsed === undefined) throw new Error('unreadable')
    const rest = withoutField(parsed, body, 'method')
    expect(rest.toString()).toBe(
      `preamble\r\n${part('document', 'x\r\ny', 'a.txt')}${part('chat_id', '-100')}--b0--\r\n`,
    )
    const again = parseCallBody('multipart/form-data; boundary=b0', rest)
    expect(again && fieldValues(again, 'method')).toEqual([])
    expect(again && fieldValues(again, 'chat_id')).toEqual(['-100'])
  })

  it('reads a body that opens with its boundary, and one that is cut short', () => {
    expect(multipartParts(Buffer.from(part('a', '1')), 'b0').map((p) => p.value.toString())).toEqual([
      '1\r\n',
    ])
    expect(multipartParts(Buffer.from('no parts here'), 'b0')).toEqual([])
  })
})

describe('JSON and form bodies', () => {
  it('reads every value of a form field, one of JSON', () => {
    const form = parseCallBody('application/x-www-form-urlencoded', Buffer.from('chat_id=1&chat_id=2'))
    expect(form && fieldValues(form, 'chat_id')).toEqual(['1', '2'])
    const json = parseCallBody('application/json', Buffer.from('{"chat_id":1,"chat_id":2}'))
    expect(json && fieldValues(json, 'chat_id')).toEqual([2])
    expect(parseCallBody('application/json', Buffer.from('"x"'))).toBeUndefined()
    expect(parseCallBody('text/plain', Buffer.from('chat_id=1'))).toBeUndefined()
  })

  it('takes method out of JSON and forms', () => {
    const raw = Buffer.from('{"method":"sendMessage","chat_id":1}')
    const json = parseCallBody('application/json', raw)
    expect(json && withoutField(json, raw, 'method').toString()).toBe('{"chat_id":1}')
    const text = Buffer.from('method=sendMessage&chat_id=1')
    const form = parseCallBody('application/x-www-form-urlencoded', text)
    expect(form && withoutField(form, text, 'method').toString()).toBe('chat_id=1')
  })
})
