/**
 * Every event the registry emits conforms to the published JSON Schemas (docs/events): drives the real embedded
 * registry through the changes that emit events and validates each record, as delivered on the bus and as stored in
 * the outbox. A negative test proves the validator refuses broken records.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { parseConfig } from '@lading/config';
import { EVENT_TYPES, EventValidator, LadingEvent, createEventSchemaValidator } from '@lading/events';
import { createLogger } from '@lading/telemetry';
import { TestBlob, TestManifest, imageIndex, imageManifest, makeBlob, makeManifest } from '@lading/testing';
import { EmbeddedRegistry, createEmbeddedRegistry } from './embedded-registry';

const logger = createLogger({ service: 'test', level: 'silent' });
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('event schemas', () => {
  let dir: string;
  let registry: EmbeddedRegistry;
  let validate: EventValidator;
  const delivered: LadingEvent[] = [];

  beforeAll(async () => {
    validate = await createEventSchemaValidator();
    dir = await mkdtemp(path.join(tmpdir(), 'lading-event-schemas-'));
    registry = await createEmbeddedRegistry(parseConfig({ data: { dir }, log: { level: 'silent', access: false } }), logger);
    await registry.bus.subscribe((event) => {
      delivered.push(event);
    });
  });
  afterAll(async () => {
    await registry.close();
    await rm(dir, { recursive: true, force: true });
  });

  const app = () => registry.app;
  const upload = async (repository: string, blob: TestBlob) =>
    request(app()).post(`/v2/${repository}/blobs/uploads/?digest=${blob.digest}`).set('Content-Type', 'application/octet-stream').send(blob.data).expect(201);
  const put = async (repository: string, reference: string, manifest: TestManifest, headers: Record<string, string> = {}) =>
    request(app()).put(`/v2/${repository}/manifests/${reference}`).set('Content-Type', manifest.mediaType).set(headers).send(manifest.body.toString()).expect(201);

  it('emits only events that conform, for pushes by tag and digest, an index, a referrer, mounts, uploads and deletes', async () => {
    // Blobs: monolithic, and chunked (POST, PATCH, PUT).
    const config = makeBlob('{"architecture":"amd64","os":"linux"}');
    const layer = makeBlob(2048);
    const layer2 = makeBlob(1024);
    await upload('team/app', config);
    await upload('team/app', layer);
    const session = await request(app()).post('/v2/team/app/blobs/uploads/').expect(202);
    const location = session.headers.location as string;
    const patched = await request(app()).patch(location).set('Content-Type', 'application/octet-stream').set('Content-Range', `0-${layer2.size - 1}`).send(layer2.data).expect(202);
    await request(app()).put(`${patched.headers.location}${patched.headers.location.includes('?') ? '&' : '?'}digest=${layer2.digest}`).expect(201);

    // Manifests: by tag (with a traceparent), by digest with ?tag=, a tag moved, an index, a referrer with a subject.
    const image = imageManifest(config, [layer]);
    const image2 = imageManifest(config, [layer2]);
    await put('team/app', 'v1', image, { traceparent: TRACEPARENT });
    await put('team/app', `${image2.digest}?tag=v2`, image2);
    await put('team/app', 'v1', image2); // moves v1: tag.updated with previousDigest
    const untagged = imageManifest(config, [layer, layer2]);
    await put('team/app', untagged.digest, untagged);
    const index = imageIndex([image, image2]);
    await put('team/app', 'multi', index);
    const empty = makeBlob('{}');
    await upload('team/app', empty);
    const sbom = makeManifest({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/vnd.example.sbom.v1+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty.digest, size: empty.size },
      layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: empty.digest, size: empty.size }],
      subject: { mediaType: image.mediaType, digest: image.digest, size: image.body.length },
    });
    await put('team/app', sbom.digest, sbom);

    // Mounts: from a named repository, and without `from`.
    await request(app()).post(`/v2/other/app/blobs/uploads/?mount=${layer.digest}&from=team/app`).expect(201);
    await request(app()).post(`/v2/third/app/blobs/uploads/?mount=${config.digest}`).expect(201);

    // Deletes: a tag, a manifest by digest (with its tags), a blob.
    await request(app()).delete('/v2/team/app/manifests/v2').expect(202);
    await request(app()).delete(`/v2/team/app/manifests/${index.digest}`).expect(202);
    await request(app()).delete(`/v2/other/app/blobs/${layer.digest}`).expect(202);

    await registry.flushEvents(); // the relay also runs on its own after each commit
    await new Promise((resolve) => setTimeout(resolve, 50)); // in-process delivery runs after publish resolves

    const stored = (await registry.db.query<{ event: LadingEvent | string }>(`SELECT event FROM outbox ORDER BY repository, sequence`)).rows.map((r) =>
      typeof r.event === 'string' ? (JSON.parse(r.event) as LadingEvent) : r.event,
    );
    expect(stored.length).toBeGreaterThanOrEqual(23);
    expect(delivered.map((e) => e.id).sort()).toEqual(stored.map((e) => e.id).sort());

    const problems = stored.flatMap((event) => validate(event).map((p) => `${event.type} ${event.subject}: ${p}`));
    expect(problems).toEqual([]);
    expect(delivered.flatMap((event) => validate(event))).toEqual([]);

    // Every other type the registry emits was exercised (repository.deleted is checked in repository-deletion.spec.ts).
    const emitted = new Set(stored.map((e) => e.type));
    expect([...emitted].sort()).toEqual(Object.values(EVENT_TYPES).filter((t) => t !== EVENT_TYPES.repositoryDeleted).sort());

    // The schema is not so loose that the records could say anything: spot-check what they carry.
    const find = (type: string, where: (e: LadingEvent) => boolean = () => true) => stored.find((e) => e.type === type && where(e));
    expect(find(EVENT_TYPES.manifestPushed, (e) => e.data.digest === image.digest)).toMatchObject({
      traceparent: TRACEPARENT,
      data: { tag: 'v1', size: image.body.length, references: [{ digest: config.digest }, { digest: layer.digest }] },
    });
    expect(find(EVENT_TYPES.manifestPushed, (e) => e.data.digest === untagged.digest)?.data.tag).toBeNull();
    expect(find(EVENT_TYPES.tagUpdated, (e) => e.data.tag === 'v1' && e.data.digest === image2.digest)?.data.previousDigest).toBe(image.digest);
    expect(find(EVENT_TYPES.referrerAttached)).toMatchObject({ subject: `team/app@${image.digest}`, data: { digest: sbom.digest, artifactType: 'application/vnd.example.sbom.v1+json' } });
    expect(find(EVENT_TYPES.blobMounted, (e) => e.partitionkey === 'other/app')?.data.fromRepository).toBe('team/app');
    expect(find(EVENT_TYPES.blobMounted, (e) => e.partitionkey === 'third/app')?.data.fromRepository).toBeNull();
    expect(find(EVENT_TYPES.tagDeleted, (e) => e.data.tag === 'multi')?.data.digest).toBe(index.digest);
    expect(find(EVENT_TYPES.blobDeleted)).toMatchObject({ partitionkey: 'other/app', data: { digest: layer.digest } });

    // Sequences: from 1, without gaps, per repository.
    for (const repository of new Set(stored.map((e) => e.partitionkey))) {
      const sequences = stored.filter((e) => e.partitionkey === repository).map((e) => Number(e.sequence));
      expect(sequences).toEqual(sequences.map((_, i) => i + 1));
    }
  });

  it('refuses broken records, so that the validation above is not vacuous', async () => {
    expect(delivered.length).toBeGreaterThan(0); // the records of the test above
    const pushed = delivered.find((e) => e.type === EVENT_TYPES.manifestPushed) as LadingEvent;
    const tagged = delivered.find((e) => e.type === EVENT_TYPES.tagUpdated) as LadingEvent;
    expect(validate(pushed)).toEqual([]);
    expect(validate(tagged)).toEqual([]);
    const broken: Array<[string, unknown]> = [
      ['manifest.pushed without a digest', { ...pushed, data: { ...pushed.data, digest: null } }],
      ['manifest.pushed without a size', { ...pushed, data: { ...pushed.data, size: null } }],
      ['manifest.pushed with a tag subject', { ...pushed, subject: 'team/app:v1' }],
      ['tag.updated without a tag', { ...tagged, data: { ...tagged.data, tag: null } }],
      ['tag.updated with a malformed previousDigest', { ...tagged, data: { ...tagged.data, previousDigest: 'nope' } }],
      ['an unknown type', { ...pushed, type: 'io.lading.manifest.exploded' }],
      ['an unpadded sequence', { ...pushed, sequence: '7' }],
      ['an unknown envelope attribute', { ...pushed, extra: true }],
      ['an unknown data field', { ...pushed, data: { ...pushed.data, surprise: 1 } }],
      ['a missing data field', { ...pushed, data: { ...pushed.data, previousDigest: undefined } }],
      ['a partitionkey that is not the repository', { ...pushed, partitionkey: 'someone/else' }],
      ['a malformed traceparent', { ...pushed, traceparent: 'not-a-trace' }],
      ['a wrong specversion', { ...pushed, specversion: '0.3' }],
      ['a time that is not RFC 3339', { ...pushed, time: 'yesterday' }],
      ['an actor of an unknown kind', { ...pushed, data: { ...pushed.data, actor: { name: 'x', type: 'alien' } } }],
      ['a repository name outside the grammar', { ...pushed, partitionkey: 'Team/App', data: { ...pushed.data, repository: 'Team/App' } }],
      ['a proxy whose upstream carries credentials', { ...pushed, data: { ...pushed.data, proxy: { namespace: 'hub', upstream: 'https://u:p@registry.example' } } }],
      ['a proxy on a type no cache fetch emits', { ...pushed, type: EVENT_TYPES.manifestDeleted, data: { ...pushed.data, artifactType: null, tag: null, references: [], proxy: { namespace: 'hub', upstream: 'https://registry.example' } } }],
    ];
    const accepted = broken.filter(([, record]) => validate(JSON.parse(JSON.stringify(record))).length === 0).map(([name]) => name);
    expect(accepted).toEqual([]);
  });
});
