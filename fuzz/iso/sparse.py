#!/usr/bin/env python3
"""Rewrites disc images as the sparse images fuzz/iso/main.swift takes: per non-zero sector,
the number of zero sectors skipped before it (2 bytes, little-endian) and its 2048 bytes. A seed
is then a few KB, which keeps the fuzzer fast and its in-memory corpus small (the RSS limit
counts it). Usage: sparse.py IMAGE... (each IMAGE is replaced by IMAGE.sparse)"""
import os
import sys

for path in sys.argv[1:]:
    data = open(path, 'rb').read()
    data += bytes(-len(data) % 2048)
    out, skip = bytearray(), 0
    for i in range(0, len(data), 2048):
        sector = data[i:i + 2048]
        if not any(sector):
            skip += 1
            continue
        while skip > 0xFFFF:  # a long zero run: an explicit zero sector breaks it
            out += (0xFFFF).to_bytes(2, 'little') + bytes(2048)
            skip -= 0x10000
        out += skip.to_bytes(2, 'little') + sector
        skip = 0
    if skip:  # trailing zeros still count: the image's size places anchors (N-1, N-256)
        out += (skip - 1).to_bytes(2, 'little') + bytes(2048)
    open(path + '.sparse', 'wb').write(out)
    os.remove(path)
