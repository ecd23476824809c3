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

  it.each<[string, AddressClass, string]>([
    ['::ffff:0:127.0.0.1', 'loopback', 'IPv4-translated (SIIT) ::ffff:0:0:0/96'],
    ['0:0:0:0:ffff:0:a00:1', 'private', 'IPv4-translated, hex'],
    ['::ffff:0:169.254.169.254', 'metadata', 'IPv4-translated'],
    ['2002:7f00:1::', 'loopback', '6to4 of 127.0.0.1'],
    ['2002:a00:1:1::1', 'private', '6to4 of 10.0.0.1'],
    ['2002:a9fe:a9fe::1', 'metadata', '6to4 of 169.254.169.254'],
    ['2002:c0a8:101::', 'private', '6to4 of 192.168.1.1'],
    ['2001:0:7f00:1::', 'loopback', 'Teredo with the server 127.0.0.1'],
    ['2001:0:4136:e378:8000:63bf:f5ff:fffe', 'private', 'Teredo with the client 10.0.0.1 (inverted)'],
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'loopback', 'Teredo with the client 127.0.0.1 (inverted)'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'reserved', 'Teredo (RFC 4380 example) of the client 192.0.2.45, a documentation address'],
    ['2001:0:4136:e378:8000:63bf:f7f7:f7f7', 'public', 'Teredo of the server 65.54.227.120 and the client 8.8.8.8'],
    ['64:ff9b::a9fe:a9fe', 'metadata', 'NAT64 well-known prefix'],
    ['64:ff9b::8.8.8.8', 'public', 'NAT64 of a public address'],
    ['64:ff9b:1::8.8.8.8', 'reserved', 'local-use NAT64, refused outright'],
    ['64:ff9b:1:ffff::1', 'reserved', 'local-use NAT64, refused outright'],
    ['::10.0.0.1', 'private', 'IPv4-compatible'],
    ['2606:4700::5efe:7f00:1', 'loopback', 'ISATAP interface identifier of 127.0.0.1'],
    ['2606:4700::200:5efe:a00:1', 'private', 'ISATAP (universal) of 10.0.0.1'],
    ['2606:4700::5efe:808:808', 'public', 'ISATAP of a public address'],
    ['2002:808:808::1', 'public', '6to4 of a public address'],
    ['3fff::1', 'reserved', 'documentation'],
    ['100::1', 'reserved', 'discard-only'],
    ['192.88.99.1', 'reserved', '6to4 relay anycast'],
  ])('classifies %s as %s (%s)', (address, cls) => {
    expect(classifyAddress(address)).toBe(cls);
  });

  it('names the IPv6 form and the IPv4 address it embeds when it refuses', () => {
    expect(refusalOf(parseAllowList([]), 'h', '2002:7f00:1::', 443)).toBe('h resolves to 2002:7f00:1::, a loopback address (6to4, embedding 127.0.0.1) (not in webhooks.allowList for port 443)');
  });

  it('refuses to classify what is not an address', () => {
    for (const text of ['localhost', '127.0.0.256', '1.2.3', '127.1', '0x7f.0.0.1', '0177.0.0.1', '2130706433', '::g', '1:2:3:4:5:6:7:8:9', '']) expect(parseAddress(text)).toBeNull();
    expect(() => classifyAddress('example.com')).toThrow('not an IP address');
  });
});

describe('the webhook allow-list', () => {
  it('lets a named host, an address, or a CIDR through, and nothing else', () => {
    const list = parseAllowList(['receiver.internal', '127.0.0.1', '10.1.0.0/16', 'fd00::/8']);
    expect(refusalOf(list, 'receiver.internal', '10.9.9.9', 443)).toBeNull();
    expect(refusalOf(list, 'RECEIVER.internal', '127.0.0.2', 443)).toBeNull();
    expect(refusalOf(list, 'other', '127.0.0.1', 443)).toBeNull();
    expect(refusalOf(list, 'other', '127.0.0.2', 443)).toMatch(/127\.0\.0\.2, a loopback address/);
    expect(refusalOf(list, 'other', '10.1.200.3', 443)).toBeNull();
    expect(refusalOf(list, 'other', '10.2.0.1', 443)).toMatch(/private/);
    expect(refusalOf(list, 'other', 'fd12::1', 443)).toBeNull();
    expect(refusalOf(list, 'other', '::ffff:127.0.0.1', 443)).toBeNull();
    expect(refusalOf(list, 'other', '169.254.169.254', 443)).toMatch(/metadata/);
    expect(refusalOf(list, 'other', '8.8.8.8', 443)).toBeNull();
  });

  it('refuses everything but public addresses when empty', () => {
    const list = parseAllowList([]);
    expect(refusalOf(list, 'localhost', '127.0.0.1', 443)).toMatch(/loopback/);
    expect(refusalOf(list, 'x', '::1', 443)).toMatch(/loopback/);
    expect(refusalOf(list, 'x', '1.1.1.1', 443)).toBeNull();
  });

  it('rejects a malformed entry, naming it', () => {
    expect(() => parseAllowList(['10.0.0.0/33'])).toThrow('webhooks.allowList entry "10.0.0.0/33": has a prefix longer than 32 bits');
    expect(() => parseAllowList(['10.0.0.0/x'])).toThrow('"10.0.0.0/x"');
    expect(() => parseAllowList(['hooks.internal/8'])).toThrow('has a /prefix on a host name');
    expect(() => parseAllowList(['hooks.internal:0'])).toThrow('has a port outside 1-65535');
    expect(() => parseAllowList(['hooks.internal:70000'])).toThrow('has a port outside 1-65535');
    expect(() => parseAllowList(['http://hooks.internal/'])).toThrow('"http://hooks.internal/"');
    expect(() => parseAllowList(['fd00::1::2'])).toThrow('is not an IPv6 address');
    expect(() => parseAllowList(['[fe80::1%25eth0]'])).toThrow('"[fe80::1%25eth0]"');
    expect(() => parseAllowList([' '])).toThrow('is empty');
  });

  it('limits a host:port, address:port or range:port entry to that port (it used to be taken as a host name and ignored)', () => {
    const list = parseAllowList(['receiver.internal:8443', '127.0.0.1:9000', '10.0.0.0/8:8080', '[fd00::]/8:8443', '[::1]:7000']);
    expect(refusalOf(list, 'receiver.internal', '10.9.9.9', 8443)).toBeNull();
    expect(refusalOf(list, 'receiver.internal', '192.168.9.9', 443)).toMatch(/192\.168\.9\.9, a private address \(not in webhooks.allowList for port 443\)/);
    expect(refusalOf(list, 'other', '127.0.0.1', 9000)).toBeNull();
    expect(refusalOf(list, 'other', '127.0.0.1', 9001)).toMatch(/loopback/);
    expect(refusalOf(list, 'other', '10.20.30.40', 8080)).toBeNull();
    expect(refusalOf(list, 'other', '10.20.30.40', 80)).toMatch(/private/);
    expect(refusalOf(list, 'other', 'fd12::1', 8443)).toBeNull();
    expect(refusalOf(list, 'other', 'fd12::1', 443)).toMatch(/private/);
    expect(refusalOf(list, 'other', '::1', 7000)).toBeNull();
    expect(refusalOf(list, 'other', '::1', 7001)).toMatch(/loopback/);
  });

  it('normalises a host entry as a URL host is, so it matches what a subscription connects to', () => {
    const list = parseAllowList(['Receiver.Internal', '0x7f.1:9000', 'fd00::1']);
    expect(refusalOf(list, 'receiver.internal', '10.0.0.1', 443)).toBeNull();
    expect(refusalOf(list, 'other', '127.0.0.1', 9000)).toBeNull();
    expect(refusalOf(list, 'other', 'fd00::1', 1)).toBeNull();
    expect(refusalOf(list, 'other', 'fd00::2', 1)).toMatch(/private/);
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

  it.each([
    ['http://[::ffff:0:127.0.0.1]/', /loopback address \(IPv4-translated, embedding 127\.0\.0\.1\)/],
    ['http://[2002:7f00:1::]/', /loopback address \(6to4, embedding 127\.0\.0\.1\)/],
    ['http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/', /loopback address \(Teredo, embedding 127\.0\.0\.1\)/],
    ['http://[64:ff9b::a9fe:a9fe]/', /metadata address \(NAT64, embedding 169\.254\.169\.254\)/],
    ['http://2130706433/', /127\.0\.0\.1, a loopback address/],
    ['http://0177.0.0.1/', /127\.0\.0\.1, a loopback address/],
    ['http://0x7f.1/', /127\.0\.0\.1, a loopback address/],
    ['http://127.1/', /127\.0\.0\.1, a loopback address/],
    ['http://0xa9.0xfe.0xa9.0xfe/', /169\.254\.169\.254, a metadata address/],
    ['http://0/', /0\.0\.0\.0, an unspecified address/],
  ])('refuses %s without resolving it: the URL host is what gets connected to', async (url, message) => {
    const resolver = async () => {
      throw new Error('must not resolve');
    };
    await expect(checkTarget(list, resolver, new URL(url))).rejects.toThrow(message);
  });

  it('checks an allow-list port against the URL port, the scheme default when it has none', async () => {
    const local = async () => [{ address: '10.0.0.7', family: 4 }];
    const onlyHttps = parseAllowList(['hooks.internal:443']);
    await expect(checkTarget(onlyHttps, local, new URL('https://hooks.internal/x'))).resolves.toHaveLength(1);
    await expect(checkTarget(onlyHttps, local, new URL('https://hooks.internal:443/x'))).resolves.toHaveLength(1);
    await expect(checkTarget(onlyHttps, local, new URL('http://hooks.internal/x'))).rejects.toThrow(/for port 80/);
    await expect(checkTarget(onlyHttps, local, new URL('https://hooks.internal:8443/x'))).rejects.toThrow(/for port 8443/);
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
      await expect(tryConnect(guardedLookup(parseAllowList([]), rebinding, port))).rejects.toThrow(/rebound\.example resolves to 127\.0\.0\.1, a loopback address/);
      await expect(tryConnect(guardedLookup(parseAllowList(['127.0.0.0/8']), rebinding, port))).resolves.toBe('connected');
    } finally {
      server.close();
    }
  });
});
