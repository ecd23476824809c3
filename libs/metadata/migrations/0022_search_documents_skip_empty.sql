-- A push of an image whose metadata has no text (no title, description, source or label: what most plain
-- `docker push`es of unlabelled images record) leaves its repository's search document as it was, so the trigger
-- of 0018 no longer rewrites it. The rewrite read every image_metadata row of the repository to aggregate the
-- document again: a cost that grew with the repository (2 ms a push at a few hundred images on PGlite, docs/
-- benchmarks.md), for a document that an image without text cannot change (0018 aggregates only non-empty texts).
--
-- The per-image text below is exactly the one refresh_search_documents aggregates (it skips those that are ''), so
-- a document is rewritten exactly when it may change. Deletes and repository creations are as in 0018.
CREATE OR REPLACE FUNCTION search_documents_after_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_TABLE_NAME = 'repositories' THEN
    PERFORM refresh_search_documents(ARRAY(SELECT id FROM inserted));
  ELSIF TG_OP = 'INSERT' THEN
    PERFORM refresh_search_documents(ARRAY(
      SELECT DISTINCT m.repository_id FROM inserted m
       WHERE concat_ws(E'\n', m.title, m.description, m.source,
                       (SELECT string_agg(l.key || '=' || l.value, E'\n' ORDER BY l.key COLLATE "C")
                          FROM jsonb_each_text(m.labels) l)) <> ''));
  ELSE
    PERFORM refresh_search_documents(ARRAY(SELECT DISTINCT repository_id FROM deleted));
  END IF;
  RETURN NULL;
END
$$;
