-- Storage quotas per namespace (issue 23). A namespace's usage is the bytes of the distinct blobs referenced by the
-- manifests of the repositories it covers. Pushes add what they bring new to a shard of the namespace's counter
-- chosen at random, so concurrent pushes into one namespace update different rows and never queue on one; the
-- reconciliation job recomputes the usage from the references and puts it back into the shards (drift, deletes).
ALTER TABLE namespaces ADD COLUMN quota_bytes bigint CHECK (quota_bytes IS NULL OR quota_bytes >= 0);

CREATE TABLE namespace_usage_shards (
  prefix  text COLLATE "C" NOT NULL,
  shard   smallint NOT NULL CHECK (shard >= 0),
  bytes   bigint NOT NULL,
  PRIMARY KEY (prefix, shard)
);
