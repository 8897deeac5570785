/**
 * @module
 * The `tls` section: the webhook listener's certificate and key, read at load time and checked to
 * belong together, so a reload with a mismatched pair is refused rather than served.
 */

import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto'
import type { RawTls } from './schema.js'
import type { SecretReader } from './secrets.js'

/** TLS on the webhook listener: the files as read at load time, checked to belong together. */
export interface TlsConfig {
  /** Absolute paths. */
  readonly certFile: string
  readonly keyFile: string
  /** PEM text. */
  readonly cert: string
  readonly key: string
  /** Issued by itself: Telegram then needs it uploaded with setWebhook (`--certificate`). */
  readonly selfSigned: boolean
  readonly subject: string
  readonly validTo: Date
}

/** Undefined when there is no `tls` section, or when it has problems (reported). */
export function resolveTls(
  reader: SecretReader,
  raw: RawTls | undefined,
  warnings: string[],
): TlsConfig | undefined {
  if (raw === undefined) return undefined
  const certAt = ['tls', 'cert_file']
  const keyAt = ['tls', 'key_file']
  const cert = reader.file(raw.cert_file, certAt)
  const key = reader.file(raw.key_file, keyAt)
  if (cert === undefined || key === undefined) return undefined
  let certificate: X509Certificate
  let privateKey: KeyObject
  try {
    certificate = new X509Certificate(cert.text)
  } catch {
    reader.source.issue(certAt, `${raw.cert_file} does not hold a PEM certificate`)
    return undefined
  }
  try {
    privateKey = createPrivateKey(key.text)
  } catch {
    reader.source.issue(keyAt, `${raw.key_file} does not hold an unencrypted PEM private key`)
    return undefined
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    reader.source.issue(
      keyAt,
      `${raw.key_file} is not the private key of the certificate in ${raw.cert_file}`,
    )
    return undefined
  }
  const validTo = new Date(certificate.validTo)
  if (validTo.getTime() < Date.now()) {
    warnings.push(
      `tls: the certificate in ${raw.cert_file} expired on ${validTo.toISOString()}: Telegram refuses to deliver to it`,
    )
  }
  return {
    certFile: cert.absolute,
    keyFile: key.absolute,
    cert: cert.text,
    key: key.text,
    selfSigned: certificate.subject === certificate.issuer && certificate.checkIssued(certificate),
    subject: certificate.subject.replace(/\n/g, ', '),
    validTo,
  }
}
