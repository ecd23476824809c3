-- Pull-through caches added through the admin API (`/admin/v1/proxies`, `lading-admin proxies`), beside those of
-- the configuration file's `proxies`. A row is one rule as the file would hold it: the checks are the config's
-- (libs/config checkProxyRule), made before a row is written, and no stored namespace equals, holds or is nested in
-- another rule's (the writer locks this table while it checks). Every process reads the table on a short poll, so a
-- change needs no restart.
--
-- `password` is sealed by the at-rest cipher (`secrets.key`, context `proxy <namespace>`) when a key is configured,
-- and is never returned by the API. Deleting a row leaves what the cache fetched as ordinary content.

CREATE TABLE proxy_rules (
  namespace text PRIMARY KEY,
  upstream text NOT NULL,
  username text,
  password text,
  tag_ttl text NOT NULL,
  evict_after text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((username IS NULL) = (password IS NULL))
);
