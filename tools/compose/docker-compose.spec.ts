/**
 * docker-compose.yml is for users with Docker; no Docker engine runs here, so CI checks the file by parsing it, and
 * with it the files it depends on (Dockerfile, .dockerignore, infra/nginx/nginx.conf, infra/otel/collector.yaml):
 * images and commands, every LADING_* variable against the config schema, the wiring between services (URLs,
 * ports, credentials, depends_on, healthchecks), mounts and published ports.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { LadingConfig, applyEnv, parseConfig } from '@lading/config';
import { TOOL_ENTRIES, bundleNames, serviceCommand, serviceNames as bundledServices, startCommand } from '../build/bundle';

const ROOT = path.resolve(__dirname, '..', '..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

/**
 * The commands the image puts on the PATH, by name → the bundle each runs: every operator CLI under its own name, and
 * lading-migrate (the `migrate` one-shot's bundle, which a Helm hook or `docker run` starts by that name).
 */
const LAUNCHERS: Readonly<Record<string, string>> = { ...Object.fromEntries(Object.keys(TOOL_ENTRIES).map((name) => [name, name])), 'lading-migrate': 'migrate' };
/** The image every Lading service runs, built from ./Dockerfile. */
const LADING_IMAGE = 'lading:local';
/** How the image runs a distributed service: node with the services' flags on the bundle `npm run build` made of its entry file. */
const serviceCommandOf = (name: string) => serviceCommand(name, ROOT);
/** How it runs the embedded registry: exactly as `npm start` does, with the same node flags. */
const START = startCommand(ROOT);
/** Third-party images whose default command already runs the server the stack needs (set up by env or mounts). */
const SERVES_BY_DEFAULT = new Set(['postgres', 'apache/kafka', 'nginx', 'jaegertracing/all-in-one', 'grafana/grafana']);
/** Environment a Lading container may carry besides its LADING_* configuration. */
const OTHER_ENV = /^(OTEL|NODE)_/;
const EXPECTED_DEFAULT_SERVICES = ['auth', 'blob', 'gateway', 'gc', 'grafana', 'jaeger', 'kafka', 'manifest', 'migrate', 'minio', 'minio-init', 'nginx', 'otel-collector', 'postgres', 'prometheus', 'webhooks'];
/** The distributed services that open the database: each waits for the `migrate` one-shot and only verifies the schema. */
const DATABASE_SERVICES = ['auth', 'blob', 'gc', 'manifest', 'webhooks'];
/** What a user puts in the shell or .env to run with token auth (the compose file has no default password). */
const AUTH_ON = { LADING_AUTH_ENABLED: 'true', LADING_ADMIN_USER: 'admin', LADING_ADMIN_PASSWORD: 'a long secret' };

type Scalar = string | number | boolean | null;
type Ports = (string | number | { published?: string | number; target?: number })[];
type Volumes = (string | { type?: string; source?: string; target?: string })[];

interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, Scalar> | string[];
  ports?: Ports;
  volumes?: Volumes;
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[] };
  deploy?: { replicas?: number };
  profiles?: string[];
  restart?: string;
  container_name?: string;
}

interface ComposeFile {
  name?: string;
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------------------------
// Compose interpolation: as a user without a .env (and without the variables exported) gets it, or with a given one.

const INTERPOLATION = /\$\$|\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;
const WITH_DEFAULT = /^([A-Za-z_][A-Za-z0-9_]*)(:?)-(.*)$/;

/**
 * `$$` → `$`; `${VAR:-default}` → the shell's VAR unless unset or empty, else default; `${VAR-default}` → VAR unless
 * unset. Anything else has no value without a .env and is a problem.
 */
function interpolate(text: string, problems: string[], where: string, shell: Record<string, string>): string {
  return text.replace(INTERPOLATION, (match: string, braced?: string) => {
    if (match === '$$') return '$';
    const m = braced === undefined ? null : WITH_DEFAULT.exec(braced);
    if (!m) {
      problems.push(`${where}: ${match}`);
      return '';
    }
    const [, name, colon, fallback] = m;
    const value = shell[name];
    return value === undefined || (colon && value === '') ? fallback : value;
  });
}

function interpolateAll(value: unknown, problems: string[], where: string, shell: Record<string, string>): unknown {
  if (typeof value === 'string') return interpolate(value, problems, where, shell);
  if (Array.isArray(value)) return value.map((v, i) => interpolateAll(v, problems, `${where}[${i}]`, shell));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateAll(v, problems, `${where}.${k}`, shell)]));
  }
  return value;
}

/** docker-compose.yml as compose reads it with these variables in the shell (or .env); problems collects the unresolvable. */
function composeWith(shell: Record<string, string>, problems: string[] = []): ComposeFile {
  // Compose resolves YAML merge keys (`<<: *anchor`); the yaml package does when asked.
  return interpolateAll(parse(read('docker-compose.yml'), { merge: true }), problems, '', shell) as ComposeFile;
}

const interpolationProblems: string[] = [];
const compose = composeWith({}, interpolationProblems);
const services = compose.services ?? {};
const serviceNames = Object.keys(services);

// ---------------------------------------------------------------------------------------------------------------
// Reading services.

function environmentOf(service: ComposeService): Record<string, string> {
  if (!service.environment) return {};
  if (Array.isArray(service.environment)) {
    return Object.fromEntries(service.environment.map((line) => [line.split('=')[0], line.slice(line.indexOf('=') + 1)]));
  }
  return Object.fromEntries(Object.entries(service.environment).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

const ladingEnvOf = (service: ComposeService) =>
  Object.fromEntries(Object.entries(environmentOf(service)).filter(([k]) => k.startsWith('LADING_')));

/** The validated configuration a Lading service starts with: its LADING_* variables through the real loader. */
const configOf = (service: ComposeService): LadingConfig => parseConfig(applyEnv({}, ladingEnvOf(service)));

const isLading = (service: ComposeService) => service.image === LADING_IMAGE || service.build !== undefined;
const ladingNames = serviceNames.filter((name) => isLading(services[name]));
const thirdPartyNames = serviceNames.filter((name) => !isLading(services[name]));
/** Lading one-shots (`restart: "no"`, such as `migrate`): they run to completion, serve nothing and have no healthcheck. */
const oneShotNames = ladingNames.filter((name) => services[name].restart === 'no');
const serverNames = ladingNames.filter((name) => !oneShotNames.includes(name));
const distributedNames = ladingNames.filter((name) => ladingEnvOf(services[name]).LADING_MODE === 'distributed');
/** The distributed processes that serve (and are scraped): not the one-shots. */
const distributedServers = distributedNames.filter((name) => !oneShotNames.includes(name));

const argv = (value: string | string[] | undefined): string[] => (value === undefined ? [] : Array.isArray(value) ? value : value.split(/\s+/));
/** The bundle a Lading service's command runs (its last argument). */
const bundleOf = (service: ComposeService) => argv(service.command).at(-1) ?? '';
/** The TypeScript entry file that bundle is built from (`dist/<name>/main.cjs` ← `services/<name>/src/main.ts`). */
const entryOf = (service: ComposeService) => bundleOf(service).replace(/^dist\/([a-z]+)\/main\.cjs$/, 'services/$1/src/main.ts');
const repositoryOf = (image: string) => image.replace(/@.*$/, '').replace(/:[^:/]+$/, '');

function dependenciesOf(service: ComposeService): Record<string, string> {
  const deps = service.depends_on ?? {};
  if (Array.isArray(deps)) return Object.fromEntries(deps.map((d) => [d, 'service_started']));
  return Object.fromEntries(Object.entries(deps).map(([d, v]) => [d, v?.condition ?? 'service_started']));
}

/** Host ports a service publishes (ports without a host side get a random one and cannot collide). */
function hostPortsOf(service: ComposeService): number[] {
  return (service.ports ?? []).flatMap((port) => {
    if (typeof port === 'object') return port.published === undefined ? [] : [Number(port.published)];
    const parts = String(port).replace(/\/(tcp|udp)$/, '').split(':');
    return parts.length < 2 ? [] : [Number(parts[parts.length - 2])];
  });
}

function containerPortsOf(service: ComposeService): number[] {
  return (service.ports ?? []).map((port) =>
    typeof port === 'object' ? Number(port.target) : Number(String(port).replace(/\/(tcp|udp)$/, '').split(':').pop()),
  );
}

/** Mounts as [source, target, isBind]. */
function mountsOf(service: ComposeService): { source: string; target: string; bind: boolean }[] {
  return (service.volumes ?? []).map((volume) => {
    if (typeof volume === 'object') return { source: volume.source ?? '', target: volume.target ?? '', bind: volume.type === 'bind' };
    const [source, target] = volume.split(':');
    return { source, target, bind: /^[./~]/.test(source) };
  });
}

const portOfAddr = (addr: string) => Number(addr.slice(addr.lastIndexOf(':') + 1));
const listenPortOf = (name: string) => portOfAddr(configOf(services[name]).http.addr);
const replicasOf = (service: ComposeService) => service.deploy?.replicas ?? 1;

/** The services `docker compose up` starts for a set of profiles and named services (with their dependencies). */
function runSet(profiles: string[], named?: string[]): string[] {
  const active = (name: string) => !services[name].profiles || services[name].profiles!.some((p) => profiles.includes(p));
  const start = named ?? serviceNames.filter(active);
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name) || !services[name]) return;
    seen.add(name);
    Object.keys(dependenciesOf(services[name])).forEach(visit);
  };
  start.forEach(visit);
  return [...seen].sort();
}

// ---------------------------------------------------------------------------------------------------------------
// The files around it.

function nginxConf() {
  const text = read('infra/nginx/nginx.conf').replace(/#.*$/gm, '');
  const upstreams = new Map<string, string[]>();
  for (const m of text.matchAll(/upstream\s+(\S+)\s*\{([^}]*)\}/g)) {
    upstreams.set(m[1], [...m[2].matchAll(/^\s*server\s+([^\s;]+)/gm)].map((s) => s[1]));
  }
  return {
    text,
    upstreams,
    proxyPass: [...text.matchAll(/proxy_pass\s+http:\/\/([^\s;/]+)/g)].map((m) => m[1]),
    listen: [...text.matchAll(/listen\s+(?:\S+:)?(\d+)\b/g)].map((m) => Number(m[1])),
  };
}

interface Instruction {
  op: string;
  args: string;
}

/** The instructions of the Dockerfile's final stage (continuation lines joined, comments dropped). */
function finalStage(): { from: string; instructions: Instruction[] } {
  const lines = read('Dockerfile')
    .replace(/\\\r?\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const all = lines.map((l) => ({ op: l.split(/\s+/)[0].toUpperCase(), args: l.slice(l.split(/\s+/)[0].length).trim() }));
  const start = all.map((i) => i.op).lastIndexOf('FROM');
  return { from: all[start].args.split(/\s+/)[0], instructions: all.slice(start + 1) };
}

/** Whether a .dockerignore excludes a path (Docker's rules, enough of them for this file: `*`, `**`, `!`). */
function dockerIgnores(patterns: string[], file: string): boolean {
  let ignored = false;
  const candidates = file.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const pattern = path.posix.normalize((negate ? raw.slice(1) : raw).replace(/^\//, ''));
    const source = pattern
      .split('**/')
      .map((part) => part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]'))
      .join('(?:.*/)?');
    const re = new RegExp(`^${source}$`);
    if (candidates.some((c) => re.test(c))) ignored = !negate;
  }
  return ignored;
}

// ---------------------------------------------------------------------------------------------------------------

describe('docker-compose.yml', () => {
  describe('the file', () => {
    it('uses only interpolations with a default, so it runs without a .env', () => {
      expect(interpolationProblems).toEqual([]);
    });

    it('runs the distributed stack on `docker compose up`', () => {
      expect(runSet([])).toEqual(EXPECTED_DEFAULT_SERVICES);
      for (const name of ['blob', 'manifest', 'auth', 'gateway', 'gc', 'webhooks']) expect(distributedNames).toContain(name);
    });

    it('runs the embedded registry alone on `docker compose --profile embedded up registry`', () => {
      expect(services.registry.profiles).toEqual(['embedded']);
      expect(runSet(['embedded'], ['registry'])).toEqual(['registry']);
      expect(entryOf(services.registry)).toBe('services/embedded/src/main.ts');
      expect(configOf(services.registry).mode).toBe('embedded');
    });

    it('runs the blob service and the gateway with two replicas each', () => {
      expect(replicasOf(services.blob)).toBe(2);
      expect(replicasOf(services.gateway)).toBe(2);
    });
  });

  describe('images and commands', () => {
    it.each(ladingNames)('%s runs the one image built from ./Dockerfile', (name) => {
      const { image, build } = services[name];
      expect(image).toBe(LADING_IMAGE);
      const context = typeof build === 'string' ? build : build?.context;
      expect(context).toBe('.');
      expect(typeof build === 'object' ? (build.dockerfile ?? 'Dockerfile') : 'Dockerfile').toBe('Dockerfile');
    });

    it.each(ladingNames)('%s runs the bundle of an entry file that exists in the repo on node with the services\' flags (the embedded registry as `npm start` does)', (name) => {
      const command = argv(services[name].command);
      expect(entryOf(services[name])).toMatch(/^services\/[a-z]+\/src\/main\.ts$/);
      expect(existsSync(path.join(ROOT, entryOf(services[name])))).toBe(true);
      const service = entryOf(services[name]).split('/')[1];
      expect(bundledServices(ROOT)).toContain(service);
      // The schema step is a one-shot, on plain node; the servers run with the services' node flags.
      expect(command).toEqual(service === 'embedded' ? START : service === 'migrate' ? ['node', 'dist/migrate/main.cjs'] : serviceCommandOf(service));
      expect(services[name].entrypoint).toBeUndefined();
    });

    it.each(thirdPartyNames)('%s pins its image to a version tag', (name) => {
      const image = services[name].image ?? '';
      expect(image).toMatch(/:[\w][\w.-]*$/);
      expect(image).not.toMatch(/:latest$/);
    });

    it.each(thirdPartyNames)('%s sets a command, or runs an image whose default command is the server it needs', (name) => {
      const { image, command } = services[name];
      if (!SERVES_BY_DEFAULT.has(repositoryOf(image ?? ''))) expect(argv(command).length).toBeGreaterThan(0);
    });
  });

  describe('Lading configuration', () => {
    it.each(ladingNames)('%s sets only LADING_* variables besides OTEL_* and NODE_* ones', (name) => {
      const stray = Object.keys(environmentOf(services[name])).filter((k) => !k.startsWith('LADING_') && !OTHER_ENV.test(k));
      expect(stray).toEqual([]);
    });

    it.each(ladingNames)('%s: the config schema accepts its LADING_* variables', (name) => {
      expect(() => configOf(services[name])).not.toThrow();
    });

    it.each(distributedNames)('%s: its variables make a valid distributed config (Postgres, S3, Kafka)', (name) => {
      const config = configOf(services[name]);
      expect(config.mode).toBe('distributed');
      expect(config.database.driver).toBe('postgres');
      expect(config.storage.driver).toBe('s3');
      expect(config.kafka.brokers.length).toBeGreaterThan(0);
    });

    it.each(distributedNames)('%s uses the compose postgres with its database, user and password', (name) => {
      const url = new URL(configOf(services[name]).database.url!);
      const pg = environmentOf(services.postgres);
      expect(url.hostname).toBe('postgres');
      expect(Number(url.port || 5432)).toBe(5432);
      expect(decodeURIComponent(url.username)).toBe(pg.POSTGRES_USER);
      expect(decodeURIComponent(url.password)).toBe(pg.POSTGRES_PASSWORD);
      expect(url.pathname.slice(1)).toBe(pg.POSTGRES_DB);
    });

    it.each(distributedNames)('%s uses the compose kafka on the listener it advertises', (name) => {
      const advertised = environmentOf(services.kafka).KAFKA_ADVERTISED_LISTENERS.split(',').map((l) => l.replace(/^\w+:\/\//, ''));
      for (const broker of configOf(services[name]).kafka.brokers) expect(advertised).toContain(broker);
      expect(advertised.every((l) => l.startsWith('kafka:'))).toBe(true);
    });

    it.each(distributedNames)('%s uses the compose minio with its root credentials and the bucket minio-init creates', (name) => {
      const { storage } = configOf(services[name]);
      const minio = environmentOf(services.minio);
      expect(new URL(storage.endpoint!).host).toBe('minio:9000');
      expect(argv(services.minio.command)).toContain('server');
      expect(storage.accessKey).toBe(minio.MINIO_ROOT_USER);
      expect(storage.secretKey).toBe(minio.MINIO_ROOT_PASSWORD);
      const init = services['minio-init'];
      const alias = new URL(environmentOf(init).MC_HOST_local);
      expect([alias.host, alias.username, alias.password]).toEqual(['minio:9000', minio.MINIO_ROOT_USER, minio.MINIO_ROOT_PASSWORD]);
      expect(argv(init.command).slice(0, 1)).toEqual(['mb']);
      expect(argv(init.command)).toContain(`local/${storage.bucket}`);
    });

    it('the blob service streams blobs itself: presigned URLs would name minio:9000, unreachable from the host', () => {
      expect(configOf(services.blob).storage.driver).toBe('s3');
      expect(configOf(services.blob).storage.redirect).toBe(false);
    });

    it("the gateway's upstreams are compose services running blob and manifest, on the ports they listen on", () => {
      const { upstreams } = configOf(services.gateway);
      for (const kind of ['blob', 'manifest'] as const) {
        expect(upstreams[kind].length).toBeGreaterThan(0);
        for (const raw of upstreams[kind]) {
          const url = new URL(raw);
          const target = services[url.hostname];
          expect(target).toBeDefined();
          expect(entryOf(target)).toBe(`services/${kind}/src/main.ts`);
          expect(Number(url.port)).toBe(listenPortOf(url.hostname));
        }
      }
    });

    it("the auth service's admin API reaches the manifest service (repository deletions) and the gc service (collector routes)", () => {
      const { upstreams } = configOf(services.auth);
      for (const kind of ['manifest', 'gc'] as const) {
        expect(upstreams[kind].length).toBeGreaterThan(0);
        for (const raw of upstreams[kind]) {
          const url = new URL(raw);
          expect(entryOf(services[url.hostname])).toBe(`services/${kind}/src/main.ts`);
          expect(Number(url.port)).toBe(listenPortOf(url.hostname));
        }
      }
    });

    it.each(ladingNames)('%s: LADING_HTTP_HOST is the URL the registry is published on', (name) => {
      const config = configOf(services[name]);
      const host = new URL(config.http.host!);
      const frontDoor = config.mode === 'distributed' ? 'nginx' : name;
      expect(host.hostname).toBe('localhost');
      expect(hostPortsOf(services[frontDoor])).toContain(Number(host.port || 80));
    });

    it.each(ladingNames)('%s: OTEL_EXPORTER_OTLP_ENDPOINT, when set, is the collector on its OTLP/HTTP port', (name) => {
      const endpoint = environmentOf(services[name]).OTEL_EXPORTER_OTLP_ENDPOINT;
      if (endpoint === undefined) return;
      const url = new URL(endpoint);
      expect(services[url.hostname]?.image).toMatch(/^otel\/opentelemetry-collector/);
      const collector = parse(read('infra/otel/collector.yaml')) as { receivers: { otlp: { protocols: { http: { endpoint: string } } } } };
      expect(Number(url.port)).toBe(portOfAddr(collector.receivers.otlp.protocols.http.endpoint));
    });
  });

  describe('authentication and shared secrets', () => {
    /** The validated configuration of one service with these variables in the shell (or .env). */
    const configWith = (shell: Record<string, string>, name: string) => configOf(composeWith(shell).services[name]);
    /** The processes that seal secrets at rest: auth (signing keys), webhooks (webhook secrets) and the embedded registry (both). */
    const SEALERS = ['auth', 'webhooks', 'registry'];
    /** The gateway signs the principal it passes to blob and manifest, which believe only a signed one. */
    const SIGNED = ['gateway', 'blob', 'manifest', 'auth', 'gc'];

    it('runs with token auth off and no admin without a .env: there is no default password', () => {
      for (const name of ladingNames) {
        const config = configOf(services[name]);
        expect([name, config.auth.enabled, config.admin.user, config.admin.password]).toEqual([name, false, undefined, undefined]);
      }
    });

    it('turns token auth on in the embedded profile from the shell, with the first admin from LADING_ADMIN_USER/PASSWORD', () => {
      const config = configWith(AUTH_ON, 'registry');
      expect(config.mode).toBe('embedded');
      expect(config.auth.enabled).toBe(true);
      expect(config.admin).toEqual({ user: 'admin', password: 'a long secret' });
    });

    it('turns token auth on at the distributed gateways from the same variables, and the auth service makes the first admin', () => {
      expect(configWith(AUTH_ON, 'gateway').auth.enabled).toBe(true);
      expect(configWith(AUTH_ON, 'auth').admin).toEqual({ user: 'admin', password: 'a long secret' });
    });

    it('gives the gateway and the services it signs principals for one upstreams secret, and takes the shell\'s when set', () => {
      const defaults = SIGNED.map((name) => configOf(services[name]).upstreams.secret);
      expect(defaults[0]).toBeDefined();
      expect(new Set(defaults).size).toBe(1);
      const own = 'an upstreams secret of at least 32 characters';
      for (const name of SIGNED) expect([name, configWith({ LADING_UPSTREAMS_SECRET: own }, name).upstreams.secret]).toEqual([name, own]);
    });

    it('gives every process that seals secrets (auth, webhooks, the embedded registry) the shell\'s LADING_SECRETS_KEY', () => {
      const key = Buffer.alloc(32, 7).toString('base64');
      for (const name of SEALERS) {
        expect([name, configOf(services[name]).secrets.key]).toEqual([name, undefined]);
        expect([name, configWith({ LADING_SECRETS_KEY: key }, name).secrets.key]).toEqual([name, key]);
      }
    });
  });

  describe('start-up order and health', () => {
    it.each(serviceNames)('%s depends only on existing services, with conditions they can meet', (name) => {
      for (const [dep, condition] of Object.entries(dependenciesOf(services[name]))) {
        expect(serviceNames).toContain(dep);
        expect(['service_started', 'service_healthy', 'service_completed_successfully']).toContain(condition);
        if (condition === 'service_healthy') expect(services[dep].healthcheck?.test).toBeDefined();
        if (condition === 'service_completed_successfully') expect(services[dep].restart ?? 'no').toBe('no');
        // A service that starts by default cannot wait on one that only a profile starts.
        if (!services[name].profiles) expect(services[dep].profiles).toBeUndefined();
      }
    });

    it('has no dependency cycle', () => {
      const state = new Map<string, 'visiting' | 'done'>();
      const visit = (name: string, trail: string[]): void => {
        if (state.get(name) === 'done') return;
        if (state.get(name) === 'visiting') throw new Error(`dependency cycle: ${[...trail, name].join(' -> ')}`);
        state.set(name, 'visiting');
        Object.keys(dependenciesOf(services[name])).forEach((dep) => visit(dep, [...trail, name]));
        state.set(name, 'done');
      };
      expect(() => serviceNames.forEach((name) => visit(name, []))).not.toThrow();
    });

    it.each(serverNames)('%s: the healthcheck asks /readyz on the port of LADING_HTTP_ADDR', (name) => {
      const test = argv(services[name].healthcheck?.test).join(' ');
      expect(test).toContain(`http://127.0.0.1:${listenPortOf(name)}/readyz`);
    });

    it('blob and manifest wait for healthy postgres, kafka and minio and for the bucket', () => {
      for (const name of ['blob', 'manifest']) {
        expect(dependenciesOf(services[name])).toMatchObject({
          postgres: 'service_healthy',
          kafka: 'service_healthy',
          minio: 'service_healthy',
          'minio-init': 'service_completed_successfully',
        });
      }
      expect(dependenciesOf(services.gateway)).toMatchObject({ blob: 'service_healthy', manifest: 'service_healthy' });
      expect(dependenciesOf(services.nginx)).toMatchObject({ gateway: 'service_healthy' });
    });

    it('runs webhook delivery after the data stores, with the delivery worker on and no published port', () => {
      expect(entryOf(services.webhooks)).toBe('services/webhooks/src/main.ts');
      expect(configOf(services.webhooks).webhooks.enabled).toBe(true);
      expect(dependenciesOf(services.webhooks)).toMatchObject({ postgres: 'service_healthy', kafka: 'service_healthy' });
      expect(hostPortsOf(services.webhooks)).toEqual([]);
    });

    it('runs garbage collection after the data stores and the bucket, with the collector on and no published port', () => {
      expect(entryOf(services.gc)).toBe('services/gc/src/main.ts');
      expect(configOf(services.gc).gc.enabled).toBe(true);
      expect(dependenciesOf(services.gc)).toMatchObject({
        postgres: 'service_healthy',
        kafka: 'service_healthy',
        minio: 'service_healthy',
        'minio-init': 'service_completed_successfully',
      });
      expect(hostPortsOf(services.gc)).toEqual([]);
    });

    it('runs lading-migrate once after postgres is healthy; the services that open the database wait for it and only verify', () => {
      expect(oneShotNames).toEqual(['migrate']);
      const migrate = services.migrate;
      expect(entryOf(migrate)).toBe('services/migrate/src/main.ts');
      expect(configOf(migrate).mode).toBe('distributed');
      expect(dependenciesOf(migrate)).toEqual({ postgres: 'service_healthy' });
      expect([migrate.healthcheck, migrate.ports, migrate.deploy]).toEqual([undefined, undefined, undefined]);
      for (const name of DATABASE_SERVICES) {
        expect([name, dependenciesOf(services[name]).migrate]).toEqual([name, 'service_completed_successfully']);
        expect([name, configOf(services[name]).database.migrations]).toEqual([name, 'verify']);
      }
      // The embedded registry is its own single holder: it migrates its data directory itself on start.
      expect(configOf(services.registry).database.migrations).toBe('auto');
    });

    it('checks postgres with pg_isready and minio at /minio/health/ready', () => {
      expect(argv(services.postgres.healthcheck?.test)).toContain('pg_isready');
      expect(argv(services.minio.healthcheck?.test).join(' ')).toContain('/minio/health/ready');
    });
  });

  describe('mounts and ports', () => {
    it.each(serviceNames)('%s bind-mounts only files that exist in the repo', (name) => {
      for (const mount of mountsOf(services[name]).filter((m) => m.bind)) {
        expect(mount.source).toMatch(/^\.\/infra\//);
        expect(existsSync(path.join(ROOT, mount.source))).toBe(true);
      }
    });

    it('declares every named volume it mounts', () => {
      const named = serviceNames.flatMap((name) => mountsOf(services[name]).filter((m) => !m.bind).map((m) => m.source));
      expect(named.length).toBeGreaterThan(0);
      for (const volume of named) expect(Object.keys(compose.volumes ?? {})).toContain(volume);
    });

    it.each([
      ['docker compose up', runSet([])],
      ['docker compose --profile embedded up registry', runSet(['embedded'], ['registry'])],
    ])('publishes no host port twice on `%s`', (_command, names) => {
      const ports = names.flatMap((name) => hostPortsOf(services[name]).flatMap((port) => Array(replicasOf(services[name])).fill(port)));
      expect(ports.length).toBeGreaterThan(0);
      expect(new Set(ports).size).toBe(ports.length);
    });

    it.each(serviceNames.filter((name) => replicasOf(services[name]) > 1))(
      '%s (replicated) publishes no fixed host port and names no container',
      (name) => {
        expect(hostPortsOf(services[name])).toEqual([]);
        expect(services[name].container_name).toBeUndefined();
      },
    );
  });
});

describe('infra/prometheus/prometheus.yml', () => {
  it("scrapes every distributed Lading service on the metrics port the compose environment gives it", () => {
    const config = parse(read('infra/prometheus/prometheus.yml')) as { scrape_configs: Array<{ job_name: string; dns_sd_configs?: Array<{ names: string[]; port: number }> }> };
    const lading = config.scrape_configs.find((job) => job.job_name === 'lading')?.dns_sd_configs?.[0];
    expect([...(lading?.names ?? [])].sort()).toEqual([...distributedServers].sort());
    for (const name of distributedServers) expect([name, portOfAddr(configOf(services[name]).telemetry.metricsAddr)]).toEqual([name, lading?.port]);
  });
});

describe('infra/nginx/nginx.conf', () => {
  const conf = nginxConf();

  it('proxies every request to an upstream of the gateway service, on the port the gateway listens on', () => {
    expect(conf.proxyPass.length).toBeGreaterThan(0);
    for (const upstream of conf.proxyPass) {
      expect(conf.upstreams.get(upstream)).toEqual([`gateway:${listenPortOf('gateway')}`]);
    }
  });

  it('is mounted into the nginx service and listens on the container port compose publishes', () => {
    expect(mountsOf(services.nginx)).toContainEqual({ source: './infra/nginx/nginx.conf', target: '/etc/nginx/nginx.conf', bind: true });
    expect(conf.listen).toEqual(containerPortsOf(services.nginx));
  });

  it("nginx's healthcheck asks the gateways' /readyz through nginx's own listener", () => {
    expect(argv(services.nginx.healthcheck?.test).join(' ')).toContain(`http://127.0.0.1:${conf.listen[0]}/readyz`);
  });

  it('streams bodies over keepalive HTTP/1.1 to the gateways, without size limits or short timeouts', () => {
    for (const directive of [
      /client_max_body_size\s+0;/,
      /proxy_request_buffering\s+off;/,
      /proxy_buffering\s+off;/,
      /proxy_http_version\s+1\.1;/,
      /keepalive\s+\d+;/,
      /proxy_set_header\s+Connection\s+"";/,
      /proxy_set_header\s+Host\s+\$http_host;/,
    ]) {
      expect(conf.text).toMatch(directive);
    }
    for (const m of conf.text.matchAll(/proxy_(?:read|send)_timeout\s+(\d+)s;/g)) expect(Number(m[1])).toBeGreaterThanOrEqual(300);
  });

  it('re-resolves the gateway replicas through Docker DNS (upstream zone + resolve)', () => {
    expect(conf.text).toMatch(/resolver\s+127\.0\.0\.11\b/);
    expect(conf.text).toMatch(/zone\s+\S+\s+\d+k;/);
    expect(conf.text).toMatch(/server\s+gateway:\d+\s+resolve\b/);
    // `resolve` in an upstream needs open-source nginx 1.27.3 or later.
    const [major, minor] = (services.nginx.image ?? '').replace(/^nginx:/, '').split(/[.-]/).map(Number);
    expect(major > 1 || (major === 1 && minor >= 27)).toBe(true);
  });
});

describe('infra/otel/collector.yaml', () => {
  interface Collector {
    receivers: { otlp: { protocols: { grpc: { endpoint: string }; http: { endpoint: string } } } } & Record<string, unknown>;
    processors?: Record<string, unknown>;
    exporters: Record<string, unknown>;
    service: { pipelines: Record<string, { receivers: string[]; processors?: string[]; exporters: string[] }> };
  }
  const collector = parse(read('infra/otel/collector.yaml')) as Collector;

  it('receives OTLP on 0.0.0.0:4317 (gRPC) and 0.0.0.0:4318 (HTTP), reachable from other containers', () => {
    expect(collector.receivers.otlp.protocols.grpc.endpoint).toBe('0.0.0.0:4317');
    expect(collector.receivers.otlp.protocols.http.endpoint).toBe('0.0.0.0:4318');
  });

  it('exports to the debug exporter, and every pipeline names only declared components', () => {
    expect(Object.keys(collector.exporters)).toContain('debug');
    const pipelines = Object.values(collector.service.pipelines);
    expect(pipelines.length).toBeGreaterThan(0);
    for (const pipeline of pipelines) {
      for (const r of pipeline.receivers) expect(Object.keys(collector.receivers)).toContain(r);
      for (const p of pipeline.processors ?? []) expect(Object.keys(collector.processors ?? {})).toContain(p);
      for (const e of pipeline.exporters) expect(Object.keys(collector.exporters)).toContain(e);
    }
  });

  it("is mounted where the collector's --config points", () => {
    const service = services['otel-collector'];
    const config = argv(service.command).find((a) => a.startsWith('--config='))?.slice('--config='.length);
    expect(mountsOf(service)).toContainEqual({ source: './infra/otel/collector.yaml', target: config, bind: true });
  });
});

describe('Dockerfile', () => {
  const stage = finalStage();
  const ops = (op: string) => stage.instructions.filter((i) => i.op === op).map((i) => i.args);
  const workdir = ops('WORKDIR').pop();

  it('builds every stage on the Node.js major that package.json engines asks for (node:<major>-bookworm-slim)', () => {
    const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
    const major = /^>=(\d+)/.exec(engines)?.[1];
    expect(major).toBe('24');
    const froms = read('Dockerfile')
      .split('\n')
      .filter((l) => /^FROM\s/i.test(l))
      .map((l) => l.trim().split(/\s+/)[1]);
    expect(froms.length).toBeGreaterThan(1);
    expect(new Set(froms)).toEqual(new Set([`node:${major}-bookworm-slim`]));
  });

  it('builds on node:24-bookworm-slim, installs with npm ci and copies the source into its WORKDIR', () => {
    expect(stage.from).toBe('node:24-bookworm-slim');
    expect(workdir).toBe('/app');
    expect(ops('RUN').some((run) => /\bnpm ci\b/.test(run))).toBe(true);
    expect(ops('COPY')).toContain('. .');
  });

  it('builds the service bundles from the copied source, so every command has its bundle', () => {
    const copied = stage.instructions.findIndex((i) => i.op === 'COPY' && i.args === '. .');
    const built = stage.instructions.findIndex((i) => i.op === 'RUN' && /\bnpm run (-s )?build\b/.test(i.args));
    expect(copied).toBeGreaterThanOrEqual(0);
    expect(built).toBeGreaterThan(copied);
  });

  /** The bundles the image's instructions name (`dist/<name>/main.cjs`), with where each is named. */
  const namedBundles = stage.instructions.flatMap((instruction, index) =>
    [...instruction.args.matchAll(/\bdist\/([a-z][a-z0-9-]*)\/main\.cjs\b/g)].map((m) => ({ name: m[1], index, op: instruction.op })),
  );
  const buildIndex = stage.instructions.findIndex((i) => i.op === 'RUN' && /\bnpm run (-s )?build\b/.test(i.args));
  /** The RUN instructions that write the operator CLIs' launchers onto the PATH. */
  const launcherRuns = stage.instructions.filter((i) => i.op === 'RUN' && i.args.includes('/usr/local/bin/'));

  it('names only bundles `npm run build` makes, and runs them only after the build, which makes every bundle', () => {
    expect(namedBundles.length).toBeGreaterThan(0);
    for (const { name, index } of namedBundles) {
      expect([name, bundleNames().includes(name)]).toEqual([name, true]);
      expect([name, index > buildIndex]).toEqual([name, true]);
    }
    // No names after `--`: the build makes every service's and every operator CLI's bundle.
    expect(stage.instructions[buildIndex].args).not.toMatch(/\bbuild\s+--/);
  });

  it.each(Object.entries(LAUNCHERS))('puts %s on the PATH, running the %s bundle from the WORKDIR', (name, bundle) => {
    const launcher = launcherRuns.find((run) => run.args.includes(`>/usr/local/bin/${name} `));
    expect(launcher?.args).toContain(`exec node ${workdir}/dist/${bundle}/main.cjs "$@"`);
    expect(launcher?.args).toMatch(new RegExp(`chmod 755 .*/usr/local/bin/${name}\\b`));
  });

  it('its CLI launchers, written as the image writes them, pass every argument on to their bundle', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lading-launchers-'));
    try {
      mkdirSync(path.join(dir, 'bin'));
      for (const bundle of Object.values(LAUNCHERS)) {
        // A stand-in bundle that prints which one it is and the arguments it got.
        mkdirSync(path.join(dir, 'dist', bundle), { recursive: true });
        writeFileSync(path.join(dir, 'dist', bundle, 'main.cjs'), `console.log(JSON.stringify([${JSON.stringify(bundle)}, ...process.argv.slice(2)]));\n`);
      }
      for (const run of launcherRuns) {
        const script = run.args.replaceAll('/usr/local/bin/', `${dir}/bin/`).replaceAll(`${workdir}/dist/`, `${dir}/dist/`);
        execFileSync('sh', ['-c', script]);
      }
      const env = { PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}` };
      for (const [name, bundle] of Object.entries(LAUNCHERS)) {
        const printed = execFileSync(path.join(dir, 'bin', name), ['users', 'list', '--url', 'http://a b', ''], { env, encoding: 'utf8' });
        expect(JSON.parse(printed)).toEqual([bundle, 'users', 'list', '--url', 'http://a b', '']);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("leaves the ENTRYPOINT to the node image and by default runs the embedded registry as `npm start` and compose's registry do", () => {
    expect(ops('ENTRYPOINT')).toEqual([]);
    const cmd = JSON.parse(ops('CMD').pop() ?? 'null') as string[];
    expect(cmd).toEqual(START);
    expect(cmd).toEqual(argv(services.registry.command));
  });

  it('.dockerignore keeps host node_modules and .git out, and every file the services and operator CLIs are built from in', () => {
    const patterns = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(dockerIgnores(patterns, 'node_modules')).toBe(true);
    expect(dockerIgnores(patterns, 'libs/config/node_modules')).toBe(true);
    expect(dockerIgnores(patterns, '.git')).toBe(true);
    // Bundles are built in the image, never copied from the host.
    expect(dockerIgnores(patterns, 'dist/embedded/main.cjs')).toBe(true);
    const needed = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.base.json', 'libs/metadata/migrations/0001_registry.sql', 'libs/events/migrations/0004_events.sql', 'tools/build/bundle.ts', ...Object.values(TOOL_ENTRIES)];
    for (const file of [...needed, ...ladingNames.map((name) => entryOf(services[name]))]) {
      expect([file, dockerIgnores(patterns, file)]).toEqual([file, false]);
    }
  });
});

describe('infra/nginx/compose.tls.yml (TLS at the load balancer) and infra/nginx/tls.conf', () => {
  const tlsProblems: string[] = [];
  const override = interpolateAll(parse(read('infra/nginx/compose.tls.yml')), tlsProblems, '', {}) as ComposeFile;
  const tls = read('infra/nginx/tls.conf').replace(/#.*$/gm, '');
  const base = nginxConf();
  const nginx = override.services.nginx;
  const include = /include\s+(\S+)\/\*\.conf;/.exec(base.text)?.[1];
  const tlsListen = [...tls.matchAll(/listen\s+(?:\S+:)?(\d+)\s+ssl\b/g)].map((m) => Number(m[1]));

  it('resolves without a .env and names only services of docker-compose.yml', () => {
    expect(tlsProblems).toEqual([]);
    for (const name of Object.keys(override.services)) expect([name, serviceNames.includes(name)]).toEqual([name, true]);
  });

  it("mounts tls.conf where nginx.conf's include finds it, and publishes the port it listens on with TLS", () => {
    expect(include).toBeDefined();
    expect(mountsOf(nginx)).toContainEqual({ source: './infra/nginx/tls.conf', target: `${include}/tls.conf`, bind: true });
    expect(tlsListen.length).toBe(1);
    expect(containerPortsOf(nginx)).toEqual(tlsListen);
    expect(containerPortsOf(services.nginx)).not.toContain(tlsListen[0]);
  });

  it('reads the certificate and key from the directory it mounts, and speaks HTTP/2 (nginx >= 1.25.1 syntax)', () => {
    const certDir = mountsOf(nginx).find((m) => m.source !== './infra/nginx/tls.conf');
    expect(certDir).toMatchObject({ source: './infra/nginx/tls', bind: true });
    for (const directive of ['ssl_certificate', 'ssl_certificate_key']) {
      const file = new RegExp(`${directive}\\s+(\\S+);`).exec(tls)?.[1] ?? '';
      expect([directive, path.posix.dirname(file)]).toEqual([directive, certDir?.target]);
    }
    expect(tls).toMatch(/^\s*http2\s+on;/m);
    expect(tls).not.toMatch(/listen[^;]*\bhttp2\b/);
  });

  it('proxies to the gateways with the settings nginx.conf sets once for every server, which tls.conf does not override', () => {
    expect([...tls.matchAll(/proxy_pass\s+http:\/\/([^\s;/]+)/g)].map((m) => m[1])).toEqual(base.proxyPass.slice(0, 1));
    // A proxy_set_header inside a server would drop every inherited one (Host, X-Forwarded-*), so none is there.
    expect(tls).not.toMatch(/proxy_set_header|proxy_buffering|proxy_request_buffering|client_max_body_size/);
    const server = /\n\s*server\s*\{/.exec(base.text)?.index ?? -1;
    const httpLevel = base.text.slice(0, server);
    for (const directive of [/proxy_set_header\s+X-Forwarded-Proto\s+\$scheme;/, /proxy_set_header\s+Host\s+\$http_host;/, /proxy_request_buffering\s+off;/, /client_max_body_size\s+0;/]) {
      expect(httpLevel).toMatch(directive);
    }
  });

  it('gives every distributed service an https http.host on the published TLS port, so Locations and the realm name https', () => {
    // One-shots (migrate) answer no requests, so they name no URL.
    for (const name of distributedNames.filter((n) => !oneShotNames.includes(n))) {
      const env = environmentOf(override.services[name] ?? {});
      expect([name, env.LADING_HTTP_HOST]).toEqual([name, `https://localhost:${hostPortsOf(nginx)[0]}`]);
    }
  });
});
