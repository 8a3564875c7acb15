import { randomUUID } from 'node:crypto';

import type { DeliveredEmailEvent, DeliveredEvent, DeliveredLead, ReceiverDelivery } from '../../lib/contracts';
import { postSigned, signedHeaders } from '../../lib/signing';
import type { RawDatabase, RawSql } from '../../lib/db/rawSql';
import type { EngineAnswer } from '../engine/engine';
import type { Logger } from '../logger';
import { RepeatedFailure } from '../repeatedFailure';
import type { ReceiverSettings } from '../settings';
import type { SiteRegistry } from '../siteRegistry';
import { afterFailure } from './backoff';
import { deadLetterAdvice } from './deadLetters';
import type { OutboxPayload } from './enqueue';

/** What planDeliveries needs of an outbox row. */
export interface PlannableRow {
	id: bigint;
	siteId: string;
	destination: string;
	partitionKey: string;
	/** The delivery that already carried the row (a retry), or null for a row never sent. */
	deliveryId: string | null;
	/** Events the row carries: the tracking events of a batch, or one lead or email event. */
	size: number;
}

export interface PlannedDelivery<Row extends PlannableRow> {
	/** The id of the delivery being retried, or null for a new delivery. */
	deliveryId: string | null;
	rows: Row[];
}

/**
 * Deliveries for the rows a round claimed, given in id order. A delivery being retried goes out
 * again with exactly its rows. New rows are cut per partition to the longest run, from the
 * partition's oldest pending row, that stays within `maxEvents` (the oldest row goes even when
 * it alone is bigger, or it would never go); the runs of one site and workflow then share
 * deliveries of at most `maxEvents`, each run whole, so a partition's rows stay in order and
 * travel in one delivery per round.
 */
export function planDeliveries<Row extends PlannableRow>(rows: Row[], maxEvents: number): Array<PlannedDelivery<Row>> {
	const retries = new Map<string, Row[]>();
	const runs = new Map<string, { rows: Row[]; events: number; full: boolean }>();
	for (const row of rows) {
		if (row.deliveryId !== null) {
			retries.set(row.deliveryId, [...(retries.get(row.deliveryId) ?? []), row]);
			continue;
		}
		const partition = `${row.siteId}|${row.destination}|${row.partitionKey}`;
		const run = runs.get(partition) ?? { rows: [], events: 0, full: false };
		runs.set(partition, run);
		if (run.full || (run.rows.length > 0 && run.events + row.size > maxEvents)) {
			run.full = true;
			continue;
		}
		run.rows.push(row);
		run.events += row.size;
	}

	const planned: Array<PlannedDelivery<Row>> = [...retries.values()].map((retried) => ({ deliveryId: retried[0].deliveryId, rows: retried }));
	const open = new Map<string, { delivery: PlannedDelivery<Row>; events: number }>();
	for (const run of runs.values()) {
		const target = `${run.rows[0].siteId}|${run.rows[0].destination}`;
		let current = open.get(target);
		if (!current || current.events + run.events > maxEvents) {
			current = { delivery: { deliveryId: null, rows: [] }, events: 0 };
			open.set(target, current);
			planned.push(current.delivery);
		}
		current.delivery.rows.push(...run.rows);
		current.events += run.events;
	}
	return planned;
}

interface ClaimedRow {
	id: bigint;
	site_id: string;
	destination: string;
	partition_key: string;
	payload: OutboxPayload;
	attempts: number;
	delivery_id: string | null;
	failing_since: Date | null;
}

type Candidate = ClaimedRow & PlannableRow;

/** Where deliveries of sites without an n8n URL go: the embedded engine, once it has started. */
export interface EmbeddedDestination {
	deliver(webhookPath: string, body: string, headers: Record<string, string>): Promise<EngineAnswer>;
}

/** `/webhook/<path>` of an embedded site's endpoint → `<path>`. */
export const embeddedWebhookPath = (endpoint: string): string => endpoint.replace(/^\/webhook\//, '');

export interface DispatcherMetrics {
	deliveredRows: number;
	deliveredEvents: number;
	failedAttempts: number;
	deadLettered: number;
	lastSuccessAt: string | null;
	lastError: string | null;
}


/**
 * The first pending row of each partition (one visitor's rows for one workflow), when it is due:
 * a partition whose first row waits for its retry or is leased to a delivery in flight offers
 * nothing, so no later row overtakes it. Of a delivery being retried, only its first row stands
 * for it, so one claimer takes it whole. Workflows with all their deliveries in flight ($3, as
 * `<site id>|<destination>`) wait for one of them to answer. The row lock is the partition's:
 * SKIP LOCKED lets several receivers claim side by side, and the rest of a partition is only
 * ever claimed by whoever holds its first row, so no row is sent twice at once.
 */
const CLAIM_HEADS = `
SELECT o.id FROM outbox o
WHERE o.status = 'pending' AND o.next_attempt_at <= now()
	AND o.site_id IN (SELECT jsonb_array_elements_text($2::jsonb)::uuid)
	AND NOT (o.site_id::text || '|' || o.destination = ANY($3::text[]))
	AND NOT EXISTS (
		SELECT 1 FROM outbox earlier
		WHERE earlier.destination = o.destination AND earlier.partition_key = o.partition_key AND earlier.site_id = o.site_id
			AND earlier.status = 'pending' AND earlier.id < o.id)
	AND (o.delivery_id IS NULL OR NOT EXISTS (
		SELECT 1 FROM outbox leader WHERE leader.delivery_id = o.delivery_id AND leader.status = 'pending' AND leader.id < o.id))
ORDER BY o.id
LIMIT $1
FOR UPDATE OF o SKIP LOCKED`;

/**
 * Behind each claimed first row: the rest of its delivery when it is a retry (no row joins a
 * delivery once sent), else the partition's oldest rows never sent, at most $2.
 */
const PARTITION_ROWS = `
SELECT m.id, m.site_id, m.destination, m.partition_key, m.payload, m.attempts, m.delivery_id, m.failing_since
FROM outbox head CROSS JOIN LATERAL (
	SELECT r.* FROM outbox r
	WHERE head.delivery_id IS NOT NULL AND r.delivery_id = head.delivery_id AND r.status = 'pending'
	UNION ALL
	(SELECT r.* FROM outbox r
	WHERE head.delivery_id IS NULL AND r.destination = head.destination AND r.partition_key = head.partition_key AND r.site_id = head.site_id
		AND r.status = 'pending' AND r.delivery_id IS NULL AND r.id >= head.id
	ORDER BY r.id
	LIMIT $2)
) m
WHERE head.id IN (SELECT jsonb_array_elements_text($1::jsonb)::bigint)
ORDER BY m.id`;

/**
 * Leases the planned rows (their next attempt moves past the delivery timeout) and records the
 * delivery each travels in. A receiver that dies mid-delivery loses nothing: the lease expires
 * and another receiver sends the same rows under the same id.
 */
const LEASE = `
UPDATE outbox o SET delivery_id = c.delivery_id, attempts = o.attempts + 1, next_attempt_at = now() + ($2::int * interval '1 millisecond')
FROM jsonb_to_recordset($1::jsonb) AS c(id bigint, delivery_id uuid)
WHERE o.id = c.id AND o.status = 'pending'
RETURNING o.id, o.attempts`;

/**
 * A failed delivery's rows wait together, or are dead-lettered together; rows another receiver
 * has claimed again since are left to it. The first failure starts the time to giving up ($5).
 */
const RETRY_LATER = `
UPDATE outbox o SET status = $2::outbox_status, next_attempt_at = now() + ($3::int * interval '1 millisecond'), last_error = $4,
	failing_since = coalesce(o.failing_since, $5::timestamptz)
FROM jsonb_to_recordset($1::jsonb) AS c(id bigint, attempts int)
WHERE o.id = c.id AND o.attempts = c.attempts AND o.status = 'pending'`;

/** The delivery's tracking events in the order of its rows, each row's events in their stored order, as the delivery contract names their fields. */
const EVENTS_FOR_DELIVERY = `
SELECT e.event_id AS "id", e.anonymous_id AS "anonymousId", e.session_key AS "sessionId", e.type, e.name, e.url, e.path, e.title,
	e.referrer, e.relevance, e.properties AS "props", e.context, e.user_agent AS "userAgent", e.country,
	to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "occurredAt",
	to_char(e.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "receivedAt"
FROM jsonb_array_elements_text($2::jsonb) WITH ORDINALITY AS wanted(event_id, position)
JOIN visitor_events e ON e.site_id = $1::uuid AND e.event_id = wanted.event_id::uuid
ORDER BY wanted.position`;

/**
 * A delivery's body (lib/contracts/delivery.ts): its rows' tracking events as EVENTS_FOR_DELIVERY
 * read them, then their leads and email events as the outbox holds them, each in row order.
 */
export function deliveryBody(envelope: Pick<ReceiverDelivery, 'site' | 'siteId' | 'destination' | 'deliveryId' | 'sentAt'>, payloads: OutboxPayload[], events: DeliveredEvent[]): ReceiverDelivery {
	const leads: DeliveredLead[] = [];
	const emailEvents: DeliveredEmailEvent[] = [];
	for (const payload of payloads) {
		if (payload.kind === 'lead') leads.push(payload);
		else if (payload.kind === 'email-event') emailEvents.push(payload);
	}
	return { ...envelope, events, leads, emailEvents };
}

const sizeOf = (row: ClaimedRow): number => (row.payload.kind === 'events' ? Math.max(1, row.payload.eventIds.length) : 1);

/** The key deliveries are bounded by: one workflow of one site. */
const destinationOf = (row: Pick<ClaimedRow, 'site_id' | 'destination'>): string => `${row.site_id}|${row.destination}`;

export class OutboxDispatcher {
	readonly metrics: DispatcherMetrics = { deliveredRows: 0, deliveredEvents: 0, failedAttempts: 0, deadLettered: 0, lastSuccessAt: null, lastError: null };
	private timer: NodeJS.Timeout | undefined;
	private claiming: Promise<void> | undefined;
	/** A delivery answered while a claim ran: claim again right after it. */
	private again = false;
	private stopped = true;
	private readonly inFlight = new Map<string, number>();
	/**
	 * How many deliveries each destination may have in flight now: up to the bound, halved when a
	 * delivery fails (n8n down, overloaded or too slow to answer in time) and grown by one with each
	 * success, so a struggling n8n gets fewer requests until it answers again.
	 */
	private readonly windows = new Map<string, number>();
	private readonly deliveries = new Set<Promise<void>>();
	/** Deliveries to the embedded engine in flight (see embeddedBound). */
	private embeddedInFlight = 0;
	/** A claim fails every DISPATCH_INTERVAL_MS while the database is away: counted, not logged each time. */
	private readonly claimFailures: RepeatedFailure;

	constructor(
		private readonly db: RawDatabase,
		private readonly sites: SiteRegistry,
		private readonly settings: ReceiverSettings,
		private readonly logger: Logger,
		private readonly embedded?: () => EmbeddedDestination | undefined,
	) {
		this.claimFailures = new RepeatedFailure(logger, {
			failed: 'outbox dispatch failed',
			fix: 'the dispatcher could not claim deliveries from the outbox, most often because the database does not answer (the error says why); nothing is lost: deliveries wait in the outbox and go out once it can claim them again',
			recovered: 'outbox dispatch works again',
		});
	}

	start(): void {
		this.stopped = false;
		this.wake(0);
	}

	/** Stops claiming and waits for the deliveries in flight, so no lease is left to expire needlessly. */
	async stop(): Promise<void> {
		this.stopped = true;
		if (this.timer) clearTimeout(this.timer);
		await this.claiming;
		await Promise.allSettled([...this.deliveries]);
	}

	/**
	 * One round by hand: claim what the destinations have room for (at most DISPATCH_BATCH_SIZE
	 * partitions, each with up to DISPATCH_BATCH_SIZE events, in deliveries of at most
	 * DISPATCH_BATCH_SIZE events) and wait for those deliveries. Returns the rows claimed.
	 */
	async tick(): Promise<number> {
		const deliveries = await this.claimRound();
		await Promise.all(deliveries.map((rows) => this.launch(rows)));
		return deliveries.reduce((sum, rows) => sum + rows.length, 0);
	}

	/** Claims as soon as possible after `delayMs`; a claim already running claims again when done. */
	private wake(delayMs: number): void {
		if (this.stopped) return;
		if (this.claiming) {
			this.again = true;
			return;
		}
		if (this.timer) clearTimeout(this.timer);
		this.timer = setTimeout(() => this.pump(), delayMs);
	}

	/**
	 * Claims and sends without waiting for the answers: a delivery that answers frees its slot and
	 * wakes the next claim at once. A round that claimed something is followed by another (there
	 * may be room left); one that claimed nothing waits DISPATCH_INTERVAL_MS, or for an answer.
	 */
	private pump(): void {
		this.timer = undefined;
		this.claiming = this.claimRound()
			.then(
				(deliveries) => {
					this.claimFailures.succeeded();
					for (const rows of deliveries) void this.launch(rows);
					return deliveries.length;
				},
				(error: unknown) => {
					this.metrics.lastError = (error as Error).message;
					this.claimFailures.failed(error);
					return 0;
				},
			)
			.then((claimed) => {
				this.claiming = undefined;
				const again = this.again;
				this.again = false;
				this.wake(claimed > 0 || again ? 0 : this.settings.DISPATCH_INTERVAL_MS);
			});
	}

	/** Sends one delivery in a slot of its destination; the slot frees when it has answered. */
	private launch(rows: Array<ClaimedRow & { delivery_id: string }>): Promise<void> {
		const destination = destinationOf(rows[0]);
		const embedded = this.isEmbedded(rows[0].site_id);
		this.inFlight.set(destination, (this.inFlight.get(destination) ?? 0) + 1);
		if (embedded) this.embeddedInFlight += 1;
		const work = this.deliver(rows)
			.then((delivered) => {
				const window = this.windowOf(destination);
				this.windows.set(destination, delivered ? Math.min(this.settings.DISPATCH_CONCURRENCY, window + 1) : Math.max(1, Math.floor(window / 2)));
			})
			.catch((error: unknown) => {
				this.metrics.lastError = (error as Error).message;
				this.logger.error({ err: error, deliveryId: rows[0].delivery_id }, 'recording a delivery failed; its lease runs out and it is sent again');
			})
			.finally(() => {
				this.inFlight.set(destination, (this.inFlight.get(destination) ?? 1) - 1);
				if (embedded) this.embeddedInFlight -= 1;
				this.deliveries.delete(work);
				this.wake(0);
			});
		this.deliveries.add(work);
		return work;
	}

	/**
	 * Deliveries in flight at once, at most: DISPATCH_CONCURRENCY for this receiver in all, and
	 * per workflow of a site a window of up to that many, halved by a failed delivery and widened
	 * by one by a delivered one, so a struggling workflow gets fewer. Different visitors' rows go
	 * side by side (a visitor's own rows never do, see CLAIM_HEADS), so n8n is never idle while one
	 * chain answers. The bound is per receiver rather than per workflow because in n8n's queue mode
	 * each delivery holds a worker slot per workflow of its chain while it waits (01 → 02 → 04 holds
	 * three); more deliveries than the workers' slots allow would leave every slot waiting for an
	 * execution queued behind them.
	 */
	private windowOf(destination: string): number {
		return this.windows.get(destination) ?? this.settings.DISPATCH_CONCURRENCY;
	}

	/** Whether the site's workflows run in the embedded engine (it names no n8n). */
	private isEmbedded(siteId: string): boolean {
		const site = this.sites.byDatabaseId(siteId);
		return site !== undefined && !site.n8nUrl;
	}

	/**
	 * Deliveries to the embedded engine in flight at most: also no more than the database runs at
	 * once, since the engine's nodes write through the receiver's own database. On the embedded
	 * PGlite (one connection, on this thread) a second delivery would only split the waiting events
	 * in two, each paying a delivery's fixed work; with one, a delivery takes everything that
	 * arrived while the previous one ran.
	 */
	private embeddedBound(): number {
		return Math.min(this.settings.DISPATCH_CONCURRENCY, this.db.concurrency);
	}

	private async claimRound(): Promise<Array<Array<ClaimedRow & { delivery_id: string }>>> {
		const embeddedRoom = this.embeddedBound() - this.embeddedInFlight;
		const deliverable = this.sites
			.all()
			.filter((site) => site.webhookSecret && (site.n8nUrl || embeddedRoom > 0))
			.map((site) => site.id);
		if (deliverable.length === 0) return [];
		return await this.claim(deliverable);
	}

	/**
	 * Claims and leases the round's rows in one transaction, as many deliveries per destination as
	 * it has room for (a delivery being retried first); returns them by delivery. Rows planned
	 * beyond the room are left unleased for a later round.
	 */
	private async claim(siteIds: string[]): Promise<Array<Array<ClaimedRow & { delivery_id: string }>>> {
		const batch = this.settings.DISPATCH_BATCH_SIZE;
		const lease = this.settings.DISPATCH_TIMEOUT_MS * 2 + 5_000;
		const room = (destination: string) => this.windowOf(destination) - (this.inFlight.get(destination) ?? 0);
		let receiverRoom = this.settings.DISPATCH_CONCURRENCY - this.deliveries.size;
		let embeddedRoom = this.embeddedBound() - this.embeddedInFlight;
		if (receiverRoom <= 0) return [];
		const full = [...new Set([...this.inFlight.keys(), ...this.windows.keys()])].filter((destination) => room(destination) <= 0);
		return this.db.$transaction(async (tx) => {
			const heads = await tx.$queryRawUnsafe<Array<{ id: bigint }>>(CLAIM_HEADS, batch, JSON.stringify(siteIds), full);
			if (heads.length === 0) return [];
			const rows = await tx.$queryRawUnsafe<ClaimedRow[]>(PARTITION_ROWS, JSON.stringify(heads.map((head) => head.id.toString())), batch);
			const candidates: Candidate[] = rows.map((row) => ({ ...row, siteId: row.site_id, destination: row.destination, partitionKey: row.partition_key, deliveryId: row.delivery_id, size: sizeOf(row) }));
			const taken = new Map<string, number>();
			const planned = planDeliveries(candidates, batch)
				.filter((delivery) => {
					const destination = destinationOf(delivery.rows[0]);
					const count = taken.get(destination) ?? 0;
					const embedded = this.isEmbedded(delivery.rows[0].site_id);
					if (count >= room(destination) || receiverRoom <= 0 || (embedded && embeddedRoom <= 0)) return false;
					taken.set(destination, count + 1);
					receiverRoom -= 1;
					if (embedded) embeddedRoom -= 1;
					return true;
				})
				.map((delivery) => ({ id: delivery.deliveryId ?? randomUUID(), rows: delivery.rows }));
			if (planned.length === 0) return [];
			const leased = await tx.$queryRawUnsafe<Array<{ id: bigint; attempts: number }>>(
				LEASE,
				JSON.stringify(planned.flatMap((delivery) => delivery.rows.map((row) => ({ id: row.id.toString(), delivery_id: delivery.id })))),
				lease,
			);
			// A row erased meanwhile is not leased, and stays out of the delivery.
			const attempts = new Map(leased.map((row) => [row.id, row.attempts]));
			return planned
				.map((delivery) => delivery.rows.filter((row) => attempts.has(row.id)).map((row) => ({ ...row, attempts: attempts.get(row.id)!, delivery_id: delivery.id })))
				.filter((rows) => rows.length > 0);
		});
	}

	/** Sends one delivery and records its outcome; whether n8n (or the embedded engine) took it. */
	private async deliver(rows: Array<ClaimedRow & { delivery_id: string }>): Promise<boolean> {
		const { site_id: siteId, destination, delivery_id: deliveryId } = rows[0];
		const site = this.sites.byDatabaseId(siteId);
		const url = site?.endpoints.get(destination as never);
		if (!site || !url || !site.webhookSecret) {
			await this.fail(rows, `no webhook configured for ${destination}; add it to integrations.webhookEndpoints`);
			return false;
		}
		const eventIds = rows.flatMap((row) => (row.payload.kind === 'events' ? row.payload.eventIds : []));
		const events = eventIds.length ? await this.db.$queryRawUnsafe<DeliveredEvent[]>(EVENTS_FOR_DELIVERY, siteId, JSON.stringify(eventIds)) : [];
		const delivery = deliveryBody({ site: site.key, siteId, destination, deliveryId, sentAt: new Date().toISOString() }, rows.map((row) => row.payload), events);
		const body = JSON.stringify(delivery);

		try {
			if (site.n8nUrl) {
				const response = await postSigned(url, site.webhookSecret, site.key, body, deliveryId, this.settings.DISPATCH_TIMEOUT_MS);
				await response.arrayBuffer().catch(() => undefined);
				if (!response.ok) throw new Error(`n8n answered HTTP ${response.status} for ${destination}`);
			} else {
				const engine = this.embedded?.();
				if (!engine) throw new Error('the embedded engine is not running');
				const answer = await withTimeout(engine.deliver(embeddedWebhookPath(url), body, signedHeaders(site.webhookSecret, site.key, body, deliveryId)), this.settings.DISPATCH_TIMEOUT_MS);
				if (answer.status < 200 || answer.status >= 300) throw new Error(`the embedded engine answered ${answer.status} for ${destination}: ${JSON.stringify(answer.body).slice(0, 500)}`);
			}
		} catch (error) {
			await this.fail(rows, (error as Error).message);
			return false;
		}
		await this.db.$executeRawUnsafe(
			`UPDATE outbox SET status = 'delivered', delivered_at = now(), last_error = NULL WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb)::bigint)`,
			JSON.stringify(rows.map((row) => row.id.toString())),
		);
		this.metrics.deliveredRows += rows.length;
		this.metrics.deliveredEvents += delivery.events.length + delivery.leads.length + delivery.emailEvents.length;
		this.metrics.lastSuccessAt = new Date().toISOString();
		return true;
	}

	/** The rows of a failed delivery retry together, after one backoff, or are dead-lettered together. */
	private async fail(rows: Array<ClaimedRow & { delivery_id: string }>, message: string): Promise<void> {
		const now = new Date();
		const attempt = Math.max(...rows.map((row) => row.attempts));
		// A delivery's rows were first sent together and have failed together since: they share it.
		const failingSince = rows[0].failing_since?.getTime() ?? null;
		const outcome = afterFailure(attempt, failingSince, now.getTime(), {
			baseMs: this.settings.DISPATCH_BACKOFF_BASE_MS,
			maxMs: this.settings.DISPATCH_BACKOFF_MAX_MS,
			giveUpAfterMs: this.settings.DISPATCH_GIVE_UP_AFTER_MS,
		});
		this.metrics.failedAttempts += rows.length;
		this.metrics.lastError = message;
		await this.db.$executeRawUnsafe(
			RETRY_LATER,
			JSON.stringify(rows.map((row) => ({ id: row.id.toString(), attempts: row.attempts }))),
			outcome.dead ? 'dead' : 'pending',
			outcome.dead ? 0 : outcome.delayMs,
			message.slice(0, 1000),
			now.toISOString(),
		);
		const details = { rows: rows.length, destination: rows[0].destination, deliveryId: rows[0].delivery_id, attempts: attempt, error: message };
		if (!outcome.dead) {
			this.logger.warn({ ...details, retryInMs: outcome.delayMs }, 'delivery to n8n failed; will retry');
			return;
		}
		this.metrics.deadLettered += rows.length;
		const siteKey = this.sites.byDatabaseId(rows[0].site_id)?.key ?? rows[0].site_id;
		this.logger.error(
			{ ...details, failingSince: new Date(failingSince ?? now.getTime()).toISOString() },
			`delivery to n8n failed for DISPATCH_GIVE_UP_AFTER_MS; dead-lettered. ${deadLetterAdvice(rows.length, siteKey)}`,
		);
	}
}

/**
 * A delivery to the embedded engine counts as failed after the same time as one to n8n, so its
 * rows are retried before their lease runs out; the run itself goes on, and the CRM nodes write
 * nothing twice when the retry repeats it.
 */
export async function withTimeout<T>(work: Promise<T>, timeoutMs: number): Promise<T> {
	let timer: NodeJS.Timeout | undefined;
	const timeout = new Promise<never>((_resolve, reject) => {
		timer = setTimeout(() => reject(new Error(`the embedded engine took longer than ${timeoutMs} ms (DISPATCH_TIMEOUT_MS)`)), timeoutMs);
	});
	try {
		return await Promise.race([work, timeout]);
	} finally {
		clearTimeout(timer);
	}
}

export interface OutboxLag {
	pending: number;
	dead: number;
	oldestPendingAgeSeconds: number | null;
}

export async function outboxLag(db: Pick<RawSql, '$queryRawUnsafe'>): Promise<OutboxLag> {
	const [row] = await db.$queryRawUnsafe<Array<{ pending: number; dead: number; oldest: number | null }>>(
		`SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending, count(*) FILTER (WHERE status = 'dead')::int AS dead,
			extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending'))::float8 AS oldest
		FROM outbox WHERE status <> 'delivered'`,
	);
	return { pending: row.pending, dead: row.dead, oldestPendingAgeSeconds: row.oldest === null ? null : Math.round(row.oldest) };
}
