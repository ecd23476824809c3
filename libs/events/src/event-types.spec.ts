import { EVENT_CATALOGUE, EVENT_TYPES, EventFieldsOf, eventDataSchema, ladingEventSchema } from './event-types';
import type { EventContext, NewEvent } from './outbox';

const context: EventContext = { actor: { name: null, type: 'anonymous' }, request: null };
const digest = `sha256:${'a'.repeat(64)}`;
const manifestType = 'application/vnd.oci.image.manifest.v1+json';

describe('the event catalogue', () => {
  it('defines every event type once', () => {
    expect(Object.keys(EVENT_CATALOGUE)).toEqual(Object.values(EVENT_TYPES));
  });

  it("types what a caller gives from each type's definition (checked by the typecheck: each @ts-expect-error must fail)", () => {
    const valid: NewEvent[] = [
      { type: EVENT_TYPES.repositoryCreated, repository: 'r', subject: 'r', context },
      { type: EVENT_TYPES.blobDeleted, repository: 'r', subject: `r@${digest}`, context, data: { digest } },
      { type: EVENT_TYPES.tagUpdated, repository: 'r', subject: 'r:v1', context, data: { digest, mediaType: manifestType, size: 2, tag: 'v1', previousDigest: null } },
    ];
    const invalid: NewEvent[] = [
      // @ts-expect-error a tag.updated names its tag
      { type: EVENT_TYPES.tagUpdated, repository: 'r', subject: 'r:v1', context, data: { digest, mediaType: manifestType, size: 2 } },
      // @ts-expect-error a blob.uploaded is application/octet-stream
      { type: EVENT_TYPES.blobUploaded, repository: 'r', subject: `r@${digest}`, context, data: { digest, size: 2, mediaType: manifestType } },
      // @ts-expect-error only manifest.pushed carries references
      { type: EVENT_TYPES.manifestDeleted, repository: 'r', subject: `r@${digest}`, context, data: { digest, mediaType: manifestType, size: 2, references: [{ mediaType: manifestType, digest, size: 2 }] } },
      // @ts-expect-error a manifest.pushed needs its data
      { type: EVENT_TYPES.manifestPushed, repository: 'r', subject: `r@${digest}`, context },
    ];
    const tagDeleted: EventFieldsOf<typeof EVENT_TYPES.tagDeleted> = { tag: 'v1', digest };
    expect(valid.length + invalid.length).toBe(7);
    expect(tagDeleted.tag).toBe('v1');
  });

  it('parses, with the zod schemas themselves, a record as the outbox writes it, and refuses a broken one', () => {
    const data = {
      repository: 'team/app',
      namespace: 'team',
      digest,
      mediaType: manifestType,
      artifactType: null,
      size: 2,
      tag: 'v1',
      previousDigest: null,
      references: [],
      subject: null,
      fromRepository: null,
      proxy: null,
      actor: { name: 'ci', type: 'robot' },
      request: { id: 'req-1', addr: '10.0.0.1', method: 'PUT', useragent: 'test' },
    };
    const event = {
      specversion: '1.0',
      id: '0193a2c4-5e6f-7abc-8def-0123456789ab',
      source: '//registry.test/lading/manifest',
      type: EVENT_TYPES.tagUpdated,
      subject: 'team/app:v1',
      time: '2026-11-23T16:45:36.123Z',
      datacontenttype: 'application/json',
      partitionkey: 'team/app',
      sequence: '00000000000000000001',
      data,
    };
    expect(ladingEventSchema.safeParse(event).success).toBe(true);
    expect(eventDataSchema.safeParse({ ...data, surprise: 1 }).success).toBe(false);
    expect(ladingEventSchema.safeParse({ ...event, sequence: '1' }).success).toBe(false);
  });
});
