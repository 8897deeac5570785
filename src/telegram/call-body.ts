/**
 * @module
 * The body of a Bot API call as Telegram accepts it ("Making requests": application/json,
 * application/x-www-form-urlencoded, or multipart/form-data, RFC 7578), read whole: a webhook
 * answer (at most 1 MiB) or a small egress call. Parameters are read by name, and one can be taken
 * out (`method`, which a webhook answer carries and a Bot API call must not).
 */

/** One part of a multipart/form-data body: where it lies in the body, its name and value. */
export interface FormPart {
  readonly name: string | undefined
  /** Set when the part is a file (its Content-Disposition has a filename). */
  readonly filename: string | undefined
  /** Offset of the part's `--boundary` line. */
  readonly start: number
  /** Offset of the next `--boundary` line (the part's end, its trailing CRLF included). */
  readonly end: number
  readonly value: Buffer
}

export type CallBody =
  | { readonly kind: 'json'; readonly value: Record<string, unknown> }
  | { readonly kind: 'form'; readonly params: URLSearchParams }
  | { readonly kind: 'multipart'; readonly parts: readonly FormPart[] }

/** The boundary parameter of a multipart media type. */
export function boundaryOf(contentType: string): string | undefined {
  const match = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType)
  return match?.[1] ?? match?.[2]
}

/** `name` and `filename` of a part's Content-Disposition header. */
export function dispositionOf(headers: string): { name: string | undefined; filename: string | undefined } {
  const line = /^content-disposition:\s*form-data([^\r\n]*)/im.exec(headers)?.[1]
  if (line === undefined) return { name: undefined, filename: undefined }
  const param = (key: string) => {
    const match = new RegExp(`;\\s*${key}=(?:"([^"]*)"|([^;\\s]+))`, 'i').exec(line)
    return match === null ? undefined : (match[1] ?? match[2])
  }
  return { name: param('name'), filename: param('filename') }
}

/** The parts of a complete multipart/form-data body; parts without a header block are skipped. */
export function multipartParts(body: Buffer, boundary: string): FormPart[] {
  const opening = Buffer.from(`--${boundary}`)
  const between = Buffer.from(`\r\n--${boundary}`)
  const starts: number[] = []
  const first = body.subarray(0, opening.length).equals(opening) ? -2 : body.indexOf(between)
  let at = first < 0 && first !== -2 ? -1 : first + 2
  // Every delimiter line: the opening one, then each after a CRLF (bounded by the body's length).
  while (at >= 0 && at < body.length) {
    starts.push(at)
    const next = body.indexOf(between, at + opening.length)
    at = next < 0 ? -1 : next + 2
  }
  const parts: FormPart[] = []
  for (let i = 0; i < starts.length; i++) {
    const start = starts[i] as number
    const end = starts[i + 1] ?? body.length
    const content = start + opening.length
    // `--boundary--` closes the body.
    if (body[content] === 0x2d && body[content + 1] === 0x2d) break
    const headerEnd = body.indexOf('\r\n\r\n', content)
    if (headerEnd < 0 || headerEnd >= end) continue
    const { name, filename } = dispositionOf(body.subarray(content, headerEnd).toString('latin1'))
    const valueEnd = i + 1 < starts.length ? end - 2 : end
    parts.push({
      name,
      filename,
      start,
      end,
      value: body.subarray(headerEnd + 4, Math.max(headerEnd + 4, valueEnd)),
    })
  }
  return parts
}

/** The body parsed by its media type; undefined when it cannot be read as a Bot API call. */
export function parseCallBody(contentType: string | undefined, body: Buffer): CallBody | undefined {
  const type = (contentType ?? '').toLowerCase()
  if (type.startsWith('application/json')) {
    try {
      const value: unknown = JSON.parse(body.toString('utf8'))
      if (typeof value !== 'object' || value === null) return undefined
      // An array names no parameter: a call of nothing.
      return { kind: 'json', value: Array.isArray(value) ? {} : (value as Record<string, unknown>) }
    } catch {
      return undefined
    }
  }
  if (type.startsWith('application/x-www-form-urlencoded'))
    return { kind: 'form', params: new URLSearchParams(body.toString('utf8')) }
  if (type.startsWith('multipart/form-data')) {
    const boundary = boundaryOf(contentType ?? '')
    return boundary === undefined ? undefined : { kind: 'multipart', parts: multipartParts(body, boundary) }
  }
  return undefined
}

/**
 * Every value of parameter `name`: one at most in JSON (its parser keeps the last of duplicate
 * keys), every occurrence in a form or multipart body (strings: those carry no types).
 */
export function fieldValues(body: CallBody, name: string): unknown[] {
  switch (body.kind) {
    case 'json':
      return Object.hasOwn(body.value, name) ? [body.value[name]] : []
    case 'form':
      return body.params.getAll(name)
    case 'multipart':
      return body.parts.filter((part) => part.name === name).map((part) => part.value.toString('utf8'))
  }
}

/** The body's bytes with every `name` parameter taken out (JSON is serialised again). */
export function withoutField(body: CallBody, raw: Buffer, name: string): Buffer {
  switch (body.kind) {
    case 'json': {
      const { [name]: _taken, ...rest } = body.value
      return Buffer.from(JSON.stringify(rest))
    }
    case 'form': {
      const params = new URLSearchParams(body.params)
      params.delete(name)
      return Buffer.from(params.toString())
    }
    case 'multipart': {
      const kept: Buffer[] = []
      let from = 0
      for (const part of body.parts) {
        if (part.name !== name) continue
        kept.push(raw.subarray(from, part.start))
        from = part.end
      }
      kept.push(raw.subarray(from))
      return Buffer.concat(kept)
    }
  }
}
