"""crc32c (CRC-32 with the Castagnoli polynomial) and TensorFlow's masked form of it.

LevelDB tables and TensorFlow tensor bundles store a crc32c of every block and every tensor,
"masked" so that a crc of data that itself contains crcs is not degenerate:
``mask(crc) = rotate_right(crc, 15) + 0xa282ead8 (mod 2^32)``.

`crc32c_reference` is the plain table-driven loop (one lookup per byte, slow in Python);
`crc32c` gives the same result about 10x faster on large inputs by running many chunks
through the same loop at once with NumPy and chaining them (see its docstring).
Used by inpainting/tf_checkpoint.py.
"""
import functools

import numpy as np

__all__ = ["crc32c", "crc32c_reference", "mask_crc", "unmask_crc"]

_CRC_POLY = 0x82F63B78          # the Castagnoli polynomial 0x1EDC6F41, bit-reversed
_MASK_DELTA = 0xA282EAD8        # TensorFlow/LevelDB crc masking constant
_U32 = 0xFFFFFFFF


def _make_crc_table() -> list[int]:
    table = []
    for byte in range(256):
        c = byte
        for _ in range(8):
            c = (c >> 1) ^ _CRC_POLY if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _make_crc_table()
_CRC_TABLE_NP = np.array(_CRC_TABLE, dtype=np.uint32)


def _crc_update_bytewise(state: int, data) -> int:
    """Advance the raw crc register over `data`, one table lookup per byte."""
    table = _CRC_TABLE
    for b in data:
        state = table[(state ^ b) & 0xFF] ^ (state >> 8)
    return state


def crc32c_reference(data: bytes) -> int:
    """crc32c of `data`, the plain byte-at-a-time table loop (slow; the tests' reference)."""
    return _crc_update_bytewise(_U32, bytes(data)) ^ _U32


@functools.lru_cache(maxsize=16)
def _zero_shift_tables(length: int) -> tuple[list[int], ...]:
    """Four 256-entry tables giving Z(s), the register after feeding `length` zero bytes.

    The byte update s' = T[(s ^ b) & 0xFF] ^ (s >> 8) is linear over GF(2), so
    crc_register(s, D) = Z(s) ^ crc_register(0, D) for any block D of `length` bytes, and
    Z(s) = XOR over the 4 bytes of s of a per-byte table (built from Z of the 32 unit vectors).
    """
    units = np.array([1 << bit for bit in range(32)], dtype=np.uint32)
    for _ in range(length):
        units = _CRC_TABLE_NP[units & 0xFF] ^ (units >> 8)
    units = [int(u) for u in units]
    tables = []
    for byte_index in range(4):
        table = [0] * 256
        for v in range(1, 256):
            low_bit = (v & -v).bit_length() - 1
            table[v] = table[v & (v - 1)] ^ units[8 * byte_index + low_bit]
        tables.append(table)
    return tuple(tables)


def crc32c(data) -> int:
    """crc32c of a bytes-like object, vectorised with NumPy for large inputs.

    The data is cut into K chunks of L bytes; the K chunk registers (started from 0) advance
    together, one NumPy step per byte position; they are then chained with the zero-shift
    operator Z of `_zero_shift_tables`: s_k = Z(s_{k-1}) ^ r_k. The tail (< L bytes) uses the
    byte loop. Equals `crc32c_reference` exactly (tested).
    """
    buf = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    n = buf.size
    if n < 8192:
        return crc32c_reference(buf.tobytes())
    length = 1 << int(round(np.log2(np.sqrt(n))))       # chunk length L, a power of two
    count = n // length                                  # number of chunks K
    columns = np.ascontiguousarray(buf[:count * length].reshape(count, length).T)
    registers = np.zeros(count, dtype=np.uint32)
    for row in columns:                                  # byte position i of every chunk
        registers = _CRC_TABLE_NP[(registers ^ row) & 0xFF] ^ (registers >> 8)
    t0, t1, t2, t3 = _zero_shift_tables(length)
    state = _U32
    for r in registers.tolist():
        state = (t0[state & 0xFF] ^ t1[(state >> 8) & 0xFF] ^ t2[(state >> 16) & 0xFF]
                 ^ t3[state >> 24] ^ r)
    state = _crc_update_bytewise(state, buf[count * length:].tobytes())
    return state ^ _U32


def mask_crc(crc: int) -> int:
    """TensorFlow's stored form of a crc: rotate right by 15 bits, add 0xa282ead8 (mod 2^32)."""
    return ((((crc >> 15) | (crc << 17)) & _U32) + _MASK_DELTA) & _U32


def unmask_crc(masked: int) -> int:
    """Inverse of `mask_crc`."""
    rot = (masked - _MASK_DELTA) & _U32
    return ((rot >> 17) | (rot << 15)) & _U32
