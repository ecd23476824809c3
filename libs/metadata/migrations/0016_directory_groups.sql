-- Company sign-in, LDAP part: grants to groups, users made by a directory sign-in, and the groups a sign-in found.
--
-- A grant may name a group (`group:platform`): it applies to every principal whose identity provider said, at its
-- sign-in, that it belongs to that group. Membership is not stored per user: it is carried by the sign-in's refresh
-- token or console session (refresh_tokens.groups) and dies with it, so a user taken out of a group in the directory
-- loses the group's grants at the next sign-in (at the latest when the session it already has expires).

ALTER TABLE grants DROP CONSTRAINT grants_principal_type_check;
ALTER TABLE grants ADD CONSTRAINT grants_principal_type_check CHECK (principal_type IN ('user', 'robot', 'group'));

-- Where a user's password is checked: 'local' (password_hash) or 'ldap' (a bind to the directory; password_hash holds
-- no usable hash). A directory user's row is made at its first sign-in.
ALTER TABLE users ADD COLUMN source text NOT NULL DEFAULT 'local' CHECK (source IN ('local', 'ldap'));

-- The groups the identity provider named at the sign-in that started this refresh token's family (a JSON array of
-- names); rotation copies them to the successor.
ALTER TABLE refresh_tokens ADD COLUMN groups jsonb NOT NULL DEFAULT '[]';
