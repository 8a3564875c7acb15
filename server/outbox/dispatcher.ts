import { postSigned } from '../../lib/signing';
import type { PrismaClient } from '../../lib/db';
import type { Logger } from '../logger';
import type { ReceiverSettings } from '../settings';
import type { SiteRegistry } from '../siteRegistry';
import { retryDelayMs } from './backoff';

interface ClaimedRow {
	id: bigint;
	site_id: string;
	destination: string;
	partition_key: string;
	payload: { kind: 'events'; eventIds: string[] } | ({ kind: 'lead' | 'email-event' } & Record<string, unknown>);
	attempts: number;
}

export interface DispatcherMetrics {
	deliveredRows: number;
	deliveredEvents: number;
	failedAttempts: number;
	deadLettered: number;
	lastSuccessAt: string | null;
	lastError: string | null;
}

/**
 * Claims due rows by pushing their next attempt past the delivery timeout (a lease): only the
 * oldest pending row of each (destination, visitor) is eligible, so a visitor's events reach n8n
 * in order, and SKIP LOCKED lets several receivers claim side by side without sending a row twice.
 * A receiver that dies mid-delivery loses nothing: its lease expires and another claims the row.
 */
const CLAIM = `
UPDATE outbox SET next_attempt_at = now() + ($2::int * interval '1 millisecond'), attempts = attempts + 1
WHERE id IN (
	SELECT o.id FROM outbox o
	WHERE o.status = 'pending' AND o.next_attempt_at <= now()
		AND o.site_id IN (SELECT jsonb_array_elements_text($3::jsonb)::uuid)
		AND NOT EXISTS (
			SELECT 1 FROM outbox earlier
			WHERE earlier.destination = o.destination AND earlier.partition_key = o.partition_key
				AND earlier.status = 'pending' AND earlier.id < o.id)
	ORDER BY o.id
	LIMIT $1
	FOR UPDATE SKIP LOCKED)
RETURNING id, site_id, destination, partition_key, payload, attempts`;

const EVENTS_FOR_DELIVERY = `
SELECT event_id AS "id", anonymous_id AS "anonymousId", session_key AS "sessionId", type, name, url, path, title,
	referrer, relevance, properties AS "props", context, user_agent AS "userAgent", country,
	to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "occurredAt",
	to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "receivedAt"
FROM visitor_events WHERE site_id = $1::uuid AND event_id IN (SELECT jsonb_array_elements_text($2::jsonb)::uuid)
ORDER BY occurred_at, event_id`;

export class OutboxDispatcher {
	readonly metrics: DispatcherMetrics = { deliveredRows: 0, deliveredEvents: 0, failedAttempts: 0, deadLettered: 0, lastSuccessAt: null, lastError: null };
	private timer: NodeJS.Timeout | undefined;
	private running: Promise<void> | undefined;
	private stopped = true;

	constructor(
		private readonly prisma: PrismaClient,
		private readonly sites: SiteRegistry,
		private readonly settings: ReceiverSettings,
		private readonly logger: Logger,
	) {}

	start(): void {
		this.stopped = false;
		this.schedule(0);
	}

	/** Stops claiming and waits for the delivery in flight, so no lease is left to expire needlessly. */
	async stop(): Promise<void> {
		this.stopped = true;
		if (this.timer) clearTimeout(this.timer);
		await this.running;
	}

	private schedule(delayMs: number): void {
		if (this.stopped) return;
		this.timer = setTimeout(() => {
			this.running = this.tick()
				.then((claimed) => this.schedule(claimed >= this.settings.DISPATCH_BATCH_SIZE ? 0 : this.settings.DISPATCH_INTERVAL_MS))
				.catch((error: unknown) => {
					this.metrics.lastError = (error as Error).message;
					this.logger.error({ err: error }, 'outbox dispatch failed');
					this.schedule(this.settings.DISPATCH_INTERVAL_MS);
				});
		}, delayMs);
	}

	/** One round: claim due rows, deliver them grouped by site and destination. Returns rows claimed. */
	async tick(): Promise<number> {
		const deliverable = this.sites
			.all()
			.filter((site) => site.webhookSecret)
			.map((site) => site.id);
		if (deliverable.length === 0) return 0;
		const lease = this.settings.DISPATCH_TIMEOUT_MS * 2 + 5_000;
		const rows = await this.prisma.$queryRawUnsafe<ClaimedRow[]>(CLAIM, this.settings.DISPATCH_BATCH_SIZE, lease, JSON.stringify(deliverable));
		if (rows.length === 0) return 0;

		const groups = new Map<string, ClaimedRow[]>();
		for (const row of rows.sort((a, b) => (a.id < b.id ? -1 : 1))) {
			const key = `${row.site_id}|${row.destination}`;
			groups.set(key, [...(groups.get(key) ?? []), row]);
		}
		await Promise.all([...groups.values()].map((group) => this.deliver(group)));
		return rows.length;
	}

	private async deliver(rows: ClaimedRow[]): Promise<void> {
		const { site_id: siteId, destination } = rows[0];
		const site = this.sites.byDatabaseId(siteId);
		const url = site?.endpoints.get(destination as never);
		if (!site || !url || !site.webhookSecret) {
			await this.fail(rows, `no webhook configured for ${destination}; add it to integrations.webhookEndpoints`);
			return;
		}
		const eventIds = rows.flatMap((row) => (row.payload.kind === 'events' ? row.payload.eventIds : []));
		const events = eventIds.length ? await this.prisma.$queryRawUnsafe<Array<Record<string, unknown>>>(EVENTS_FOR_DELIVERY, siteId, JSON.stringify(eventIds)) : [];
		const leads = rows.filter((row) => row.payload.kind === 'lead').map((row) => row.payload);
		const emailEvents = rows.filter((row) => row.payload.kind === 'email-event').map((row) => row.payload);
		const deliveryId = rows.map((row) => row.id.toString()).join(',');
		const body = JSON.stringify({ site: site.key, siteId, destination, deliveryId, sentAt: new Date().toISOString(), events, leads, emailEvents });

		try {
			const response = await postSigned(url, site.webhookSecret, body, deliveryId, this.settings.DISPATCH_TIMEOUT_MS);
			await response.arrayBuffer().catch(() => undefined);
			if (!response.ok) throw new Error(`n8n answered HTTP ${response.status} for ${destination}`);
		} catch (error) {
			await this.fail(rows, (error as Error).message);
			return;
		}
		await this.prisma.$executeRawUnsafe(
			`UPDATE outbox SET status = 'delivered', delivered_at = now(), last_error = NULL WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb)::bigint)`,
			JSON.stringify(rows.map((row) => row.id.toString())),
		);
		this.metrics.deliveredRows += rows.length;
		this.metrics.deliveredEvents += events.length + leads.length + emailEvents.length;
		this.metrics.lastSuccessAt = new Date().toISOString();
	}

	private async fail(rows: ClaimedRow[], message: string): Promise<void> {
		this.metrics.failedAttempts += rows.length;
		this.metrics.lastError = message;
		for (const row of rows) {
			const dead = row.attempts >= this.settings.DISPATCH_MAX_ATTEMPTS;
			const delay = retryDelayMs(row.attempts, this.settings.DISPATCH_BACKOFF_BASE_MS, this.settings.DISPATCH_BACKOFF_MAX_MS);
			await this.prisma.$executeRawUnsafe(
				`UPDATE outbox SET status = $2::outbox_status, next_attempt_at = now() + ($3::int * interval '1 millisecond'), last_error = $4 WHERE id = $1::bigint`,
				row.id.toString(),
				dead ? 'dead' : 'pending',
				delay,
				message.slice(0, 1000),
			);
			if (dead) this.metrics.deadLettered += 1;
		}
		this.logger.warn({ rows: rows.length, destination: rows[0].destination, error: message }, 'delivery to n8n failed; will retry');
	}
}

export interface OutboxLag {
	pending: number;
	dead: number;
	oldestPendingAgeSeconds: number | null;
}

export async function outboxLag(prisma: PrismaClient): Promise<OutboxLag> {
	const [row] = await prisma.$queryRawUnsafe<Array<{ pending: number; dead: number; oldest: number | null }>>(
		`SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending, count(*) FILTER (WHERE status = 'dead')::int AS dead,
			extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending'))::float8 AS oldest
		FROM outbox WHERE status <> 'delivered'`,
	);
	return { pending: row.pending, dead: row.dead, oldestPendingAgeSeconds: row.oldest === null ? null : Math.round(row.oldest) };
}
