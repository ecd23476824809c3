/**
 * A repository: its tags (digest, size, platforms, when pushed and last pulled), the pull commands, and deleting a
 * tag after a confirmation (offered only to a session that may write: signed in, or auth off).
 */
import { useState } from 'preact/hooks';
import { lastOfNext, queryString, repositoryPath } from '../api';
import { ConfirmDialog } from '../components/confirm-dialog';
import { CopyButton } from '../components/copy-button';
import { PageHeading } from '../components/page-heading';
import { PullCommands } from '../components/pull-commands';
import { LoadStatus } from '../components/status';
import { useLoad } from '../components/use-load';
import { formatBytes, formatTime, shortDigest } from '../format';
import { deleteManifest } from '../oci';
import { href, navigate } from '../router';
import { canWrite, isAdmin, useSession } from '../session';
import type { TagPage, TagSummary } from '../types';

/** How many tags a page shows. */
const TAG_PAGE_SIZE = 50;

/** The repository page. */
export function RepositoryPage({ name }: { name: string }) {
  const { api, session } = useSession();
  const [last, setLast] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<TagSummary | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [pullTag, setPullTag] = useState<string | null>(null);
  const [deletingRepository, setDeletingRepository] = useState(false);
  const [force, setForce] = useState(false);
  const tags = useLoad((signal) => api.json<TagPage>(`/api/v1/repositories/${repositoryPath(name)}/tags${queryString({ n: TAG_PAGE_SIZE, last })}`, { signal }), [name, last]);
  const writable = canWrite(session);
  const list = tags.data?.tags ?? [];
  const shownPullTag = pullTag ?? list[0]?.tag ?? null;
  return (
    <>
      <PageHeading>{name}</PageHeading>
      <p role="status" class="notice">
        {notice}
      </p>
      {shownPullTag ? (
        <section aria-labelledby="pull-heading">
          <h2 id="pull-heading">Pull</h2>
          <div class="field inline">
            <label for="pull-tag">Tag</label>
            <select id="pull-tag" value={shownPullTag} onChange={(e) => setPullTag(e.currentTarget.value)}>
              {list.map((t) => (
                <option key={t.tag} value={t.tag}>
                  {t.tag}
                </option>
              ))}
            </select>
          </div>
          <PullCommands name={name} reference={shownPullTag} />
        </section>
      ) : null}
      <section aria-labelledby="tags-heading">
        <h2 id="tags-heading">Tags</h2>
        <LoadStatus state={tags} what="the tags" />
        {tags.data && list.length === 0 ? <p>This repository has no tags{last ? ' after this page' : ''}.</p> : null}
        {list.length ? (
          <div class="table-wrap">
            <table>
              <caption class="visually-hidden">Tags of {name}</caption>
              <thead>
                <tr>
                  <th scope="col">Tag</th>
                  <th scope="col">Digest</th>
                  <th scope="col">Size</th>
                  <th scope="col">Platforms</th>
                  <th scope="col">Pushed</th>
                  <th scope="col">Last pulled</th>
                  {writable ? <th scope="col">Actions</th> : null}
                </tr>
              </thead>
              <tbody>
                {list.map((t) => (
                  <tr key={t.tag}>
                    <th scope="row">
                      <a href={href.image(name, t.tag)}>{t.tag}</a>
                    </th>
                    <td>
                      <a href={href.image(name, t.digest)} title={t.digest}>
                        <code>{shortDigest(t.digest)}</code>
                      </a>{' '}
                      <CopyButton text={t.digest} label={`Copy the digest of ${t.tag}`} />
                    </td>
                    <td>{formatBytes(t.size)}</td>
                    <td>{t.platforms.length ? t.platforms.join(', ') : '—'}</td>
                    <td>{formatTime(t.pushedAt)}</td>
                    <td>{formatTime(t.lastPulledAt)}</td>
                    {writable ? (
                      <td>
                        <button type="button" class="danger small" onClick={() => setDeleting(t)} aria-label={`Delete tag ${t.tag}`}>
                          Delete
                        </button>
                      </td>
                    ) : null}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
        <nav aria-label="Tag pages" class="pager">
          {last ? (
            <button type="button" class="link" onClick={() => setLast(null)}>
              First page
            </button>
          ) : null}
          {tags.data?.next ? (
            <button type="button" class="link" onClick={() => setLast(lastOfNext(tags.data?.next ?? ''))}>
              Next page
            </button>
          ) : null}
        </nav>
      </section>
      {isAdmin(session) ? (
        <section aria-labelledby="delete-repository-heading">
          <h2 id="delete-repository-heading">Delete the repository</h2>
          <p>Deletes every tag and manifest of {name} at once (administrators only); its blobs go at the collector's next review unless another repository uses them.</p>
          <button type="button" class="danger" onClick={() => setDeletingRepository(true)}>
            Delete repository
          </button>
        </section>
      ) : null}
      {deletingRepository ? (
        <ConfirmDialog
          title={`Delete the repository ${name}?`}
          confirmLabel="Delete repository"
          onClose={() => setDeletingRepository(false)}
          onConfirm={async () => {
            await api.request(`/admin/v1/repositories/${repositoryPath(name)}${force ? '?force=true' : ''}`, { method: 'DELETE' });
            navigate(href.home());
          }}
        >
          <p>
            Every tag and manifest of <strong>{name}</strong> goes, and pulls of it fail from now on. This cannot be undone.
          </p>
          <div class="field check">
            <input id="delete-force" type="checkbox" checked={force} onChange={(e) => setForce(e.currentTarget.checked)} />
            <label for="delete-force">Delete it even if it holds immutable tags</label>
          </div>
        </ConfirmDialog>
      ) : null}
      {deleting ? (
        <ConfirmDialog
          title={`Delete tag ${deleting.tag}?`}
          confirmLabel="Delete tag"
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await deleteManifest(api, name, deleting.tag);
            setNotice(`Deleted tag ${deleting.tag}.`);
            if (pullTag === deleting.tag) setPullTag(null);
            tags.reload();
          }}
        >
          <p>
            The tag <strong>{deleting.tag}</strong> will no longer point at <code>{shortDigest(deleting.digest)}</code>. Anyone pulling{' '}
            <code>
              {name}:{deleting.tag}
            </code>{' '}
            will get an error. The manifest stays under its digest until it is deleted too.
          </p>
        </ConfirmDialog>
      ) : null}
    </>
  );
}
