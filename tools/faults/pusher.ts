/**
 * A pusher: loops making a small random image (a config and 1-3 layers of random bytes) and pushing it through the
 * load balancer, each blob by one of the three upload styles (monolithic POST ?digest=, POST + PUT, chunked PATCHes
 * with Content-Range and a final PUT). Failures caused by the faults are retried the way a careful client would:
 * an interrupted upload session is looked up (GET: 204 resumes at its Range, 404 BLOB_UPLOAD_UNKNOWN starts over),
 * a 416 while a killed replica's lease is held is retried until the lease expires. Every manifest answered 201 is
 * recorded as acknowledged; anything a correct registry must never answer is recorded as a failure.
 */
import { digestOf } from '@lading/oci';
import { TestBlob, makeBlob } from '@lading/testing';
import { HttpClient, Result, describe, errorCode, header, isRetryable, sleep } from './http';

/** A manifest the registry acknowledged with 201. */
export interface Ack {
  repository: string;
  tag: string;
  digest: string;
  mediaType: string;
  manifest: Buffer;
  blobs: Array<{ digest: string; size: number }>;
  at: number;
}

export type UploadStyle = 'monolithic' | 'post-put' | 'chunked';

/** What all pushers count together. */
export class PushStats {
  images = 0;
  acked = 0;
  abandoned = 0;
  blobs: Record<UploadStyle, number> = { monolithic: 0, 'post-put': 0, chunked: 0 };
  /** Upload sessions continued from the offset a GET reported after an error. */
  resumed = 0;
  /** Upload sessions started over after the GET answered 404 BLOB_UPLOAD_UNKNOWN. */
  restarted = 0;
  /** Sessions whose final PUT had committed although its answer was lost (GET 404, blob present). */
  committedUnanswered = 0;
  /** 416s answered while another writer's lease was held, and the longest such wait. */
  leaseWaits = 0;
  leaseWaitMaxMs = 0;
  /** Upload-status GETs that answered something other than 204, 404 BLOB_UPLOAD_UNKNOWN or 503 UNAVAILABLE. */
  badUploadStatus = 0;
  /** Leases that did not clear within the lease time. */
  stuckLeases = 0;
  /** Answers a correct registry never gives here (digest mismatch, unknown blob in a manifest, ...). */
  failures: string[] = [];

  fail(message: string): void {
    if (this.failures.length < 200) this.failures.push(message);
  }
}

/** What a pusher needs. */
export interface PusherContext {
  http: HttpClient;
  baseUrl: string;
  repository: string;
  stats: PushStats;
  acks: Ack[];
  stopping: () => boolean;
  leaseMs: number;
}

const CONFIG_TYPE = 'application/vnd.oci.image.config.v1+json';
const LAYER_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

const rand = (min: number, max: number) => min + Math.random() * (max - min);
const randInt = (min: number, max: number) => Math.floor(rand(min, max + 1));


/** A layer size between 2 KB and 1 MB, log-uniform (most small, some large). */
function layerSize(): number {
  return Math.round(2048 * Math.pow(512, Math.random()));
}

/** Stopped: the test is over and the current image is abandoned (it was never acknowledged). */
class Stopped extends Error {}
/** The current image cannot be pushed (a failure was recorded); the pusher goes on with a new one. */
class Abandon extends Error {}

/** One pusher's loop. */
export class Pusher {
  private iteration = 0;

  constructor(
    private readonly id: number,
    private readonly ctx: PusherContext,
  ) {}

  private url(path: string): string {
    return `${this.ctx.baseUrl}${path}`;
  }

  private get repo(): string {
    return this.ctx.repository;
  }

  /** Waits a little before a retry; throws Stopped when the test is over. */
  private async backoff(attempt: number): Promise<void> {
    if (this.ctx.stopping()) throw new Stopped();
    await sleep(Math.min(2000, 150 * 2 ** Math.min(attempt, 4)) * rand(0.5, 1));
    if (this.ctx.stopping()) throw new Stopped();
  }

  private call(method: string, url: string, options: { headers?: Record<string, string>; body?: Buffer } = {}): Promise<Result> {
    return this.ctx.http.call(method, url, { ...options, label: `pusher ${this.id}` });
  }

  async run(): Promise<void> {
    while (!this.ctx.stopping()) {
      this.iteration++;
      this.ctx.stats.images++;
      try {
        await this.pushImage();
      } catch (err) {
        if (err instanceof Stopped) break;
        if (err instanceof Abandon) {
          this.ctx.stats.abandoned++;
          continue;
        }
        this.ctx.stats.fail(`pusher ${this.id}: ${(err as Error)?.stack ?? err}`);
        this.ctx.stats.abandoned++;
      }
      await sleep(rand(0, 150));
    }
  }

  private async pushImage(): Promise<void> {
    const config = makeBlob(randInt(200, 2000));
    const layers = Array.from({ length: randInt(1, 3) }, () => makeBlob(layerSize()));
    for (const blob of [config, ...layers]) {
      const style = (['monolithic', 'post-put', 'chunked'] as const)[randInt(0, 2)];
      this.ctx.stats.blobs[style]++;
      if (style === 'monolithic') await this.uploadMonolithic(blob);
      else if (style === 'post-put') await this.uploadPostPut(blob);
      else await this.uploadChunked(blob);
    }
    const doc = {
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      config: { mediaType: CONFIG_TYPE, digest: config.digest, size: config.size },
      layers: layers.map((l) => ({ mediaType: LAYER_TYPE, digest: l.digest, size: l.size })),
      annotations: { 'io.lading.faults.pusher': String(this.id), 'io.lading.faults.iteration': String(this.iteration) },
    };
    const body = Buffer.from(JSON.stringify(doc));
    const digest = digestOf(body);
    const tag = `i${this.iteration}`;
    for (let attempt = 0; ; attempt++) {
      const res = await this.call('PUT', this.url(`/v2/${this.repo}/manifests/${tag}`), { headers: { 'content-type': MANIFEST_TYPE }, body });
      if (res.status === 201) {
        if (header(res, 'docker-content-digest') !== digest) {
          this.ctx.stats.fail(`manifest ${this.repo}:${tag}: Docker-Content-Digest ${header(res, 'docker-content-digest')} instead of ${digest}`);
        }
        this.ctx.acks.push({
          repository: this.repo,
          tag,
          digest,
          mediaType: MANIFEST_TYPE,
          manifest: body,
          blobs: [config, ...layers].map((b) => ({ digest: b.digest, size: b.size })),
          at: Date.now(),
        });
        this.ctx.stats.acked++;
        return;
      }
      if (isRetryable(res)) {
        await this.backoff(attempt);
        continue;
      }
      this.ctx.stats.fail(`manifest PUT ${this.repo}:${tag} answered ${describe(res)}: ${res.body.toString('utf8').slice(0, 200)}`);
      throw new Abandon();
    }
  }

  /** POST ?digest= with the whole blob. */
  private async uploadMonolithic(blob: TestBlob): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const res = await this.call('POST', this.url(`/v2/${this.repo}/blobs/uploads/?digest=${blob.digest}`), {
        headers: { 'content-type': 'application/octet-stream' },
        body: blob.data,
      });
      if (res.status === 201) return this.checkCreated(res, blob);
      if (isRetryable(res)) {
        await this.backoff(attempt);
        continue;
      }
      this.ctx.stats.fail(`monolithic POST of ${blob.size} bytes answered ${describe(res)}`);
      throw new Abandon();
    }
  }

  private checkCreated(res: Result, blob: TestBlob): void {
    if (res.status !== 0 && header(res, 'docker-content-digest') !== blob.digest) {
      this.ctx.stats.fail(`blob upload answered 201 with Docker-Content-Digest ${header(res, 'docker-content-digest')} for ${blob.digest}`);
    }
  }

  /** Opens an upload session; its absolute URL. */
  private async startSession(): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      const res = await this.call('POST', this.url(`/v2/${this.repo}/blobs/uploads/`));
      if (res.status === 202) {
        const location = header(res, 'location');
        if (!location) {
          this.ctx.stats.fail('POST upload answered 202 without Location');
          throw new Abandon();
        }
        return new URL(location, this.ctx.baseUrl).toString();
      }
      if (isRetryable(res)) {
        await this.backoff(attempt);
        continue;
      }
      this.ctx.stats.fail(`POST upload answered ${describe(res)}`);
      throw new Abandon();
    }
  }

  /**
   * After an error mid-upload: where the session stands. 204 → its offset (resume); 404 BLOB_UPLOAD_UNKNOWN →
   * 'gone' (start over). 503 UNAVAILABLE and load-balancer errors are retried; anything else is a failed check.
   */
  private async sessionState(location: string): Promise<{ offset: number; location: string } | 'gone'> {
    for (let attempt = 0; ; attempt++) {
      const res = await this.call('GET', location);
      if (res.status === 204) {
        const range = header(res, 'range') ?? '';
        const m = /^(?:bytes=)?0-(\d+)$/.exec(range);
        if (!m) {
          this.ctx.stats.badUploadStatus++;
          this.ctx.stats.fail(`upload status 204 with a malformed Range '${range}'`);
          return 'gone';
        }
        const end = Number(m[1]);
        const next = header(res, 'location');
        return { offset: end === 0 ? 0 : end + 1, location: next ? new URL(next, this.ctx.baseUrl).toString() : location };
      }
      if (res.status === 404 && errorCode(res.body) === 'BLOB_UPLOAD_UNKNOWN') return 'gone';
      const tolerated = (res.status === 0 && !res.hung) || res.status === 502 || res.status === 504 || (res.status === 503 && errorCode(res.body) === 'UNAVAILABLE');
      if (!tolerated) {
        this.ctx.stats.badUploadStatus++;
        this.ctx.stats.fail(`upload status GET answered ${describe(res)} (must be 204, 404 BLOB_UPLOAD_UNKNOWN or 503 UNAVAILABLE)`);
        if (attempt >= 3) return 'gone';
      }
      await this.backoff(attempt);
    }
  }

  /** After a session vanished: did its final PUT commit? (HEAD of the blob, retried through outages.) */
  private async blobExists(blob: TestBlob): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      const res = await this.call('HEAD', this.url(`/v2/${this.repo}/blobs/${blob.digest}`));
      if (res.status === 200) return true;
      if (res.status === 404) return false;
      if (isRetryable(res)) {
        await this.backoff(attempt);
        continue;
      }
      this.ctx.stats.fail(`HEAD blob answered ${describe(res)}`);
      throw new Abandon();
    }
  }

  /** POST, then PUT ?digest= with the whole blob. */
  private async uploadPostPut(blob: TestBlob): Promise<void> {
    let location = await this.startSession();
    let leaseSince = 0;
    for (let attempt = 0; ; attempt++) {
      const res = await this.call('PUT', withDigest(location, blob.digest), { headers: { 'content-type': 'application/octet-stream' }, body: blob.data });
      if (res.status === 201) {
        if (leaseSince) this.leaseCleared(leaseSince);
        return this.checkCreated(res, blob);
      }
      if (!isRetryable(res) && res.status !== 416 && !(res.status === 404 && errorCode(res.body) === 'BLOB_UPLOAD_UNKNOWN')) {
        this.ctx.stats.fail(`PUT of a whole blob answered ${describe(res)}: ${res.body.toString('utf8').slice(0, 200)}`);
        throw new Abandon();
      }
      const state = await this.sessionState(location);
      if (state === 'gone') {
        if (await this.blobExists(blob)) {
          this.ctx.stats.committedUnanswered++;
          return;
        }
        this.ctx.stats.restarted++;
        location = await this.startSession();
        leaseSince = 0;
        continue;
      }
      location = state.location;
      if (res.status === 416) {
        leaseSince = await this.leaseWait(leaseSince);
        if (leaseSince === 0) {
          location = await this.startSession();
          continue;
        }
      } else this.ctx.stats.resumed++;
      await this.backoff(attempt);
    }
  }

  /** A 416 at the session's own offset: another writer's lease. Returns when it started, or 0 when it is stuck. */
  private async leaseWait(since: number): Promise<number> {
    const now = Date.now();
    if (!since) {
      this.ctx.stats.leaseWaits++;
      return now;
    }
    if (now - since > 2 * this.ctx.leaseMs) {
      this.ctx.stats.stuckLeases++;
      this.ctx.stats.fail(`an upload session answered 416 for ${now - since} ms (lease ${this.ctx.leaseMs} ms)`);
      return 0;
    }
    await sleep(1000);
    return since;
  }

  private leaseCleared(since: number): void {
    this.ctx.stats.leaseWaitMaxMs = Math.max(this.ctx.stats.leaseWaitMaxMs, Date.now() - since);
  }

  /** POST, PATCH chunks with Content-Range, then PUT ?digest= (with or without the last chunk). */
  private async uploadChunked(blob: TestBlob): Promise<void> {
    const chunk = Math.max(1024, Math.min(256 * 1024, Math.ceil(blob.size / randInt(2, 4))));
    const lastInPut = Math.random() < 0.5;
    let location = await this.startSession();
    let offset = 0;
    let leaseSince = 0;
    for (let attempt = 0; ; attempt++) {
      const end = Math.min(offset + chunk, blob.size);
      const final = offset >= blob.size || (lastInPut && end === blob.size);
      let res: Result;
      if (final) {
        const body = offset < blob.size ? blob.data.subarray(offset) : undefined;
        res = await this.call('PUT', withDigest(location, blob.digest), {
          headers: body ? { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${blob.size - 1}` } : {},
          body,
        });
        if (res.status === 201) {
          if (leaseSince) this.leaseCleared(leaseSince);
          return this.checkCreated(res, blob);
        }
      } else {
        res = await this.call('PATCH', location, {
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${end - 1}` },
          body: blob.data.subarray(offset, end),
        });
        if (res.status === 202) {
          if (leaseSince) this.leaseCleared(leaseSince);
          leaseSince = 0;
          const range = header(res, 'range');
          const next = header(res, 'location');
          if (range !== `0-${end - 1}`) {
            this.ctx.stats.fail(`PATCH ${offset}-${end - 1} answered 202 with Range ${range}`);
            throw new Abandon();
          }
          if (next) location = new URL(next, this.ctx.baseUrl).toString();
          offset = end;
          attempt = -1;
          continue;
        }
      }
      if (!isRetryable(res) && res.status !== 416 && !(res.status === 404 && errorCode(res.body) === 'BLOB_UPLOAD_UNKNOWN')) {
        this.ctx.stats.fail(`${final ? 'final PUT' : 'PATCH'} at ${offset} of ${blob.size} answered ${describe(res)}: ${res.body.toString('utf8').slice(0, 200)}`);
        throw new Abandon();
      }
      const state = await this.sessionState(location);
      if (state === 'gone') {
        if (final && (await this.blobExists(blob))) {
          this.ctx.stats.committedUnanswered++;
          return;
        }
        this.ctx.stats.restarted++;
        location = await this.startSession();
        offset = 0;
        leaseSince = 0;
        continue;
      }
      location = state.location;
      if (res.status === 416 && state.offset === offset) {
        leaseSince = await this.leaseWait(leaseSince);
        if (leaseSince === 0) {
          location = await this.startSession();
          offset = 0;
          continue;
        }
      } else {
        if (state.offset > blob.size) {
          this.ctx.stats.fail(`upload session reports ${state.offset} bytes of a ${blob.size}-byte blob`);
          throw new Abandon();
        }
        this.ctx.stats.resumed++;
        offset = state.offset;
      }
      await this.backoff(attempt);
    }
  }
}

function withDigest(location: string, digest: string): string {
  const url = new URL(location);
  url.searchParams.set('digest', digest);
  return url.toString();
}
