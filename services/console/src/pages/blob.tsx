/**
 * The viewer of a JSON artifact (an SBOM, a scan report, a signature's payload): the blob fetched through the
 * registry, pretty-printed, with a link to download it as it is. Larger blobs are cut, with a note saying so.
 */
import { PageHeading } from '../components/page-heading';
import { LoadStatus } from '../components/status';
import { useLoad } from '../components/use-load';
import { formatBytes, shortDigest } from '../format';
import { registryPath } from '../oci';
import { href } from '../router';
import { useSession } from '../session';

/** The most of a blob the viewer shows (the rest is a download). */
export const VIEWER_LIMIT = 2_000_000;

/** The text to show for a blob's content: pretty-printed JSON when it parses, else the text as it is. */
export function prettyJson(text: string): { text: string; json: boolean } {
  try {
    return { text: JSON.stringify(JSON.parse(text), null, 2), json: true };
  } catch {
    return { text, json: false };
  }
}

/** The blob viewer page. */
export function BlobPage({ name, digest, mediaType }: { name: string; digest: string; mediaType: string | null }) {
  const { api } = useSession();
  const url = registryPath(name, 'blobs', digest);
  const blob = useLoad(
    async (signal) => {
      const response = await api.request(url, { signal });
      const text = await response.text();
      return { size: text.length, cut: text.length > VIEWER_LIMIT, ...prettyJson(text.slice(0, VIEWER_LIMIT)) };
    },
    [url],
  );
  return (
    <>
      <PageHeading title={`${name}@${shortDigest(digest)}`}>
        <a href={href.repository(name)}>{name}</a>@{shortDigest(digest)}
      </PageHeading>
      <p>
        {mediaType ? (
          <>
            <code>{mediaType}</code> ·{' '}
          </>
        ) : null}
        <a href={url} download={`${digest.replace(':', '-')}.json`}>
          Download
        </a>
      </p>
      <LoadStatus state={blob} what="the content" />
      {blob.data ? (
        <>
          {blob.data.cut ? <p class="hint">Only the first {formatBytes(VIEWER_LIMIT)} are shown; download the rest.</p> : null}
          {!blob.data.json && !blob.data.cut ? <p class="hint">This content is not JSON; it is shown as text.</p> : null}
          <pre class="viewer" tabIndex={0} aria-label="Content">
            {blob.data.text}
          </pre>
        </>
      ) : null}
    </>
  );
}
