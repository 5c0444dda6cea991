"""A Richards-style operating-system scheduler: a few task classes, many small method calls."""

import sys

ROUNDS = 20
IDLE, WORKER, HANDLER_A, HANDLER_B, DEVICE_A, DEVICE_B = range(1, 7)
DEVICE_PACKET, WORK_PACKET = 0, 1
BUFFER_SIZE = 4
IDLE_COUNT = 10_000
# What one round must end with (Richards' own self-check, for IDLE_COUNT = 10000).
EXPECTED_HOLDS, EXPECTED_QUEUED = 9297, 23246


class Packet:
    def __init__(self, link, target, kind):
        self.link = link
        self.target = target
        self.kind = kind
        self.count = 0
        self.data = [0] * BUFFER_SIZE

    def append_to(self, queue):
        """Put this packet at the end of `queue`; returns the new head."""
        self.link = None
        if queue is None:
            return self
        last = queue
        while last.link is not None:
            last = last.link
        last.link = self
        return queue


class Task:
    """A task control block: priority, packet queue, state flags, and its `step` behaviour."""

    def __init__(self, system, ident, priority, queue, waiting):
        self.system = system
        self.ident = ident
        self.priority = priority
        self.queue = queue
        self.pending = queue is not None
        self.waiting = waiting
        self.held = False
        self.next = system.tasks
        system.tasks = self
        system.table[ident] = self

    def blocked(self):
        return self.held or (not self.pending and self.waiting)

    def run(self):
        packet = None
        if self.pending and self.waiting and not self.held:
            packet = self.queue
            self.queue = packet.link
            self.waiting = False
            self.pending = self.queue is not None
        return self.step(packet)

    def receive(self, packet, sender):
        """Queue `packet` here; returns the task the scheduler should run next."""
        if self.queue is None:
            self.queue = packet
            self.pending = True
            if self.priority > sender.priority:
                return self
        else:
            self.queue = packet.append_to(self.queue)
        return sender

    def wait(self):
        self.waiting = True
        return self

    def hold(self):
        self.system.holds += 1
        self.held = True
        return self.next

    def release(self, ident):
        task = self.system.table[ident]
        task.held = False
        return task if task.priority > self.priority else self

    def send(self, packet):
        self.system.queued += 1
        task = self.system.table[packet.target]
        packet.link = None
        packet.target = self.ident
        return task.receive(packet, self)


class IdleTask(Task):
    def __init__(self, system, ident, priority):
        super().__init__(system, ident, priority, None, False)
        self.seed = 1
        self.left = IDLE_COUNT

    def step(self, packet):
        self.left -= 1
        if self.left == 0:
            return self.hold()
        if self.seed & 1 == 0:
            self.seed >>= 1
            return self.release(DEVICE_A)
        self.seed = (self.seed >> 1) ^ 0xD008
        return self.release(DEVICE_B)


class WorkerTask(Task):
    def __init__(self, system, ident, priority, queue):
        super().__init__(system, ident, priority, queue, True)
        self.destination = HANDLER_A
        self.letter = 0

    def step(self, packet):
        if packet is None:
            return self.wait()
        self.destination = HANDLER_B if self.destination == HANDLER_A else HANDLER_A
        packet.target = self.destination
        packet.count = 0
        for i in range(BUFFER_SIZE):
            self.letter = self.letter % 26 + 1
            packet.data[i] = ord("A") + self.letter - 1
        return self.send(packet)


class HandlerTask(Task):
    def __init__(self, system, ident, priority, queue):
        super().__init__(system, ident, priority, queue, True)
        self.work = None
        self.devices = None

    def step(self, packet):
        if packet is not None:
            if packet.kind == WORK_PACKET:
                self.work = packet.append_to(self.work)
            else:
                self.devices = packet.append_to(self.devices)
        work = self.work
        if work is None:
            return self.wait()
        if work.count >= BUFFER_SIZE:
            self.work = work.link
            return self.send(work)
        device = self.devices
        if device is None:
            return self.wait()
        self.devices = device.link
        device.count = work.data[work.count]
        work.count += 1
        return self.send(device)


class DeviceTask(Task):
    def __init__(self, system, ident, priority):
        super().__init__(system, ident, priority, None, True)
        self.parked = None

    def step(self, packet):
        if packet is None:
            packet = self.parked
            if packet is None:
                return self.wait()
            self.parked = None
            return self.send(packet)
        self.parked = packet
        return self.hold()


class System:
    """The task list and table, plus the counters Richards checks at the end."""

    def __init__(self):
        self.tasks = None
        self.table = [None] * 7
        self.holds = 0
        self.queued = 0

    def build(self):
        IdleTask(self, IDLE, 1)
        work = Packet(Packet(None, 0, WORK_PACKET), 0, WORK_PACKET)
        WorkerTask(self, WORKER, 1000, work)
        for ident, priority, device in ((HANDLER_A, 2000, DEVICE_A), (HANDLER_B, 3000, DEVICE_B)):
            queue = None
            for _ in range(3):
                queue = Packet(queue, device, DEVICE_PACKET)
            HandlerTask(self, ident, priority, queue)
        DeviceTask(self, DEVICE_A, 4000)
        DeviceTask(self, DEVICE_B, 5000)

    def schedule(self):
        task = self.tasks
        while task is not None:
            task = task.next if task.blocked() else task.run()


def main(scale=1.0):
    holds = queued = 0
    for _ in range(max(1, int(ROUNDS * scale))):
        system = System()
        system.build()
        system.schedule()
        if (system.holds, system.queued) != (EXPECTED_HOLDS, EXPECTED_QUEUED):
            raise SystemExit(f"richards: wrong result {system.holds} {system.queued}")
        holds += system.holds
        queued += system.queued
    print(f"checksum {holds} {queued}")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)
