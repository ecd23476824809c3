/** The shapes the console's server answers with (docs/console.md), as the pages read them. */

/** `GET /ui/api/session`: who is signed in; `auth` false means auth is off and everything is allowed. */
export interface Session {
  user: string | null;
  admin: boolean;
  /**
   * The namespaces a signed-in user who is not a global admin administers (an `admin` grant, directly or through a
   * group): such a namespace admin may use the admin pages of NAMESPACE_ADMIN_SECTIONS for them. Empty otherwise.
   */
  adminOf?: string[];
  csrf: string | null;
  auth: boolean;
  /** Present (true) when company sign-in through an OpenID Provider is offered (`/ui/api/oidc/login`). */
  oidc?: boolean;
  /** For a session signed in through the provider: where to end the provider's session after signing out. */
  logoutUrl?: string;
}

/** One repository of `GET /api/v1/repositories`. */
export interface RepositorySummary {
  name: string;
  tagCount: number;
  lastPushedAt: string | null;
}

/** A page of `GET /api/v1/repositories`; `next` is present while more follow. */
export interface RepositoryPage {
  repositories: RepositorySummary[];
  next?: string;
}

/** One tag of `GET /api/v1/repositories/<name>/tags`. */
export interface TagSummary {
  tag: string;
  digest: string;
  mediaType: string;
  size: number;
  platforms: string[];
  pushedAt: string | null;
  lastPulledAt: string | null;
}

/** A page of `GET /api/v1/repositories/<name>/tags`. */
export interface TagPage {
  name: string;
  tags: TagSummary[];
  next?: string;
}

/** One repository of `GET /api/v1/search`, with how it matched and its matching tags. */
export interface SearchResult {
  repository: string;
  namespace: string;
  match: string;
  similarity: number;
  title: string | null;
  description: string | null;
  source: string | null;
  pushedAt: string | null;
  tags: string[];
}

/** `GET /api/v1/search`: one page of ranked repositories. */
export interface SearchResponse {
  query: string;
  page: number;
  pageSize: number;
  total: number;
  pages: number;
  capped: boolean;
  results: SearchResult[];
}

/** An OCI content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { os: string; architecture: string; variant?: string; 'os.version'?: string };
}

/** An image manifest or an artifact manifest (OCI or Docker v2 schema 2). */
export interface ImageManifest {
  schemaVersion: number;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** An image index or a Docker manifest list; also the body of the referrers API. */
export interface ImageIndex {
  schemaVersion: number;
  mediaType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** The parts of an image's config the image page shows. */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  created?: string;
  config?: { Env?: string[]; Entrypoint?: string[] | null; Cmd?: string[] | null; Labels?: Record<string, string> | null; WorkingDir?: string; User?: string };
  history?: Array<{ created?: string; created_by?: string; comment?: string; empty_layer?: boolean }>;
}

/** A CloudEvents record of the live feed (docs/events.md): the fields the feed shows. */
export interface FeedEvent {
  id: string;
  type: string;
  time: string;
  subject?: string;
  data: { repository: string; tag: string | null; digest: string | null; actor?: { name: string | null; type: string } | null };
}
