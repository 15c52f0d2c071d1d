"""The chunk counter worker processes claim chunks from (run/processes.py)."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import signal

from cio_flows.run.processes import ChunkCounter

CLAIMS = 300


def _claim_many(counter: ChunkCounter, count: int, results) -> None:
    results.send([counter.claim() for _ in range(count)])


def test_every_chunk_is_claimed_once_across_processes() -> None:
    counter = ChunkCounter()
    context = multiprocessing.get_context("fork")
    try:
        pipes, processes = [], []
        for _ in range(4):
            receive, send = context.Pipe(duplex=False)
            process = context.Process(target=_claim_many, args=(counter, CLAIMS, send))
            process.start()
            pipes.append(receive)
            processes.append(process)
        per_process = [receive.recv() for receive in pipes]
        for process in processes:
            process.join()
        claimed = [number for numbers in per_process for number in numbers]
        assert sorted(claimed) == list(range(4 * CLAIMS))  # none twice, none skipped
        for numbers in per_process:  # each process's claims grow: it only reads forward
            assert numbers == sorted(numbers)
        assert counter.claim() == 4 * CLAIMS  # this process goes on from there
    finally:
        counter.remove()
    assert not os.path.exists(counter.path)


def _die_holding_the_lock(counter: ChunkCounter, ready) -> None:
    counter.claim()  # opens its own descriptor
    assert counter._fd is not None
    fcntl.flock(counter._fd, fcntl.LOCK_EX)
    ready.send("holding")
    signal.pause()


def test_a_process_killed_holding_the_lock_blocks_no_other() -> None:
    counter = ChunkCounter()
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    holder = context.Process(target=_die_holding_the_lock, args=(counter, send))
    holder.start()
    try:
        assert receive.recv() == "holding"
        os.kill(holder.pid, signal.SIGKILL)
        holder.join()
        # the kernel released its flock: the next claim goes on from its one claim
        assert counter.claim() == 1
    finally:
        counter.remove()
