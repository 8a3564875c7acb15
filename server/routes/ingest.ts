import type { IncomingMessage, ServerResponse } from 'node:http';

import { Router } from 'express';
import type { Pool } from 'pg';
import proxyAddr from 'proxy-addr';
import type { z } from 'zod/v4';

import { leadPayloadSchema, toFieldIssues, TRACK_LIMITS, trackBatchSchema } from '../../lib/contracts';
import type { PrismaClient } from '../../lib/db';
import type { RawSql } from '../../lib/db/rawSql';
import { emailHash } from '../../lib/email';
import { siteCipher } from '../../lib/pii';
import { recordLeadConsent, TrackerConsent } from '../consent/records';
import type { Logger } from '../logger';
import { clientOf, dropReason, isAutomated, toEventRows } from '../ingest/normalize';
import { GroupCommitter, storeThroughPool, storeThroughRaw, unstorableValue } from '../ingest/groupCommit';
import { requireApiKey, presentsApiKey } from '../auth';
import { historyClaim } from '../ingest/historyClaim';
import { storedHistory, storeLead, type RequestFacts } from '../ingest/store';
import type { RepeatedFailure } from '../repeatedFailure';
import { logRequest } from '../requestLog';
import type { ReceiverSettings } from '../settings';
import type { RegisteredSite, SiteRegistry } from '../siteRegistry';
import { bodyErrorMessage, parseJsonBody, readBodyFor, unreadableBody, type BodyErrorType, type BodyRoute } from './body';
import { databaseFailure, sendJson, sendProblem } from './problems';

interface IngestContext {
	prisma: PrismaClient;
	sites: SiteRegistry;
	settings: ReceiverSettings;
	logger: Logger;
	/** A pg pool of its own for event batches (Postgres); without one they go through `sql`. */
	ingestPool?: Pool;
	/** The database's raw statements, for event batches on the embedded database. */
	sql: RawSql;
	/** Express's compiled "trust proxy" setting, which decides the client address of both routes. */
	trustProxy: (address: string, hop: number) => boolean;
	/** The security headers every answer carries (the app's helmet configuration). */
	securityHeaders: ReadonlyArray<[string, string]>;
	/** The app's log of a database that stopped answering: a stored batch or lead tells it the database works again. */
	databaseFailures: RepeatedFailure;
}

const BATCH_BODY: BodyRoute = { limitBytes: TRACK_LIMITS.maxBatchBytes, send: `one JSON batch of at most ${TRACK_LIMITS.maxEventsPerBatch} events, {"site":"<site key>","events":[…]}` };
const LEAD_BODY: BodyRoute = { limitBytes: TRACK_LIMITS.maxBatchBytes, send: 'one lead as JSON, {"site":"<site key>","email":"jane@example.com"}, without large fields' };

/**
 * Browsers send batches and leads as text/plain (no CORS preflight) or through sendBeacon; servers
 * send application/json. All are read as text and parsed here, so a malformed body gets our own 400.
 */
const readLead = readBodyFor('text', LEAD_BODY);

/** The most keys a limiter holds: 10 to 17 MB of heap (measured), however many addresses a minute brings. */
const MAX_LIMITER_KEYS = 100_000;

/**
 * Counts per key in fixed one-minute windows, in at most `maxKeys` keys: past that the key seen
 * least recently is forgotten (a Map keeps insertion order, and each count re-inserts its key), so
 * a flood of new addresses costs no memory beyond the cap, and forgets idle keys, not busy ones.
 */
export class WindowCounts {
	private counts = new Map<string, number>();
	private window = 0;

	constructor(private readonly maxKeys = MAX_LIMITER_KEYS) {}

	/** How many keys it holds now. */
	get size(): number {
		return this.counts.size;
	}

	/** Counts one for the key; its count in this window. */
	add(key: string, now = Date.now()): number {
		const window = Math.floor(now / 60_000);
		if (window !== this.window) {
			this.window = window;
			this.counts.clear();
		}
		const count = (this.counts.get(key) ?? 0) + 1;
		if (count > 1) this.counts.delete(key);
		else if (this.counts.size >= this.maxKeys) this.counts.delete(this.counts.keys().next().value!);
		this.counts.set(key, count);
		return count;
	}

	/** When the current window ends, in epoch milliseconds. */
	get resetsAt(): number {
		return (this.window + 1) * 60_000;
	}
}

/** Whole seconds until `epochMs`, at least 1: a Retry-After of 0 would invite a retry that is refused again. */
const secondsUntil = (epochMs: number) => Math.max(1, Math.ceil((epochMs - Date.now()) / 1000));

/**
 * RATE_LIMIT_PER_IP: every request from one network per minute, counted before the body is read.
 * A network is the address as it is stored, anonymized (IPv4 /24, IPv6 /48): one host holds a
 * whole IPv6 /64 and more, so keyed per address it could send without limit. Answers with the
 * draft-7 RateLimit headers and 429 past the limit, with Retry-After for clients that read only that.
 */
class AddressLimit {
	private readonly counts = new WindowCounts();
	private readonly policy: string;

	constructor(private readonly limit: number) {
		this.policy = `${limit};w=60`;
	}

	/** Counts the request; false (and the 429 sent) when its network is over the limit. */
	allow(network: string, res: ServerResponse): boolean {
		const hits = this.counts.add(network);
		res.setHeader('RateLimit-Policy', this.policy);
		res.setHeader('RateLimit', `limit=${this.limit}, remaining=${Math.max(0, this.limit - hits)}, reset=${Math.max(0, Math.ceil((this.counts.resetsAt - Date.now()) / 1000))}`);
		if (hits <= this.limit) return true;
		res.setHeader('Retry-After', String(secondsUntil(this.counts.resetsAt)));
		sendProblem(res, 429, 'rate_limited', 'Too many requests from this address; retry after the seconds in the Retry-After header');
		return false;
	}
}

/**
 * The most batches a minute one network may always store to a site: a tracker sends at most one
 * batch every 2 s, so a visitor (or a few behind one address) stays under it.
 */
const VISITOR_BATCHES_PER_MINUTE = 30;

/**
 * RATE_LIMIT_PER_SITE: the batches a site stores per minute, so that one site's flood does not
 * take the database from the others. Only batches that store people's events count: a batch
 * dropped (denied or missing consent, GPC/DNT, prefetch) or a bot's costs only its address's
 * budget, or anyone could spend a site's budget with requests that store nothing. Yet visitors
 * cannot be told from strangers who post valid batches from many addresses, and a budget everyone
 * shares is one strangers can spend for everyone. So past the limit a batch is refused only when
 * its network has stored more than its share this minute: the limit divided among the networks
 * the site heard from, and never less than a visitor sends. The heaviest senders are slowed; a
 * visitor is not locked out by others, however many addresses they have.
 */
class SiteLimit {
	private readonly byNetwork = new WindowCounts();
	private sites = new Map<string, { batches: number; networks: number }>();
	private window = 0;

	constructor(private readonly limit: number) {}

	/** Counts a batch of the site from the network; false (and the 429 sent) when it must wait. */
	allow(site: string, network: string, res: ServerResponse): boolean {
		const window = Math.floor(Date.now() / 60_000);
		if (window !== this.window) {
			this.window = window;
			this.sites = new Map();
		}
		const mine = this.byNetwork.add(`${site} ${network}`);
		let counts = this.sites.get(site);
		if (!counts) this.sites.set(site, (counts = { batches: 0, networks: 0 }));
		counts.batches += 1;
		if (mine === 1) counts.networks += 1;
		if (counts.batches <= this.limit || mine <= Math.max(VISITOR_BATCHES_PER_MINUTE, this.limit / counts.networks)) return true;
		res.setHeader('Retry-After', String(secondsUntil((window + 1) * 60_000)));
		sendProblem(res, 429, 'rate_limited', 'This site receives more events than its limit and this address sends the most of them; retry after the seconds in the Retry-After header');
		return false;
	}
}

function validate<T>(schema: z.ZodType<T>, input: unknown, res: ServerResponse, what: string): T | undefined {
	const result = schema.safeParse(input);
	if (result.success) return result.data;
	const issues = toFieldIssues(result.error, input, schema)
		.slice(0, 20)
		.map(({ field, message }) => ({ field, message }));
	sendProblem(res, 400, 'invalid_payload', `The ${what} is invalid: ${issues.map((issue) => `${issue.field} ${issue.message}`).join('; ')}`, { issues });
	return undefined;
}

function siteFor(key: string, req: IncomingMessage, res: ServerResponse, sites: SiteRegistry): RegisteredSite | undefined {
	const site = sites.byPublicKey(key);
	if (!site) {
		sendProblem(res, 400, 'unknown_site', 'No site has this key; use the data-site value of your script tag', { issues: [{ field: 'site', message: 'is not a known site key' }] });
		return undefined;
	}
	const origin = req.headers.origin;
	if (origin && !site.allowedOrigins.has(origin)) {
		sendProblem(res, 403, 'origin_not_allowed', `Origin ${origin.slice(0, 200)} may not send events for this site; add it to tracking.allowedOrigins`);
		return undefined;
	}
	if (origin) {
		res.setHeader('Access-Control-Allow-Origin', origin);
		res.setHeader('Vary', 'Origin');
	}
	return site;
}

function requestFacts(req: IncomingMessage, network: string | null, settings: ReceiverSettings, userAgent: string | undefined, isBot: boolean): RequestFacts {
	const countryHeader = settings.COUNTRY_HEADER ? req.headers[settings.COUNTRY_HEADER] : undefined;
	const country = typeof countryHeader === 'string' && /^[A-Za-z]{2}$/.test(countryHeader) ? countryHeader.toUpperCase() : null;
	return { userAgent: userAgent?.slice(0, 512) ?? null, ipAnonymized: network, country, isBot };
}

/** The body as UTF-8 text, at most TRACK_LIMITS.maxBatchBytes; a problem answer and undefined when it cannot be. */
function readText(req: IncomingMessage, res: ServerResponse): Promise<string | undefined> {
	const refuse = (status: number, type: BodyErrorType) => {
		// The rest of the body is not read: the connection closes after the answer.
		res.setHeader('Connection', 'close');
		sendProblem(res, status, type, bodyErrorMessage(type, BATCH_BODY));
		return Promise.resolve(undefined);
	};
	const unreadable = unreadableBody(req);
	if (unreadable) return refuse(unreadable.status, unreadable.type);
	if (Number(req.headers['content-length']) > TRACK_LIMITS.maxBatchBytes) return refuse(413, 'entity.too.large');
	return new Promise((resolve) => {
		const chunks: Buffer[] = [];
		let size = 0;
		const onData = (chunk: Buffer) => {
			size += chunk.length;
			chunks.push(chunk);
			if (size <= TRACK_LIMITS.maxBatchBytes) return;
			req.off('data', onData).off('end', onEnd);
			void refuse(413, 'entity.too.large').then(resolve);
		};
		const onEnd = () => resolve((chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)).toString('utf8'));
		req.on('data', onData).on('end', onEnd);
		// The client went away before its body arrived: there is no one to answer.
		req.once('aborted', () => resolve(undefined));
		req.once('error', () => resolve(undefined));
	});
}

export interface IngestRoutes {
	/** POST /api/track as a plain Node handler, outside Express: the one route every page view reaches. */
	track: (req: IncomingMessage, res: ServerResponse) => void;
	/** The other ingest routes (preflights, /api/lead). */
	router: Router;
	close: () => void;
}

export function ingestRoutes(context: IngestContext): IngestRoutes {
	const router = Router();
	const { prisma, sites, settings, logger, securityHeaders, databaseFailures } = context;
	const committer = new GroupCommitter(context.ingestPool ? storeThroughPool(context.ingestPool) : storeThroughRaw(context.sql));
	const perIp = new AddressLimit(settings.RATE_LIMIT_PER_IP);
	const perSite = new SiteLimit(settings.RATE_LIMIT_PER_SITE);
	const consent = new TrackerConsent(prisma);

	router.options(['/api/track', '/api/lead'], (req, res) => {
		const origin = req.headers.origin;
		if (origin && sites.isKnownOrigin(origin)) {
			res.setHeader('Access-Control-Allow-Origin', origin);
			res.setHeader('Access-Control-Allow-Methods', 'POST');
			res.setHeader('Access-Control-Allow-Headers', 'Content-Type');
			res.setHeader('Access-Control-Max-Age', '86400');
			res.setHeader('Vary', 'Origin');
		}
		res.status(204).end();
	});

	const storageFailed = (res: ServerResponse, error: unknown, what: string) => {
		const refused = unstorableValue(error);
		if (refused) {
			sendProblem(res, 400, 'unstorable_value', `The database cannot hold a value of this ${what} (${refused.reason}); nothing of it was stored. Fix the value: sent unchanged it fails again`);
			return;
		}
		// A database that stopped answering fails every request until it is back: counted, not logged each time.
		if (databaseFailure(error) === 'unavailable') databaseFailures.failed(error);
		else logger.error({ err: error }, 'storing failed');
		res.setHeader('Retry-After', '5');
		sendProblem(res, 503, 'storage_unavailable', 'The events could not be stored right now and were not accepted; retry later');
	};

	const acceptBatch = async (req: IncomingMessage, res: ServerResponse) => {
		logRequest(logger, req, res);
		for (const [name, value] of securityHeaders) res.setHeader(name, value);
		const client = clientOf(proxyAddr(req, context.trustProxy));
		if (!perIp.allow(client.limitKey, res)) return;
		const text = await readText(req, res);
		if (text === undefined) return;
		const input = parseJsonBody(text, res, BATCH_BODY.send);
		if (input === undefined) return;
		const batch = validate(trackBatchSchema, input, res, 'event batch');
		if (!batch) return;
		const site = siteFor(batch.site, req, res, sites);
		if (!site) return;
		const reason = dropReason(req.headers, batch, site.config.privacy);
		const userAgent = req.headers['user-agent'];
		const isBot = isAutomated(userAgent, batch);
		// A denial is recorded though its batch is dropped; a browser whose privacy signal the site honours leaves no record.
		if (!isBot && (!reason || reason === 'consent-denied')) {
			try {
				await consent.record(site.id, batch);
			} catch (error) {
				storageFailed(res, error, 'event batch');
				return;
			}
		}
		if (reason) {
			sendJson(res, 202, { stored: 0, duplicates: 0, ignored: batch.events.length, reason });
			return;
		}
		if (!isBot && !perSite.allow(site.key, client.limitKey, res)) return;
		const rows = toEventRows(batch, Date.now(), { engagementThresholds: site.config.tracking.engagementThresholds, acceptLanguage: req.headers['accept-language'] });
		const destinations = !isBot && site.endpoints.has('visitor-processor') ? ['visitor-processor'] : [];
		try {
			const result = await committer.store(site.id, rows, requestFacts(req, client.network, settings, userAgent, isBot), destinations);
			databaseFailures.succeeded();
			sendJson(res, 202, isBot ? { stored: result.stored, duplicates: result.duplicates, bot: true } : { stored: result.stored, duplicates: result.duplicates });
		} catch (error) {
			storageFailed(res, error, 'event batch');
		}
	};

	const track = (req: IncomingMessage, res: ServerResponse) => {
		acceptBatch(req, res).catch((error: unknown) => {
			logger.error({ err: error }, 'unhandled error');
			if (!res.headersSent) sendProblem(res, 500, 'internal', 'The request could not be processed; nothing was stored');
		});
	};

	// createApp hands POST /api/track to `track` before Express; registered too, so the routing table a 405 reads its Allow header from is complete.
	router.post('/api/track', track);

	router.post(
		'/api/lead',
		(req, res, next) => {
			if (perIp.allow(clientOf(req.ip).limitKey, res)) next();
		},
		// A server that knows its users may vouch for the anonymous id with an admin key of the site; browsers send none.
		(req, res, next) => (presentsApiKey(req) ? requireApiKey(prisma, 'admin')(req, res, next) : next()),
		readLead,
		async (req, res) => {
			const input = parseJsonBody(typeof req.body === 'string' ? req.body : '', res, LEAD_BODY.send);
			if (input === undefined) return;
			const lead = validate(leadPayloadSchema, input, res, 'lead');
			if (!lead) return;
			const site = siteFor(lead.site, req, res, sites);
			if (!site) return;
			if (req.auth && req.auth.siteId !== site.id) {
				sendProblem(res, 403, 'key_for_other_site', 'The API key belongs to another site than the lead names; send the key of that site, or no key from a browser', {
					issues: [{ field: 'site', message: 'is not the site of the API key' }],
				});
				return;
			}
			const userAgent = req.headers['user-agent'];
			// A server posting with the site's admin key is the site's own backend, whatever its user agent says.
			if (!req.auth && isAutomated(userAgent, { events: [] })) {
				sendJson(res, 202, { stored: false, reason: 'automated-client' });
				return;
			}
			try {
				// On a site with privacy.encryptPii the address is known by its keyed hash, which a copy of
				// the database cannot test a guessed address against; an erasure from before the site
				// turned encryption on left the SHA-256, so both are checked.
				const cipher = siteCipher(site.id, site.config.privacy.encryptPii);
				const hash = emailHash(lead.email, cipher);
				const hashes = [...new Set([hash, emailHash(lead.email)])];
				const erased = await prisma.suppression.findFirst({ where: { siteId: site.id, emailHash: { in: hashes }, reason: 'erased' }, select: { id: true } });
				if (erased) {
					sendJson(res, 202, { stored: false, reason: 'erased' });
					return;
				}
				const facts = requestFacts(req, clientOf(req.ip).network, settings, userAgent, false);
				const claim = lead.anonymousId ? historyClaim(facts, await storedHistory(prisma, site.id, lead.anonymousId), req.auth !== undefined) : undefined;
				const destinations = site.endpoints.has('lead-processor') ? ['lead-processor'] : [];
				const submitted = claim?.merge === false ? { ...lead, anonymousId: undefined } : lead;
				await recordLeadConsent(prisma, site.id, submitted, hash, req.headers.referer);
				const result = await storeLead(prisma, site.id, submitted, hash, facts, destinations, cipher);
				databaseFailures.succeeded();
				sendJson(res, 202, { stored: result.stored, duplicate: !result.stored, ...(claim && { history: claim.merge ? 'joined' : `kept anonymous: ${claim.reason}` }) });
			} catch (error) {
				storageFailed(res, error, 'lead');
			}
		},
	);

	return {
		track,
		router,
		// The limiters hold no timers: their windows turn when they are next used.
		close: () => undefined,
	};
}
