-- Search ranks name matches in tiers (issue 22): the exact name, then a name or last path segment starting with the
-- term, then a name containing it, then a similar one; each tier is read only while the results so far are fewer
-- than the page needs (and the match limit counts). The first two are read in index order and stop there: the exact
-- name from search_documents_name_idx, a last segment equal to or starting with the term from this index, in the
-- order the prefix tier is listed (by last segment, then name). Without it a term matching thousands of names had
-- every one of them read, scored and sorted before the page was cut (docs/benchmarks.md).
CREATE INDEX search_documents_last_segment_idx ON search_documents ((split_part(name, '/', -1)), name);
ANALYZE search_documents;
