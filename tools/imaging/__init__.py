"""Station SD-card images: block maps, xz streams, verified flashing, boot-partition settings.

Modules: `bmap` (Debian bmaptool's block map, format 2.0), `xzstream` (constant-memory xz),
`targets` (what may be written to, and the write port with its simulated card), `writer` (writes
the mapped blocks and verifies them), `progress`, `bootfs` (per-station files on the FAT boot
partition through mtools, never a mount). Exceptions: `errors`.
"""
