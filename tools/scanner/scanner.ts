/**
 * The scanner's reaction to one event: for a pushed image manifest, fetch the manifest, its config and its layers
 * through the registry's API, inspect them, and push the report back as an OCI artifact whose subject is the
 * image. Events arrive at least once, so a report already attached to the image (found with the referrers API,
 * which survives restarts and is shared by every replica) means there is nothing to do.
 */
import { EVENT_TYPES, LadingEvent } from '@lading/events';
import { MANIFEST_KINDS, NON_DISTRIBUTABLE_LAYER_TYPES } from '@lading/oci';
import { inspectConfig } from './config-inspector';
import { LayerUnreadableError, inspectLayer } from './layer-inspector';
import { Descriptor, RegistryClient, RegistryError, expectAnswer } from '@lading/client';
import { EMPTY_CONFIG, EMPTY_CONFIG_DIGEST, LayerReport, SCANNER_NAME, SCAN_REPORT_TYPE, ScanReport, reportArtifact, summarise } from './scan-report';

/** The scanner's version, written into every report. */
export const SCANNER_VERSION = '1';

/** Configs of runnable images; any other config type is an artifact (a Helm chart, a WASM module, ...). */
const IMAGE_CONFIG_TYPES = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);

/** An image config is JSON of a few KiB; refuse to hold anything absurd. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** What the scanner did with an event. */
export type ScanOutcome =
  | { action: 'reported'; repository: string; digest: string; reportDigest: string; report: ScanReport }
  | { action: 'already-reported'; repository: string; digest: string }
  | { action: 'skipped'; reason: string };

/** Where the scanner writes its log lines. */
export type ScannerLog = (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;

/** What the scanner needs. */
export interface ScannerDeps {
  registry: RegistryClient;
  now: () => Date;
  log: ScannerLog;
}

/** The scanner. */
export interface Scanner {
  /**
   * Handles one event. Resolves with what it did once any report is stored in the registry; rejects on a failure
   * worth retrying (the registry unreachable or answering 5xx), so the caller must not commit the event's offset.
   */
  handle(event: LadingEvent): Promise<ScanOutcome>;
}

/** Why an event is not a scan request, or null when it is one: a pushed image manifest, not an artifact. */
export function reasonToSkip(event: LadingEvent): string | null {
  if (event.type !== EVENT_TYPES.manifestPushed) return `not a manifest push (${event.type})`;
  const data = event.data;
  if (!data?.repository || !data.digest) return 'the event names no manifest';
  const kind = data.mediaType ? MANIFEST_KINDS[data.mediaType] : undefined;
  // An index's children are pushed (and announced) one by one before it, so each is scanned on its own.
  if (kind === 'index') return 'an index (its image manifests are scanned one by one)';
  if (kind !== 'image') return `not an image manifest (${data.mediaType})`;
  // The registry reports a plain image's config media type as its artifact type (the referrers API's rule).
  if (data.artifactType && !IMAGE_CONFIG_TYPES.has(data.artifactType)) return `an artifact (${data.artifactType})`;
  if (data.subject) return 'attached to another manifest (a referrer, not an image to run)';
  return null;
}

/** Creates the scanner. */
export function createScanner(deps: ScannerDeps): Scanner {
  const { registry, log } = deps;

  async function inspectLayers(repository: string, layers: Descriptor[]): Promise<LayerReport[]> {
    const reports: LayerReport[] = [];
    for (const layer of layers) {
      const base = { digest: layer.digest, mediaType: layer.mediaType, size: layer.size };
      if (NON_DISTRIBUTABLE_LAYER_TYPES.has(layer.mediaType)) {
        reports.push({ ...base, findings: null, error: 'a foreign layer: the registry does not hold it' });
        continue;
      }
      try {
        reports.push({ ...base, findings: await inspectLayer(await registry.openBlob(repository, layer.digest)) });
      } catch (err) {
        // An unreadable layer is a fact about the image, reported; anything else (the network) is retried.
        if (!(err instanceof LayerUnreadableError)) throw err;
        reports.push({ ...base, findings: null, error: err.message });
      }
    }
    return reports;
  }

  return {
    async handle(event) {
      const skip = reasonToSkip(event);
      if (skip) return { action: 'skipped', reason: skip };
      const repository = event.data.repository;
      const digest = event.data.digest as string;

      if ((await registry.referrers(repository, digest, SCAN_REPORT_TYPE)).length > 0) {
        log('info', 'already reported', { repository, digest, eventId: event.id });
        return { action: 'already-reported', repository, digest };
      }

      let manifest: { bytes: Buffer; mediaType: string };
      try {
        manifest = await registry.readManifest(repository, digest);
      } catch (err) {
        if (err instanceof RegistryError && err.status === 404) return { action: 'skipped', reason: 'the manifest is gone (deleted since the push)' };
        throw err;
      }
      const doc = JSON.parse(manifest.bytes.toString('utf8')) as { mediaType?: string; config?: Descriptor; layers?: Descriptor[] };
      if (!doc.config || !IMAGE_CONFIG_TYPES.has(doc.config.mediaType)) return { action: 'skipped', reason: `not an image (config ${doc.config?.mediaType})` };

      const configDoc = JSON.parse((await registry.readBlob(repository, doc.config.digest, MAX_CONFIG_BYTES)).toString('utf8')) as unknown;
      const config = inspectConfig(configDoc);
      const layers = await inspectLayers(repository, doc.layers ?? []);
      const subject: Descriptor = { mediaType: doc.mediaType ?? manifest.mediaType, digest, size: manifest.bytes.length };
      const report: ScanReport = {
        reportVersion: 1,
        scanner: { name: SCANNER_NAME, version: SCANNER_VERSION },
        image: { repository, digest, mediaType: subject.mediaType, size: subject.size },
        scannedAt: deps.now().toISOString(),
        eventId: event.id ?? null,
        config,
        layers,
        ...summarise(config, layers),
      };
      const artifact = reportArtifact(report, subject);
      await registry.ensureBlob(repository, { digest: EMPTY_CONFIG_DIGEST, data: EMPTY_CONFIG.bytes });
      await registry.ensureBlob(repository, { digest: artifact.reportDigest, data: artifact.report });
      const put = await registry.putManifest(repository, artifact.manifestDigest, { mediaType: 'application/vnd.oci.image.manifest.v1+json', body: artifact.manifest });
      expectAnswer(put, 201, `PUT manifest ${repository}:${artifact.manifestDigest}`);
      log('info', 'reported', { repository, digest, report: artifact.manifestDigest, findings: report.findings.length, eventId: event.id });
      return { action: 'reported', repository, digest, reportDigest: artifact.manifestDigest, report };
    },
  };
}
