/**
 * A fixed, realistic input for the CRM chain (workflows 01 → 02 → 04, 03 → 05 → 04, and 06 on
 * stage changes and conversions): visitors of a site over three weeks, each with a few visits
 * from GA4's channels (direct, search, social, referral, paid with click ids, email campaigns),
 * page views with their scrolls, engagement pings, clicks, downloads, demo requests, contact
 * forms with their thank-you page, tracker session summaries, visits split by a long pause or by
 * a new campaign; a tenth of the visitors leave their address and keep visiting as leads (one
 * person on two browsers, one browser shared by two people); one delivery is replayed and one
 * visitor's offline events arrive days late.
 *
 * Every value comes from a seeded generator and fixed times (October 2026), so the same seed
 * always gives the same deliveries, event ids included: the CRM rows they make can be compared
 * across versions of the nodes (test/nodes/chainEquivalence.test.ts).
 */
import { emailHash } from '../../../lib/email';
import type { DeliveredEvent, DeliveredLead, ReceiverDelivery } from '../../../lib/contracts/delivery';
import type { SiteConfigInput } from '../../../lib/contracts/siteConfig';
import { prng } from '../../helpers/prng';

export const CHAIN_SITE = 'chain';
export const CHAIN_DOMAIN = 'chain.example';
const ORIGIN = `https://${CHAIN_DOMAIN}`;
/** Monday 5 October 2026, 07:00 UTC: the first visit's day. Every time below is fixed from it. */
const START = Date.UTC(2026, 9, 5, 7, 0, 0);
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Events per delivery at most, as a receiver with DISPATCH_BATCH_SIZE 100 sends them. */
const DELIVERY_EVENTS = 100;

/** The site config the chain runs with: goals, scoring without decay (so the scores do not move with the day the test runs), stages. */
export const chainSiteConfig: SiteConfigInput = {
	site: { key: CHAIN_SITE, name: 'Chain', domain: CHAIN_DOMAIN },
	tracking: { allowedOrigins: [ORIGIN] },
	privacy: { cookieConsent: false },
	crm: {
		conversionRules: [
			{ name: 'contact', event: 'form_submit', urlPattern: '/contact', value: 50, currency: 'EUR' },
			{ name: 'thank-you', urlPattern: '/thank-you' },
			{ name: 'engaged-pricing', urlPattern: '/pricing', minEngagementScore: 60, value: 5, currency: 'EUR' },
			{ name: 'demo', event: 'demo_request', value: 200.5, currency: 'USD' },
			{ name: 'whitepaper', event: 'download', urlPattern: '/resources/**', value: 12.3333 },
		],
		leadScoringRules: [
			{ id: 'pageviews', event: 'pageview', score: 1, cap: 15, group: 'engagement' },
			{ id: 'pricing', event: 'pageview', urlPattern: '/pricing', score: 5, cap: 20, group: 'engagement' },
			{ id: 'docs', event: 'pageview', urlPattern: '/docs/**', score: 2, group: 'engagement' },
			{ id: 'forms', event: 'form_submit', score: 20 },
			{ id: 'downloads', event: 'download', score: 8 },
			{ id: 'demo', event: 'demo_request', score: 40 },
			{ id: 'return-visit', visits: 2, score: 10 },
			{ id: 'each-visit', visits: 3, perVisit: true, score: 3, cap: 15 },
			{ id: 'decision-maker', field: 'jobTitle', operator: 'matches', value: '\\b(ceo|cto|head|director)\\b', score: 10 },
			{ id: 'free-mail', field: 'freeMail', operator: 'isTrue', score: -5 },
			{ id: 'company', field: 'company', operator: 'exists', score: 5 },
			{ id: 'dach', field: 'country', operator: 'in', value: ['DE', 'AT', 'CH'], score: 3 },
		],
		groupCaps: { engagement: 30 },
		maxScore: 150,
		lifecycleStages: [
			{ name: 'subscriber', minScore: 0 },
			{ name: 'lead', minScore: 20 },
			{ name: 'mql', minScore: 45 },
			{ name: 'sql', minScore: 80 },
		],
	},
};

/** One step of the input: a delivery to a workflow's trigger, in order. A lead's identify event is stored first, as POST /api/lead stores it. */
export type ChainStep =
	| { workflow: 'crm-visitor-processor'; delivery: ReceiverDelivery }
	| { workflow: 'crm-lead-processor'; delivery: ReceiverDelivery; identify: IdentifyEvent };

/** The identify event POST /api/lead stores for a submission (server/ingest/store.ts), at a fixed time. */
export interface IdentifyEvent {
	eventId: string;
	anonymousId: string;
	formId: string;
	source: string | null;
	consent: boolean;
	userAgent: string;
	country: string;
	occurredAt: string;
}

export interface ChainInput {
	steps: ChainStep[];
	/** Every event id of the input in the order made, so a dump can name an event by its index. */
	eventIds: string[];
	events: number;
	visitors: number;
	leads: number;
}

const USER_AGENTS = [
	['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36', 'DE'],
	['Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15', 'US'],
	['Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1', 'GB'],
	['Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36', 'ES'],
	['Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0', 'AT'],
	['Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.7 Mobile/15E148 Safari/604.1', 'FR'],
] as const;
const BOT_UA = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';

const PAGES = ['/', '/pricing', '/features', '/blog/launch', '/blog/seo-guide', '/docs/start', '/docs/api/leads', '/about', '/integrations', '/resources/whitepaper'];

interface Landing {
	referrer?: string;
	query?: string;
	context?: DeliveredEvent['context'];
}

/** GA4's channels as the tracker sees a landing: its referrer, the query string and the context it sends. */
const LANDINGS: Array<(random: () => number) => Landing> = [
	() => ({}),
	() => ({ referrer: 'https://www.google.com/' }),
	() => ({ referrer: 'https://duckduckgo.com/' }),
	() => ({ referrer: 'https://t.co/x1' }),
	() => ({ referrer: 'https://www.linkedin.com/feed/' }),
	() => ({ referrer: 'https://news.ycombinator.com/item?id=1' }),
	() => ({ referrer: 'https://partner-blog.example/review' }),
	(random) => {
		const gclid = `Cj0K${Math.floor(random() * 1e9).toString(36)}`;
		return { referrer: 'https://www.google.com/', query: `?utm_source=google&utm_medium=cpc&utm_campaign=autumn-search&gclid=${gclid}`, context: { utm_source: 'google', utm_medium: 'cpc', utm_campaign: 'autumn-search', clickIds: { gclid } } };
	},
	() => ({ query: '?utm_source=newsletter&utm_medium=email&utm_campaign=october', context: { utm_source: 'newsletter', utm_medium: 'email', utm_campaign: 'october' } }),
	(random) => {
		const fbclid = `IwAR${Math.floor(random() * 1e9).toString(36)}`;
		return { referrer: 'https://m.facebook.com/', query: `?utm_source=facebook&utm_medium=paid_social&utm_campaign=retarget&fbclid=${fbclid}`, context: { utm_source: 'facebook', utm_medium: 'paid_social', utm_campaign: 'retarget', clickIds: { fbclid } } };
	},
];

interface Person {
	email: string;
	firstName: string;
	lastName?: string;
	company?: string;
	jobTitle?: string;
	phone?: string;
	country?: string;
	timezone?: string;
	consent: boolean;
}

const PEOPLE: Person[] = [
	{ email: 'ana.garcia@clinic-vet.es', firstName: 'Ana', lastName: 'García', company: 'Clínica Vet', jobTitle: 'Head of Marketing', phone: '+34 612 345 678', country: 'ES', timezone: 'Europe/Madrid', consent: true },
	{ email: 'Jonas.Weber+crm@gmail.com', firstName: 'Jonas', phone: '0151 23456789', country: 'DE', consent: true },
	{ email: 'li.chen@petfood.example.com', firstName: 'Li', lastName: 'Chen', company: 'Petfood Inc', jobTitle: 'CTO', consent: false },
	{ email: 'maria@yopmail.com', firstName: 'Maria', consent: false },
	{ email: 'tom.baker@outlook.com', firstName: 'Tom', lastName: 'Baker', jobTitle: 'Student', country: 'GB', timezone: 'Europe/London', consent: true },
	{ email: 'eva.novak@tierarzt.at', firstName: 'Eva', company: 'Tierarzt Novak', jobTitle: 'Director', phone: '+43 1 234 5678', country: 'AT', consent: true },
	{ email: 'sam@startup.example.io', firstName: 'Sam', company: 'Startup', jobTitle: 'CEO', phone: 'not a phone', consent: true },
	{ email: 'claire.dupont@orange.fr', firstName: 'Claire', country: 'FR', timezone: 'Europe/Paris', consent: true },
	{ email: 'peter.meier@zoo-handel.ch', firstName: 'Peter', company: 'Zoo Handel', jobTitle: 'Buyer', country: 'CH', consent: false },
	{ email: 'olivia.brown@yahoo.com', firstName: 'Olivia', country: 'US', timezone: 'America/New_York', consent: true },
	{ email: 'k.tanaka@animalcare.example.jp', firstName: 'Kenji', company: 'Animal Care', jobTitle: 'Head of Sales', consent: true },
	{ email: 'lucia.rossi@libero.it', firstName: 'Lucia', consent: true },
	{ email: 'noah.jensen@hundeskole.dk', firstName: 'Noah', company: 'Hundeskole', consent: false },
	{ email: 'amelie.martin@gmail.com', firstName: 'Amélie', lastName: 'Martin', phone: '+33 6 12 34 56 78', consent: true },
	{ email: 'david.kim@vetgroup.example.com', firstName: 'David', company: 'Vet Group', jobTitle: 'CTO', country: 'US', consent: true },
	{ email: 'sofia.lopez@hotmail.com', firstName: 'Sofía', country: 'MX', consent: false },
	{ email: 'max.mustermann@web.de', firstName: 'Max', country: 'DE', timezone: 'Europe/Berlin', consent: true },
	{ email: 'ines.costa@petshop.example.pt', firstName: 'Inês', company: 'Pet Shop', jobTitle: 'Owner', consent: true },
	{ email: 'liam.oconnor@icloud.com', firstName: 'Liam', consent: true },
	{ email: 'hana.sato@example.co.jp', firstName: 'Hana', company: 'Example KK', jobTitle: 'Director of Ops', consent: true },
	{ email: 'mark.taylor@agency.example.co.uk', firstName: 'Mark', company: 'Agency', country: 'GB', consent: false },
	{ email: 'julia.schmidt@praxis-schmidt.de', firstName: 'Julia', company: 'Praxis Schmidt', jobTitle: 'Head Vet', phone: '+49 30 1234567', country: 'DE', consent: true },
	{ email: 'omar.haddad@gmail.com', firstName: 'Omar', consent: true },
	{ email: 'zoe.white@mailinator.com', firstName: 'Zoe', consent: false },
];

/** A UUIDv7 of a given time with random bits from the generator: time-ordered like the tracker's ids. */
function uuidv7At(ms: number, random: () => number): string {
	const time = Math.floor(ms).toString(16).padStart(12, '0');
	const hex = (digits: number) => Array.from({ length: digits }, () => Math.floor(random() * 16).toString(16)).join('');
	const variant = (8 + Math.floor(random() * 4)).toString(16);
	return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${hex(3)}-${variant}${hex(3)}-${hex(12)}`;
}

interface Batch {
	anonymousId: string;
	sentAt: number;
	events: DeliveredEvent[];
	/** A lead submitted with this batch's form. */
	lead?: { person: Person; formId: string };
}

interface Visitor {
	anonymousId: string;
	userAgent: string;
	country: string;
	/** The person who submits the contact form on this browser, and from which visit. */
	person?: Person;
	formVisit: number;
	visits: number;
}

/**
 * The chain's input for a seed: about `visitorCount` × 10 events. Deliveries hold the batches sent
 * in a stretch of time, up to DELIVERY_EVENTS events, a visitor's batches in order, as the
 * dispatcher forms them.
 */
export function chainInput(seed = 20261005, visitorCount = 120): ChainInput {
	const random = prng(seed);
	const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
	const eventIds: string[] = [];
	const batches: Batch[] = [];
	const visitors: Visitor[] = [];
	let people = 0;

	for (let v = 0; v < visitorCount; v++) {
		const [userAgent, country] = v === 17 ? [BOT_UA, 'US'] : pick(USER_AGENTS);
		const visits = 1 + Math.floor(random() * random() * 5);
		const visitor: Visitor = { anonymousId: `chain-v${String(v).padStart(3, '0')}`, userAgent, country, formVisit: -1, visits };
		// One visitor in nine becomes a lead, on one of its visits; a returning one keeps visiting after.
		if (v % 9 === 4 && people < PEOPLE.length) {
			visitor.person = PEOPLE[people++];
			visitor.formVisit = Math.floor(random() * visits);
		}
		visitors.push(visitor);
	}
	// One person on two browsers: the laptop's visitor submits the first person's address again.
	const laptop = visitors[visitors.length - 10];
	laptop.person = visitors[4].person;
	laptop.formVisit = 0;
	// One browser shared by two people: each submits their own address on it.
	visitors[22].anonymousId = visitors[13].anonymousId;

	const leadsBySubmission: Array<{ batch: Batch }> = [];
	for (const visitor of visitors) {
		let clock = START + Math.floor(random() * 14 * DAY);
		for (let visit = 0; visit < visitor.visits; visit++) {
			const tabSession = `${visitor.anonymousId}-s${visit}`;
			const landing = pick(LANDINGS)(random);
			const pages = 1 + Math.floor(random() * 7);
			const isFormVisit = visit === visitor.formVisit;
			let path = isFormVisit ? pick(['/pricing', '/', '/features']) : pick(PAGES);
			let batch: Batch = { anonymousId: visitor.anonymousId, sentAt: clock, events: [] };
			/** An event at the clock on the current path; a landing's event carries its query string, referrer and campaign context. */
			const event = (type: DeliveredEvent['type'], extra: Partial<DeliveredEvent> = {}, arrival?: Landing): DeliveredEvent => {
				const id = uuidv7At(clock, random);
				eventIds.push(id);
				return {
					id,
					anonymousId: visitor.anonymousId,
					sessionId: tabSession,
					type,
					name: null,
					url: `${ORIGIN}${path}${arrival?.query ?? ''}`,
					path,
					title: `Chain ${path}`,
					referrer: arrival ? (arrival.referrer ?? null) : `${ORIGIN}/`,
					relevance: null,
					props: null,
					context: arrival?.context ?? null,
					userAgent: visitor.userAgent,
					country: visitor.country,
					occurredAt: new Date(clock).toISOString(),
					receivedAt: new Date(clock + 400).toISOString(),
					...extra,
				};
			};
			const flush = () => {
				if (batch.events.length > 0) batches.push(batch);
				batch = { anonymousId: visitor.anonymousId, sentAt: clock, events: [] };
			};
			for (let page = 0; page < pages; page++) {
				batch.events.push(event('pageview', {}, page === 0 ? landing : undefined));
				const dwell = 5_000 + Math.floor(random() * 90_000);
				if (random() < 0.6) {
					clock += Math.floor(dwell / 2);
					batch.events.push(event('scroll', { props: { depth: pick([25, 50, 75, 90, 100]) } }));
				}
				if (random() < 0.5) {
					clock += Math.floor(dwell / 3);
					batch.events.push(event('engagement', { props: { engagedMs: dwell } }));
				}
				if (random() < 0.25) batch.events.push(event('click', { name: pick(['cta-trial', 'nav-docs', 'pricing-toggle']), relevance: pick([3, 5, 8]) }));
				if (path === '/resources/whitepaper' && random() < 0.3) batch.events.push(event('download', { name: 'whitepaper.pdf', props: { file: 'whitepaper.pdf' } }));
				if (path === '/pricing' && random() < 0.12) batch.events.push(event('custom', { name: 'demo_request', relevance: 9 }));
				if (random() < 0.08) batch.events.push(event('outbound', { name: 'https://github.com/tracking-crm', props: { href: 'https://github.com/tracking-crm' } }));
				clock += dwell;
				// A long pause: the next page starts a new visit by the session timeout.
				if (random() < 0.04) clock += 45 * MINUTE;
				flush();
				path = pick(PAGES);
			}
			if (isFormVisit && visitor.person) {
				path = '/contact';
				batch.events.push(event('pageview'));
				clock += 40_000;
				batch.events.push(event('form_submit', { name: 'contact', relevance: 10 }));
				batch.lead = { person: visitor.person, formId: 'contact' };
				flush();
				leadsBySubmission.push({ batch: batches[batches.length - 1] });
				clock += 2_000;
				path = '/thank-you';
				batch.events.push(event('pageview'));
				flush();
			}
			if (random() < 0.3) {
				clock += 1_000;
				const score = Math.round(random() * 100);
				batch.events.push(event('session_end', { props: { engagementScore: score, engagement: score >= 60 ? 'high' : score >= 30 ? 'medium' : 'low', pageview: pages } }));
				flush();
			}
			// A new campaign within the timeout opens a new visit.
			if (random() < 0.05) {
				clock += 5 * MINUTE;
				path = '/';
				batch.events.push(event('pageview', {}, LANDINGS[8](random)));
				flush();
			}
			clock += (2 + Math.floor(random() * 70)) * HOUR;
		}
	}

	batches.sort((a, b) => a.sentAt - b.sentAt || (a.anonymousId < b.anonymousId ? -1 : a.anonymousId > b.anonymousId ? 1 : 0));
	// A visitor's offline events (sent days later by a tab that was asleep) arrive after everything else.
	const offline = batches.findIndex((batch) => batch.anonymousId === visitors[31].anonymousId && batch.events.length >= 2);
	const late = batches.splice(offline, 1)[0];
	batches.push({ ...late, sentAt: batches[batches.length - 1].sentAt + HOUR });

	const steps: ChainStep[] = [];
	let delivery = 0;
	const envelope = (destination: string) => ({ site: CHAIN_SITE, siteId: '', destination, deliveryId: `00000000-0000-4000-8000-${String(++delivery).padStart(12, '0')}`, sentAt: '' });
	let open: { events: DeliveredEvent[]; leads: Batch[]; byVisitor: Map<string, DeliveredEvent[]> } = { events: [], leads: [], byVisitor: new Map() };
	const close = () => {
		if (open.events.length === 0) return;
		// A visitor's rows travel together, in order: events of one partition in one run.
		const events = [...open.byVisitor.values()].flat();
		steps.push({ workflow: 'crm-visitor-processor', delivery: { ...envelope('visitor-processor'), events, leads: [], emailEvents: [] } });
		for (const batch of open.leads) steps.push(leadStep(batch, envelope('lead-processor')));
		open = { events: [], leads: [], byVisitor: new Map() };
	};
	for (const batch of batches) {
		if (open.events.length + batch.events.length > DELIVERY_EVENTS) close();
		open.events.push(...batch.events);
		open.byVisitor.set(batch.anonymousId, [...(open.byVisitor.get(batch.anonymousId) ?? []), ...batch.events]);
		if (batch.lead) open.leads.push(batch);
	}
	close();
	// n8n answered too late once: the receiver sends the same delivery again, under its id.
	const replayed = steps.find((step, index) => index > steps.length / 2 && step.workflow === 'crm-visitor-processor');
	if (replayed) steps.push(replayed);
	return { steps, eventIds, events: eventIds.length, visitors: new Set(visitors.map((visitor) => visitor.anonymousId)).size, leads: leadsBySubmission.length };
}

function leadStep(batch: Batch, envelope: Pick<ReceiverDelivery, 'site' | 'siteId' | 'destination' | 'deliveryId' | 'sentAt'>): ChainStep {
	const { person, formId } = batch.lead!;
	const submit = batch.events[batch.events.length - 1];
	const occurredAt = new Date(Date.parse(submit.occurredAt) + 1_000).toISOString();
	const eventId = `${submit.id.slice(0, 34)}${submit.id.slice(34) === 'ff' ? '00' : 'ff'}`;
	const lead: DeliveredLead = {
		kind: 'lead',
		eventId,
		lead: { site: CHAIN_SITE, anonymousId: batch.anonymousId, formId, source: 'contact-form', ...person },
		emailHash: emailHash(person.email),
		country: submit.country,
		receivedAt: occurredAt,
	};
	return {
		workflow: 'crm-lead-processor',
		delivery: { ...envelope, events: [], leads: [lead], emailEvents: [] },
		identify: { eventId, anonymousId: batch.anonymousId, formId, source: 'contact-form', consent: person.consent, userAgent: submit.userAgent ?? '', country: submit.country ?? '', occurredAt },
	};
}
