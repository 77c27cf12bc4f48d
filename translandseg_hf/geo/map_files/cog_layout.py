"""A COG laid out from tiles compressed while the strips arrived, so nothing is recompressed once the model is done.

GDAL's COG driver decompresses and recompresses every tile of its source (GDAL 3.10 copies no DEFLATE tile raw),
which was the whole tail of a scene. So the work files are written with the COG's own compression, block size and
predictor; GDAL's COG driver writes a sparse COG of the same shape (header, ghost header, georeferencing, every IFD;
no tiles); and here the compressed tiles are appended in the COG's order (smallest overview first, each level in rows)
with the block leader and trailer that GDAL's ghost header promises, and the tile offsets and byte counts are
patched in. The result has the layout and, at every level, the pixels of GDAL's COG driver's (only the padding of
edge tiles, which no reader sees, may differ). No maintained library
copies compressed tiles into a COG's layout; this is the part of TIFF that takes (classic and BigTIFF, either byte
order), and `NotAssemblable` hands anything else back to GDAL.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

IMAGE_WIDTH, IMAGE_LENGTH, BITS_PER_SAMPLE, COMPRESSION = 256, 257, 258, 259
SAMPLES_PER_PIXEL, PLANAR_CONFIGURATION, PREDICTOR = 277, 284, 317
TILE_WIDTH, TILE_LENGTH, TILE_OFFSETS, TILE_BYTE_COUNTS, SAMPLE_FORMAT = 322, 323, 324, 325, 339
LAYOUT_TAGS = {IMAGE_WIDTH: None, IMAGE_LENGTH: None, BITS_PER_SAMPLE: None, COMPRESSION: 1, SAMPLES_PER_PIXEL: 1,
               PLANAR_CONFIGURATION: 1, PREDICTOR: 1, TILE_WIDTH: None, TILE_LENGTH: None, SAMPLE_FORMAT: 1}
VALUE_TYPES = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8: the integer types these tags are written in
BLOCK_LEADER, BLOCK_TRAILER = b"BLOCK_LEADER=SIZE_AS_UINT4", b"BLOCK_TRAILER=LAST_4_BYTES_REPEATED"


class NotAssemblable(ValueError):
    """The sparse COG and the work files do not line up (another GDAL's layout): GDAL's COG driver is used instead."""


@dataclass(frozen=True)
class Entry:
    """One IFD entry: its value type, count, and where its value (or, if it does not fit, its value's offset) is."""

    type: int
    count: int
    position: int


@dataclass(frozen=True)
class TiffLayout:
    """A TIFF's byte order ("<" or ">"), whether it is BigTIFF, and each image's (IFD's) entries, in file order."""

    byte_order: str
    big: bool
    images: list[dict[int, Entry]]

    @property
    def offset_format(self) -> str:
        return self.byte_order + ("Q" if self.big else "I")


def read_layout(handle: BinaryIO) -> TiffLayout:
    """Every IFD's entries of an open TIFF."""
    handle.seek(0)
    header = handle.read(16)
    if header[:2] not in (b"II", b"MM"):
        raise NotAssemblable("not a TIFF")
    byte_order = "<" if header[:2] == b"II" else ">"
    big = struct.unpack(byte_order + "H", header[2:4])[0] == 43
    layout = TiffLayout(byte_order, big, [])
    offset = struct.unpack(layout.offset_format, header[8:16] if big else header[4:8])[0]
    entry_size, count_format = (20, "Q") if big else (12, "H")
    while offset:
        handle.seek(offset)
        count_bytes = handle.read(struct.calcsize(count_format))
        entries = struct.unpack(byte_order + count_format, count_bytes)[0]
        raw = handle.read(entries * entry_size + struct.calcsize(layout.offset_format))
        image = {}
        for index in range(entries):
            item = raw[index * entry_size : (index + 1) * entry_size]
            tag, kind = struct.unpack(byte_order + "HH", item[:4])
            count = struct.unpack(layout.offset_format, item[4:12] if big else item[4:8])[0]
            image[tag] = Entry(kind, count, offset + len(count_bytes) + index * entry_size + (12 if big else 8))
        layout.images.append(image)
        offset = struct.unpack(layout.offset_format, raw[entries * entry_size :])[0]
    return layout


def read_values(handle: BinaryIO, layout: TiffLayout, entry: Entry) -> tuple[int, np.ndarray]:
    """(where the values are, the values) of an integer entry, inline or not."""
    if entry.type not in VALUE_TYPES:
        raise NotAssemblable(f"an integer tag of TIFF type {entry.type}")
    dtype = np.dtype(layout.byte_order + VALUE_TYPES[entry.type])
    position = entry.position
    if dtype.itemsize * entry.count > (8 if layout.big else 4):
        handle.seek(position)
        position = struct.unpack(layout.offset_format, handle.read(struct.calcsize(layout.offset_format)))[0]
    handle.seek(position)
    return position, np.frombuffer(handle.read(dtype.itemsize * entry.count), dtype=dtype)


def layout_values(handle: BinaryIO, layout: TiffLayout, image: dict[int, Entry]) -> dict[int, tuple]:
    """The tags that decide how a tile's bytes decode (size, tiling, compression, predictor, sample type)."""
    return {tag: tuple(read_values(handle, layout, image[tag])[1].tolist()) if tag in image else (default,)
            for tag, default in LAYOUT_TAGS.items()}


def tile_table(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, byte counts) of the first image's tiles."""
    with open(path, "rb") as handle:
        layout = read_layout(handle)
        image = layout.images[0]
        return (read_values(handle, layout, image[TILE_OFFSETS])[1].astype(np.uint64),
                read_values(handle, layout, image[TILE_BYTE_COUNTS])[1].astype(np.uint64))


def check_tiles(path: Path) -> None:
    """Raise if a work file lacks a tile or ends before one: GDAL reports a failed block write (a full disk) only in
    its log, so a missing or cut-off tile is the sign."""
    try:
        offsets, counts = tile_table(path)
    except (OSError, KeyError, struct.error, NotAssemblable) as error:
        raise OSError(f"{path} is incomplete (its TIFF directory cannot be read: {error}): "
                      "is the disk full?") from error
    missing = int(np.count_nonzero((offsets == 0) | (counts == 0)))
    size = path.stat().st_size
    cut = int(np.count_nonzero(offsets + counts > size))
    if missing or cut:
        raise OSError(f"{path} is incomplete ({missing + cut:,} of {len(offsets):,} tiles missing or cut off, "
                      f"{size:,} bytes written): is the disk full?")


def assemble_cog(sparse_cog: Path, levels: list[Path]) -> None:
    """Append to `sparse_cog` (GDAL's COG driver, SPARSE_OK, no tiles written) the tiles of `levels` (the full
    resolution, then each overview, finest first: the COG's IFDs in order), and point its IFDs at them."""
    with open(sparse_cog, "r+b") as cog:
        layout = read_layout(cog)
        check_sparse(cog, layout, levels)
        cog.seek(0, 2)
        placed = []
        for index in reversed(range(len(levels))):  # GDAL's COG order: the smallest overview's tiles first
            offsets, counts = tile_table(levels[index])
            placed.append((index, append_tiles(cog, levels[index], offsets, counts), counts))
        end = cog.tell()
        limit = np.iinfo(np.dtype(VALUE_TYPES[layout.images[0][TILE_OFFSETS].type])).max
        if end > limit:
            raise NotAssemblable(f"{end:,} bytes do not fit this TIFF's offsets")
        for index, offsets, counts in placed:
            for tag, values in ((TILE_OFFSETS, offsets), (TILE_BYTE_COUNTS, counts)):
                position, written = read_values(cog, layout, layout.images[index][tag])
                if values.max(initial=0) > np.iinfo(written.dtype).max:
                    raise NotAssemblable(f"tile {'offsets' if tag == TILE_OFFSETS else 'sizes'} do not fit the "
                                         "sparse COG's tag type")
                cog.seek(position)
                cog.write(values.astype(written.dtype).tobytes())


def check_sparse(cog: BinaryIO, layout: TiffLayout, levels: list[Path]) -> None:
    """The sparse COG has one IFD per level, each tiled, compressed and sized as that level's work file, no tile
    written, and the ghost header's block leader and trailer this module writes."""
    cog.seek(0)
    ghost = cog.read(400)
    if BLOCK_LEADER not in ghost or BLOCK_TRAILER not in ghost:
        raise NotAssemblable("the COG's ghost header does not declare GDAL's block leader and trailer")
    if len(layout.images) != len(levels):
        raise NotAssemblable(f"the sparse COG has {len(layout.images)} images, the work files {len(levels)}")
    for image, level in zip(layout.images, levels):
        if TILE_OFFSETS not in image or read_values(cog, layout, image[TILE_OFFSETS])[1].any():
            raise NotAssemblable("the COG is not tiled, or not sparse")
        with open(level, "rb") as handle:
            work = read_layout(handle)
            if layout_values(cog, layout, image) != layout_values(handle, work, work.images[0]):
                raise NotAssemblable(f"{level.name} is not tiled and compressed as the COG is")


def append_tiles(cog: BinaryIO, level: Path, offsets: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Copy one level's compressed tiles, in row order, to the end of `cog`: each after its size (4 bytes) and
    before its last 4 bytes repeated, as GDAL writes them; returns where each tile's bytes now start."""
    placed = np.empty(len(offsets), dtype=np.uint64)
    with open(level, "rb") as source:
        for index, (offset, count) in enumerate(zip(offsets.tolist(), counts.tolist())):
            source.seek(offset)
            data = source.read(count)
            if len(data) != count:
                raise OSError(f"{level} ends inside tile {index}: is the disk full?")
            cog.write(struct.pack("<I", count))  # GDAL writes the leader little-endian whatever the TIFF's order
            placed[index] = cog.tell()
            cog.write(data)
            cog.write(data[-4:])
    return placed
