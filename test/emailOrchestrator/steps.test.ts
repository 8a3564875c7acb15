import {
	advanceFrom,
	CAMPAIGN_RECHECK_MS,
	messageKey,
	RETRY_AFTER_MS,
	senderAddress,
	sendFailure,
	settleReserved,
	stepAction,
	stepDueAt,
	type DueStep,
} from '../../nodes/EmailOrchestrator/steps';

// Wednesday 2026-06-10, 12:00 in Madrid
const NOW = new Date('2026-06-10T10:00:00Z');
const HOUR = 3_600_000;
const step = { position: 1 };
const due = (changes: Partial<DueStep<typeof step>> = {}): DueStep<typeof step> => ({
	step,
	campaignStatus: null,
	suppression: null,
	recentSends: [],
	maxPerDay: 2,
	window: {},
	timezone: 'Europe/Madrid',
	now: NOW,
	...changes,
});

describe('stepAction', () => {
	// [case, the enrollment's facts, what it does]
	const cases: Array<[string, DueStep<typeof step>, ReturnType<typeof stepAction>]> = [
		['no step left completes', due({ step: undefined }), { do: 'complete', outcome: 'completed' }],
		['no step left completes even in an archived campaign', due({ step: undefined, campaignStatus: 'archived' }), { do: 'complete', outcome: 'completed' }],
		['a step without a campaign is sent', due(), { do: 'send', step }],
		['a step of an active campaign is sent', due({ campaignStatus: 'active' }), { do: 'send', step }],
		['an archived campaign unenrolls', due({ campaignStatus: 'archived', suppression: 'unsubscribed' }), { do: 'unenroll', outcome: 'unenrolled', reason: 'campaign archived', unenrollReason: 'campaign archived' }],
		['a paused campaign waits an hour, suppressed or not', due({ campaignStatus: 'paused', suppression: 'unsubscribed' }), { do: 'defer', outcome: 'deferred', reason: 'campaign paused', until: new Date(NOW.getTime() + CAMPAIGN_RECHECK_MS) }],
		['a draft campaign waits an hour', due({ campaignStatus: 'draft' }), { do: 'defer', outcome: 'deferred', reason: 'campaign draft', until: new Date(NOW.getTime() + CAMPAIGN_RECHECK_MS) }],
		['a suppressed lead unenrolls', due({ suppression: 'unsubscribed' }), { do: 'unenroll', outcome: 'suppressed', reason: 'unsubscribed', unenrollReason: 'suppressed: unsubscribed' }],
		['a suppressed lead unenrolls before the cap is looked at', due({ suppression: 'bounced', recentSends: [NOW, NOW] }), { do: 'unenroll', outcome: 'suppressed', reason: 'bounced', unenrollReason: 'suppressed: bounced' }],
		['under the cap it is sent', due({ recentSends: [new Date(NOW.getTime() - HOUR)] }), { do: 'send', step }],
		[
			'at the cap it waits until the oldest send of the day leaves the window',
			due({ recentSends: [new Date(NOW.getTime() - 2 * HOUR), new Date(NOW.getTime() - HOUR)] }),
			{ do: 'defer', outcome: 'deferred', reason: 'frequency cap', until: new Date(NOW.getTime() + 22 * HOUR) },
		],
		['sends older than a day do not count', due({ recentSends: [new Date(NOW.getTime() - 25 * HOUR), new Date(NOW.getTime() - 30 * HOUR)] }), { do: 'send', step }],
		[
			'in the quiet hours of the lead it waits for their end',
			due({ window: { quietHours: { start: '09:00', end: '18:00' } } }),
			{ do: 'defer', outcome: 'deferred', reason: 'outside the send window', until: new Date('2026-06-10T16:00:00Z') },
		],
		['on a day not allowed it waits for the next allowed one', due({ window: { weekdays: [4] } }), { do: 'defer', outcome: 'deferred', reason: 'outside the send window', until: new Date('2026-06-10T22:00:00Z') }],
	];
	it.each(cases)('%s', (_, facts, expected) => {
		expect(stepAction(facts)).toEqual(expected);
	});
});

describe('messageKey', () => {
	it('is one key per lead, sequence and step', () => {
		const keys = [messageKey('l1', 's1', 0), messageKey('l1', 's1', 1), messageKey('l1', 's2', 0), messageKey('l2', 's1', 0), messageKey('l1', 's1', 0)];
		expect(keys).toEqual(['l1:s1:0', 'l1:s1:1', 'l1:s2:0', 'l2:s1:0', 'l1:s1:0']);
	});
});

describe('settleReserved', () => {
	const reservedAt = new Date('2026-06-10T10:00:00Z');
	const after = (minutes: number) => new Date(reservedAt.getTime() + minutes * 60_000);
	const interrupted = { do: 'abandon', outcome: 'interrupted', error: 'interrupted mid-send; not sent again because the SMTP server may already have accepted it' };
	// [status of the message reserved under the step's key, minutes since it was reserved, how it is settled]
	const cases: Array<[string, number, ReturnType<typeof settleReserved>]> = [
		['sent', 0, { do: 'advance', outcome: 'already-sent' }],
		['sent', 60, { do: 'advance', outcome: 'already-sent' }],
		['sending', 0, { do: 'wait', outcome: 'in-flight', until: after(5) }],
		['sending', 4.9, { do: 'wait', outcome: 'in-flight', until: after(5) }],
		['sending', 5, interrupted as ReturnType<typeof settleReserved>],
		['sending', 20, interrupted as ReturnType<typeof settleReserved>],
		['failed', 0, { do: 'take-over' }],
		['failed', 20, { do: 'take-over' }],
	];
	it.each(cases)('%s, %d min after the reservation → %j', (status, minutes, expected) => {
		expect(settleReserved(status, reservedAt, after(minutes))).toEqual(expected);
	});
});

describe('sendFailure', () => {
	it.each([
		[true, { do: 'retry', outcome: 'retry', error: '550 mailbox full', until: new Date(NOW.getTime() + RETRY_AFTER_MS) }],
		[false, { do: 'advance', outcome: 'failed', error: 'delivery unknown, not sent again: 550 mailbox full' }],
	])('certainly not delivered: %s → %j', (certain, expected) => {
		expect(sendFailure('550 mailbox full', certain, NOW)).toEqual(expected);
	});

	it('keeps no address the server quoted, and the rest of its answer', () => {
		const refusal = '550 5.1.1 <Jane.Doe+crm@clinica-sol.es>: Recipient address rejected: User unknown in virtual mailbox table (jane@x.example)';
		expect(sendFailure(refusal, true, NOW).error).toBe('550 5.1.1 <<address>>: Recipient address rejected: User unknown in virtual mailbox table (<address>)');
		expect(sendFailure(refusal, false, NOW).error).not.toMatch(/jane|clinica/i);
	});
});

describe('advanceFrom', () => {
	const steps = [
		{ position: 0, delayMinutes: 0 },
		{ position: 1, delayMinutes: 60 },
		{ position: 3, delayMinutes: 24 * 60 },
	];
	const sentAt = new Date('2026-06-10T10:00:00Z');
	// [position sent, window, where the enrollment goes]
	const cases: Array<[number, Parameters<typeof advanceFrom>[3], ReturnType<typeof advanceFrom>]> = [
		[0, {}, { nextStep: 1, nextRunAt: new Date('2026-06-10T11:00:00Z') }],
		// positions may have gaps: the next existing one follows
		[1, {}, { nextStep: 3, nextRunAt: new Date('2026-06-11T10:00:00Z') }],
		[3, {}, { nextStep: 4, nextRunAt: null, status: 'completed', completedAt: sentAt }],
		// timed on the lead's wall clock: an hour later is 13:00 in Madrid, inside quiet hours until 18:00
		[0, { quietHours: { start: '13:00', end: '18:00' } }, { nextStep: 1, nextRunAt: new Date('2026-06-10T16:00:00Z') }],
	];
	it.each(cases)('after step %d with %j', (position, window, expected) => {
		expect(advanceFrom(steps, position, sentAt, window, 'Europe/Madrid')).toEqual(expected);
	});
});

describe('stepDueAt', () => {
	// [delay in minutes, from, window, lead's zone, due]
	const cases: Array<[number, string, Parameters<typeof stepDueAt>[2], string | null, string]> = [
		[0, '2026-06-10T10:00:00Z', {}, 'Europe/Madrid', '2026-06-10T10:00:00.000Z'],
		[90, '2026-06-10T10:00:00Z', {}, 'Europe/Madrid', '2026-06-10T11:30:00.000Z'],
		// 23:00 in Madrid is quiet until 08:00 there
		[60, '2026-06-10T20:00:00Z', { quietHours: { start: '21:00', end: '08:00' } }, 'Europe/Madrid', '2026-06-11T06:00:00.000Z'],
		// no zone: UTC
		[60, '2026-06-10T20:00:00Z', { quietHours: { start: '21:00', end: '08:00' } }, null, '2026-06-11T08:00:00.000Z'],
	];
	it.each(cases)('%d minutes after %s with %j in %s → %s', (delay, from, window, zone, expected) => {
		expect(stepDueAt(delay, new Date(from), window, zone).toISOString()).toBe(expected);
	});
});

describe('senderAddress', () => {
	const fallback = { address: 'ops@shop.example', name: 'Shop' };
	it.each([
		[null, fallback],
		[{ fromEmail: null, fromName: 'Campaign' }, fallback],
		[{ fromEmail: 'news@shop.example', fromName: 'News' }, { address: 'news@shop.example', name: 'News' }],
		[{ fromEmail: 'news@shop.example', fromName: null }, { address: 'news@shop.example', name: 'Shop' }],
	])('%j → %j', (campaign, expected) => {
		expect(senderAddress(campaign, fallback)).toEqual(expected);
	});
});
