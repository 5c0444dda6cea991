"""Spectral norm: plain functions over lists of floats, almost no attributes or globals."""

import sys

SIZE = 330
ITERATIONS = 10


def matrix_entry(i, j):
    """Entry (i, j) of the infinite matrix A = 1 / ((i + j)(i + j + 1) / 2 + i + 1)."""
    return 1.0 / ((i + j) * (i + j + 1) // 2 + i + 1)


def times(u, transposed):
    n = len(u)
    out = [0.0] * n
    for i in range(n):
        total = 0.0
        for j in range(n):
            a = matrix_entry(j, i) if transposed else matrix_entry(i, j)
            total += a * u[j]
        out[i] = total
    return out


def times_ata(u):
    return times(times(u, False), True)


def spectral_norm(n, iterations):
    u = [1.0] * n
    for _ in range(iterations):
        v = times_ata(u)
        u = times_ata(v)
    vbv = sum(a * b for a, b in zip(u, v))
    vv = sum(b * b for b in v)
    return (vbv / vv) ** 0.5


def main(scale=1.0):
    n = max(4, int(SIZE * scale ** 0.5))  # the work grows with n squared
    print(f"checksum {spectral_norm(n, ITERATIONS):.9f}")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)
