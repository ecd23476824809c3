-- Search documents (issue 22): one row per repository with what a search matches it by, besides its tags: its name,
-- the namespaces that cover it (its leading path prefixes), and its images' titles, descriptions, sources and labels
-- (one text, each distinct image's once, under one trigram GIN index). A term common to thousands of repositories is
-- then one index scan over per-repository rows, not a scan of every manifest's metadata and a DISTINCT over the
-- matching rows, and the access check of each match is one array overlap with the viewer's namespaces (read once
-- per search), without a join.
--
-- Tag names are not in the document: concatenated, the trigrams of a repository's tags are those of one long text,
-- and a term like `v1.2` (trigrams of `v1` and `2`) matches every repository holding both a `v1.0` and a `v0.2`,
-- each to be read and rejected (a 100,000-row recheck at issue 22's scale: 200 ms where the tags' own index answers
-- in 8 ms; docs/benchmarks.md). Tags are matched in the tags table, and a tag push leaves the document alone.
--
-- The document is written by triggers, in the writing statement's transaction: when a repository is created and
-- when an image's metadata is recorded or deleted (with its manifest); it goes with its repository (ON DELETE
-- CASCADE). Backups carry it as a table (a restore loads it with triggers off, as it loads the rest).
CREATE TABLE search_documents (
  repository_id  bigint PRIMARY KEY REFERENCES repositories (id) ON DELETE CASCADE,
  name           text COLLATE "C" NOT NULL,
  -- The name's leading path prefixes, the name itself included (`a`, `a/b`, `a/b/c` for `a/b/c`).
  namespaces     text[] COLLATE "C" NOT NULL,
  -- Per distinct image metadata: title, description, source and each label as key=value, one a line.
  metadata_text  text NOT NULL DEFAULT ''
);
CREATE INDEX search_documents_metadata_trgm_idx ON search_documents USING gin (metadata_text gin_trgm_ops);
CREATE INDEX search_documents_name_trgm_idx ON search_documents USING gin (name gin_trgm_ops);
-- Browsing without a term reads pages in name order.
CREATE INDEX search_documents_name_idx ON search_documents (name);

-- Search reads the images' texts from the documents now: the per-manifest index of 0010 only cost every push.
-- (image_metadata.search_text stays, for whoever reads it; repositories_name_trgm_idx stays for name lookups
-- other than search's.)
DROP INDEX IF EXISTS image_metadata_text_trgm_idx;

-- Rewrites the documents of the repositories `ids` from their names and image metadata (a repository that no longer
-- exists gets none). The repositories are locked first (FOR NO KEY UPDATE, in id order, as a push's event takes its
-- repository), and the document is read in a statement of its own, after the lock: a concurrent writer of the same
-- repository has then committed, and its change is in the document.
CREATE FUNCTION refresh_search_documents(ids bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF cardinality(ids) = 0 THEN
    RETURN;
  END IF;
  PERFORM 1 FROM repositories WHERE id = ANY (ids) ORDER BY id FOR NO KEY UPDATE;
  INSERT INTO search_documents (repository_id, name, namespaces, metadata_text)
  SELECT r.id, r.name,
         ARRAY(SELECT array_to_string((string_to_array(r.name, '/'))[1:k], '/')
                 FROM generate_series(1, cardinality(string_to_array(r.name, '/'))) k ORDER BY k),
         coalesce((SELECT string_agg(d.text, E'\n' ORDER BY d.text COLLATE "C") FROM (
                     SELECT DISTINCT concat_ws(E'\n', m.title, m.description, m.source,
                                               (SELECT string_agg(l.key || '=' || l.value, E'\n' ORDER BY l.key COLLATE "C")
                                                  FROM jsonb_each_text(m.labels) l)) AS text
                       FROM image_metadata m WHERE m.repository_id = r.id) d WHERE d.text <> ''), '')
    FROM repositories r WHERE r.id = ANY (ids)
  ON CONFLICT (repository_id) DO UPDATE
    SET name = EXCLUDED.name, namespaces = EXCLUDED.namespaces, metadata_text = EXCLUDED.metadata_text
    WHERE (search_documents.name, search_documents.metadata_text) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.metadata_text);
END
$$;

-- One trigger function for the statement-level triggers below: the repositories a statement inserted or deleted
-- rows of (the transition tables are named `inserted` and `deleted`), each rewritten once per statement.
CREATE FUNCTION search_documents_after_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_TABLE_NAME = 'repositories' THEN
    PERFORM refresh_search_documents(ARRAY(SELECT id FROM inserted));
  ELSIF TG_OP = 'INSERT' THEN
    PERFORM refresh_search_documents(ARRAY(SELECT DISTINCT repository_id FROM inserted));
  ELSE
    PERFORM refresh_search_documents(ARRAY(SELECT DISTINCT repository_id FROM deleted));
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER search_documents_repository_created AFTER INSERT ON repositories
  REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION search_documents_after_write();
CREATE TRIGGER search_documents_metadata_recorded AFTER INSERT ON image_metadata
  REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION search_documents_after_write();
CREATE TRIGGER search_documents_metadata_deleted AFTER DELETE ON image_metadata
  REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION search_documents_after_write();

-- Every repository already there gets its document, and the planner its statistics (PGlite runs no autovacuum:
-- without them, it may read the whole table for a term that matches nothing).
SELECT refresh_search_documents(ARRAY(SELECT id FROM repositories));
ANALYZE search_documents;
