/**
 * The scan report and its OCI artifact: the report JSON is the artifact's one layer, the config is the empty
 * descriptor, and the `subject` is the scanned image, so the registry lists the report in the image's referrers
 * (`GET /v2/<name>/referrers/<digest>`, `oras discover`).
 */
import { digestOf } from '@lading/oci';
import type { ConfigFindings } from './config-inspector';
import type { LayerFindings, PackageDatabase } from './layer-inspector';
import type { Descriptor } from '@lading/client';

/** The artifact type (and layer media type) of a scan report. */
export const SCAN_REPORT_TYPE = 'application/vnd.lading.scan.report.v1+json';

/** The OCI empty descriptor's media type and content (`{}`), used as the config of artifacts. */
export const EMPTY_CONFIG = {
  mediaType: 'application/vnd.oci.empty.v1+json',
  bytes: Buffer.from('{}'),
} as const;

/** The scanner's name, as it signs its reports. */
export const SCANNER_NAME = 'lading-example-scanner';

/** What one layer's entry of the report says. */
export interface LayerReport {
  digest: string;
  mediaType: string;
  size: number;
  /** What the layer holds; null when it could not be read (then `error` says why). */
  findings: LayerFindings | null;
  error?: string;
}

/** A finding worth a person's attention, one line each. */
export interface Finding {
  severity: 'high' | 'medium' | 'low' | 'info';
  message: string;
}

/** The report, as stored in the artifact's layer. */
export interface ScanReport {
  reportVersion: 1;
  scanner: { name: string; version: string };
  image: { repository: string; digest: string; mediaType: string; size: number };
  scannedAt: string;
  /** The event that caused the scan (its CloudEvents id), for tracing a report back to a push. */
  eventId: string | null;
  config: ConfigFindings;
  layers: LayerReport[];
  summary: {
    files: number;
    totalFileBytes: number;
    setuidFiles: string[];
    worldWritable: string[];
    /** The package databases of the image as run: a database in an upper layer replaces a lower one's. */
    packageDatabases: PackageDatabase[];
    unreadableLayers: number;
  };
  findings: Finding[];
}

/** The manifest's digest and bytes, ready to push. */
export interface ReportArtifact {
  manifest: Buffer;
  manifestDigest: string;
  report: Buffer;
  reportDigest: string;
}

const sha256 = (bytes: Buffer) => digestOf(bytes);

/** The digest of the empty config blob. */
export const EMPTY_CONFIG_DIGEST = sha256(EMPTY_CONFIG.bytes);

/** Sums the layers into what the image as a whole contains, and lists the findings. */
export function summarise(config: ConfigFindings, layers: LayerReport[]): Pick<ScanReport, 'summary' | 'findings'> {
  const databases = new Map<string, PackageDatabase>();
  const setuid = new Set<string>();
  const worldWritable = new Set<string>();
  let files = 0;
  let totalFileBytes = 0;
  for (const layer of layers) {
    if (!layer.findings) continue;
    files += layer.findings.files;
    totalFileBytes += layer.findings.totalFileBytes;
    for (const path of layer.findings.whiteouts.paths) databases.delete(path);
    for (const db of layer.findings.packageDatabases) databases.set(db.path, db);
    layer.findings.setuid.paths.forEach((p) => setuid.add(p));
    layer.findings.worldWritable.paths.forEach((p) => worldWritable.add(p));
  }
  const findings: Finding[] = [];
  if (config.runsAsRoot) findings.push({ severity: 'medium', message: `runs as root (User is ${config.user === '' ? 'unset' : `"${config.user}"`})` });
  for (const name of config.secretLikeEnv) findings.push({ severity: 'high', message: `environment variable ${name} looks like a credential baked into the image` });
  for (const path of setuid) findings.push({ severity: 'medium', message: `setuid file ${path}` });
  for (const path of worldWritable) findings.push({ severity: 'low', message: `world-writable ${path}` });
  const unreadableLayers = layers.filter((l) => !l.findings).length;
  if (unreadableLayers > 0) findings.push({ severity: 'info', message: `${unreadableLayers} layer(s) could not be inspected` });
  if (databases.size === 0) findings.push({ severity: 'info', message: 'no package database found (static, distroless-without-dpkg or scratch image)' });
  return {
    summary: {
      files,
      totalFileBytes,
      setuidFiles: [...setuid].sort(),
      worldWritable: [...worldWritable].sort(),
      packageDatabases: [...databases.values()],
      unreadableLayers,
    },
    findings,
  };
}

/** Builds the artifact that carries a report: an OCI image manifest whose subject is the scanned image. */
export function reportArtifact(report: ScanReport, subject: Descriptor): ReportArtifact {
  const reportBytes = Buffer.from(JSON.stringify(report, null, 2));
  const reportDigest = sha256(reportBytes);
  const counts = { high: 0, medium: 0, low: 0, info: 0 };
  for (const f of report.findings) counts[f.severity]++;
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: SCAN_REPORT_TYPE,
      config: { mediaType: EMPTY_CONFIG.mediaType, digest: EMPTY_CONFIG_DIGEST, size: EMPTY_CONFIG.bytes.length, data: EMPTY_CONFIG.bytes.toString('base64') },
      layers: [{ mediaType: SCAN_REPORT_TYPE, digest: reportDigest, size: reportBytes.length, annotations: { 'org.opencontainers.image.title': 'scan-report.json' } }],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
      annotations: {
        'org.opencontainers.image.created': report.scannedAt,
        'io.lading.scan.scanner': `${report.scanner.name}/${report.scanner.version}`,
        'io.lading.scan.findings': `high=${counts.high},medium=${counts.medium},low=${counts.low}`,
      },
    }),
  );
  return { manifest, manifestDigest: sha256(manifest), report: reportBytes, reportDigest };
}
