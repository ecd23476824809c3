/**
 * The test CA: a certificate it issues names 127.0.0.1 and localhost unless told other hosts, is signed by it and
 * not by another test CA, and its key is the certificate's.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { TestCa, createTestCa } from './test-ca';

describe('createTestCa', () => {
  let ca: TestCa;
  let other: TestCa;
  beforeAll(() => {
    ca = createTestCa();
    other = createTestCa();
  });
  afterAll(() => {
    ca.remove();
    other.remove();
  });

  it('issues for 127.0.0.1 and localhost by default', () => {
    const cert = new X509Certificate(ca.issue('default.lading.test').cert);
    expect(cert.subjectAltName).toBe('IP Address:127.0.0.1, DNS:localhost');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
  });

  it('issues for the hosts it is given, IP addresses and DNS names', () => {
    const issued = ca.issue('named.lading.test', ['registry.lading.test', '::1']);
    const cert = new X509Certificate(issued.cert);
    expect(cert.checkHost('registry.lading.test')).toBe('registry.lading.test');
    expect(cert.checkIP('::1')).toBe('::1');
    expect(cert.checkHost('localhost')).toBeUndefined();
    expect(cert.checkIP('127.0.0.1')).toBeUndefined();
    expect(cert.checkPrivateKey(createPrivateKey(issued.key))).toBe(true);
  });

  it('signs with its own key only', () => {
    const cert = new X509Certificate(ca.issue('signed.lading.test').cert);
    expect(cert.verify(new X509Certificate(ca.cert).publicKey)).toBe(true);
    expect(cert.verify(new X509Certificate(other.cert).publicKey)).toBe(false);
  });
});
