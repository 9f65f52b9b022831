import { X509Certificate as NodeX509, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata API first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { CaphostError, ErrorCode } from '../errors.js';

x509.cryptoProvider.set(webcrypto as never);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;
/** Certificates start a little in the past, so a peer whose clock runs behind still accepts them. */
export const BACKDATE_MS = 5 * 60_000;

export const CA_CERT_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key';

/** A private key and its certificate, both PEM. */
export interface KeyAndCertificate {
  readonly key: string;
  readonly cert: string;
}

/** What a certificate is for: a mesh node or NATS server (TLS both ways), or a controller's own worker. */
export type CertificateRole = 'node' | 'server' | 'worker';

export interface IssueOptions {
  /** Common name; a node certificate also carries it as `caphost://node/<name>`. */
  readonly name: string;
  readonly role: CertificateRole;
  readonly ttlMs: number;
  /** Host names and IP addresses the certificate is valid for (servers; nodes may add them). */
  readonly hosts?: readonly string[];
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

export async function generateKeyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
}

export async function exportPrivateKey(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

async function importPrivateKey(pem: string, what: string): Promise<CryptoKey> {
  try {
    // Node's parser accepts PKCS#8 and SEC1 ("EC PRIVATE KEY") alike; WebCrypto takes it as PKCS#8.
    const der = createPrivateKey(pem).export({ format: 'der', type: 'pkcs8' });
    return await webcrypto.subtle.importKey('pkcs8', der, KEY_ALGORITHM, false, ['sign']);
  } catch (cause) {
    throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `${what} is not a P-256 EC private key in PEM: ${(cause as Error).message}`, { cause });
  }
}

/** A random positive serial of 16 bytes (RFC 5280 allows up to 20). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString('hex');
}

/** The URI a node certificate carries, which peers compare with the name a node claims. */
export function nodeUri(name: string): string {
  return `caphost://node/${name}`;
}

/**
 * A certificate authority: the cluster CA (`caphost ca init`) that signs node and NATS server
 * certificates, or a controller's own worker CA. Verification of peers is `verifyCertificate`,
 * which needs only the CA certificate.
 */
export class CertificateAuthority {
  private constructor(
    readonly certificate: x509.X509Certificate,
    private readonly signingKey: CryptoKey | null,
  ) {}

  static async create(name: string, ttlMs: number): Promise<{ ca: CertificateAuthority; key: string }> {
    const keys = await generateKeyPair();
    const now = Date.now();
    const certificate = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serialNumber(),
      name: `CN=${escapeDn(name)}`,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(now + ttlMs),
      signingAlgorithm: SIGNING_ALGORITHM,
      keys: keys as never,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    return { ca: new CertificateAuthority(certificate, keys.privateKey), key: await exportPrivateKey(keys.privateKey) };
  }

  /** From PEM text; without a key it can verify but not issue. */
  static async fromPem(cert: string, key?: string): Promise<CertificateAuthority> {
    let certificate: x509.X509Certificate;
    try {
      certificate = new x509.X509Certificate(cert);
    } catch (cause) {
      throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `the CA certificate is not a PEM X.509 certificate: ${(cause as Error).message}`, { cause });
    }
    const constraints = certificate.getExtension(x509.BasicConstraintsExtension);
    if (constraints?.ca !== true) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `the certificate "${certificate.subject}" is not a CA certificate (basicConstraints CA:true is missing)`);
    return new CertificateAuthority(certificate, key === undefined ? null : await importPrivateKey(key, 'the CA key'));
  }

  /** Reads ca.crt (and ca.key when present and readable) from a folder made by `caphost ca init`. */
  static async load(folder: string, options: { needKey?: boolean } = {}): Promise<CertificateAuthority> {
    let cert: string;
    try {
      cert = await readFile(join(folder, CA_CERT_FILE), 'utf8');
    } catch (cause) {
      throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `no cluster CA certificate at ${join(folder, CA_CERT_FILE)}: create one with \`npx caphost ca init --out ${folder}\``, { cause });
    }
    let key: string | undefined;
    try {
      key = await readFile(join(folder, CA_KEY_FILE), 'utf8');
    } catch (cause) {
      if (options.needKey === true) {
        throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `no CA key at ${join(folder, CA_KEY_FILE)} (or it cannot be read): issuing certificates needs the key that \`caphost ca init\` wrote`, { cause });
      }
    }
    return CertificateAuthority.fromPem(cert, key);
  }

  get pem(): string {
    return this.certificate.toString('pem');
  }

  get canIssue(): boolean {
    return this.signingKey !== null;
  }

  /** Issues a certificate for a fresh key pair, signed by this CA. */
  async issue(options: IssueOptions): Promise<KeyAndCertificate & { notAfter: Date; serial: string }> {
    if (this.signingKey === null) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `the CA "${this.certificate.subject}" was loaded without its key, so it cannot issue certificates`);
    const keys = await generateKeyPair();
    const now = Date.now();
    // Never outlive the CA: a peer would refuse the chain from that moment anyway.
    const notAfter = new Date(Math.min(now + options.ttlMs, this.certificate.notAfter.getTime()));
    const names: x509.JsonGeneralName[] = [];
    if (options.role === 'node') names.push({ type: 'url', value: nodeUri(options.name) });
    if (options.role === 'worker') names.push({ type: 'url', value: `caphost://worker/${options.name}` });
    for (const host of options.hosts ?? []) names.push(IPV4.test(host) || host.includes(':') ? { type: 'ip', value: host } : { type: 'dns', value: host });
    const usages =
      options.role === 'worker' ? [x509.ExtendedKeyUsage.clientAuth] : [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth];
    const serial = serialNumber();
    const certificate = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: `CN=${escapeDn(options.name)}`,
      issuer: this.certificate.subjectName,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter,
      signingAlgorithm: SIGNING_ALGORITHM,
      publicKey: keys.publicKey,
      signingKey: this.signingKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
        new x509.ExtendedKeyUsageExtension(usages, false),
        ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names, false)] : []),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(this.certificate, false),
      ],
    });
    return { key: await exportPrivateKey(keys.privateKey), cert: certificate.toString('pem'), notAfter, serial };
  }

  /**
   * Why `pem` is not a valid certificate from this CA at `at` (undefined when it is). With `node`,
   * the certificate must also name that node.
   */
  verifyCertificate(pem: string, options: { at?: Date; node?: string } = {}): string | undefined {
    let cert: NodeX509;
    try {
      cert = new NodeX509(pem);
    } catch (err) {
      return `it is not a readable X.509 certificate (${(err as Error).message})`;
    }
    const ca = new NodeX509(this.pem);
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return `it was not issued by this cluster's CA ("${this.certificate.subject}"); its issuer is "${cert.issuer.replace(/\n/g, ', ')}"`;
    const at = (options.at ?? new Date()).getTime();
    if (at < Date.parse(cert.validFrom)) return `it is not valid before ${cert.validFrom}`;
    if (at > Date.parse(cert.validTo)) return `it expired at ${cert.validTo}`;
    if (cert.ca) return 'it is a CA certificate, not a node certificate';
    if (options.node !== undefined && !(cert.subjectAltName ?? '').split(', ').includes(`URI:${nodeUri(options.node)}`)) {
      return `it does not name node "${options.node}"`;
    }
    return undefined;
  }
}

function escapeDn(value: string): string {
  return value.replace(/([,+"\\<>;=])/g, '\\$1');
}

/** Writes a file readable by its owner only, whatever the umask; replaces it atomically. */
export async function writePrivateFile(path: string, content: string): Promise<void> {
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temporary, content, { mode: 0o600 });
  await chmod(temporary, 0o600);
  await rename(temporary, path);
}

/** Creates a folder for secrets (0700), or tightens an existing one. */
export async function ensurePrivateFolder(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: 0o700 });
  await chmod(path, 0o700);
}
