/**
 * The Helm chart (infra/helm/lading) rendered with each values file of its ci/ folder, and what the objects say:
 * every service's Deployment runs its bundle with probes, resources and a locked-down security context; the
 * variables of every Lading container, with the Secret's, make a configuration the config schema accepts; Services,
 * PDBs, HPAs and the ServiceMonitor select what exists; the embedded registry is one StatefulSet pod with a volume.
 * tools/helm/check (the `helm` stage) adds lint, refused values and a real kube-apiserver's verdict.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments, parseDocument } from 'yaml';
import { CONFIG_FILE_ENV, LadingConfig, applyEnv, parseConfig } from '@lading/config';
import { serviceCommand, serviceNames, startCommand } from '../build/bundle';

const ROOT = path.resolve(__dirname, '..', '..');
const CHART = path.join(ROOT, 'infra', 'helm', 'lading');
const HELM = path.join(execFileSync(path.join(ROOT, 'tools', 'helm', 'install'), ['--bin-dir'], { encoding: 'utf8' }).trim(), 'helm');
/** The distributed services: every service with an entry file but the embedded composition root. */
/** The long-running distributed services, one Deployment each: not the embedded registry, and not `migrate`, a
 * one-shot the hook Job runs (its own tests below). */
const SERVICES = serviceNames(ROOT).filter((name) => name !== 'embedded' && name !== 'migrate');
const AUTOSCALED = ['gateway', 'blob'];
const RELEASE = 'lading';
const FULLNAME = 'lading';

interface EnvVar {
  name: string;
  value?: string;
}
interface Container {
  name: string;
  image: string;
  command: string[];
  env?: EnvVar[];
  envFrom?: { secretRef?: { name: string }; configMapRef?: { name: string } }[];
  ports?: { name: string; containerPort: number }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown>;
  startupProbe?: { httpGet: { path: string; port: string } };
  livenessProbe?: { httpGet: { path: string; port: string } };
  readinessProbe?: { httpGet: { path: string; port: string } };
  volumeMounts?: { name: string; mountPath: string }[];
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
}
interface PodTemplate {
  metadata: { labels: Record<string, string> };
  spec: {
    containers: Container[];
    securityContext?: Record<string, unknown>;
    automountServiceAccountToken?: boolean;
    enableServiceLinks?: boolean;
    terminationGracePeriodSeconds?: number;
    volumes?: { name: string }[];
  };
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown> & { template?: PodTemplate; selector?: { matchLabels?: Record<string, string> } & Record<string, string> };
  data?: Record<string, string>;
}

/** Renders the chart with one values file of ci/ (and any --set), as objects. */
function render(valuesFile: string, ...set: string[]): K8sObject[] {
  const args = ['template', RELEASE, CHART, '--namespace', 'registry', '-f', path.join(CHART, 'ci', valuesFile), ...set.flatMap((s) => ['--set', s])];
  const text = execFileSync(HELM, args, { encoding: 'utf8' });
  return parseAllDocuments(text)
    .map((doc) => doc.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

const find = (objects: K8sObject[], kind: string, name: string): K8sObject => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in: ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
};
const ofKind = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);
const podTemplate = (o: K8sObject): PodTemplate => o.spec?.template as PodTemplate;
const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);

/** A container's variables with the named Secret's (as envFrom gives them), the container's own winning. */
function environmentOf(container: Container, objects: K8sObject[], existing: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    if (!source.secretRef) continue;
    const secret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === source.secretRef?.name);
    const data = secret ? Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])) : existing;
    Object.assign(env, data);
  }
  for (const v of container.env ?? []) env[v.name] = v.value ?? '';
  return env;
}
const configOf = (env: Record<string, string>): LadingConfig => parseConfig(applyEnv({}, env));

/** What a Secret of the user's (secrets.existingSecret) holds in the ci example that names one. */
const EXISTING_SECRET = {
  LADING_DATABASE_URL: 'postgres://lading:secret@postgres:5432/lading',
  LADING_STORAGE_ACCESSKEY: 'lading',
  LADING_STORAGE_SECRETKEY: 'lading-secret',
  LADING_UPSTREAMS_SECRET: 'x'.repeat(40),
};

const VALUES_FILES = readdirSync(path.join(CHART, 'ci')).filter((f) => f.endsWith('-values.yaml'));
const DISTRIBUTED = VALUES_FILES.filter((f) => f.startsWith('distributed'));
const EMBEDDED = VALUES_FILES.filter((f) => f.startsWith('embedded'));
const MIGRATING = DISTRIBUTED.filter((f) => !f.includes('no-migrations'));

beforeAll(() => {
  // helm from the Go module proxy, cached by version (a second call returns at once).
  execFileSync(path.join(ROOT, 'tools', 'helm', 'install'), ['-q', 'helm'], { stdio: 'inherit' });
}, 600_000);

test.each(VALUES_FILES)('%s: no pod gets service links, whose variables would be unknown LADING_* settings', (valuesFile) => {
  // Kubernetes names a Service "lading-blob"'s variables LADING_BLOB_PORT, LADING_BLOB_SERVICE_HOST, ...: the config
  // schema refuses unknown LADING_* variables, so a pod with service links would not start.
  const workloads = render(valuesFile).filter((o) => ['Deployment', 'StatefulSet', 'Job'].includes(o.kind));
  expect(workloads.length).toBeGreaterThan(0);
  for (const workload of workloads) expect(podTemplate(workload).spec.enableServiceLinks).toBe(false);
});

test.each(VALUES_FILES)('%s: a stopping server pauses before SIGTERM, within its grace period', (valuesFile) => {
  for (const workload of render(valuesFile).filter((o) => ['Deployment', 'StatefulSet'].includes(o.kind))) {
    const pod = podTemplate(workload);
    const [, seconds] = pod.spec.containers[0].lifecycle?.preStop?.exec?.command ?? [];
    expect(Number(seconds)).toBeGreaterThan(0);
    expect(Number(seconds)).toBeLessThan(pod.spec.terminationGracePeriodSeconds ?? 30);
  }
});

test('the ci folder has values files of both modes', () => {
  expect(DISTRIBUTED.length).toBeGreaterThanOrEqual(2);
  expect(EMBEDDED.length).toBeGreaterThanOrEqual(2);
});

describe.each(DISTRIBUTED)('distributed: %s', (valuesFile) => {
  let objects: K8sObject[];
  beforeAll(() => {
    objects = render(valuesFile);
  });

  test('one Deployment per service, running its bundle, and no StatefulSet', () => {
    expect(ofKind(objects, 'Deployment').map((d) => d.metadata.name).sort()).toEqual(SERVICES.map((s) => `${FULLNAME}-${s}`).sort());
    for (const service of SERVICES) {
      const [container] = podTemplate(find(objects, 'Deployment', `${FULLNAME}-${service}`)).spec.containers;
      expect(container.command).toEqual(serviceCommand(service, ROOT));
    }
    expect(ofKind(objects, 'StatefulSet')).toEqual([]);
  });

  test('every Lading container has probes, resources and a locked-down security context', () => {
    for (const workload of [...ofKind(objects, 'Deployment'), ...ofKind(objects, 'Job')]) {
      const pod = podTemplate(workload);
      expect(pod.spec.automountServiceAccountToken).toBe(false);
      expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
      for (const c of pod.spec.containers) {
        expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
        expect(c.resources?.requests?.memory).toBeDefined();
        expect(c.resources?.limits?.memory).toBeDefined();
        expect(c.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
        if (workload.kind === 'Job') continue;
        expect(c.startupProbe?.httpGet).toMatchObject({ path: '/healthz', port: 'http' });
        expect(c.livenessProbe?.httpGet).toMatchObject({ path: '/healthz', port: 'http' });
        expect(c.readinessProbe?.httpGet).toMatchObject({ path: '/readyz', port: 'http' });
        expect(c.ports?.map((p) => p.name).sort()).toEqual(['http', 'metrics']);
      }
    }
  });

  test("every container's variables make a valid distributed configuration, listening where the ports say", () => {
    for (const workload of [...ofKind(objects, 'Deployment'), ...ofKind(objects, 'Job')]) {
      const [container] = podTemplate(workload).spec.containers;
      const config = configOf(environmentOf(container, objects, EXISTING_SECRET));
      expect(config.mode).toBe('distributed');
      expect(config.database.url).toMatch(/^postgres(ql)?:\/\//);
      if (workload.kind === 'Job') continue;
      const ports = Object.fromEntries((container.ports ?? []).map((p) => [p.name, p.containerPort]));
      expect(config.http.addr).toBe(`0.0.0.0:${ports.http}`);
      expect(config.telemetry.metricsAddr).toBe(`0.0.0.0:${ports.metrics}`);
    }
  });

  test('the gateways reach each upstream through a Service that selects its pods, and sign what they forward', () => {
    const gateway = podTemplate(find(objects, 'Deployment', `${FULLNAME}-gateway`)).spec.containers[0];
    const config = configOf(environmentOf(gateway, objects, EXISTING_SECRET));
    for (const upstream of ['blob', 'manifest', 'auth'] as const) {
      const [url] = config.upstreams[upstream];
      const { hostname, port } = new URL(url);
      const service = find(objects, 'Service', hostname);
      expect(service.spec?.ports).toContainEqual(expect.objectContaining({ port: Number(port), targetPort: 'http' }));
      const pods = podTemplate(find(objects, 'Deployment', `${FULLNAME}-${upstream}`)).metadata.labels;
      expect(matches(service.spec?.selector as Record<string, string>, pods)).toBe(true);
      const behind = configOf(environmentOf(podTemplate(find(objects, 'Deployment', `${FULLNAME}-${upstream}`)).spec.containers[0], objects, EXISTING_SECRET));
      expect(behind.http.trustedProxies).toBe(config.http.trustedProxies + 1);
      expect(behind.upstreams.secret).toBe(config.upstreams.secret);
    }
    expect(config.upstreams.secret?.length).toBeGreaterThanOrEqual(32);
  });

  test.each([
    ['gc', "the collector's admin routes"],
    ['manifest', 'repository deletions'],
  ] as const)('the auth service reaches the %s service through a Service that selects its pods, for %s', (upstream, _purpose) => {
    const auth = configOf(environmentOf(podTemplate(find(objects, 'Deployment', `${FULLNAME}-auth`)).spec.containers[0], objects, EXISTING_SECRET));
    const [url] = auth.upstreams[upstream];
    const { hostname, port } = new URL(url);
    const service = find(objects, 'Service', hostname);
    expect(service.spec?.ports).toContainEqual(expect.objectContaining({ port: Number(port), targetPort: 'http' }));
    const pods = podTemplate(find(objects, 'Deployment', `${FULLNAME}-${upstream}`));
    expect(matches(service.spec?.selector as Record<string, string>, pods.metadata.labels)).toBe(true);
    expect(configOf(environmentOf(pods.spec.containers[0], objects, EXISTING_SECRET)).upstreams.secret).toBe(auth.upstreams.secret);
  });

  test('each Service, PDB and HPA selects or targets exactly one workload', () => {
    const workloads = ofKind(objects, 'Deployment');
    for (const pdb of ofKind(objects, 'PodDisruptionBudget')) {
      const selected = workloads.filter((w) => matches(pdb.spec?.selector?.matchLabels ?? {}, podTemplate(w).metadata.labels));
      expect(selected.map((w) => w.metadata.name)).toEqual([pdb.metadata.name]);
    }
    for (const hpa of ofKind(objects, 'HorizontalPodAutoscaler')) {
      const target = (hpa.spec?.scaleTargetRef as { kind: string; name: string }) ?? { kind: '', name: '' };
      const deployment = find(objects, target.kind, target.name);
      expect(deployment.spec?.replicas).toBeUndefined();
      expect(AUTOSCALED.map((s) => `${FULLNAME}-${s}`)).toContain(target.name);
    }
    for (const service of ofKind(objects, 'Service')) {
      const selected = workloads.filter((w) => matches(service.spec?.selector as Record<string, string>, podTemplate(w).metadata.labels));
      if (service.metadata.name === `${FULLNAME}-pods`) expect(selected).toHaveLength(SERVICES.length);
      else expect(selected).toHaveLength(1);
    }
  });
});

test.each(MIGRATING)('%s: the migration hook Job runs dist/migrate/main.cjs before install and upgrade, on a Secret that exists by then', (valuesFile) => {
  const objects = render(valuesFile);
  const job = find(objects, 'Job', `${FULLNAME}-migrate`);
  expect(job.metadata.annotations?.['helm.sh/hook']).toBe('pre-install,pre-upgrade');
  const [container] = podTemplate(job).spec.containers;
  expect(container.command).toEqual(['node', 'dist/migrate/main.cjs']);
  const secretName = container.envFrom?.find((s) => s.secretRef)?.secretRef?.name;
  const secret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === secretName);
  // Either a hook Secret made before the Job (a lower weight), or the user's own.
  if (secret) expect(Number(secret.metadata.annotations?.['helm.sh/hook-weight'])).toBeLessThan(Number(job.metadata.annotations?.['helm.sh/hook-weight']));
  else expect(secretName).toBe('lading-settings');
});

test('without migrations.job the distributed render has no Job', () => {
  expect(ofKind(render('distributed-no-migrations-values.yaml'), 'Job')).toEqual([]);
});

test('HPAs exist for the gateways and the blob service only, and leave the replica count to themselves', () => {
  const objects = render('distributed-values.yaml');
  expect(ofKind(objects, 'HorizontalPodAutoscaler').map((h) => h.metadata.name).sort()).toEqual(AUTOSCALED.map((s) => `${FULLNAME}-${s}`).sort());
  expect(ofKind(objects, 'PodDisruptionBudget')).toHaveLength(SERVICES.length);
});

test('the ServiceMonitor scrapes the metrics port of the headless Service of every pod', () => {
  const objects = render('distributed-full-values.yaml');
  const monitor = find(objects, 'ServiceMonitor', FULLNAME);
  const spec = monitor.spec as unknown as { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string }[] };
  const selected = ofKind(objects, 'Service').filter((s) => matches(spec.selector.matchLabels, s.metadata.labels ?? {}));
  expect(selected.map((s) => s.metadata.name)).toEqual([`${FULLNAME}-pods`]);
  expect(selected[0].spec?.ports).toContainEqual(expect.objectContaining({ name: spec.endpoints[0].port }));
  expect(spec.endpoints[0].path).toBe('/metrics');
});

test('with network policies, blob and auth take API connections from the gateways alone, manifest from the gateways and auth, gc from auth alone', () => {
  const objects = render('distributed-full-values.yaml');
  type Rule = { ports: { port: string }[]; from?: { podSelector?: { matchLabels: Record<string, string> } }[] };
  const policies = ofKind(objects, 'NetworkPolicy');
  expect(policies.map((p) => p.metadata.name).sort()).toEqual(SERVICES.map((s) => `${FULLNAME}-${s}`).sort());
  const gatewayPods = podTemplate(find(objects, 'Deployment', `${FULLNAME}-gateway`)).metadata.labels;
  const authPods = podTemplate(find(objects, 'Deployment', `${FULLNAME}-auth`)).metadata.labels;
  for (const policy of policies) {
    const spec = policy.spec as unknown as { podSelector: { matchLabels: Record<string, string> }; ingress: Rule[] };
    const selected = ofKind(objects, 'Deployment').filter((d) => matches(spec.podSelector.matchLabels, podTemplate(d).metadata.labels));
    expect(selected.map((d) => d.metadata.name)).toEqual([policy.metadata.name]);
    const api = spec.ingress.filter((rule) => rule.ports.some((p) => p.port === 'http'));
    const component = policy.metadata.name.slice(FULLNAME.length + 1);
    if (component === 'manifest') {
      expect(api).toHaveLength(1);
      const peers = api[0].from?.map((peer) => peer.podSelector?.matchLabels ?? { none: 'none' }) ?? [];
      expect(peers.map((labels) => [matches(labels, gatewayPods), matches(labels, authPods)])).toEqual([[true, false], [false, true]]);
    } else if (['blob', 'auth'].includes(component)) {
      expect(api).toHaveLength(1);
      expect(api[0].from?.map((peer) => matches(peer.podSelector?.matchLabels ?? { none: 'none' }, gatewayPods))).toEqual([true]);
    } else if (component === 'gc') {
      expect(api).toHaveLength(1);
      expect(api[0].from?.map((peer) => matches(peer.podSelector?.matchLabels ?? { none: 'none' }, authPods))).toEqual([true]);
    } else if (component === 'gateway') expect(api).toHaveLength(1);
    else expect(api).toEqual([]);
    expect(spec.ingress.filter((rule) => rule.ports.some((p) => p.port === 'metrics'))).toHaveLength(1);
  }
});

test('a generated upstreams secret and secrets key are valid, and given ones are used as given', () => {
  const minimal = render('distributed-values.yaml');
  const generated = configOf(environmentOf(podTemplate(find(minimal, 'Deployment', `${FULLNAME}-auth`)).spec.containers[0], minimal));
  expect(generated.secrets.key).toBeDefined();
  expect(generated.upstreams.secret).toMatch(/^[A-Za-z0-9]{48}$/);
  const objects = render('distributed-full-values.yaml');
  const given = configOf(environmentOf(podTemplate(find(objects, 'Deployment', `${FULLNAME}-auth`)).spec.containers[0], objects));
  expect(given.secrets.key).toBe('MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=');
  expect(given.upstreams.secret).toBe('an-upstreams-secret-of-at-least-32-characters');
  expect(given.admin).toMatchObject({ user: 'admin', password: 'a long admin password' });
});

describe.each(EMBEDDED)('embedded: %s', (valuesFile) => {
  let objects: K8sObject[];
  beforeAll(() => {
    objects = render(valuesFile);
  });

  test('one StatefulSet of one replica runs the registry as `npm start` does, and nothing else runs', () => {
    expect(ofKind(objects, 'Deployment')).toEqual([]);
    expect(ofKind(objects, 'Job')).toEqual([]);
    expect(ofKind(objects, 'HorizontalPodAutoscaler')).toEqual([]);
    const [set] = ofKind(objects, 'StatefulSet');
    expect(ofKind(objects, 'StatefulSet')).toHaveLength(1);
    expect(set.spec?.replicas).toBe(1);
    const [container] = podTemplate(set).spec.containers;
    expect(container.command).toEqual(startCommand(ROOT));
  });

  test('its variables make a valid embedded configuration whose data directory is the mounted volume', () => {
    const set = ofKind(objects, 'StatefulSet')[0];
    const pod = podTemplate(set);
    const config = configOf(environmentOf(pod.spec.containers[0], objects));
    expect(config.mode).toBe('embedded');
    expect(config.data.dir).toBe('/data');
    expect(pod.spec.containers[0].volumeMounts).toContainEqual({ name: 'data', mountPath: '/data' });
    const claims = (set.spec?.volumeClaimTemplates as { metadata: { name: string } }[] | undefined) ?? [];
    const volumes = pod.spec.volumes ?? [];
    // The data volume comes from exactly one place: the claim template, an existing claim, or an emptyDir.
    expect([...claims.map((c) => c.metadata.name), ...volumes.map((v) => v.name)].filter((n) => n === 'data')).toHaveLength(1);
    expect(pod.spec.containers[0].securityContext).toMatchObject({ readOnlyRootFilesystem: true });
  });
});

test('the embedded registry cannot be given more than one replica', () => {
  expect(() => render('embedded-values.yaml', 'embedded.replicas=2')).toThrow(/replicas/);
});

describe('pull-through caches (proxies, mirror)', () => {
  /** The configuration a Lading container starts with: its LADING_CONFIG file (from its mounted Secret), then its variables. */
  function startingConfig(workload: K8sObject, objects: K8sObject[], existing?: Record<string, string>): LadingConfig {
    const pod = podTemplate(workload);
    const env = environmentOf(pod.spec.containers[0], objects, existing);
    const file = env.LADING_CONFIG;
    if (!file) return configOf(env);
    const mount = pod.spec.containers[0].volumeMounts?.find((m) => file.startsWith(`${m.mountPath}/`));
    const volume = (pod.spec.volumes as { name: string; secret?: { secretName: string } }[] | undefined)?.find((v) => v.name === mount?.name);
    const secret = find(objects, 'Secret', volume?.secret?.secretName ?? '(no secret volume)');
    const text = (secret as K8sObject & { stringData?: Record<string, string> }).stringData?.[path.basename(file)] ?? '';
    return parseConfig(applyEnv(parseDocument(text).toJS() as Record<string, unknown>, env));
  }

  test.each([
    ['distributed-full-values.yaml', EXISTING_SECRET],
    ['embedded-full-values.yaml', undefined],
  ] as const)('%s: every Lading process reads the proxies and mirror from one mounted configuration file', (valuesFile, existing) => {
    const objects = render(valuesFile);
    const workloads = [...ofKind(objects, 'Deployment'), ...ofKind(objects, 'StatefulSet')];
    expect(workloads.length).toBeGreaterThan(0);
    for (const workload of workloads) {
      const config = startingConfig(workload, objects, existing);
      expect(config.proxies.map((p) => [p.namespace, p.upstream])).toEqual([
        ['hub', 'https://registry-1.docker.io'],
        ['ghcr', 'https://ghcr.io'],
      ]);
      expect(config.proxies[0]).toMatchObject({ username: 'puller', password: 'a-docker-hub-access-token', tagTtl: '10m', evictAfter: '30d' });
      expect(config.mirror.namespace).toBe('hub');
      // A changed file rolls the pods.
      expect(workload.spec?.template?.metadata).toBeDefined();
      expect((podTemplate(workload).metadata as { annotations?: Record<string, string> }).annotations?.['checksum/config']).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  test('without proxies or a mirror there is no configuration file, volume or LADING_CONFIG', () => {
    const objects = render('distributed-values.yaml');
    expect(objects.filter((o) => o.kind === 'Secret' && o.metadata.name.endsWith('-config'))).toEqual([]);
    for (const workload of ofKind(objects, 'Deployment')) {
      const pod = podTemplate(workload);
      expect(pod.spec.containers[0].env?.map((v) => v.name)).not.toContain(CONFIG_FILE_ENV);
      expect(pod.spec.volumes?.map((v) => v.name)).not.toContain('config');
    }
  });
});
