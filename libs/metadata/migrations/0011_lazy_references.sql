-- A manifest's blob references no longer require the blob to be stored, so that a pull-through cache can store a
-- manifest as soon as it is fetched and verified and fetch its layers when a client asks for them (as Distribution's
-- proxy does). The reference is a fact of the manifest's content; while it names a blob the registry does not hold,
-- it keeps nothing alive, and once the cache fetches that blob it keeps it for as long as the manifest exists.
--
-- Nothing else changes for pushed content: a push still checks, inside its transaction and under the locks the
-- collector conflicts with, that every blob it references is linked to its repository (manifest-writes.ts), and the
-- collector deletes a blob only after finding no reference to it (gc-references.ts). What this removes is the
-- backstop under those checks (a DELETE of a referenced blob row failing), not the checks.

ALTER TABLE manifest_blob_references DROP CONSTRAINT manifest_blob_references_blob_digest_fkey;
