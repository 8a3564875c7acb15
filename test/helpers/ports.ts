/**
 * Ports for the processes the tests start. A port the kernel handed out for `listen(0)` comes from
 * its ephemeral range, the range every outgoing connection (to Postgres, Redis, n8n) takes its
 * local port from: between closing the probe and the child binding it, a connection may take it,
 * and the child exits with "port already in use" (seen with n8n's task broker in a queue topology).
 * Ports below that range are never taken by a connection, so a free one stays free until bound.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const LOWEST = 10_000;

/** The first port of the kernel's ephemeral range; Linux's default where the system does not say. */
function ephemeralStart(): number {
	try {
		const start = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
		return Number.isInteger(start) && start > LOWEST + 1_000 ? start : 32_768;
	} catch {
		return 32_768;
	}
}

const handedOut = new Set<number>();

function bindable(port: number): Promise<boolean> {
	return new Promise((resolve) => {
		const server = createServer();
		server.once('error', () => resolve(false));
		server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
	});
}

/**
 * A port on 127.0.0.1 that nothing listens on, outside the ephemeral range and never the same twice
 * in one process. Random, so parallel Jest workers rarely try the same one.
 */
export async function freePort(): Promise<number> {
	const end = ephemeralStart();
	for (let attempt = 0; attempt < 500; attempt++) {
		const port = LOWEST + Math.floor(Math.random() * (end - LOWEST));
		if (handedOut.has(port) || !(await bindable(port))) continue;
		handedOut.add(port);
		return port;
	}
	throw new Error(`no free port between ${LOWEST} and ${end} after 500 tries`);
}
