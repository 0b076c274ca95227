// The cluster CA and the leaf certificates every member needs, made with
// @peculiar/x509 on Node's WebCrypto. ECDSA P-256: small, fast, and accepted
// by etcd (Go), Patroni (Python/OpenSSL), PostgreSQL and HAProxy alike.
import 'reflect-metadata'; // @peculiar/x509 resolves its providers through tsyringe, which needs it
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as never);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface PemPair {
  cert: string;
  key: string;
}

export interface CertificateAuthority extends PemPair {
  keys: webcrypto.CryptoKeyPair;
  certificate: x509.X509Certificate;
}

export interface LeafRequest {
  commonName: string;
  /** IP addresses and DNS names the certificate is valid for. */
  ips?: readonly string[];
  dnsNames?: readonly string[];
  usage: 'server-and-client' | 'server' | 'client';
  days?: number;
  /** The subject's O (default GardenOS); Kubernetes reads it as the user's group, e.g. system:masters. */
  organization?: string;
}

function serial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f; // positive
  return Buffer.from(bytes).toString('hex');
}

async function exportKey(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

export async function createCa(commonName: string, days = 3650): Promise<CertificateAuthority> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}, O=GardenOS`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + days * DAY_MS),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { keys, certificate, cert: certificate.toString('pem'), key: await exportKey(keys.privateKey) };
}

export async function loadCa(pair: PemPair): Promise<CertificateAuthority> {
  const certificate = new x509.X509Certificate(pair.cert);
  const der = x509.PemConverter.decodeFirst(pair.key);
  const privateKey = await webcrypto.subtle.importKey('pkcs8', der, ALG, true, ['sign']);
  const publicKey = await certificate.publicKey.export(ALG, ['verify']);
  return { ...pair, certificate, keys: { privateKey, publicKey } as unknown as webcrypto.CryptoKeyPair };
}

export async function issue(ca: CertificateAuthority, req: LeafRequest): Promise<PemPair> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const names: x509.JsonGeneralName[] = [
    ...(req.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(req.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const eku =
    req.usage === 'client'
      ? [x509.ExtendedKeyUsage.clientAuth]
      : req.usage === 'server'
        ? [x509.ExtendedKeyUsage.serverAuth]
        : [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension(eku),
    await x509.AuthorityKeyIdentifierExtension.create(ca.certificate, false),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ];
  if (names.length) extensions.push(new x509.SubjectAlternativeNameExtension(names));
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${req.commonName}, O=${req.organization ?? 'GardenOS'}`,
    issuer: ca.certificate.subject,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + (req.days ?? 825) * DAY_MS),
    signingKey: ca.keys.privateKey,
    publicKey: keys.publicKey,
    signingAlgorithm: ALG,
    extensions,
  });
  return { cert: certificate.toString('pem'), key: await exportKey(keys.privateKey) };
}
