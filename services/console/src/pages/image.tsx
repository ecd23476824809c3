/**
 * An image by tag or digest. An index lists its platforms, each a link to that platform's manifest; a manifest
 * shows its layers with their sizes and its config (entrypoint, command, environment, labels, history); an artifact
 * (a signature, an SBOM, a scan report) shows its type, its subject and its files, JSON ones openable in the viewer.
 * Below, the referrers of the digest; and deleting the manifest after a confirmation, for a session that may write.
 */
import { useState } from 'preact/hooks';
import { ConfirmDialog } from '../components/confirm-dialog';
import { CopyButton } from '../components/copy-button';
import { PageHeading } from '../components/page-heading';
import { PullCommands } from '../components/pull-commands';
import { ErrorMessage, LoadStatus, Loading } from '../components/status';
import { useLoad } from '../components/use-load';
import { formatBytes, formatTime, shortDigest } from '../format';
import { type FetchedManifest, deleteManifest, fetchJsonBlob, fetchManifest, fetchReferrers, isJsonMediaType, platformOf } from '../oci';
import { href, navigate } from '../router';
import { canWrite, useSession } from '../session';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest } from '../types';

/** The config media types whose content is an image config the page can read. */
const IMAGE_CONFIG_TYPES = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);

function Annotations({ annotations, label }: { annotations?: Record<string, string>; label: string }) {
  const entries = Object.entries(annotations ?? {});
  if (!entries.length) return null;
  return (
    <dl class="pairs" aria-label={label}>
      {entries.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

function Platforms({ name, index }: { name: string; index: ImageIndex }) {
  return (
    <section aria-labelledby="platforms-heading">
      <h2 id="platforms-heading">Platforms</h2>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Platform</th>
              <th scope="col">Manifest</th>
              <th scope="col">Manifest size</th>
            </tr>
          </thead>
          <tbody>
            {index.manifests.map((m) => (
              <tr key={m.digest}>
                <th scope="row">
                  <a href={href.image(name, m.digest)}>{m.artifactType ?? platformOf(m)}</a>
                </th>
                <td>
                  <code title={m.digest}>{shortDigest(m.digest)}</code>
                </td>
                <td>{formatBytes(m.size)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {index.manifests.map((m) => (
        <PlatformDetails key={m.digest} name={name} descriptor={m} />
      ))}
    </section>
  );
}

function LayerTable({ name, layers }: { name: string; layers: Descriptor[] }) {
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Digest</th>
            <th scope="col">Media type</th>
            <th scope="col">Size</th>
          </tr>
        </thead>
        <tbody>
          {layers.map((l, i) => (
            <tr key={`${i}-${l.digest}`}>
              <th scope="row">{i + 1}</th>
              <td>
                {isJsonMediaType(l.mediaType) ? (
                  <a href={href.blob(name, l.digest, l.mediaType)} title={l.digest}>
                    <code>{shortDigest(l.digest)}</code> <span class="visually-hidden">(view JSON)</span>
                  </a>
                ) : (
                  <code title={l.digest}>{shortDigest(l.digest)}</code>
                )}
                {l.annotations?.['org.opencontainers.image.title'] ? <span class="meta"> {l.annotations['org.opencontainers.image.title']}</span> : null}
              </td>
              <td>
                <code>{l.mediaType}</code>
              </td>
              <td>{formatBytes(l.size)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** "2 layers, 43 KB in all." */
function layerSummary(layers: Descriptor[], artifact = false): string {
  const total = layers.reduce((sum, l) => sum + l.size, 0);
  const noun = artifact ? (layers.length === 1 ? 'file' : 'files') : layers.length === 1 ? 'layer' : 'layers';
  return `${layers.length} ${noun}, ${formatBytes(total)} in all.`;
}

function Layers({ name, manifest, artifact }: { name: string; manifest: ImageManifest; artifact: boolean }) {
  return (
    <section aria-labelledby="layers-heading">
      <h2 id="layers-heading">{artifact ? 'Files' : 'Layers'}</h2>
      <p>{layerSummary(manifest.layers, artifact)}</p>
      {manifest.layers.length ? <LayerTable name={name} layers={manifest.layers} /> : null}
    </section>
  );
}

/** One platform's layers, fetched when its disclosure is first opened. */
function PlatformLayers({ name, descriptor }: { name: string; descriptor: Descriptor }) {
  const { api } = useSession();
  const manifest = useLoad((signal) => fetchManifest(api, name, descriptor.digest, signal), [name, descriptor.digest]);
  if (manifest.error) return <ErrorMessage error={manifest.error} />;
  if (!manifest.data) return <Loading what="the layers" />;
  if (manifest.data.kind !== 'image') return <p>This is an index of its own: open it to see its platforms.</p>;
  return (
    <>
      <p>{layerSummary(manifest.data.body.layers)}</p>
      <LayerTable name={name} layers={manifest.data.body.layers} />
    </>
  );
}

function PlatformDetails({ name, descriptor }: { name: string; descriptor: Descriptor }) {
  const [opened, setOpened] = useState(false);
  return (
    <details onToggle={(e) => (e.currentTarget as HTMLDetailsElement).open && setOpened(true)}>
      <summary>Layers of {descriptor.artifactType ?? platformOf(descriptor)}</summary>
      {opened ? <PlatformLayers name={name} descriptor={descriptor} /> : null}
    </details>
  );
}

function Config({ name, descriptor }: { name: string; descriptor: Descriptor }) {
  const { api } = useSession();
  const config = useLoad((signal) => fetchJsonBlob<ImageConfig>(api, name, descriptor.digest, signal), [name, descriptor.digest]);
  if (config.error) return <ErrorMessage error={config.error}>The image's config could not be read.</ErrorMessage>;
  if (!config.data) return <Loading what="the image's config" />;
  const c = config.data.config ?? {};
  const command = (value?: string[] | null) => (value && value.length ? <code>{JSON.stringify(value)}</code> : <span class="meta">none</span>);
  return (
    <section aria-labelledby="config-heading">
      <h2 id="config-heading">Config</h2>
      <dl class="pairs">
        <div>
          <dt>Platform</dt>
          <dd>{[config.data.os, config.data.architecture].filter(Boolean).join('/') || 'unknown'}</dd>
        </div>
        <div>
          <dt>Created</dt>
          <dd>{formatTime(config.data.created)}</dd>
        </div>
        <div>
          <dt>Entrypoint</dt>
          <dd>{command(c.Entrypoint)}</dd>
        </div>
        <div>
          <dt>Command</dt>
          <dd>{command(c.Cmd)}</dd>
        </div>
        {c.WorkingDir ? (
          <div>
            <dt>Working directory</dt>
            <dd>
              <code>{c.WorkingDir}</code>
            </dd>
          </div>
        ) : null}
        {c.User ? (
          <div>
            <dt>User</dt>
            <dd>
              <code>{c.User}</code>
            </dd>
          </div>
        ) : null}
      </dl>
      <h3>Environment</h3>
      {c.Env?.length ? (
        <ul class="plain">
          {c.Env.map((e) => (
            <li key={e}>
              <code>{e}</code>
            </li>
          ))}
        </ul>
      ) : (
        <p class="meta">No environment variables.</p>
      )}
      <h3>Labels</h3>
      {c.Labels && Object.keys(c.Labels).length ? <Annotations annotations={c.Labels} label="Labels" /> : <p class="meta">No labels.</p>}
      <h3>History</h3>
      {config.data.history?.length ? (
        <ol class="history">
          {config.data.history.map((h, i) => (
            <li key={i}>
              <code>{h.created_by ?? h.comment ?? '(no command)'}</code>
              <span class="meta">
                {' '}
                {formatTime(h.created)}
                {h.empty_layer ? ' · no layer' : ''}
              </span>
            </li>
          ))}
        </ol>
      ) : (
        <p class="meta">No history.</p>
      )}
    </section>
  );
}

/** The referrers of a manifest: signatures, SBOMs, scan reports and other artifacts whose subject it is. */
export function Referrers({ name, digest }: { name: string; digest: string }) {
  const { api } = useSession();
  const referrers = useLoad((signal) => fetchReferrers(api, name, digest, signal), [name, digest]);
  return (
    <section aria-labelledby="referrers-heading">
      <h2 id="referrers-heading">Referrers</h2>
      <LoadStatus state={referrers} what="the referrers" />
      {referrers.data?.length === 0 ? <p>Nothing refers to this manifest: no signatures, SBOMs or reports.</p> : null}
      {referrers.data?.length ? (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Artifact type</th>
                <th scope="col">Manifest</th>
                <th scope="col">Size</th>
                <th scope="col">Annotations</th>
              </tr>
            </thead>
            <tbody>
              {referrers.data.map((r) => (
                <tr key={r.digest}>
                  <th scope="row">
                    <a href={href.image(name, r.digest)}>{r.artifactType ?? r.mediaType}</a>
                  </th>
                  <td>
                    <code title={r.digest}>{shortDigest(r.digest)}</code>
                  </td>
                  <td>{formatBytes(r.size)}</td>
                  <td>
                    <Annotations annotations={r.annotations} label={`Annotations of ${shortDigest(r.digest)}`} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}

function Manifest({ name, reference, fetched }: { name: string; reference: string; fetched: FetchedManifest }) {
  if (fetched.kind === 'index') {
    return (
      <>
        <Platforms name={name} index={fetched.body} />
        <Annotations annotations={fetched.body.annotations} label="Annotations" />
      </>
    );
  }
  const m = fetched.body;
  const artifact = !IMAGE_CONFIG_TYPES.has(m.config.mediaType) || !!m.artifactType;
  return (
    <>
      {artifact ? (
        <section aria-labelledby="artifact-heading">
          <h2 id="artifact-heading">Artifact</h2>
          <dl class="pairs">
            <div>
              <dt>Artifact type</dt>
              <dd>
                <code>{m.artifactType ?? m.config.mediaType}</code>
              </dd>
            </div>
            {m.subject ? (
              <div>
                <dt>Subject</dt>
                <dd>
                  <a href={href.image(name, m.subject.digest)}>
                    <code>{shortDigest(m.subject.digest)}</code>
                  </a>
                </dd>
              </div>
            ) : null}
          </dl>
          <Annotations annotations={m.annotations} label="Annotations" />
        </section>
      ) : null}
      <Layers name={name} manifest={m} artifact={artifact} />
      {!artifact ? <Config name={name} descriptor={m.config} /> : null}
      {!artifact && reference ? <Annotations annotations={m.annotations} label="Annotations" /> : null}
    </>
  );
}

/** The image page. */
export function ImagePage({ name, reference }: { name: string; reference: string }) {
  const { api, session } = useSession();
  const manifest = useLoad((signal) => fetchManifest(api, name, reference, signal), [name, reference]);
  const [deleting, setDeleting] = useState(false);
  const byDigest = reference.includes(':');
  const title = byDigest ? `${name}@${shortDigest(reference)}` : `${name}:${reference}`;
  const digest = manifest.data?.digest;
  return (
    <>
      <PageHeading title={title}>
        <a href={href.repository(name)}>{name}</a>
        {byDigest ? '@' : ':'}
        {byDigest ? shortDigest(reference) : reference}
      </PageHeading>
      {manifest.error ? <ErrorMessage error={manifest.error}>This manifest could not be read.</ErrorMessage> : null}
      {!manifest.data && !manifest.error ? <Loading what="the manifest" /> : null}
      {manifest.data ? (
        <>
          <dl class="pairs">
            <div>
              <dt>Digest</dt>
              <dd>
                <code>{digest}</code> {digest ? <CopyButton text={digest} label="Copy the digest" /> : null}
              </dd>
            </div>
            <div>
              <dt>Media type</dt>
              <dd>
                <code>{manifest.data.mediaType}</code>
              </dd>
            </div>
          </dl>
          <section aria-labelledby="pull-heading">
            <h2 id="pull-heading">Pull</h2>
            <PullCommands name={name} reference={byDigest ? digest || reference : reference} />
          </section>
          <Manifest name={name} reference={reference} fetched={manifest.data} />
          {digest ? <Referrers name={name} digest={digest} /> : null}
          {canWrite(session) && digest ? (
            <section aria-labelledby="danger-heading">
              <h2 id="danger-heading">Delete</h2>
              <p>Deleting the manifest removes it and every tag pointing at it.</p>
              <button type="button" class="danger" onClick={() => setDeleting(true)}>
                Delete manifest
              </button>
            </section>
          ) : null}
        </>
      ) : null}
      {deleting && digest ? (
        <ConfirmDialog
          title="Delete this manifest?"
          confirmLabel="Delete manifest"
          onClose={() => setDeleting(false)}
          onConfirm={async () => {
            await deleteManifest(api, name, digest);
            navigate(href.repository(name));
          }}
        >
          <p>
            The manifest <code>{digest}</code> of <strong>{name}</strong> and every tag pointing at it will be deleted. This cannot be undone.
          </p>
        </ConfirmDialog>
      ) : null}
    </>
  );
}
