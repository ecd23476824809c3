-- Search: a read model of repositories, tags and the metadata that describes their images. The metadata is taken
-- from each manifest when it is pushed (annotations; the image config's labels and platform), never at query time,
-- and every text a query matches has a trigram GIN index, so that substring (ILIKE) and fuzzy (word similarity)
-- matches stay index scans at 100,000 repositories and 1,000,000 tags.
--
-- pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create it without being a superuser.
-- PGlite loads it from @electric-sql/pglite/contrib (see pglite-adapter.ts).

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX repositories_name_trgm_idx ON repositories USING gin (name gin_trgm_ops);
CREATE INDEX tags_name_trgm_idx ON tags USING gin (name gin_trgm_ops);

-- One row per manifest, written in the push's transaction and deleted with the manifest.
CREATE TABLE image_metadata (
  repository_id    bigint NOT NULL,
  manifest_digest  text NOT NULL,
  media_type       text NOT NULL,
  -- The manifest's artifactType, else (images) its config's media type.
  artifact_type    text,
  -- org.opencontainers.image.{title,description,source}: the manifest's annotations, else the config's labels.
  title            text,
  description      text,
  source           text,
  -- The image config's labels (string values only); {} for indexes, artifacts and unreadable configs.
  labels           jsonb NOT NULL DEFAULT '{}',
  -- os/architecture[/variant]: the config's own for an image, the children's descriptors' for an index.
  platforms        text[] NOT NULL DEFAULT '{}',
  search_text      text GENERATED ALWAYS AS (coalesce(title, '') || ' ' || coalesce(description, '') || ' ' || coalesce(source, '')) STORED,
  pushed_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repository_id, manifest_digest),
  FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests (repository_id, digest) ON DELETE CASCADE
);
CREATE INDEX image_metadata_text_trgm_idx ON image_metadata USING gin (search_text gin_trgm_ops);
CREATE INDEX image_metadata_labels_idx ON image_metadata USING gin (labels jsonb_path_ops);
CREATE INDEX image_metadata_platforms_idx ON image_metadata USING gin (platforms);
CREATE INDEX image_metadata_pushed_idx ON image_metadata (repository_id, pushed_at DESC);

-- Manifests pushed before this migration: what their annotations say (their configs are not read here).
INSERT INTO image_metadata (repository_id, manifest_digest, media_type, artifact_type, title, description, source, pushed_at)
SELECT repository_id, digest, media_type, artifact_type,
       annotations ->> 'org.opencontainers.image.title',
       annotations ->> 'org.opencontainers.image.description',
       annotations ->> 'org.opencontainers.image.source',
       created_at
  FROM manifests;
