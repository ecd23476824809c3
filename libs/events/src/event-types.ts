/**
 * The event catalogue: every event type the registry emits and the shape of its record (CloudEvents 1.0), defined
 * once, in zod. The TypeScript types below are inferred from these schemas, so the code that builds events is
 * checked against the same definition that `tools/events/write-schemas.ts` turns into the published JSON Schemas
 * of `docs/events/` (`npm run events:schemas`); a spec fails when the committed files differ from it.
 */
import { z } from 'zod';
import { MAX_NAME_LENGTH, MEDIA_TYPE_GRAMMAR } from '@lading/oci';

/** Every event type, versioned by its name; consumers match on these strings. */
export const EVENT_TYPES = {
  manifestPushed: 'io.lading.manifest.pushed',
  manifestDeleted: 'io.lading.manifest.deleted',
  tagUpdated: 'io.lading.tag.updated',
  tagDeleted: 'io.lading.tag.deleted',
  blobUploaded: 'io.lading.blob.uploaded',
  blobMounted: 'io.lading.blob.mounted',
  blobDeleted: 'io.lading.blob.deleted',
  repositoryCreated: 'io.lading.repository.created',
  /** An admin deleted a repository (`DELETE /admin/v1/repositories/<name>`): one event for everything it held. */
  repositoryDeleted: 'io.lading.repository.deleted',
  referrerAttached: 'io.lading.referrer.attached',
} as const;

/** One of the registry's event types. */
export type EventType = (typeof EVENT_TYPES)[keyof typeof EVENT_TYPES];

/** What the catalogue attaches to a schema: `id` names a schema of its own (a file, or a `$defs` entry of data.schema.json). */
export interface EventSchemaMeta {
  id?: string;
  title?: string;
  description?: string;
  [keyword: string]: unknown;
}

/** The registry of the catalogue's schemas and their documentation, which the JSON Schema generator reads. */
export const EVENT_SCHEMA_REGISTRY = z.registry<EventSchemaMeta>();

/** Registers a schema's documentation (and `id`) in the catalogue's registry; returns the schema. */
function documented<S extends z.ZodType>(schema: S, meta: EventSchemaMeta): S {
  EVENT_SCHEMA_REGISTRY.add(schema, meta as never); // `add` types its metadata per schema; ours is the same for all
  return schema;
}

// The OCI grammars, as in libs/oci (reference.ts, digest.ts), unanchored so that subjects can combine them.
const NAME_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const REPOSITORY_GRAMMAR = `${NAME_COMPONENT}(?:/${NAME_COMPONENT})*`;
const DIGEST_GRAMMAR = '[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+';
const TAG_GRAMMAR = '[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}';
const anchored = (grammar: string) => new RegExp(`^${grammar}$`);

/** A repository name. */
export const repositorySchema = documented(z.string().max(MAX_NAME_LENGTH).regex(anchored(REPOSITORY_GRAMMAR)), {
  id: 'repository',
  description: 'A repository name (OCI distribution grammar).',
});
/** A content digest. */
export const digestSchema = documented(z.string().regex(anchored(DIGEST_GRAMMAR)), { id: 'digest', description: 'A content digest, algorithm:encoded.' });
/** A tag. */
export const tagSchema = documented(z.string().regex(anchored(TAG_GRAMMAR)), { id: 'tag' });
/** A media type. */
export const mediaTypeSchema = documented(z.string().regex(MEDIA_TYPE_GRAMMAR), { id: 'mediaType' });
const sizeSchema = z.int().min(0);
/** A content descriptor as carried in events. */
export const descriptorSchema = documented(
  z.strictObject({ mediaType: mediaTypeSchema, digest: digestSchema, size: sizeSchema, artifactType: mediaTypeSchema.optional() }),
  { id: 'descriptor' },
);

/** Who caused a change. */
export const eventActorSchema = documented(z.strictObject({ name: z.string().nullable(), type: z.enum(['user', 'robot', 'anonymous']) }), {
  description: 'Who caused the change.',
});

/** The HTTP request that caused a change. */
export const eventRequestSchema = z.strictObject({
  id: z.string().min(1),
  addr: z.string(),
  method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']),
  useragent: z.string(),
});

/**
 * The pull-through cache a change came through: its namespace and its upstream's origin (scheme, host and port; the
 * configuration refuses credentials in the URL, and an origin cannot hold any, so an event never carries them).
 */
export const eventProxySchema = documented(
  z.strictObject({
    namespace: documented(z.string().min(1), { description: 'The proxy namespace (`proxies[].namespace`).' }),
    upstream: documented(z.string().regex(/^https?:\/\/[^/@\s]+$/), { description: "The upstream registry's origin (scheme://host[:port] of `proxies[].upstream`), never with credentials." }),
  }),
  { description: 'The pull-through cache the content entered through.' },
);

/** The `data` of every event: one canonical record, with fields null where they do not apply. */
export const eventDataSchema = documented(
  z.strictObject({
    repository: repositorySchema,
    namespace: documented(z.string(), { description: "The repository's namespace: its name up to the last '/', '' for a top-level repository." }),
    digest: documented(digestSchema.nullable(), { description: 'The manifest or blob the event is about.' }),
    mediaType: mediaTypeSchema.nullable(),
    artifactType: mediaTypeSchema.nullable(),
    size: documented(sizeSchema.nullable(), { description: 'Bytes of the manifest or blob.' }),
    tag: tagSchema.nullable(),
    previousDigest: documented(digestSchema.nullable(), { description: 'tag.updated: the manifest the tag pointed at before, null for a new tag.' }),
    references: documented(z.array(descriptorSchema), { description: "manifest.pushed: the manifest's config, layers, blobs or index children." }),
    subject: documented(descriptorSchema.nullable(), { description: "The descriptor in the manifest's `subject` field (referrers)." }),
    fromRepository: documented(repositorySchema.nullable(), { description: "blob.mounted: the repository named by the mount's `from`." }),
    proxy: documented(eventProxySchema.nullable(), {
      description:
        'Content that entered through a pull-through cache (its manifest.pushed, tag.updated, blob.uploaded, and the repository.created and referrer.attached of such a fetch): the proxy; null for everything else.',
    }),
    actor: eventActorSchema,
    request: documented(eventRequestSchema.nullable(), {
      description: "The HTTP request that caused the change; null for changes of the registry's own (the garbage collector).",
    }),
  }),
  {
    id: 'data.schema.json',
    title: 'Lading event data',
    description: "The `data` of every Lading event: one canonical record with every field present, null where it does not apply to the event's type (see the per-type schemas).",
  },
);

/** Who caused a change. */
export type EventActor = z.infer<typeof eventActorSchema>;
/** The HTTP request that caused a change. */
export type EventRequest = z.infer<typeof eventRequestSchema>;
/** The pull-through cache a change came through. */
export type EventProxy = z.infer<typeof eventProxySchema>;
/** A content descriptor as carried in events. */
export type EventDescriptor = z.infer<typeof descriptorSchema>;
/** The `data` of every event: one canonical record, with fields null where they do not apply. */
export type EventData = z.infer<typeof eventDataSchema>;

/** How an event type names what it is about in its CloudEvents `subject`. */
const SUBJECT_FORMS = {
  digest: { grammar: `${REPOSITORY_GRAMMAR}@${DIGEST_GRAMMAR}`, description: '<repository>@<digest>' },
  tag: { grammar: `${REPOSITORY_GRAMMAR}:${TAG_GRAMMAR}`, description: '<repository>:<tag>' },
  repository: { grammar: REPOSITORY_GRAMMAR, description: '<repository>' },
} as const;

/** One event type: what it means, the form of its subject, and what it guarantees of the canonical `data` fields. */
interface EventTypeDefinition {
  description: string;
  subject: keyof typeof SUBJECT_FORMS;
  /** The `data` fields this type constrains beyond the canonical record; the others keep their canonical schema. */
  data: Partial<Record<keyof EventData, z.ZodType>>;
}

const octetStream = z.literal('application/octet-stream');
const empty = z.tuple([]);
const none = z.null();
/** What an event about a manifest carries of it. */
const manifestFields = { digest: digestSchema, mediaType: mediaTypeSchema, size: sizeSchema };
/** What an event about a blob linked into the repository carries: no manifest's fields. */
const linkedBlobFields = { digest: digestSchema, size: sizeSchema, mediaType: octetStream, artifactType: none, tag: none, previousDigest: none, references: empty, subject: none };
/** What an event about the repository itself carries: nothing but the repository. */
const repositoryOnly = { digest: none, mediaType: none, artifactType: none, size: none, tag: none, previousDigest: none, references: empty, subject: none, fromRepository: none };

/** Every event type's definition, in the order of `EVENT_TYPES`. */
export const EVENT_CATALOGUE = {
  [EVENT_TYPES.manifestPushed]: {
    description:
      'A manifest (image, index or artifact) was stored in a repository, by tag or by digest. Fires once per new (repository, digest); pushing the same bytes again fires only tag.updated for a new tag.',
    subject: 'digest',
    data: {
      ...manifestFields,
      artifactType: mediaTypeSchema.nullable(),
      tag: documented(tagSchema.nullable(), { description: 'The tag it was pushed by (the first when several), null for a push by digest.' }),
      previousDigest: none,
      fromRepository: none,
      references: z.array(descriptorSchema),
      subject: descriptorSchema.nullable(),
    },
  },
  [EVENT_TYPES.manifestDeleted]: {
    description:
      'A manifest was deleted, by a client (DELETE by digest) or by the garbage collector. Its tags go first, each with a tag.deleted.',
    subject: 'digest',
    data: { ...manifestFields, tag: none, previousDigest: none, references: empty, subject: none, fromRepository: none, proxy: none },
  },
  [EVENT_TYPES.tagUpdated]: {
    description: 'A tag now points at a manifest: created, or moved from previousDigest. Not fired when a push leaves the tag where it was.',
    subject: 'tag',
    data: { ...manifestFields, tag: tagSchema, previousDigest: digestSchema.nullable(), references: empty, subject: none, fromRepository: none },
  },
  [EVENT_TYPES.tagDeleted]: {
    description:
      'A tag was removed, by a client (DELETE by tag), with its manifest (DELETE by digest), or by a retention rule. Carries the tag and the digest it pointed at.',
    subject: 'tag',
    data: { digest: digestSchema, tag: tagSchema, previousDigest: none, references: empty, subject: none, fromRepository: none, proxy: none },
  },
  [EVENT_TYPES.blobUploaded]: {
    description: 'An upload completed: the blob is stored and linked into the repository (monolithic, chunked or streamed).',
    subject: 'digest',
    data: { ...linkedBlobFields, fromRepository: none },
  },
  [EVENT_TYPES.blobMounted]: {
    description:
      'A blob already stored was linked into the repository by a cross-repository mount; fromRepository names the source when the client gave one (null for a mount without `from`).',
    subject: 'digest',
    data: { ...linkedBlobFields, fromRepository: repositorySchema.nullable(), proxy: none },
  },
  [EVENT_TYPES.blobDeleted]: {
    description:
      "A repository lost a blob: a client's DELETE (digest only) or the garbage collector (digest, size and media type, one event per repository that lost it).",
    subject: 'digest',
    data: {
      digest: digestSchema,
      size: sizeSchema.nullable(),
      mediaType: octetStream.nullable(),
      artifactType: none,
      tag: none,
      previousDigest: none,
      references: empty,
      subject: none,
      fromRepository: none,
      proxy: none,
    },
  },
  [EVENT_TYPES.repositoryCreated]: {
    description: 'The first write to a repository name created it (an upload, a mount or a manifest push). Always the repository\'s first event (sequence 1).',
    subject: 'repository',
    data: repositoryOnly,
  },
  [EVENT_TYPES.repositoryDeleted]: {
    description:
      "An admin deleted the repository with everything it held (`DELETE /admin/v1/repositories/<name>`): its tags, manifests, blob links and upload sessions. The one event of the deletion (no tag.deleted or manifest.deleted per item): a consumer drops all it knows of the repository. The repository's last event; a repository of the same name pushed later starts a new sequence with repository.created.",
    subject: 'repository',
    data: { ...repositoryOnly, proxy: none },
  },
  [EVENT_TYPES.referrerAttached]: {
    description:
      "A manifest with a `subject` was pushed: it now appears in the subject's referrers list. Fired right after that manifest's manifest.pushed; the event's subject names the subject manifest.",
    subject: 'digest',
    data: {
      ...manifestFields,
      artifactType: mediaTypeSchema.nullable(),
      subject: descriptorSchema,
      tag: none,
      previousDigest: none,
      references: empty,
      fromRepository: none,
    },
  },
} as const satisfies Record<EventType, EventTypeDefinition>;

/** The file name of an event type's schema in `docs/events/`. */
export const eventTypeSchemaId = (type: EventType | AuditEventType): string => `${type}.schema.json`;

/**
 * What an event of one type adds to the envelope: its `type`, the form of its `subject`, and its `data` fields'
 * stricter schemas. Loose and partial objects: they apply on top of the envelope, which requires every field.
 */
function eventTypeOverlay(type: EventType) {
  const definition: EventTypeDefinition = EVENT_CATALOGUE[type];
  const subject = SUBJECT_FORMS[definition.subject];
  return documented(
    z.looseObject({
      type: z.literal(type),
      subject: documented(z.string().regex(anchored(subject.grammar)), { description: subject.description }),
      data: z.looseObject(definition.data).partial(),
    }).partial(),
    { id: eventTypeSchemaId(type), title: type, description: `${definition.description} What an event of this type adds to the envelope (cloudevent.schema.json).` },
  );
}

/** Every event type's overlay schema, in the order of `EVENT_TYPES`. */
export const EVENT_TYPE_SCHEMAS = Object.fromEntries(Object.values(EVENT_TYPES).map((type) => [type, eventTypeOverlay(type)])) as Record<
  EventType,
  ReturnType<typeof eventTypeOverlay>
>;

/** The UUIDv7 of an outbox row. */
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** A W3C `traceparent` (version-traceid-parentid-flags, lowercase hex, ids not all zero, version not ff). */
export const TRACEPARENT_GRAMMAR = /^(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;

/** A registry event as a CloudEvents 1.0 record, with Lading's extensions; each type's overlay applies on top. */
export const ladingEventSchema = documented(
  z.strictObject({
    specversion: z.literal('1.0'),
    id: documented(z.string().regex(UUID_V7), { description: "Stable forever: the outbox row's UUIDv7; a re-delivery carries the same id, so consumers dedupe by it." }),
    source: documented(z.string().regex(/^\/\/[^/\s]+\/lading\/[a-z]+$/), { description: '//<registry host>/lading/<service>', format: 'uri-reference' }),
    type: z.enum(Object.values(EVENT_TYPES) as [EventType, ...EventType[]]),
    subject: z.string().min(1),
    time: documented(z.string(), { description: 'When the change was made (RFC 3339, UTC).', format: 'date-time' }),
    datacontenttype: z.literal('application/json'),
    partitionkey: documented(repositorySchema.clone(), {
      description: 'CloudEvents partitioning extension: the repository (also the Kafka record key). Equals data.repository.',
    }),
    sequence: documented(z.string().regex(/^[0-9]{20}$/), {
      description: "CloudEvents sequence extension: the event's number within its repository, from 1, without gaps, zero-padded to 20 digits so that it sorts as text.",
    }),
    traceparent: documented(z.string().regex(TRACEPARENT_GRAMMAR), {
      description: 'W3C trace context of the request that caused the change (absent when there was none).',
    }).optional(),
    data: eventDataSchema,
  }),
  {
    id: 'cloudevent.schema.json',
    title: 'Lading event',
    description:
      "A Lading registry event: a CloudEvents 1.0 record in structured JSON form (the value of a Kafka record on the events topic, content-type application/cloudevents+json), with Lading's extensions partitionkey, sequence and traceparent. Each type adds its constraints from <type>.schema.json.",
    allOf: Object.values(EVENT_TYPES).map((type) => ({
      if: { properties: { type: { const: type } }, required: ['type'] },
      then: { $ref: eventTypeSchemaId(type) },
    })),
  },
);

/** A registry event as a CloudEvents 1.0 record, with Lading's extensions. */
export type LadingEvent = z.infer<typeof ladingEventSchema>;

type Definition<T extends EventType> = (typeof EVENT_CATALOGUE)[T]['data'];

/** The `data` of an event of type `T`: the canonical record with that type's stricter fields. */
export type EventDataOf<T extends EventType> = Omit<EventData, keyof Definition<T>> & { [K in keyof Definition<T>]: z.infer<Definition<T>[K]> };

/** The fields the outbox fills itself: from the repository and the change's context (`EventContext`). */
type ContextFields = 'repository' | 'namespace' | 'actor' | 'request' | 'proxy';
/** A field the caller may leave out: its default (`null`, or `[]` for references) is valid for the type. */
type Defaulted<V> = null extends V ? true : [] extends V ? true : false;

/**
 * The `data` a caller gives for an event of type `T`: every field the type requires, the others optional (the
 * outbox fills `null` or `[]`). A tag.updated without a tag, or a blob.uploaded with a manifest's media type, does
 * not compile.
 */
export type EventFieldsOf<T extends EventType> = {
  [K in Exclude<keyof EventDataOf<T>, ContextFields> as Defaulted<EventDataOf<T>[K]> extends true ? never : K]: EventDataOf<T>[K];
} & {
  [K in Exclude<keyof EventDataOf<T>, ContextFields> as Defaulted<EventDataOf<T>[K]> extends true ? K : never]?: EventDataOf<T>[K];
};

// ---------------------------------------------------------------------------------------------------------------
// The audit trail (docs/audit.md): who logged in, which admin changed what, who pulled what. Not about one
// repository, so these records have an envelope of their own: the same CloudEvents attributes, with the partition
// key AUDIT_PARTITION_KEY (no repository can be named so) and a sequence of their own.
// They travel the same outbox and bus as the repository events, whose handlers are typed `LadingEvent`: a consumer
// must match on `type` (every one in the registry does) and can tell these by `isAuditEventType`.

/** The audit event types: what the audit trail adds to the changes of content, which have their events anyway. */
export const AUDIT_EVENT_TYPES = {
  login: 'io.lading.audit.login',
  admin: 'io.lading.audit.admin',
  pulls: 'io.lading.audit.pulls',
} as const;

/** One of the audit event types. */
export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[keyof typeof AUDIT_EVENT_TYPES];

/** The partition key (and Kafka record key) of every audit event: not a repository name, so it never shares one's order. */
export const AUDIT_PARTITION_KEY = '_audit';

/** Whether an event's type is an audit type (consumers of repository events skip these). */
export function isAuditEventType(type: string): type is AuditEventType {
  return type === AUDIT_EVENT_TYPES.login || type === AUDIT_EVENT_TYPES.admin || type === AUDIT_EVENT_TYPES.pulls;
}

const auditRequestSchema = documented(eventRequestSchema.nullable(), { description: 'The HTTP request: its id, the client address (after http.trustedProxies), method and User-Agent.' });

/** The data of `io.lading.audit.login`. */
export const auditLoginDataSchema = documented(
  z.strictObject({
    actor: documented(eventActorSchema.clone(), {
      description:
        'Who logged in: the account on success; on failure the account named when it is one, else anonymous (a name that is no account may be a password typed into the wrong field).',
    }),
    result: z.enum(['success', 'failure']),
    reason: documented(z.enum(['invalid', 'limited']).nullable(), { description: 'failure: wrong credentials, or refused by the login limits (429); null on success.' }),
    method: documented(z.enum(['password', 'token', 'robot', 'refresh']), {
      description: "What was presented: a user's password, a personal access token, a robot's secret, or a refresh token (the OAuth2 refresh_token grant). Never the secret itself.",
    }),
    request: auditRequestSchema,
  }),
  { description: 'A login attempt at the token endpoint or the admin API.' },
);

/** The data of `io.lading.audit.admin`. */
export const auditAdminDataSchema = documented(
  z.strictObject({
    actor: documented(eventActorSchema.clone(), { description: 'The admin who made the change.' }),
    action: documented(z.string().regex(/^(POST|PUT|PATCH|DELETE) \/admin\/v1\/\S*$/), { description: 'The method and route, e.g. `POST /admin/v1/users`.' }),
    target: documented(z.string(), { description: 'What the change is about: the path below /admin/v1 (`users/alice`, `webhooks/<id>`, `proxies/hub`), with the query.' }),
    status: documented(z.int().min(200).max(399), { description: "The answer's HTTP status: only changes that succeeded are recorded." }),
    before: documented(z.unknown(), { description: 'The state before the change where the route reads one (null otherwise), with every secret replaced by "[redacted]".' }),
    after: documented(z.unknown(), { description: 'What the change set: the request body and the answer, with every secret replaced by "[redacted]"; null for none.' }),
    request: auditRequestSchema,
  }),
  { description: 'A change made through the admin API.' },
);

/** One counted (principal, repository) of a pull batch. */
export const auditPullRowSchema = z.strictObject({
  actor: eventActorSchema.clone(),
  repository: repositorySchema.clone(),
  count: documented(z.int().min(1), { description: 'Manifest GETs (and HEADs) answered 200 or 304 in the window.' }),
});

/** The data of `io.lading.audit.pulls`. */
export const auditPullsDataSchema = documented(
  z.strictObject({
    windowStart: documented(z.string(), { format: 'date-time', description: 'The first pull counted (RFC 3339).' }),
    windowEnd: documented(z.string(), { format: 'date-time', description: 'When the window was written (RFC 3339).' }),
    pulls: z.array(auditPullRowSchema).min(1),
  }),
  { description: 'The manifest pulls one process served in a window of `audit.pullWindow`, counted per principal and repository.' },
);

const AUDIT_DATA = {
  [AUDIT_EVENT_TYPES.login]: auditLoginDataSchema,
  [AUDIT_EVENT_TYPES.admin]: auditAdminDataSchema,
  [AUDIT_EVENT_TYPES.pulls]: auditPullsDataSchema,
} as const;

/** The `data` of an audit event of type `T`. */
export type AuditDataOf<T extends AuditEventType> = z.infer<(typeof AUDIT_DATA)[T]>;

function auditEnvelope<T extends AuditEventType>(type: T, description: string) {
  return documented(
    z.strictObject({
      specversion: z.literal('1.0'),
      id: z.string().regex(UUID_V7),
      source: z.string().regex(/^\/\/[^/\s]+\/lading\/[a-z]+$/),
      type: z.literal(type),
      subject: documented(z.string().min(1), { description: 'The actor (`anonymous` for none), or `pulls` for a pull batch.' }),
      time: z.string(),
      datacontenttype: z.literal('application/json'),
      partitionkey: z.literal(AUDIT_PARTITION_KEY),
      sequence: documented(z.string().regex(/^[0-9]{20}$/), { description: 'The number of the audit event, increasing; may have gaps (a rolled-back change).' }),
      traceparent: z.string().regex(TRACEPARENT_GRAMMAR).optional(),
      data: AUDIT_DATA[type] as (typeof AUDIT_DATA)[T],
    }),
    { id: eventTypeSchemaId(type), title: type, description },
  );
}

/** Every audit event type's schema (a complete record: envelope and data), in the order of `AUDIT_EVENT_TYPES`. */
export const AUDIT_EVENT_SCHEMAS = {
  [AUDIT_EVENT_TYPES.login]: auditEnvelope(AUDIT_EVENT_TYPES.login, 'A login attempt, successful or not, with its client address; never the secret.'),
  [AUDIT_EVENT_TYPES.admin]: auditEnvelope(AUDIT_EVENT_TYPES.admin, 'A change through the admin API, with the values before and after it, secrets redacted.'),
  [AUDIT_EVENT_TYPES.pulls]: auditEnvelope(AUDIT_EVENT_TYPES.pulls, 'A batch of manifest pulls, counted per principal and repository over a window.'),
} as const;

/** An audit event as a CloudEvents 1.0 record. */
export const auditEventSchema = documented(z.discriminatedUnion('type', [AUDIT_EVENT_SCHEMAS[AUDIT_EVENT_TYPES.login], AUDIT_EVENT_SCHEMAS[AUDIT_EVENT_TYPES.admin], AUDIT_EVENT_SCHEMAS[AUDIT_EVENT_TYPES.pulls]]), {
  id: 'audit.schema.json',
  title: 'Lading audit event',
  description:
    'A Lading audit event (docs/audit.md): a CloudEvents 1.0 record in structured JSON form on the same topic as the other events, with the partition key `_audit`. Validate audit events with this schema, the others with cloudevent.schema.json.',
});

/** An audit event as a CloudEvents 1.0 record. */
export type AuditEvent = z.infer<typeof auditEventSchema>;
/** An audit event of type `T`. */
export type AuditEventOf<T extends AuditEventType> = Extract<AuditEvent, { type: T }>;
