/*
 * The one place that loads @peculiar/x509. Its ASN.1 layer uses decorator
 * metadata, so `reflect-metadata` has to be evaluated first; ES modules run
 * imports in source order, which the two lines below rely on. Every other
 * module in this folder imports x509 from here, never from the package.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

// Node's own WebCrypto: no polyfill, and the same provider in every process.
x509.cryptoProvider.set(globalThis.crypto);

export { x509 };
