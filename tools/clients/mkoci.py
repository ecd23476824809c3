#!/usr/bin/env python3
"""Build a small multi-arch OCI image layout from random bytes.

Usage: mkoci.py <out-dir> <ref-name>

Writes an OCI image layout (oci-layout, index.json, blobs/sha256/*) holding one
OCI image index with two platform manifests (linux/amd64, linux/arm64). Each
image has a shared "base" layer plus one platform-specific layer; every layer
is a gzip'd tar of random bytes with deterministic sizes. Prints a JSON
summary (index digest, per-platform manifest digests, blob list) on stdout.
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

# Deterministic sizes (bytes of random payload per layer).
BASE_SIZE = 3 * 1024 * 1024 + 17          # shared by both platforms
PLATFORM_SIZES = {"amd64": 1024 * 1024 + 1, "arm64": 2 * 1024 * 1024 + 3}


def main():
    out, ref = sys.argv[1], sys.argv[2]
    blobs_dir = os.path.join(out, "blobs", "sha256")
    os.makedirs(blobs_dir, exist_ok=True)
    blobs = {}

    def put(data: bytes, media_type: str, **extra):
        dgst = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs_dir, dgst), "wb") as f:
            f.write(data)
        blobs["sha256:" + dgst] = len(data)
        d = {"mediaType": media_type, "digest": "sha256:" + dgst, "size": len(data)}
        d.update(extra)
        return d

    def layer(name: str, size: int):
        payload = os.urandom(size)
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = size, 0o644, 0
            tf.addfile(ti, io.BytesIO(payload))
        tar_bytes = raw.getvalue()
        gz = gzip.compress(tar_bytes, compresslevel=1, mtime=0)
        diff_id = "sha256:" + hashlib.sha256(tar_bytes).hexdigest()
        return put(gz, MT_LAYER), diff_id

    base_desc, base_diff = layer("base.bin", BASE_SIZE)
    manifests, layers = [], {}
    for arch, size in PLATFORM_SIZES.items():
        l_desc, l_diff = layer(f"{arch}.bin", size)
        config = {
            "created": "2024-01-01T00:00:00Z",
            "architecture": arch,
            "os": "linux",
            "config": {"Env": [f"LADING_ARCH={arch}"], "Cmd": ["/bin/true"]},
            "rootfs": {"type": "layers", "diff_ids": [base_diff, l_diff]},
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "mkoci.py"}] * 2,
        }
        c_desc = put(json.dumps(config, separators=(",", ":")).encode(), MT_CONFIG)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": c_desc,
            "layers": [base_desc, l_desc],
            "annotations": {"org.opencontainers.image.title": f"lading-roundtrip-{arch}"},
        }
        m_desc = put(json.dumps(manifest, indent=2).encode(), MT_MANIFEST,
                     platform={"architecture": arch, "os": "linux"})
        manifests.append(m_desc)
        layers[arch] = [base_desc["digest"], l_desc["digest"]]

    index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": manifests}
    i_desc = put(json.dumps(index, indent=2).encode(), MT_INDEX)

    layout_index = {
        "schemaVersion": 2,
        "mediaType": MT_INDEX,
        "manifests": [dict(i_desc, annotations={"org.opencontainers.image.ref.name": ref})],
    }
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(layout_index, f)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)

    json.dump({
        "index": i_desc["digest"],
        "manifests": {m["platform"]["architecture"]: m["digest"] for m in manifests},
        "layers": layers,
        "blobs": blobs,
    }, sys.stdout)
    print()


if __name__ == "__main__":
    main()
