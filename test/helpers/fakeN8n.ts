import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { DELIVERY_HEADER, foreignSiteField, verifySignature } from '../../lib/signing';

export type FakeMode = 'ok' | 'error500' | 'slow';

export interface Delivery {
	path: string;
	deliveryId: string;
	/** The site the delivery is signed for (x-crm-site). */
	signedSite: string;
	body: { site: string; destination: string; events: Array<{ id: string; anonymousId: string; occurredAt: string }>; leads: Array<Record<string, unknown>> };
}

/**
 * A stand-in for n8n's webhook endpoint (a third party to the receiver): verifies the
 * signature and the signed site like the CRM Tracker Trigger does and records what arrived.
 */
export class FakeN8n {
	mode: FakeMode = 'ok';
	slowMs = 1500;
	readonly deliveries: Delivery[] = [];
	readonly rejected: string[] = [];
	attempts = 0;
	private server: Server | undefined;
	port = 0;

	constructor(private readonly secret: string) {}

	get url(): string {
		return `http://127.0.0.1:${this.port}`;
	}

	/** Listens on `port` (0 = any free port; a fixed port lets a test stop and restart it). */
	async start(port = this.port): Promise<void> {
		this.server = createServer((req, res) => void this.handle(req).then(({ status, body }) => res.writeHead(status).end(body)));
		await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
		this.port = (this.server.address() as AddressInfo).port;
	}

	async stop(): Promise<void> {
		const server = this.server;
		this.server = undefined;
		if (!server) return;
		server.closeAllConnections();
		await new Promise<void>((resolve) => server.close(() => resolve()));
	}

	eventIds(): string[] {
		return this.deliveries.flatMap((delivery) => delivery.body.events.map((event) => event.id));
	}

	private async handle(req: IncomingMessage): Promise<{ status: number; body: string }> {
		const chunks: Buffer[] = [];
		for await (const chunk of req) chunks.push(chunk as Buffer);
		const raw = Buffer.concat(chunks).toString('utf8');
		if (req.method === 'HEAD') return { status: 200, body: '' };
		this.attempts += 1;
		if (this.mode === 'error500') return { status: 500, body: 'workflow failed' };
		if (this.mode === 'slow') await new Promise((resolve) => setTimeout(resolve, this.slowMs));
		const check = verifySignature(this.secret, raw, req.headers);
		if (!check.valid) {
			this.rejected.push(check.reason);
			return { status: 401, body: check.reason };
		}
		const body = JSON.parse(raw) as Delivery['body'];
		const foreign = foreignSiteField(body, check.site);
		if (foreign) {
			this.rejected.push(`${foreign} names another site than ${check.site}`);
			return { status: 400, body: `${foreign} names another site` };
		}
		this.deliveries.push({ path: req.url ?? '', deliveryId: String(req.headers[DELIVERY_HEADER]), signedSite: check.site, body });
		return { status: 200, body: '{"ok":true}' };
	}
}
