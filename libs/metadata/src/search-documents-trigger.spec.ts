/**
 * Migration 0022: a manifest push refreshes its repository's search document only when its image has text (a title,
 * description, source or label). Whether the refresh ran is not visible from here; what is checked is that the
 * document stays exactly what 0018's aggregate makes of the repository's images, with pushes of both kinds in between.
 * On PGlite and a real PostgreSQL.
 */
import { databaseEngines } from '@lading/testing';
import type { Database, SqlExecutor } from './database';
import { insertManifest } from './manifests';
import { migrate } from './migrate';
import { ensureRepository } from './repositories';
import { ImageMetadata, recordImageMetadata } from './search';

const IMAGE = 'application/vnd.oci.image.manifest.v1+json';
const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

function metadata(extra: Partial<ImageMetadata> = {}): ImageMetadata {
  return { mediaType: IMAGE, artifactType: 'application/vnd.oci.image.config.v1+json', title: null, description: null, source: null, labels: {}, platforms: [], ...extra };
}

describe.each(databaseEngines('searchtrigger', 2))('search documents after manifest pushes on %s', (_name, open) => {
  let db: Database;
  let drop: () => Promise<void>;
  let next = 1;

  beforeAll(async () => {
    ({ db, drop } = await open());
    await migrate(db);
  });
  afterAll(async () => {
    await db.close();
    await drop();
  });

  /** Pushes a manifest with `m` as its image metadata into `repository`, in one transaction as a push does. */
  async function push(repository: string, m: ImageMetadata): Promise<void> {
    const d = digest(next++);
    await db.transaction(async (tx: SqlExecutor) => {
      const repo = await ensureRepository(tx, repository);
      await insertManifest(tx, { repositoryId: repo.id, digest: d, mediaType: m.mediaType, artifactType: m.artifactType, payload: Buffer.from('{}'), subjectDigest: null, annotations: null, blobDigests: [], childDigests: [] });
      await recordImageMetadata(tx, repo.id, d, m);
    });
  }

  /** The document's metadata text, as stored. */
  async function documentText(repository: string): Promise<string> {
    const r = await db.query<{ text: string }>(`SELECT metadata_text AS text FROM search_documents WHERE name = $1`, [repository]);
    return r.rows[0].text;
  }

  /** The metadata text 0018's aggregate makes of the repository's images now. */
  async function aggregatedText(repository: string): Promise<string> {
    const r = await db.query<{ text: string }>(
      `SELECT coalesce((SELECT string_agg(d.text, E'\n' ORDER BY d.text COLLATE "C") FROM (
                SELECT DISTINCT concat_ws(E'\n', m.title, m.description, m.source,
                                          (SELECT string_agg(l.key || '=' || l.value, E'\n' ORDER BY l.key COLLATE "C") FROM jsonb_each_text(m.labels) l)) AS text
                  FROM image_metadata m WHERE m.repository_id = r.id) d WHERE d.text <> ''), '') AS text
         FROM repositories r WHERE r.name = $1`,
      [repository],
    );
    return r.rows[0].text;
  }

  it('keeps the document of a repository whose later images have no title, description, source or label', async () => {
    await push('plain/app', metadata({ title: 'Plain', labels: { team: 'ops' } }));
    await push('plain/app', metadata());
    await push('plain/app', metadata({ platforms: ['linux/amd64'] }));
    expect(await documentText('plain/app')).toBe('Plain\nteam=ops');
    expect(await documentText('plain/app')).toBe(await aggregatedText('plain/app'));
  });

  it('writes the text of an image pushed after images without any, empty strings included', async () => {
    await push('texts/app', metadata());
    expect(await documentText('texts/app')).toBe('');
    await push('texts/app', metadata({ labels: { tier: 'gold' } }));
    expect(await documentText('texts/app')).toBe('tier=gold');
    // Two empty strings make a text of one line break, which 0018's aggregate keeps: the document must follow.
    await push('texts/app', metadata({ title: '', description: '' }));
    expect(await documentText('texts/app')).toBe('\n\ntier=gold');
    expect(await documentText('texts/app')).toBe(await aggregatedText('texts/app'));
  });
});
