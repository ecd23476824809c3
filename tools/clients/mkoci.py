#!/usr/bin/env python3
"""Build an OCI image layout from random bytes.

Usage: mkoci.py <out-dir> <ref-name>                       a small multi-arch index
       mkoci.py <out-dir> <ref-name> --big BYTES [--arch A]  one image, one layer of BYTES

Writes an OCI image layout (oci-layout, index.json, blobs/sha256/*).

Without --big it holds one OCI image index with two platform manifests
(linux/amd64, linux/arm64). Each image has a shared "base" layer plus one
platform-specific layer; every layer is a gzip'd tar of random bytes with
deterministic sizes. Prints a JSON summary (index digest, per-platform manifest
digests, their layers and configs, blob list) on stdout.

With --big it holds one image manifest (linux/<A>, default amd64) whose single
layer is a tar of one file of BYTES: a random 1 MiB block repeated, which costs
no more than writing it, yet gzip cannot shrink it (its window is 32 KiB), so
the layer blob is as large as the file. The layer is streamed to disk and hashed
in the same pass. Prints {"manifest", "config", "layer", "diff_id", "size"}.
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
BLOCK = 1 << 20


class Hashing:
    """A writable that hashes what it passes on to `out`."""

    def __init__(self, out):
        self.out, self.hash, self.size = out, hashlib.sha256(), 0

    def write(self, data):
        self.hash.update(data)
        self.size += len(data)
        return self.out.write(data)


class Repeated:
    """A readable of `size` bytes: `block` over and over."""

    def __init__(self, block, size):
        self.block, self.left, self.at = block, size, 0

    def read(self, n=-1):
        n = self.left if n is None or n < 0 else min(n, self.left)
        out = bytearray()
        while len(out) < n:
            take = min(n - len(out), len(self.block) - self.at)
            out += self.block[self.at:self.at + take]
            self.at = (self.at + take) % len(self.block)
        self.left -= n
        return bytes(out)


class Layout:
    """The blobs of an OCI image layout under construction."""

    def __init__(self, out):
        self.out = out
        self.dir = os.path.join(out, "blobs", "sha256")
        os.makedirs(self.dir, exist_ok=True)
        self.blobs = {}

    def put(self, data: bytes, media_type: str, **extra):
        dgst = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.dir, dgst), "wb") as f:
            f.write(data)
        return self._descriptor("sha256:" + dgst, len(data), media_type, extra)

    def layer(self, name: str, payload, size: int, compresslevel: int):
        """A gzip'd tar of one file `name` read from `payload`, streamed to disk: (descriptor, diff id)."""
        tmp = os.path.join(self.dir, ".layer.tmp")
        with open(tmp, "wb") as f:
            blob = Hashing(f)
            with gzip.GzipFile(fileobj=blob, mode="wb", compresslevel=compresslevel, mtime=0) as gz:
                tar = Hashing(gz)
                with tarfile.open(fileobj=tar, mode="w|", format=tarfile.PAX_FORMAT, copybufsize=BLOCK) as tf:
                    ti = tarfile.TarInfo(name)
                    ti.size, ti.mode, ti.mtime = size, 0o644, 0
                    tf.addfile(ti, payload)
        dgst = blob.hash.hexdigest()
        os.replace(tmp, os.path.join(self.dir, dgst))
        return self._descriptor("sha256:" + dgst, blob.size, MT_LAYER, {}), "sha256:" + tar.hash.hexdigest()

    def _descriptor(self, digest, size, media_type, extra):
        self.blobs[digest] = size
        d = {"mediaType": media_type, "digest": digest, "size": size}
        d.update(extra)
        return d

    def image(self, arch: str, layers, diff_ids, title: str, **extra):
        """A config and an image manifest over `layers`: (manifest descriptor, config descriptor)."""
        config = {
            "created": "2024-01-01T00:00:00Z",
            "architecture": arch,
            "os": "linux",
            "config": {"Env": [f"LADING_ARCH={arch}"], "Cmd": ["/bin/true"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "mkoci.py"}] * len(layers),
        }
        c_desc = self.put(json.dumps(config, separators=(",", ":")).encode(), MT_CONFIG)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": c_desc,
            "layers": layers,
            "annotations": {"org.opencontainers.image.title": title},
        }
        return self.put(json.dumps(manifest, indent=2).encode(), MT_MANIFEST, **extra), c_desc

    def finish(self, top, ref: str):
        """index.json naming `top` as `ref`, and oci-layout."""
        layout_index = {
            "schemaVersion": 2,
            "mediaType": MT_INDEX,
            "manifests": [dict(top, annotations={"org.opencontainers.image.ref.name": ref})],
        }
        with open(os.path.join(self.out, "index.json"), "w") as f:
            json.dump(layout_index, f)
        with open(os.path.join(self.out, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)


def multi_arch(layout: Layout, ref: str):
    def layer(name, size):
        return layout.layer(name, io.BytesIO(os.urandom(size)), size, compresslevel=1)

    base_desc, base_diff = layer("base.bin", BASE_SIZE)
    manifests, layers, configs = [], {}, {}
    for arch, size in PLATFORM_SIZES.items():
        l_desc, l_diff = layer(f"{arch}.bin", size)
        m_desc, c_desc = layout.image(arch, [base_desc, l_desc], [base_diff, l_diff], f"lading-roundtrip-{arch}",
                                      platform={"architecture": arch, "os": "linux"})
        manifests.append(m_desc)
        layers[arch] = [base_desc["digest"], l_desc["digest"]]
        configs[arch] = c_desc["digest"]

    index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": manifests}
    i_desc = layout.put(json.dumps(index, indent=2).encode(), MT_INDEX)
    layout.finish(i_desc, ref)
    return {
        "index": i_desc["digest"],
        "manifests": {m["platform"]["architecture"]: m["digest"] for m in manifests},
        "layers": layers,
        "configs": configs,
        "blobs": layout.blobs,
    }


def big(layout: Layout, ref: str, size: int, arch: str):
    # Level 0: stored deflate blocks, a valid gzip stream at the speed of a copy (the bytes would not shrink anyway).
    l_desc, diff_id = layout.layer("big.bin", Repeated(os.urandom(BLOCK), size), size, compresslevel=0)
    m_desc, c_desc = layout.image(arch, [l_desc], [diff_id], f"lading-big-{arch}")
    layout.finish(m_desc, ref)
    return {"manifest": m_desc["digest"], "config": c_desc["digest"], "layer": l_desc["digest"],
            "diff_id": diff_id, "size": l_desc["size"]}


def main():
    args = sys.argv[1:]
    if len(args) not in (2, 4, 6) or (len(args) > 2 and args[2] != "--big") or (len(args) == 6 and args[4] != "--arch"):
        sys.exit(__doc__)
    layout = Layout(args[0])
    summary = multi_arch(layout, args[1]) if len(args) == 2 else big(layout, args[1], int(args[3]), args[5] if len(args) == 6 else "amd64")
    json.dump(summary, sys.stdout)
    print()


if __name__ == "__main__":
    main()
