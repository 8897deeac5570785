import { describe, expect, it } from 'vitest'
import { targetPath } from './app.js'

describe('targetPath', () => {
  it.each([
    ['/tg/hook', '/tg/hook'],
    ['/tg/hook?x=1&y=2', '/tg/hook'],
    ['/tg/hook/', '/tg/hook/'],
    ['/', '/'],
    ['/?', '/'],
    ['http://example.org/tg/hook?x=1', '/tg/hook'],
    ['https://example.org:8443/tg/hook', '/tg/hook'],
    ['*', ''],
    ['example.org:443', ''],
    ['HTTP://EXAMPLE.ORG/tg/hook', '/tg/hook'],
    ['ftp://example.org/tg/hook', ''],
    ['', ''],
  ])('%j is the path %j', (url, path) => {
    expect(targetPath(url)).toBe(path)
  })
})
