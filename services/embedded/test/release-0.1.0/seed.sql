-- The rows Lading 0.1.0 (commit 51729c4) wrote through its own HTTP API on the schema of migrations/ (0001..0005):
-- written by make-seed.sh (read it for what was done): pg_dump --data-only --column-inserts, without the session
-- settings (SET, set_config, psql meta-commands), so that it runs as one script on any connection.
--
-- PostgreSQL database dump
--


-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)


--
-- Data for Name: users; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.users (id, name, password_hash, is_admin, disabled_at, created_at) VALUES (1, 'admin', '$argon2id$v=19$m=19456,t=2,p=1$jfovYPYNq5/PW3XdnOYIPA$f36Ywwr0vXYIFgKSxy/OCSuRdA/6/cNq7bTVxLFL/Xw', true, NULL, '2026-12-07 09:49:14.095845+00');
INSERT INTO public.users (id, name, password_hash, is_admin, disabled_at, created_at) VALUES (2, 'alice', '$argon2id$v=19$m=19456,t=2,p=1$r+hEr5B5guuXPrdivs1vaA$nN4hfVIGDnn7FRN4aJfyhCyz3Rrhz41BNOTiK7urVXc', false, NULL, '2026-12-07 09:49:17.469843+00');
INSERT INTO public.users (id, name, password_hash, is_admin, disabled_at, created_at) VALUES (3, 'bob', '$argon2id$v=19$m=19456,t=2,p=1$DMjALoMXSeU65IDiOZKXHQ$JuGnomccwDMMdAuCi6zVfFmeF6A31gD2GPqAjLDuSns', true, NULL, '2026-12-07 09:49:17.810179+00');


--
-- Data for Name: access_tokens; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.access_tokens (id, user_id, name, token_hash, expires_at, revoked_at, created_at) VALUES (1, 2, 'laptop', '75d348b309b6c91af8d00826d0fa6245f0212df2980d3ebf49842ade68ec80c9', NULL, NULL, '2026-12-07 09:49:17.999215+00');


--
-- Data for Name: blobs; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.blobs (digest, size, created_at) VALUES ('sha256:00f3447a6c258c694f2e6b42ca2442644594c24e98628e54104daf6e86a041b7', 118, '2026-12-07 09:49:22.642494+00');
INSERT INTO public.blobs (digest, size, created_at) VALUES ('sha256:bb53c223399f72fbc46868f2bfb69cb246002414d63646b79a615dfba3baf12e', 45, '2026-12-07 09:49:22.748705+00');
INSERT INTO public.blobs (digest, size, created_at) VALUES ('sha256:cf9c1a8aab53d5451d51e5e1b6bee95af6225836aac9df572646a67439778303', 44, '2026-12-07 09:49:23.066917+00');
INSERT INTO public.blobs (digest, size, created_at) VALUES ('sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', 2, '2026-12-07 09:49:23.103481+00');
INSERT INTO public.blobs (digest, size, created_at) VALUES ('sha256:f63338eb2f5b92ebd19f582c9d64276e1e891e5f55fa97ae91be5647df3086b3', 30, '2026-12-07 09:49:23.216842+00');
INSERT INTO public.blobs (digest, size, created_at) VALUES ('sha256:04c343465ae76ae68bc20cba183c3cebbc6f2cee9a5009e83ebd1667a707f283', 78, '2026-12-07 09:49:25.143242+00');
INSERT INTO public.blobs (digest, size, created_at) VALUES ('sha256:dac7c88d6fcab6adf6870c7ff8641148351cba8ccc4722c9e0e5aa68a0b21e6a', 21, '2026-12-07 09:49:25.307175+00');


--
-- Data for Name: gc_blob_pins; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: gc_blob_review_queue; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.gc_blob_review_queue (digest, review_after, reason, created_at, attempts) VALUES ('sha256:bb53c223399f72fbc46868f2bfb69cb246002414d63646b79a615dfba3baf12e', '2026-12-08 10:11:44.804203+00', 'upload completed', '2026-12-07 09:49:22.748705+00', 0);
INSERT INTO public.gc_blob_review_queue (digest, review_after, reason, created_at, attempts) VALUES ('sha256:cf9c1a8aab53d5451d51e5e1b6bee95af6225836aac9df572646a67439778303', '2026-12-08 12:09:31.99526+00', 'upload completed', '2026-12-07 09:49:23.066917+00', 0);
INSERT INTO public.gc_blob_review_queue (digest, review_after, reason, created_at, attempts) VALUES ('sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', '2026-12-08 10:21:32.50102+00', 'upload completed', '2026-12-07 09:49:23.103481+00', 0);
INSERT INTO public.gc_blob_review_queue (digest, review_after, reason, created_at, attempts) VALUES ('sha256:00f3447a6c258c694f2e6b42ca2442644594c24e98628e54104daf6e86a041b7', '2026-12-08 11:02:35.054348+00', 'manifest deleted', '2026-12-07 09:49:22.642494+00', 0);
INSERT INTO public.gc_blob_review_queue (digest, review_after, reason, created_at, attempts) VALUES ('sha256:f63338eb2f5b92ebd19f582c9d64276e1e891e5f55fa97ae91be5647df3086b3', '2026-12-08 11:44:50.32895+00', 'manifest deleted', '2026-12-07 09:49:23.216842+00', 0);
INSERT INTO public.gc_blob_review_queue (digest, review_after, reason, created_at, attempts) VALUES ('sha256:04c343465ae76ae68bc20cba183c3cebbc6f2cee9a5009e83ebd1667a707f283', '2026-12-08 09:59:13.320376+00', 'upload completed', '2026-12-07 09:49:25.143242+00', 0);
INSERT INTO public.gc_blob_review_queue (digest, review_after, reason, created_at, attempts) VALUES ('sha256:dac7c88d6fcab6adf6870c7ff8641148351cba8ccc4722c9e0e5aa68a0b21e6a', '2026-12-08 11:09:43.127131+00', 'upload completed', '2026-12-07 09:49:25.307175+00', 0);


--
-- Data for Name: repositories; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.repositories (id, name, event_seq, created_at) VALUES (1, 'team/app', 17, '2026-12-07 09:49:22.642494+00');
INSERT INTO public.repositories (id, name, event_seq, created_at) VALUES (2, 'pub/tool', 5, '2026-12-07 09:49:25.143242+00');


--
-- Data for Name: gc_manifest_review_queue; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.gc_manifest_review_queue (repository_id, digest, review_after, reason, created_at, attempts) VALUES (1, 'sha256:b121282e091ac1def2fcbaa63a28ef22b2971ff4ec1bd96ae190faf36af74b85', '2026-12-08 11:10:53.621563+00', 'pushed untagged', '2026-12-07 09:49:23.144162+00', 0);


--
-- Data for Name: gc_tombstones; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: namespaces; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.namespaces (id, prefix, public, created_at) VALUES (1, 'team', false, '2026-12-07 09:49:19.484294+00');
INSERT INTO public.namespaces (id, prefix, public, created_at) VALUES (2, 'pub', true, '2026-12-07 09:49:20.162883+00');


--
-- Data for Name: grants; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.grants (namespace_id, principal_type, principal_name, role, created_at) VALUES (1, 'user', 'alice', 'push', '2026-12-07 09:49:20.785523+00');
INSERT INTO public.grants (namespace_id, principal_type, principal_name, role, created_at) VALUES (1, 'robot', 'robot$ci', 'pull', '2026-12-07 09:49:20.953715+00');


--
-- Data for Name: login_failures; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.login_failures (key, failures, window_start) VALUES ('account:alice', 1, '2026-12-07 09:49:26.061251+00');
INSERT INTO public.login_failures (key, failures, window_start) VALUES ('addr:127.0.0.1', 1, '2026-12-07 09:49:26.061251+00');


--
-- Data for Name: manifests; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.manifests (repository_id, digest, media_type, artifact_type, size, payload, subject_digest, annotations, created_at) VALUES (1, 'sha256:73ddce6a390a75d3c2a3f3c0e392a21ec10a15667494ac89206d45cb51159374', 'application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.config.v1+json', 450, '\x7b22736368656d6156657273696f6e223a322c226d6564696154797065223a226170706c69636174696f6e2f766e642e6f63692e696d6167652e6d616e69666573742e76312b6a736f6e222c22636f6e666967223a7b226d6564696154797065223a226170706c69636174696f6e2f766e642e6f63692e696d6167652e636f6e6669672e76312b6a736f6e222c22646967657374223a227368613235363a30306633343437613663323538633639346632653662343263613234343236343435393463323465393836323865353431303464616636653836613034316237222c2273697a65223a3131387d2c226c6179657273223a5b7b226d6564696154797065223a226170706c69636174696f6e2f766e642e6f63692e696d6167652e6c617965722e76312e746172222c22646967657374223a227368613235363a62623533633232333339396637326662633436383638663262666236396362323436303032343134643633363436623739613631356466626133626166313265222c2273697a65223a34357d5d2c22616e6e6f746174696f6e73223a7b226f72672e6f70656e636f6e7461696e6572732e696d6167652e7469746c65223a22617070227d7d', NULL, '{"org.opencontainers.image.title": "app"}', '2026-12-07 09:49:22.837883+00');
INSERT INTO public.manifests (repository_id, digest, media_type, artifact_type, size, payload, subject_digest, annotations, created_at) VALUES (1, 'sha256:29d62afd9ae338a8c2c1a4051cb9341153a4e83019564df61ec90b7a737bc874', 'application/vnd.oci.image.index.v1+json', NULL, 289, '\x7b22736368656d6156657273696f6e223a322c226d6564696154797065223a226170706c69636174696f6e2f766e642e6f63692e696d6167652e696e6465782e76312b6a736f6e222c226d616e696665737473223a5b7b226d6564696154797065223a226170706c69636174696f6e2f766e642e6f63692e696d6167652e6d616e69666573742e76312b6a736f6e222c22646967657374223a227368613235363a37336464636536613339306137356433633261336633633065333932613231656331306131353636373439346163383932303664343563623531313539333734222c2273697a65223a3435302c22706c6174666f726d223a7b22617263686974656374757265223a22616d643634222c226f73223a226c696e7578227d7d5d7d', NULL, NULL, '2026-12-07 09:49:23.045198+00');
INSERT INTO public.manifests (repository_id, digest, media_type, artifact_type, size, payload, subject_digest, annotations, created_at) VALUES (1, 'sha256:b121282e091ac1def2fcbaa63a28ef22b2971ff4ec1bd96ae190faf36af74b85', 'application/vnd.oci.image.manifest.v1+json', 'application/spdx+json', 571, '\x7b22736368656d6156657273696f6e223a322c226d6564696154797065223a226170706c69636174696f6e2f766e642e6f63692e696d6167652e6d616e69666573742e76312b6a736f6e222c22617274696661637454797065223a226170706c69636174696f6e2f737064782b6a736f6e222c22636f6e666967223a7b226d6564696154797065223a226170706c69636174696f6e2f766e642e6f63692e656d7074792e76312b6a736f6e222c22646967657374223a227368613235363a34343133366661333535623336373861313134366164313666376538363439653934666234666332316665373765383331306330363066363163616166663861222c2273697a65223a327d2c226c6179657273223a5b7b226d6564696154797065223a226170706c69636174696f6e2f737064782b6a736f6e222c22646967657374223a227368613235363a63663963316138616162353364353435316435316535653162366265653935616636323235383336616163396466353732363436613637343339373738333033222c2273697a65223a34347d5d2c227375626a656374223a7b226d6564696154797065223a226170706c69636174696f6e2f766e642e6f63692e696d6167652e6d616e69666573742e76312b6a736f6e222c22646967657374223a227368613235363a37336464636536613339306137356433633261336633633065333932613231656331306131353636373439346163383932303664343563623531313539333734222c2273697a65223a3435307d7d', 'sha256:73ddce6a390a75d3c2a3f3c0e392a21ec10a15667494ac89206d45cb51159374', NULL, '2026-12-07 09:49:23.144162+00');
INSERT INTO public.manifests (repository_id, digest, media_type, artifact_type, size, payload, subject_digest, annotations, created_at) VALUES (2, 'sha256:200515f195cce6f1af3b7039b5f14ba032a2250d0cc32a9c507f6480358ebdb5', 'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.container.image.v1+json', 421, '\x7b22736368656d6156657273696f6e223a322c226d6564696154797065223a226170706c69636174696f6e2f766e642e646f636b65722e646973747269627574696f6e2e6d616e69666573742e76322b6a736f6e222c22636f6e666967223a7b226d6564696154797065223a226170706c69636174696f6e2f766e642e646f636b65722e636f6e7461696e65722e696d6167652e76312b6a736f6e222c22646967657374223a227368613235363a30346333343334363561653736616536386263323063626131383363336365626263366632636565396135303039653833656264313636376137303766323833222c2273697a65223a37387d2c226c6179657273223a5b7b226d6564696154797065223a226170706c69636174696f6e2f766e642e646f636b65722e696d6167652e726f6f7466732e646966662e7461722e677a6970222c22646967657374223a227368613235363a64616337633838643666636162366164663638373063376666383634313134383335316362613863636334373232633965306535616136386130623231653661222c2273697a65223a32317d5d7d', NULL, NULL, '2026-12-07 09:49:25.375124+00');


--
-- Data for Name: manifest_blob_references; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.manifest_blob_references (repository_id, manifest_digest, blob_digest) VALUES (1, 'sha256:73ddce6a390a75d3c2a3f3c0e392a21ec10a15667494ac89206d45cb51159374', 'sha256:00f3447a6c258c694f2e6b42ca2442644594c24e98628e54104daf6e86a041b7');
INSERT INTO public.manifest_blob_references (repository_id, manifest_digest, blob_digest) VALUES (1, 'sha256:73ddce6a390a75d3c2a3f3c0e392a21ec10a15667494ac89206d45cb51159374', 'sha256:bb53c223399f72fbc46868f2bfb69cb246002414d63646b79a615dfba3baf12e');
INSERT INTO public.manifest_blob_references (repository_id, manifest_digest, blob_digest) VALUES (1, 'sha256:b121282e091ac1def2fcbaa63a28ef22b2971ff4ec1bd96ae190faf36af74b85', 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
INSERT INTO public.manifest_blob_references (repository_id, manifest_digest, blob_digest) VALUES (1, 'sha256:b121282e091ac1def2fcbaa63a28ef22b2971ff4ec1bd96ae190faf36af74b85', 'sha256:cf9c1a8aab53d5451d51e5e1b6bee95af6225836aac9df572646a67439778303');
INSERT INTO public.manifest_blob_references (repository_id, manifest_digest, blob_digest) VALUES (2, 'sha256:200515f195cce6f1af3b7039b5f14ba032a2250d0cc32a9c507f6480358ebdb5', 'sha256:04c343465ae76ae68bc20cba183c3cebbc6f2cee9a5009e83ebd1667a707f283');
INSERT INTO public.manifest_blob_references (repository_id, manifest_digest, blob_digest) VALUES (2, 'sha256:200515f195cce6f1af3b7039b5f14ba032a2250d0cc32a9c507f6480358ebdb5', 'sha256:dac7c88d6fcab6adf6870c7ff8641148351cba8ccc4722c9e0e5aa68a0b21e6a');


--
-- Data for Name: manifest_children; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.manifest_children (repository_id, parent_digest, child_digest) VALUES (1, 'sha256:29d62afd9ae338a8c2c1a4051cb9341153a4e83019564df61ec90b7a737bc874', 'sha256:73ddce6a390a75d3c2a3f3c0e392a21ec10a15667494ac89206d45cb51159374');


--
-- Data for Name: outbox; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.outbox (id, repository, sequence, type, event, created_at, published_at, attempts, last_error, parked_at) VALUES ('01a24fe8-6f53-7ae1-9650-3d2200375894', 'team/app', 1, 'io.lading.repository.created', '{"id": "01a24fe8-6f53-7ae1-9650-3d2200375894", "data": {"tag": null, "size": null, "actor": {"name": null, "type": "anonymous"}, "digest": null, "request": {"id": "769b8ae1-96a0-402c-90a4-190237b5de2e", "addr": "127.0.0.1", "method": "POST", "useragent": "curl/7.88.1"}, "subject": null, "mediaType": null, "namespace": "team", "references": [], "repository": "team/app", "artifactType": null, "fromRepository": null, "previousDigest": null}, "time": "2026-12-07T09:49:22.643Z", "type": "io.lading.repository.created", "source": "//vm/lading/blob", "subject": "team/app", "sequence": "00000000000000000001", "specversion": "1.0", "partitionkey": "team/app", "datacontenttype": "application/json"}', '2026-12-07 09:49:22.642494+00', '2026-12-07 09:49:22.653815+00', 0, NULL, NULL);
INSERT INTO public.outbox (id, repository, sequence, type, event, created_at, published_at, attempts, last_error, parked_at) VALUES ('01a24fe8-6f55-7109-ab2c-8f0d67d1ae30', 'team/app', 2, 'io.lading.blob.uploaded', '{"id": "01a24fe8-6f55-7109-ab2c-8f0d67d1ae30", "data": {"tag": null, "size": 118, "actor": {"name": null, "type": "anonymous"}, "digest": "sha256:00f3447a6c258c694f2e6b42ca2442644594c24e98628e54104daf6e86a041b7", "request": {"id": "769b8ae1-96a0-402c-90a4-190237b5de2e", "addr": "127.0.0.1", "method": "POST", "useragent": "curl/7.88.1"}, "subject": null, "mediaType": "application/octet-stream", "namespace": "team", "references": [], "repository": "team/app", "artifactType": null, "fromRepository": null, "previousDigest": null}, "time": "2026-12-07T09:49:22.645Z", "type": "io.lading.blob.uploaded", "source": "//vm/lading/blob", "subject": "team/app@sha256:00f3447a6c258c694f2e6b42ca2442644594c24e98628e54104daf6e86a041b7", "sequence": "00000000000000000002", "specversion": "1.0", "partitionkey": "team/app", "datacontenttype": "application/json"}', '2026-12-07 09:49:22.642494+00', '2026-12-07 09:49:22.653815+00', 0, NULL, NULL);
INSERT INTO public.outbox (id, repository, sequence, type, event, created_at, published_at, attempts, last_error, parked_at) VALUES ('01a24fe8-6fbd-77b1-b3ab-72547b7cb8a6', 'team/app', 3, 'io.lading.blob.uploaded', '{"id": "01a24fe8-6fbd-77b1-b3ab-72547b7cb8a6", "data": {"tag": null, "size": 45, "actor": {"name": null, "type": "anonymous"}, "digest": "sha256:bb53c223399f72fbc46868f2bfb69cb246002414d63646b79a615dfba3baf12e", "request": {"id": "27883fc4-059f-463f-90d5-1f18ff2303b3", "addr": "127.0.0.1", "method": "POST", "useragent": "curl/7.88.1"}, "subject": null, "mediaType": "application/octet-stream", "namespace": "team", "references": [], "repository": "team/app", "artifactType": null, "fromRepository": null, "previousDigest": null}, "time": "2026-12-07T09:49:22.749Z", "type": "io.lading.blob.uploaded", "source": "//vm/lading/blob", "subject": "team/app@sha256:bb53c223399f72fbc46868f2bfb69cb246002414d63646b79a615dfba3baf12e", "sequence": "00000000000000000003", "specversion": "1.0", "partitionkey": "team/app", "datacontenttype": "application/json"}', '2026-12-07 09:49:22.748705+00', '2026-12-07 09:49:22.75268+00', 0, NULL, NULL);
INSERT INTO public.outbox (id, repository, sequence, type, event, created_at, published_at, attempts, last_error, parked_at) VALUES ('01a24fe8-702c-715b-af93-b339308fcbea', 'team/app', 4, 'io.lading.manifest.pushed', '{"id": "01a24fe8-702c-715b-af93-b339308fcbea", "data": {"tag": "v1", "size": 450, "actor": {"name": null, "type": "anonymous"}, "digest": "sha256:73ddce6a390a75d3c2a3f3c0e392a21ec10a15667494ac89206d45cb51159374", "request": {"id": "0ea9336c-6bae-4fec-8b9b-bbfb550381fc", "addr": "127.0.0.1", "method": "PUT", "useragent": "curl/7.88.1"}, "subject": null, "mediaType": "application/vnd.oci.image.manifest.v1+json", "namespace": "team", "references": [{"size": 118, "digest": "sha256:00f3447a6c258c694f2e6b42ca2442644594c24e98628e54104daf6e86a041b7", "mediaType": "application/vnd.oci.image.config.v1+json"}, {"size": 45, "digest": "sha256:bb53c223399f72fbc46868f2bfb69cb246002414d63646b79a615dfba3baf12e", "mediaType": "application/vnd.oci.image.layer.v1.tar"}], "repository": "team/app", "artifactType": "application/vnd.oci.image.config.v1+json", "fromRepository": null, "previousDigest": null}, "time": "2026-12-07T09:49:22.860Z", "type": "io.lading.manifest.pushed", "source": "//vm/lading/manifest", "subject": "team/app@sha256:73ddce6a390a75d3c2a3f3c0e392a21ec10a15667494ac89206d45cb51159374", "sequence": "00000000000000000004", "specversion": "1.0", "partitionkey": "team/app", "datacontenttype": "application/json"}', '2026-12-07 09:49:22.837883+00', '2026-12-07 09:49:22.872849+00', 0, NULL, NULL);
INSERT INTO public.outbox (id, repository, sequence, type, event, created_at, published_at, attempts, last_error, parked_at) VALUES ('01a24fe8-702e-7410-9bed-b0f32316ce50', 'team/app', 5, 'io.lading.tag.updated', '{"id": "01a24fe8-702e-7410-9bed-b0f32316ce50", "data": {"tag": "v1", "size": 450, "actor": {"name": null, "type": "anonymous"}, "digest": "sha256:73ddce6a390a75d3c2a3f3c0e392a21ec10a15667494ac89206d45cb51159374", "request": {"id": "0ea9336c-6bae-4fec-8b9b-bbfb550381fc", "addr": "127.0.0.1", "method": "PUT", "useragent": "curl/7.88.1"}, "subject": null, "mediaType": "application/vnd.oci.image.manifest.v1+json", "namespace": "team", "references": [], "repository": "team/app", "artifactType": null, "fromRepository": null, "previousDigest": null}, "time": "2026-12-07T09:49:22.862Z", "type": "io.lading.tag.updated", "source": "//vm/lading/manifest", "subject": "team/app:v1", "sequence": "00000000000000000005", "specversion": "1.0", "partitionkey": "team/app", "datacontenttype": "application/json"}', '2026-12-07 09:49:22.837883+00', '2026-12-07 09:49:22.872849+00', 0, NULL, NULL);
INSERT INTO public.outbox (id, repository, sequence, type, event, created_at, published_at, attempts, last_error, parked_at) VALUES ('01a24fe8-70fb-7a93-a7bf-017fdafd780d', 'team/app', 9, 'io.lading.blob.uploaded', '{"id": "01a24fe8-70fb-7a93-a7bf-017fdafd780d", "data": {"tag": null, "size": 44, "actor": {"name": null, "type": "anonymous"}, "digest": "sha256:cf9c1a8aab53d5451d51e5e1b6bee95af6225836aac9df572646a67439778303", "request": {"id": "31e765b6-18e9-4f0c-a806-7e27bf011788", "addr": "127.0.0.1", "method": "POST", "useragent": "curl/7.88.1"}, "subject": null, "mediaType": "application/octet-stream", "namespace": "team", "references": [], "repository": "team/app", "artifactType": null, "fromRepository": null, "previousDigest": null}, "time": "2026-12-07T09:49:23.067Z", "type": "io.lading.blob.uploaded", "source": "//vm/lading/blob", "subject": "team/app@sha256:cf9c1a8aab53d5451d51e5e1b6bee95af6225836aac9df572646a67439778303", "sequence": "00000000000000000009", "specversion": "1.0", "partitionkey": "team/app", "datacontenttype": "application/json"}', '2026-12-07 09:49:23.066917+00', '2026-12-07 09:49:23.068763+00', 0, NULL, NULL);
INSERT INTO public.outbox (id, repository, sequence, type, event, created_at, published_at, attempts, last_error, parked_at) VALUES ('01a24fe8-7085-7598-bd95-03afc0a34b03', 'team/app', 6, 'io.lading.tag.updated', '{"id": "01a24fe8-7085-7598-bd95-03afc0a34b03", "data": {"tag": "latest", "size": 450, "actor": {"name": null, "type": "anonymous"}, "digest": "sha256:73ddce6a390a75d3c2a3f3c0e392a21ec10a15667494ac89206d45cb51159374", "request": {"id": "e965ff41-7cea-42e4-9b8a-7d5c884cce17", "addr": "127.0.0.1", "method": "PUT", "useragent": "curl/7.88.1"}, "subject": null, "mediaType": "application/vnd.oci.image.manifest.v1+json", "namespace": "team", "references": [], "repository": "team/app", "artifactType": null, "fromRepository": null, "previousDigest": null}, "time": "2026-12-07T09:49:22.949Z", "type": "io.lading.tag.updated", "source": "//vm/lading/manifest", "subject": "team/app:latest", "sequence": "00000000000000000006", "specversion": "1.0", "partitionkey": "team/app", "datacontenttype": "application/json"}', '2026-12-07 09:49:22.934106+00', '2026-12-07 09:49:22.958428+00', 0, NULL, NULL);
INSERT INTO public.outbox (id, repository, sequence, type, event, created_at, published_at, attempts, last_error, parked_at) VALUES ('01a24fe8-70e7-7d77-b3a6-18eee7525f91', 'team/app', 7, 'io.lading.manifest.pushed', '{"id": "01a24fe8-70e7-7d77-b3a6-18eee7525f91", "data": {"tag": "multi", "size": 289, "actor": {"name": null, "type": "anonymous"}, "digest": "sha256:29d62afd9ae338a8c2c1a4051cb9341153a4e83019564df61ec90b7a737bc874", "request": {"id": "3e506dc1-38c3-4cdf-9f12-dba278def63e", "addr": "127.0.0.1", "method": "PUT", "useragent": "curl/7.88.1"}, "subject": null, "mediaType": "application/vnd.oci.image.index.v1+json", "namespace": "team", "references": [{"size": 450, "digest": "sha256:73ddce6a390a75d3c2a3f3c0e392a21ec10a15667494ac89206d45cb51159374", "mediaType": "application/vnd.oci.image.manifest.v1+json"}], "repository": "team/app", "artifactType": null, "fromRepository": null, "previousDigest": null}, "time": "2026-12-07T09:49:23.047Z", "type": "io.lading.manifest.pushed", "source": "//vm/lading/manifest", "subject": "team/app@sha256:29d62afd9ae338a8c2c1a4051cb9341153a4e83019564df61ec90b7a737bc874", "sequence": "00000000000000000007", "specversion": "1.0", "partitionkey": "team/app", "datacontenttype": "application/json"}', '2026-12-07 09:49:23.045198+00', '2026-12-07 09:49:23.068763+00', 0, NULL, NULL);
INSERT INTO public.outbox (id, repository, sequence, type, event, created_at, published_at, attempts, last_error, parked_at) VALUES ('01a24fe8-70e8-7502-b7cc-665f13109541', 'team/app', 8, 'io.lading.tag.updated', '{"id": "01a24fe8-70e8-7502-b7cc-665f13109541", "data": {"tag": "multi", "size": 289, "actor": {"name": null, "type": "anonymous"}, "digest": "sha256:29d62afd9ae338a8c2c1a4051cb9341153a4e83019564df61ec90b7a737bc874", "request": {"id": "3e506dc1-38c3-4cdf-9f12-dba278def63e", "addr": "127.0.0.1", "method": "PUT", "useragent": "curl/7.88.1"}, "subject": null, "mediaType": "application/vnd.oci.image.index.v1+json", "namespace": "team", "references": [], "repository": "team/app", "artifactType": null, "fromRepository": null, "previousDigest": null}, "time": "2026-12-07T09:49:23.048Z", "type": "io.lading.tag.updated", "source": "//vm/lading/manifest", "subject": "team/app:multi", "sequence": "00000000000000000008", "specversion": "1.0", "partitionkey": "team/app", "datacontenttype": "application/json"}', '2026-12-07 09:49:23.045198+00', '2026-12-07 09:49:23.068763+00', 0, NULL, NULL);
INSERT INTO public.outbox (id, repository, sequence, type, event, created_at, published_at, attempts, last_error, parked_at) VALUES ('01a24fe8-7120-7f6d-9ab8-a297ff7eedbc', 'team/app', 10, 'io.lading.blob.uploaded', '{"id": "01a24fe8-7120-7f6d-9ab8-a297ff7eedbc", "data": {"tag": null, "size": 2, "actor": {"name": null, "type": "anonymous"}, "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "request": {"id": "a8d8e9a6-8d46-4298-b387-d2372cb51087", "addr": "127.0.0.1", "method": "POST", "useragent": "curl/7.88.1"}, "subject": null, "mediaType": "application/octet-stream", "namespace": "team", "references": [], "repository": "team/app", "artifactType": null, "fromRepository": null, "previousDigest": null}, "time": "2026-12-07T09:49:23.104Z", "type": "io.lading.blob.uploaded", "source": "//vm/lading/blob", "subject": "team/app@sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "sequence": "00000000000000000010", "specversion": "1.0", "partitionkey": "team/app", "datacontenttype": "application/json"}', '2026-12-07 09:49:23.103481+00', '2026-12-07 09:49:23.109878+00', 0, NULL, NULL);
INSERT INTO public.outbox (id, repository, sequence, type, event, created_at, published_at, attempts, last_error, parked_at) VALUES ('01a24fe8-7163-7720-bb5e-a6c8b1ab6a84', 'team/app', 11, 'io.lading.manifest.pushed', '{"id": "01a24fe8-7163-7720-bb5e-a6c8b1ab6a84", "data": {"tag": null, "size": 571, "actor": {"name": null, "type": "anonymous"}, "digest": "sha256:b121282e091ac1def2fcbaa63a28ef22b2971ff4ec1bd96ae190faf36af74b85", "request": {"id": "d9da8670-70e3-415a-81a7-05ea7e0c03fa", "addr": "127.0.0.1", "method": "PUT", "useragent": "curl/7.88.1"}, "subject": {"size": 450, "digest": "sha256:73ddce6a390a75d3c2a3f3c0e392a21ec10a15667494ac89206d45cb51159374", "mediaType": "application/vnd.oci.image.manifest.v1+json"}, "mediaType": "application/vnd.oci.image.manifest.v1+json", "namespace": "team", "references": [{"size": 2, "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "mediaType": "application/vnd.oci.empty.v1+json"}, {"size": 44, "digest": "sha256:cf9c1a8aab53d5451d51e5e1b6bee95af6225836aac9df572646a67439778303", "mediaType": "application/spdx+json"}], "repository": "team/app", "artifactType": "application/spdx+json", "fromRepository": null, "previousDigest": null}, "time": "2026-12-07T09:49:23.171Z", "type": "io.lading.manifest.pushed", "source": "//vm/lading/manifest", "subject": "team/app@sha256:b121282e091ac1def2fcbaa63a28ef22b2971ff4ec1bd96ae190faf36af74b85", "sequence": "00000000000000000011", "specversion": "1.0", "partitionkey": "team/app", "datacontenttype": "application/json"}', '2026-12-07 09:49:23.144162+00', '2026-12-07 09:49:23.183458+00', 0, NULL, NULL);
INSERT INTO public.outbox (id, repository, sequence, type, event, created_at, published_at, attempts, last_error, parked_at) VALUES ('01a24fe8-7164-7150-813f-019c8770d1bf', 'team/app', 12, 'io.lading.referrer.attached', '{"id": "01a24fe8-7164-7150-813f-019c8770d1bf", "data": {"tag": null, "size": 571, "actor": {"name": null, "type": "anonymous"}, "digest": "sha256:b121282e091ac1def2fcbaa63a28ef22b2971ff4ec1bd96ae190faf36af74b85", "request": {"id": "d9da8670-70e3-415a-81a7-05ea7e0c03fa", "addr": "127.0.0.1", "method": "PUT", "useragent": "curl/7.88.1"}, "subject": {"size": 450, "digest": "sha256:73ddce6a390a75d3c2a3f3c0e392a21ec10a15667494ac89206d45cb51159374", "mediaType": "application/vnd.oci.image.manifest.v1+json"}, "mediaType": "application/vnd.oci.image.manifest.v1+json", "namespace": "team", "references": [], "repository": "team/app", "artifactType": "application/spdx+json", "fromRepository": null, "previousDigest": null}, "time": "2026-12-07T09:49:23.172Z", "type": "io.lading.referrer.attached", "source": "//vm/lading/manifest", "subject": "team/app@sha256:73ddce6a390a75d3c2a3f3c0e392a21ec10a15667494ac89206d45cb51159374", "sequence": "00000000000000000012", "specversion": "1.0", "partitionkey": "team/app", "datacontenttype": "application/json"}', '2026-12-07 09:49:23.144162+00', '2026-12-07 09:49:23.183458+00', 0, NULL, NULL);
INSERT INTO public.outbox (id, repository, sequence, type, event, created_at, published_at, attempts, last_error, parked_at) VALUES ('01a24fe8-7193-7d6d-bcc7-911e0d697f5a', 'team/app', 13, 'io.lading.blob.uploaded', '{"id": "01a24fe8-7193-7d6d-bcc7-911e0d697f5a", "data": {"tag": null, "size": 30, "actor": {"name": null, "type": "anonymous"}, "digest": "sha256:f63338eb2f5b92ebd19f582c9d64276e1e891e5f55fa97ae91be5647df3086b3", "request": {"id": "69173afa-d032-4f3d-b8a6-2a5bada60e3d", "addr": "127.0.0.1", "method": "POST", "useragent": "curl/7.88.1"}, "subject": null, "mediaType": "application/octet-stream", "namespace": "team", "references": [], "repository": "team/app", "artifactType": null, "fromRepository": null, "previousDigest": null}, "time": "2026-12-07T09:49:23.219Z", "type": "io.lading.blob.uploaded", "source": "//vm/lading/blob", "subject": "team/app@sha256:f63338eb2f5b92ebd19f582c9d64276e1e891e5f55fa97ae91be5647df3086b3", "sequence": "00000000000000000013", "specversion": "1.0", "partitionkey": "team/app", "datacontenttype": "application/json"}', '2026-12-07 09:49:23.216842+00', '2026-12-07 09:49:23.227111+00', 0, NULL, NULL);
INSERT INTO public.outbox (id, repository, sequence, type, event, created_at, published_at, attempts, last_error, parked_at) VALUES ('01a24fe8-71cb-74c7-afd1-1cebee8c1491', 'team/app', 14, 'io.lading.manifest.pushed', '{"id": "01a24fe8-71cb-74c7-afd1-1cebee8c1491", "data": {"tag": "old", "size": 395, "actor": {"name": null, "type": "anonymous"}, "digest": "sha256:61e105709838ba721894f6f04eb2f5333e4d74515881bad0f0865ba9b03b458a", "request": {"id": "7e9de6f1-4fcd-4601-9243-7fc5b4465bbe", "addr": "127.0.0.1", "method": "PUT", "useragent": "curl/7.88.1"}, "subject": null, "mediaType": "application/vnd.oci.image.manifest.v1+json", "namespace": "team", "references": [{"size": 118, "digest": "sha256:00f3447a6c258c694f2e6b42ca2442644594c24e98628e54104daf6e86a041b7", "mediaType": "application/vnd.oci.image.config.v1+json"}, {"size": 30, "digest": "sha256:f63338eb2f5b92ebd19f582c9d64276e1e891e5f55fa97ae91be5647df3086b3", "mediaType": "application/vnd.oci.image.layer.v1.tar"}], "repository": "team/app", "artifactType": "application/vnd.oci.image.config.v1+json", "fromRepository": null, "previousDigest": null}, "time": "2026-12-07T09:49:23.275Z", "type": "io.lading.manifest.pushed", "source": "//vm/lading/manifest", "subject": "team/app@sha256:61e105709838ba721894f6f04eb2f5333e4d74515881bad0f0865ba9b03b458a", "sequence": "00000000000000000014", "specversion": "1.0", "partitionkey": "team/app", "datacontenttype": "application/json"}', '2026-12-07 09:49:23.269749+00', '2026-12-07 09:49:23.34348+00', 0, NULL, NULL);
INSERT INTO public.outbox (id, repository, sequence, type, event, created_at, published_at, attempts, last_error, parked_at) VALUES ('01a24fe8-71d6-7d78-b315-b24ac16f78db', 'team/app', 15, 'io.lading.tag.updated', '{"id": "01a24fe8-71d6-7d78-b315-b24ac16f78db", "data": {"tag": "old", "size": 395, "actor": {"name": null, "type": "anonymous"}, "digest": "sha256:61e105709838ba721894f6f04eb2f5333e4d74515881bad0f0865ba9b03b458a", "request": {"id": "7e9de6f1-4fcd-4601-9243-7fc5b4465bbe", "addr": "127.0.0.1", "method": "PUT", "useragent": "curl/7.88.1"}, "subject": null, "mediaType": "application/vnd.oci.image.manifest.v1+json", "namespace": "team", "references": [], "repository": "team/app", "artifactType": null, "fromRepository": null, "previousDigest": null}, "time": "2026-12-07T09:49:23.286Z", "type": "io.lading.tag.updated", "source": "//vm/lading/manifest", "subject": "team/app:old", "sequence": "00000000000000000015", "specversion": "1.0", "partitionkey": "team/app", "datacontenttype": "application/json"}', '2026-12-07 09:49:23.269749+00', '2026-12-07 09:49:23.34348+00', 0, NULL, NULL);
INSERT INTO public.outbox (id, repository, sequence, type, event, created_at, published_at, attempts, last_error, parked_at) VALUES ('01a24fe8-767e-7c41-81fa-d0281561e75f', 'team/app', 16, 'io.lading.tag.deleted', '{"id": "01a24fe8-767e-7c41-81fa-d0281561e75f", "data": {"tag": "old", "size": null, "actor": {"name": null, "type": "anonymous"}, "digest": "sha256:61e105709838ba721894f6f04eb2f5333e4d74515881bad0f0865ba9b03b458a", "request": {"id": "c05e297a-a418-43b2-89d3-27974d3d8406", "addr": "127.0.0.1", "method": "DELETE", "useragent": "curl/7.88.1"}, "subject": null, "mediaType": null, "namespace": "team", "references": [], "repository": "team/app", "artifactType": null, "fromRepository": null, "previousDigest": null}, "time": "2026-12-07T09:49:24.478Z", "type": "io.lading.tag.deleted", "source": "//vm/lading/manifest", "subject": "team/app:old", "sequence": "00000000000000000016", "specversion": "1.0", "partitionkey": "team/app", "datacontenttype": "application/json"}', '2026-12-07 09:49:24.475656+00', '2026-12-07 09:49:24.484927+00', 0, NULL, NULL);
INSERT INTO public.outbox (id, repository, sequence, type, event, created_at, published_at, attempts, last_error, parked_at) VALUES ('01a24fe8-767e-7843-b943-85e878ba5c43', 'team/app', 17, 'io.lading.manifest.deleted', '{"id": "01a24fe8-767e-7843-b943-85e878ba5c43", "data": {"tag": null, "size": 395, "actor": {"name": null, "type": "anonymous"}, "digest": "sha256:61e105709838ba721894f6f04eb2f5333e4d74515881bad0f0865ba9b03b458a", "request": {"id": "c05e297a-a418-43b2-89d3-27974d3d8406", "addr": "127.0.0.1", "method": "DELETE", "useragent": "curl/7.88.1"}, "subject": null, "mediaType": "application/vnd.oci.image.manifest.v1+json", "namespace": "team", "references": [], "repository": "team/app", "artifactType": null, "fromRepository": null, "previousDigest": null}, "time": "2026-12-07T09:49:24.478Z", "type": "io.lading.manifest.deleted", "source": "//vm/lading/manifest", "subject": "team/app@sha256:61e105709838ba721894f6f04eb2f5333e4d74515881bad0f0865ba9b03b458a", "sequence": "00000000000000000017", "specversion": "1.0", "partitionkey": "team/app", "datacontenttype": "application/json"}', '2026-12-07 09:49:24.475656+00', '2026-12-07 09:49:24.484927+00', 0, NULL, NULL);
INSERT INTO public.outbox (id, repository, sequence, type, event, created_at, published_at, attempts, last_error, parked_at) VALUES ('01a24fe8-7918-7f97-a4c7-7ce5e5d14d57', 'pub/tool', 1, 'io.lading.repository.created', '{"id": "01a24fe8-7918-7f97-a4c7-7ce5e5d14d57", "data": {"tag": null, "size": null, "actor": {"name": null, "type": "anonymous"}, "digest": null, "request": {"id": "e34e253e-3bcb-4855-8347-1abafc08b054", "addr": "127.0.0.1", "method": "POST", "useragent": "curl/7.88.1"}, "subject": null, "mediaType": null, "namespace": "pub", "references": [], "repository": "pub/tool", "artifactType": null, "fromRepository": null, "previousDigest": null}, "time": "2026-12-07T09:49:25.144Z", "type": "io.lading.repository.created", "source": "//vm/lading/blob", "subject": "pub/tool", "sequence": "00000000000000000001", "specversion": "1.0", "partitionkey": "pub/tool", "datacontenttype": "application/json"}', '2026-12-07 09:49:25.143242+00', '2026-12-07 09:49:25.148603+00', 0, NULL, NULL);
INSERT INTO public.outbox (id, repository, sequence, type, event, created_at, published_at, attempts, last_error, parked_at) VALUES ('01a24fe8-7919-74ea-a349-195c7ca685d4', 'pub/tool', 2, 'io.lading.blob.uploaded', '{"id": "01a24fe8-7919-74ea-a349-195c7ca685d4", "data": {"tag": null, "size": 78, "actor": {"name": null, "type": "anonymous"}, "digest": "sha256:04c343465ae76ae68bc20cba183c3cebbc6f2cee9a5009e83ebd1667a707f283", "request": {"id": "e34e253e-3bcb-4855-8347-1abafc08b054", "addr": "127.0.0.1", "method": "POST", "useragent": "curl/7.88.1"}, "subject": null, "mediaType": "application/octet-stream", "namespace": "pub", "references": [], "repository": "pub/tool", "artifactType": null, "fromRepository": null, "previousDigest": null}, "time": "2026-12-07T09:49:25.145Z", "type": "io.lading.blob.uploaded", "source": "//vm/lading/blob", "subject": "pub/tool@sha256:04c343465ae76ae68bc20cba183c3cebbc6f2cee9a5009e83ebd1667a707f283", "sequence": "00000000000000000002", "specversion": "1.0", "partitionkey": "pub/tool", "datacontenttype": "application/json"}', '2026-12-07 09:49:25.143242+00', '2026-12-07 09:49:25.148603+00', 0, NULL, NULL);
INSERT INTO public.outbox (id, repository, sequence, type, event, created_at, published_at, attempts, last_error, parked_at) VALUES ('01a24fe8-79bc-71c1-a294-1fcdc06c3449', 'pub/tool', 3, 'io.lading.blob.uploaded', '{"id": "01a24fe8-79bc-71c1-a294-1fcdc06c3449", "data": {"tag": null, "size": 21, "actor": {"name": null, "type": "anonymous"}, "digest": "sha256:dac7c88d6fcab6adf6870c7ff8641148351cba8ccc4722c9e0e5aa68a0b21e6a", "request": {"id": "06270152-b0b9-4fe2-9533-3c066a72b345", "addr": "127.0.0.1", "method": "POST", "useragent": "curl/7.88.1"}, "subject": null, "mediaType": "application/octet-stream", "namespace": "pub", "references": [], "repository": "pub/tool", "artifactType": null, "fromRepository": null, "previousDigest": null}, "time": "2026-12-07T09:49:25.308Z", "type": "io.lading.blob.uploaded", "source": "//vm/lading/blob", "subject": "pub/tool@sha256:dac7c88d6fcab6adf6870c7ff8641148351cba8ccc4722c9e0e5aa68a0b21e6a", "sequence": "00000000000000000003", "specversion": "1.0", "partitionkey": "pub/tool", "datacontenttype": "application/json"}', '2026-12-07 09:49:25.307175+00', '2026-12-07 09:49:25.310205+00', 0, NULL, NULL);
INSERT INTO public.outbox (id, repository, sequence, type, event, created_at, published_at, attempts, last_error, parked_at) VALUES ('01a24fe8-7a00-71ee-a602-9dcfdaf0264c', 'pub/tool', 4, 'io.lading.manifest.pushed', '{"id": "01a24fe8-7a00-71ee-a602-9dcfdaf0264c", "data": {"tag": "1.0", "size": 421, "actor": {"name": null, "type": "anonymous"}, "digest": "sha256:200515f195cce6f1af3b7039b5f14ba032a2250d0cc32a9c507f6480358ebdb5", "request": {"id": "51896d4a-4fff-4adf-bbf5-9ce3563c776f", "addr": "127.0.0.1", "method": "PUT", "useragent": "curl/7.88.1"}, "subject": null, "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "namespace": "pub", "references": [{"size": 78, "digest": "sha256:04c343465ae76ae68bc20cba183c3cebbc6f2cee9a5009e83ebd1667a707f283", "mediaType": "application/vnd.docker.container.image.v1+json"}, {"size": 21, "digest": "sha256:dac7c88d6fcab6adf6870c7ff8641148351cba8ccc4722c9e0e5aa68a0b21e6a", "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip"}], "repository": "pub/tool", "artifactType": "application/vnd.docker.container.image.v1+json", "fromRepository": null, "previousDigest": null}, "time": "2026-12-07T09:49:25.376Z", "type": "io.lading.manifest.pushed", "source": "//vm/lading/manifest", "subject": "pub/tool@sha256:200515f195cce6f1af3b7039b5f14ba032a2250d0cc32a9c507f6480358ebdb5", "sequence": "00000000000000000004", "specversion": "1.0", "partitionkey": "pub/tool", "datacontenttype": "application/json"}', '2026-12-07 09:49:25.375124+00', '2026-12-07 09:49:25.380218+00', 0, NULL, NULL);
INSERT INTO public.outbox (id, repository, sequence, type, event, created_at, published_at, attempts, last_error, parked_at) VALUES ('01a24fe8-7a02-7f8d-a8d1-854444d61517', 'pub/tool', 5, 'io.lading.tag.updated', '{"id": "01a24fe8-7a02-7f8d-a8d1-854444d61517", "data": {"tag": "1.0", "size": 421, "actor": {"name": null, "type": "anonymous"}, "digest": "sha256:200515f195cce6f1af3b7039b5f14ba032a2250d0cc32a9c507f6480358ebdb5", "request": {"id": "51896d4a-4fff-4adf-bbf5-9ce3563c776f", "addr": "127.0.0.1", "method": "PUT", "useragent": "curl/7.88.1"}, "subject": null, "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "namespace": "pub", "references": [], "repository": "pub/tool", "artifactType": null, "fromRepository": null, "previousDigest": null}, "time": "2026-12-07T09:49:25.378Z", "type": "io.lading.tag.updated", "source": "//vm/lading/manifest", "subject": "pub/tool:1.0", "sequence": "00000000000000000005", "specversion": "1.0", "partitionkey": "pub/tool", "datacontenttype": "application/json"}', '2026-12-07 09:49:25.375124+00', '2026-12-07 09:49:25.380218+00', 0, NULL, NULL);


--
-- Data for Name: refresh_tokens; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.refresh_tokens (token_hash, principal_type, principal_name, expires_at, revoked_at, created_at) VALUES ('f4a9f0add82d65614c5856dde8f697613e7088c7dc849776d93fd70fe8c4b63b', 'user', 'alice', '2027-01-06 09:49:25.599+00', NULL, '2026-12-07 09:49:25.60197+00');
INSERT INTO public.refresh_tokens (token_hash, principal_type, principal_name, expires_at, revoked_at, created_at) VALUES ('47a87f241e2608190729449d5880ca1d3cce14daabb44eab2b77561d9a5eee1b', 'user', 'alice', '2027-01-06 09:49:25.923+00', NULL, '2026-12-07 09:49:25.924049+00');


--
-- Data for Name: repository_blobs; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.repository_blobs (repository_id, blob_digest, created_at) VALUES (1, 'sha256:00f3447a6c258c694f2e6b42ca2442644594c24e98628e54104daf6e86a041b7', '2026-12-07 09:49:22.642494+00');
INSERT INTO public.repository_blobs (repository_id, blob_digest, created_at) VALUES (1, 'sha256:bb53c223399f72fbc46868f2bfb69cb246002414d63646b79a615dfba3baf12e', '2026-12-07 09:49:22.748705+00');
INSERT INTO public.repository_blobs (repository_id, blob_digest, created_at) VALUES (1, 'sha256:cf9c1a8aab53d5451d51e5e1b6bee95af6225836aac9df572646a67439778303', '2026-12-07 09:49:23.066917+00');
INSERT INTO public.repository_blobs (repository_id, blob_digest, created_at) VALUES (1, 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', '2026-12-07 09:49:23.103481+00');
INSERT INTO public.repository_blobs (repository_id, blob_digest, created_at) VALUES (1, 'sha256:f63338eb2f5b92ebd19f582c9d64276e1e891e5f55fa97ae91be5647df3086b3', '2026-12-07 09:49:23.216842+00');
INSERT INTO public.repository_blobs (repository_id, blob_digest, created_at) VALUES (2, 'sha256:04c343465ae76ae68bc20cba183c3cebbc6f2cee9a5009e83ebd1667a707f283', '2026-12-07 09:49:25.143242+00');
INSERT INTO public.repository_blobs (repository_id, blob_digest, created_at) VALUES (2, 'sha256:dac7c88d6fcab6adf6870c7ff8641148351cba8ccc4722c9e0e5aa68a0b21e6a', '2026-12-07 09:49:25.307175+00');


--
-- Data for Name: robots; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.robots (id, name, secret_hash, expires_at, revoked_at, created_by, created_at) VALUES (1, 'ci', '$argon2id$v=19$m=19456,t=2,p=1$NxBtnjyB9pXtt8hfVTWQLw$LfuCJ32i+FH8MzLWYyZPebBWFDorc3RgFps9yLkV74E', '2027-01-06 09:49:18.62+00', NULL, 'admin', '2026-12-07 09:49:18.621079+00');


--
-- Data for Name: signing_keys; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.signing_keys (kid, private_key_pem, public_jwk, created_at, retired_at, expires_at) VALUES ('-w4DEeFh6xemYWfbWkhMQwwCVI8NNS6acG15mokz5kc', '-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgvuIsul9cNk71d/lM
MURkMt3EAc06nHwx2ZIeTOzzCVKhRANCAAS71QGgiFpFIPQggRtRERn+GktExMfZ
iP4fuM97cKaCF5L/oYG/5zoxtR3WwCVq2sisZoV0uIZBCH/ULVcoidFh
-----END PRIVATE KEY-----
', '{"x": "u9UBoIhaRSD0IIEbUREZ_hpLRMTH2Yj-H7jPe3Cmghc", "y": "kv-hgb_nOjG1HdbAJWrayKxmhXS4hkEIf9QtVyiJ0WE", "alg": "ES256", "crv": "P-256", "kid": "-w4DEeFh6xemYWfbWkhMQwwCVI8NNS6acG15mokz5kc", "kty": "EC", "use": "sig"}', '2026-12-07 09:49:22.45089+00', NULL, NULL);


--
-- Data for Name: tags; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.tags (repository_id, name, manifest_digest, updated_at) VALUES (1, 'v1', 'sha256:73ddce6a390a75d3c2a3f3c0e392a21ec10a15667494ac89206d45cb51159374', '2026-12-07 09:49:22.837883+00');
INSERT INTO public.tags (repository_id, name, manifest_digest, updated_at) VALUES (1, 'latest', 'sha256:73ddce6a390a75d3c2a3f3c0e392a21ec10a15667494ac89206d45cb51159374', '2026-12-07 09:49:22.934106+00');
INSERT INTO public.tags (repository_id, name, manifest_digest, updated_at) VALUES (1, 'multi', 'sha256:29d62afd9ae338a8c2c1a4051cb9341153a4e83019564df61ec90b7a737bc874', '2026-12-07 09:49:23.045198+00');
INSERT INTO public.tags (repository_id, name, manifest_digest, updated_at) VALUES (2, '1.0', 'sha256:200515f195cce6f1af3b7039b5f14ba032a2250d0cc32a9c507f6480358ebdb5', '2026-12-07 09:49:25.375124+00');


--
-- Data for Name: uploads; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.uploads (id, repository_id, byte_offset, algorithm, hash_state, lease_until, created_at, updated_at, principal) VALUES ('f60a342f-7fcf-42fd-bd57-2b09e379b046', 1, 10, 'sha256+sha512', '\x06736861323536000000748ed695a3303132333435363738390000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000a0000000000000067e6096a85ae67bb72f36e3c3af54fa57f520e518c68059babd9831f19cde05b200000000000000006736861353132000000d4922e1bd030313233343536373839000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000a0000000000000008c9bcf367e6096a3ba7ca8485ae67bb2bf894fe72f36e3cf1361d5f3af54fa5d182e6ad7f520e511f6c3e2b8c68059b6bbd41fbabd9831f79217e1319cde05b4000000000000000', NULL, '2026-12-07 09:49:24.532111+00', '2026-12-07 09:49:24.565957+00', 'alice');


--
-- Data for Name: webhook_subscriptions; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.webhook_subscriptions (id, name, namespace, url, format, event_types, secret, enabled, created_at, updated_at) VALUES ('01a24fe8-6cc5-7e2e-96f4-22724b9a3e2e', 'scanner', 'team', 'http://127.0.0.1:9/lading-hook', 'cloudevents', '{}', 'whsec_vhZohFzV5DKonpwOnQ5p7gD+IvN3rOFulOy2Q0Rj4x8=', true, '2026-12-07 09:49:21.994213+00', '2026-12-07 09:49:21.994213+00');


--
-- Data for Name: webhook_deliveries; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Name: access_tokens_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.access_tokens_id_seq', 1, true);


--
-- Name: namespaces_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.namespaces_id_seq', 2, true);


--
-- Name: repositories_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.repositories_id_seq', 2, true);


--
-- Name: robots_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.robots_id_seq', 1, true);


--
-- Name: users_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.users_id_seq', 3, true);


--
-- PostgreSQL database dump complete
--


