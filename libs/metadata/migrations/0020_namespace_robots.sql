-- Namespaces run by their owners (issue 24): a robot may belong to a namespace. Its name is then
-- `<namespace>+<name>` (login `robot$<namespace>+<name>`), the namespace's admins create, list and revoke it, and it
-- may be granted roles on that namespace and beneath it only. Robots made before this migration, and those a global
-- admin makes without a namespace, keep a NULL namespace: global robots, managed by global admins only.
ALTER TABLE robots ADD COLUMN namespace text COLLATE "C";
CREATE INDEX robots_namespace ON robots (namespace) WHERE namespace IS NOT NULL;
