-- Single flight of the pull-through cache across replicas: who is fetching what from an upstream right now.
--
-- A replica that misses a blob takes the lease of its key ('<repository>@<digest>') before asking the upstream;
-- the others see it held and wait for the blob to be stored instead of asking too. The holder renews expires_at
-- while it fetches and deletes the row when the fetch ends (stored or failed). A holder that died leaves a row
-- that expires: the next replica to miss takes it over (times are the database's, so replicas' clocks never
-- matter). Nothing here refers to content: a lease never keeps anything alive, and content never waits for one.

CREATE TABLE proxy_fetch_leases (
  key         text PRIMARY KEY,
  holder      text NOT NULL,
  expires_at  timestamptz NOT NULL
);
