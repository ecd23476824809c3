import { createServer } from 'node:net';
import { AddressClass, RefusedTargetError, checkTarget, classifyAddress, guardedLookup, parseAddress, parseAllowList, refusalOf } from './address-guard';

describe('the webhook address classifier', () => {
  it.each<[string, AddressClass]>([
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['::1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['fc00::1', 'private'],
    ['fdff:ffff::1', 'private'],
    ['169.254.0.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf::1', 'link-local'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.255', 'cgnat'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['169.254.169.254', 'metadata'],
    ['fd00:ec2::254', 'metadata'],
    ['240.0.0.1', 'reserved'],
    ['192.0.2.10', 'reserved'],
    ['2001:db8::1', 'reserved'],
    ['8.8.8.8', 'public'],
    ['93.184.216.34', 'public'],
    ['172.15.255.255', 'public'],
    ['172.32.0.0', 'public'],
    ['100.63.255.255', 'public'],
    ['100.128.0.0', 'public'],
    ['169.253.255.255', 'public'],
    ['2606:4700:4700::1111', 'public'],
    ['fec0::1', 'reserved'],
    ['fe7f::1', 'public'],
  ])('classifies %s as %s', (address, cls) => {
    expect(classifyAddress(address)).toBe(cls);
  });

  it.each<[string, AddressClass]>([
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['0:0:0:0:0:ffff:7f00:0001', 'loopback'],
    ['::ffff:10.1.2.3', 'private'],
    ['::ffff:169.254.169.254', 'metadata'],
    ['::ffff:a9fe:a9fe', 'metadata'],
    ['::ffff:100.64.0.1', 'cgnat'],
    ['::ffff:0.0.0.0', 'unspecified'],
    ['::127.0.0.1', 'loopback'],
    ['64:ff9b::192.168.0.1', 'private'],
    ['64:ff9b::7f00:1', 'loopback'],
    ['::ffff:8.8.8.8', 'public'],
    ['[::ffff:127.0.0.1]', 'loopback'],
  ])('classifies %s (an IPv6 form of an IPv4 address) as %s', (address, cls) => {
    expect(classifyAddress(address)).toBe(cls);
  });

  it('refuses to classify what is not an address', () => {
    for (const text of ['localhost', '127.0.0.256', '1.2.3', '::g', '1:2:3:4:5:6:7:8:9', '']) expect(parseAddress(text)).toBeNull();
    expect(() => classifyAddress('example.com')).toThrow('not an IP address');
  });
});

describe('the webhook allow-list', () => {
  it('lets a named host, an address, or a CIDR through, and nothing else', () => {
    const list = parseAllowList(['receiver.internal', '127.0.0.1', '10.1.0.0/16', 'fd00::/8']);
    expect(refusalOf(list, 'receiver.internal', '10.9.9.9')).toBeNull();
    expect(refusalOf(list, 'RECEIVER.internal', '127.0.0.2')).toBeNull();
    expect(refusalOf(list, 'other', '127.0.0.1')).toBeNull();
    expect(refusalOf(list, 'other', '127.0.0.2')).toMatch(/127\.0\.0\.2, a loopback address/);
    expect(refusalOf(list, 'other', '10.1.200.3')).toBeNull();
    expect(refusalOf(list, 'other', '10.2.0.1')).toMatch(/private/);
    expect(refusalOf(list, 'other', 'fd12::1')).toBeNull();
    expect(refusalOf(list, 'other', '::ffff:127.0.0.1')).toBeNull();
    expect(refusalOf(list, 'other', '169.254.169.254')).toMatch(/metadata/);
    expect(refusalOf(list, 'other', '8.8.8.8')).toBeNull();
  });

  it('refuses everything but public addresses when empty', () => {
    const list = parseAllowList([]);
    expect(refusalOf(list, 'localhost', '127.0.0.1')).toMatch(/loopback/);
    expect(refusalOf(list, 'x', '::1')).toMatch(/loopback/);
    expect(refusalOf(list, 'x', '1.1.1.1')).toBeNull();
  });

  it('rejects a malformed CIDR', () => {
    expect(() => parseAllowList(['10.0.0.0/33'])).toThrow('bad CIDR');
    expect(() => parseAllowList(['10.0.0.0/x'])).toThrow('bad CIDR');
  });
});

describe('checking a target host', () => {
  const list = parseAllowList([]);

  it('refuses when any one of the resolved addresses is refused (a public and a private answer)', async () => {
    const resolver = async () => [
      { address: '93.184.216.34', family: 4 },
      { address: '10.0.0.5', family: 4 },
    ];
    await expect(checkTarget(list, resolver, new URL('https://mixed.example/'))).rejects.toThrow(RefusedTargetError);
    await expect(checkTarget(list, async () => [{ address: '93.184.216.34', family: 4 }], new URL('https://ok.example/'))).resolves.toHaveLength(1);
  });

  it('checks address literals without resolving, IPv6 in brackets too', async () => {
    const resolver = async () => {
      throw new Error('must not resolve');
    };
    await expect(checkTarget(list, resolver, new URL('http://127.0.0.1:8080/'))).rejects.toThrow(/loopback/);
    await expect(checkTarget(list, resolver, new URL('http://[::ffff:169.254.169.254]/'))).rejects.toThrow(/metadata/);
    await expect(checkTarget(list, resolver, new URL('http://8.8.8.8/'))).resolves.toEqual([{ address: '8.8.8.8', family: 4 }]);
  });

  it('refuses a host that does not resolve', async () => {
    const resolver = async () => {
      throw Object.assign(new Error('nope'), { code: 'ENOTFOUND' });
    };
    await expect(checkTarget(list, resolver, new URL('http://nowhere.invalid/'))).rejects.toThrow(/does not resolve \(ENOTFOUND\)/);
  });

  it('refuses at connect time through the lookup when the name now resolves to loopback (DNS rebinding)', async () => {
    const server = createServer((socket) => socket.end('connected'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const { connect } = await import('node:net');
    const tryConnect = (lookup: unknown) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect({ host: 'rebound.example', port, lookup: lookup as never });
        socket.on('data', (d) => resolve(d.toString()));
        socket.on('error', reject);
      });
    try {
      const rebinding = async () => [{ address: '127.0.0.1', family: 4 }];
      await expect(tryConnect(guardedLookup(parseAllowList([]), rebinding))).rejects.toThrow(/rebound\.example resolves to 127\.0\.0\.1, a loopback address/);
      await expect(tryConnect(guardedLookup(parseAllowList(['127.0.0.0/8']), rebinding))).resolves.toBe('connected');
    } finally {
      server.close();
    }
  });
});
