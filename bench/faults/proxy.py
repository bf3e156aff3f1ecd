#!/usr/bin/env python3
"""Loopback TCP proxy that drops every connection through it at random moments.

    proxy.py LISTEN_PORT TARGET_PORT [MIN_SECONDS MAX_SECONDS]

Each accepted connection is forwarded to 127.0.0.1:TARGET_PORT and cut (both sides closed,
no FIN handshake courtesy) after a random lifetime between MIN and MAX seconds (default 2-10),
the way a flaky network or a load balancer idle timeout does. Prints one line per drop.
"""
import asyncio
import random
import sys
import time


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass


async def handle(client_reader, client_writer, target_port, low, high):
    try:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
    except OSError:
        client_writer.close()
        return
    lifetime = random.uniform(low, high)
    tasks = [asyncio.ensure_future(pipe(client_reader, server_writer)),
             asyncio.ensure_future(pipe(server_reader, client_writer))]
    done, pending = await asyncio.wait(tasks, timeout=lifetime, return_when=asyncio.FIRST_COMPLETED)
    if not done:
        print(f"{time.strftime('%H:%M:%S')} proxy: dropped a connection after {lifetime:.1f} s", flush=True)
    for task in pending:
        task.cancel()
    for writer in (client_writer, server_writer):
        transport = writer.transport
        if transport is not None:
            transport.abort()


async def main():
    listen_port, target_port = int(sys.argv[1]), int(sys.argv[2])
    low = float(sys.argv[3]) if len(sys.argv) > 3 else 2.0
    high = float(sys.argv[4]) if len(sys.argv) > 4 else 10.0
    server = await asyncio.start_server(lambda r, w: handle(r, w, target_port, low, high), "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
