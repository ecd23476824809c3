-- Immutable tags: per-namespace rules kept with the namespace (`/admin/v1/namespaces`, `lading-admin namespaces
-- update`). A tag of a repository the namespace covers is immutable when it matches one of `immutable_tags` (globs:
-- `*` any run of characters, `?` one character) and none of `immutable_tag_exceptions`. Once such a tag exists it
-- never moves to another digest and is never deleted (tag-rules.ts). The writes that would do so read these columns
-- inside their transaction, `FOR SHARE`, so a rule change waits for the writes in flight and binds every later one.

ALTER TABLE namespaces ADD COLUMN immutable_tags text[] NOT NULL DEFAULT '{}';
ALTER TABLE namespaces ADD COLUMN immutable_tag_exceptions text[] NOT NULL DEFAULT '{}';
