"""Threads on mostly private objects (each moves its own particles), folding a little into a
shared tally under a lock. The total work is fixed; PARALLEL_THREADS (2) splits it."""

import os
import sys
import threading

PARTICLES = 6000
STEPS = 300
THREADS = int(os.environ.get("PARALLEL_THREADS", "2"))


class Particle:
    def __init__(self, seed):
        self.x = float(seed % 97)
        self.y = float(seed % 89)
        self.vx = (seed % 7) - 3.0
        self.vy = (seed % 5) - 2.0
        self.bounces = 0


class Tally:
    """Shared by every thread; `with self.lock:` guards all of its attributes."""

    def __init__(self):
        self.lock = threading.Lock()
        self.steps = 0
        self.bounces = 0


def move(particles, steps, tally):
    for step in range(steps):
        bounced = 0
        for p in particles:
            p.x += p.vx
            p.y += p.vy
            if p.x < 0.0 or p.x > 100.0:
                p.vx = -p.vx
                p.bounces += 1
                bounced += 1
            if p.y < 0.0 or p.y > 100.0:
                p.vy = -p.vy
                p.bounces += 1
                bounced += 1
        if step % 20 == 0:
            with tally.lock:
                tally.steps += 1
                tally.bounces += bounced


def main(scale=1.0):
    count = max(THREADS, int(PARTICLES * scale))
    particles = [Particle(seed) for seed in range(count)]
    groups = [particles[i::THREADS] for i in range(THREADS)]
    tally = Tally()
    threads = [threading.Thread(target=move, args=(group, STEPS, tally)) for group in groups]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    position = round(sum(p.x + p.y for p in particles), 3)
    print(f"checksum {sum(p.bounces for p in particles)} {position}")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)
