"""Module globals and dict/list items: a memoized recursion and a word counter, one thread."""

import sys

ROUNDS = 100
TEXT_WORDS = 100_000
COUNT_PASSES = 6
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "po", "qu", "ba"]

CACHE = {}  # (n, largest part) -> number of partitions; cleared every round
CALLS = 0
HITS = 0
SEED = 12345


def partitions(n, largest):
    """Partitions of n into parts no larger than `largest`, memoized in the global CACHE."""
    global CALLS, HITS
    CALLS += 1
    key = (n, largest)
    if key in CACHE:
        HITS += 1
        return CACHE[key]
    if n == 0:
        result = 1
    elif largest == 0:
        result = 0
    else:
        result = partitions(n, largest - 1)
        if largest <= n:
            result += partitions(n - largest, largest)
    CACHE[key] = result
    return result


def next_random(bound):
    """A linear congruential generator kept in a module global, so every draw is a global RMW."""
    global SEED
    SEED = (SEED * 1103515245 + 12345) % 2147483648
    return (SEED >> 16) % bound


def generate_text(words):
    out = []
    for _ in range(words):
        syllables = [SYLLABLES[next_random(len(SYLLABLES))] for _ in range(1 + next_random(3))]
        out.append("".join(syllables))
    return out


def count_words(words):
    """Word, pair, length and first-letter statistics through plain dict and list items."""
    counts = {}
    pairs = {}
    by_length = [0] * 16
    first_letters = {}
    previous = ""
    for word in words:
        if word in counts:
            counts[word] += 1
        else:
            counts[word] = 1
        pair = (previous, word)
        pairs[pair] = pairs.get(pair, 0) + 1
        by_length[len(word)] += 1
        first_letters[word[0]] = first_letters.get(word[0], 0) + 1
        previous = word
    return counts, len(pairs), by_length, first_letters


def main(scale=1.0):
    global SEED
    SEED = 12345
    total = 0
    for _ in range(max(1, int(ROUNDS * scale))):
        CACHE.clear()
        total += partitions(120, 120) % 1_000_003
    words = generate_text(max(10, int(TEXT_WORDS * scale)))
    for _ in range(COUNT_PASSES):
        counts, distinct_pairs, by_length, first_letters = count_words(words)
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    letters = sorted(first_letters.items())[:3]
    print(f"checksum {total} {CALLS} {HITS} {len(counts)} {distinct_pairs} {top} "
          f"{by_length[2:7]} {letters}")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)
