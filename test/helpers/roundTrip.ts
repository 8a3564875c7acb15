import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';

import { Prisma, type PrismaClient } from '../../lib/db/generated/client';

type Row = Record<string, unknown>;

/** Values as the database returns them, so a written row and its read-back compare equal. */
function comparable(row: Row): Row {
	return Object.fromEntries(
		Object.entries(row).map(([key, value]) => [
			key,
			value instanceof Prisma.Decimal ? value.toString() : value instanceof Date ? value.toISOString() : typeof value === 'bigint' ? value.toString() : value,
		]),
	);
}

/**
 * Writes one row through every model of the schema (with the relations they need), reads
 * each back by its key and compares every written field. Returns the models it covered.
 */
export async function roundTripEveryModel(prisma: PrismaClient): Promise<string[]> {
	const covered: string[] = [];
	const at = new Date('2026-11-20T10:15:30.123Z');
	const suffix = randomUUID().slice(0, 8);

	async function check<T extends Row>(model: string, written: Row, read: () => Promise<T | null>): Promise<T> {
		const back = await read();
		if (!back) throw new Error(`${model}: the row written was not found`);
		const expected = comparable(written);
		const actual = comparable(back);
		for (const key of Object.keys(expected)) {
			if (!isDeepStrictEqual(actual[key], expected[key])) {
				throw new Error(`${model}.${key}: wrote ${JSON.stringify(expected[key])}, read ${JSON.stringify(actual[key])}`);
			}
		}
		covered.push(model);
		return back;
	}

	const siteData = { key: `roundtrip-${suffix}`, name: 'Round trip', domain: 'roundtrip.example', config: { tracking: { sessionTimeout: 1800 } } };
	const site = await prisma.site.create({ data: siteData });
	await check('Site', siteData, () => prisma.site.findUnique({ where: { key: siteData.key } }));
	const siteId = site.id;

	const apiKeyData = { siteId, name: 'dashboard', keyHash: `hash-${suffix}`, scope: 'read' as const, lastUsedAt: at };
	const apiKey = await prisma.apiKey.create({ data: apiKeyData });
	await check('ApiKey', apiKeyData, () => prisma.apiKey.findUnique({ where: { id: apiKey.id } }));

	const businessData = { siteId, domain: 'acme.example', name: 'Acme', industry: 'Pets', size: '11-50', country: 'ES', properties: { mx: true } };
	const business = await prisma.business.create({ data: businessData });
	await check('Business', businessData, () => prisma.business.findUnique({ where: { id: business.id } }));

	const leadData = {
		siteId,
		email: 'jane@acme.example',
		emailHash: 'a'.repeat(64),
		firstName: 'Jane',
		lastName: 'Doe',
		phone: '+34600000000',
		company: 'Acme',
		jobTitle: 'Founder',
		country: 'ES',
		timezone: 'Europe/Madrid',
		source: 'contact-form',
		lifecycleStage: 'mql',
		score: 42.5,
		engagementScore: 30,
		fitScore: 12.5,
		scoredAt: at,
		firstTouch: { channel: 'Organic Search', source: 'google' },
		properties: { plan: 'pro' },
		consentGiven: true,
		businessId: business.id,
		convertedAt: at,
	};
	const lead = await prisma.lead.create({ data: leadData });
	await check('Lead', leadData, () => prisma.lead.findUnique({ where: { id: lead.id } }));

	const contactData = { siteId, leadId: lead.id, businessId: business.id, email: 'jane@acme.example', firstName: 'Jane', lastName: 'Doe', phone: '+34600000000', jobTitle: 'Founder' };
	const contact = await prisma.contact.create({ data: contactData });
	await check('Contact', contactData, () => prisma.contact.findUnique({ where: { id: contact.id } }));

	const visitorData = {
		siteId,
		anonymousId: `anon-${suffix}`,
		leadId: lead.id,
		firstSeenAt: at,
		lastSeenAt: at,
		firstTouch: { channel: 'Paid Search', clickIdType: 'gclid' },
		deviceType: 'desktop',
		browser: 'Chrome',
		os: 'Linux',
		country: 'ES',
		isBot: false,
		sessionCount: 1,
	};
	const visitor = await prisma.visitor.create({ data: visitorData });
	await check('Visitor', visitorData, () => prisma.visitor.findUnique({ where: { siteId_anonymousId: { siteId, anonymousId: visitorData.anonymousId } } }));

	const sessionData = {
		siteId,
		visitorId: visitor.id,
		sessionKey: `session-${suffix}`,
		startedAt: at,
		lastActivityAt: at,
		endedAt: at,
		pageviews: 3,
		eventCount: 9,
		durationSeconds: 120,
		engagedTimeMs: 65000,
		maxScrollDepth: 80,
		isBounce: false,
		entryPage: '/',
		exitPage: '/pricing',
		engagementScore: 71.5,
		engagementLevel: 'high' as const,
		channel: 'Paid Search',
		source: 'google',
		medium: 'cpc',
		campaign: 'winter',
		term: 'dog food',
		content: 'ad-1',
		referrer: 'https://www.google.com/',
		referrerDomain: 'google.com',
		clickIdType: 'gclid',
		landingPage: '/?gclid=abc',
		deviceType: 'desktop',
		browser: 'Chrome',
		os: 'Linux',
		country: 'ES',
	};
	const session = await prisma.visitorSession.create({ data: sessionData });
	await check('VisitorSession', sessionData, () => prisma.visitorSession.findUnique({ where: { siteId_sessionKey: { siteId, sessionKey: sessionData.sessionKey } } }));

	const eventData = {
		siteId,
		eventId: '019a8b6e-1234-7abc-8def-0123456789ab',
		anonymousId: visitorData.anonymousId,
		sessionKey: sessionData.sessionKey,
		type: 'pageview',
		name: 'home',
		url: 'https://roundtrip.example/?gclid=abc',
		path: '/',
		title: 'Home',
		referrer: 'https://www.google.com/',
		relevance: 3,
		properties: { scroll: 80 },
		context: { utm_source: 'google', clickIds: { gclid: 'abc' } },
		userAgent: 'Mozilla/5.0',
		ipAnonymized: '203.0.113.0',
		country: 'ES',
		isBot: false,
		occurredAt: at,
		receivedAt: at,
	};
	await prisma.visitorEvent.create({ data: eventData });
	await check('VisitorEvent', eventData, () => prisma.visitorEvent.findUnique({ where: { siteId_eventId: { siteId, eventId: eventData.eventId } } }));
	const linkData = { siteId, eventId: eventData.eventId, visitorId: visitor.id, sessionId: session.id };
	await prisma.visitorEventLink.create({ data: linkData });
	await check('VisitorEventLink', linkData, () => prisma.visitorEventLink.findUnique({ where: { siteId_eventId: { siteId, eventId: linkData.eventId } } }));

	const activityData = { siteId, leadId: lead.id, visitorId: visitor.id, type: 'page_viewed', description: 'Visited the pricing page', data: { path: '/pricing' }, dedupeKey: `dk-${suffix}`, occurredAt: at };
	await prisma.activity.create({ data: activityData });
	await check('Activity', activityData, () => prisma.activity.findUnique({ where: { siteId_dedupeKey: { siteId, dedupeKey: activityData.dedupeKey } } }));

	const conversionData = { siteId, visitorId: visitor.id, leadId: lead.id, sessionId: session.id, goal: 'contact-request', eventId: eventData.eventId, value: new Prisma.Decimal('50.25'), currency: 'EUR', occurredAt: at };
	const conversion = await prisma.conversion.create({ data: conversionData });
	await check('Conversion', conversionData, () => prisma.conversion.findUnique({ where: { id: conversion.id } }));

	const attributionData = { siteId, conversionId: conversion.id, model: 'linear' as const, touchpointIndex: 0, sessionId: session.id, channel: 'Paid Search', source: 'google', medium: 'cpc', campaign: 'winter', touchedAt: at, credit: 1, value: new Prisma.Decimal('50.25') };
	await prisma.attributionData.create({ data: attributionData });
	await check('AttributionData', attributionData, () =>
		prisma.attributionData.findUnique({ where: { conversionId_model_touchpointIndex: { conversionId: conversion.id, model: 'linear', touchpointIndex: 0 } } }),
	);

	const channelData = { siteId, leadId: lead.id, channel: 'email', status: 'unsubscribed' as const, reason: 'one-click unsubscribe', changedAt: at };
	await prisma.channelStatus.create({ data: channelData });
	await check('ChannelStatus', channelData, () => prisma.channelStatus.findUnique({ where: { leadId_channel: { leadId: lead.id, channel: 'email' } } }));

	const campaignData = { siteId, name: 'Onboarding', status: 'active' as const, fromName: 'NAT-PETS', fromEmail: 'hello@roundtrip.example', replyTo: 'help@roundtrip.example' };
	const campaign = await prisma.emailCampaign.create({ data: campaignData });
	await check('EmailCampaign', campaignData, () => prisma.emailCampaign.findUnique({ where: { id: campaign.id } }));

	const sequenceData = { siteId, campaignId: campaign.id, name: 'welcome', status: 'active' as const, trigger: { stage: 'lead' }, settings: { quietHours: { start: '21:00', end: '08:00' } } };
	const sequence = await prisma.emailSequence.create({ data: sequenceData });
	await check('EmailSequence', sequenceData, () => prisma.emailSequence.findUnique({ where: { id: sequence.id } }));

	const stepData = { siteId, sequenceId: sequence.id, position: 0, delayMinutes: 60, subject: 'Welcome', htmlTemplate: '<p>Hi {{firstName}}</p>', textTemplate: 'Hi {{firstName}}' };
	const step = await prisma.emailSequenceStep.create({ data: stepData });
	await check('EmailSequenceStep', stepData, () => prisma.emailSequenceStep.findUnique({ where: { id: step.id } }));

	const enrollmentData = { siteId, sequenceId: sequence.id, leadId: lead.id, status: 'active' as const, nextStep: 1, nextRunAt: at, enrolledAt: at };
	const enrollment = await prisma.sequenceEnrollment.create({ data: enrollmentData });
	await check('SequenceEnrollment', enrollmentData, () => prisma.sequenceEnrollment.findUnique({ where: { sequenceId_leadId: { sequenceId: sequence.id, leadId: lead.id } } }));

	const messageData = {
		siteId,
		leadId: lead.id,
		campaignId: campaign.id,
		sequenceId: sequence.id,
		stepId: step.id,
		enrollmentId: enrollment.id,
		idempotencyKey: `${lead.id}:${sequence.id}:0`,
		toEmail: 'jane@acme.example',
		subject: 'Welcome',
		status: 'sent' as const,
		smtpMessageId: '<1@roundtrip.example>',
		links: ['https://roundtrip.example/guide'],
		sentAt: at,
		firstOpenedAt: at,
		firstClickedAt: at,
	};
	const message = await prisma.emailMessage.create({ data: messageData });
	await check('EmailMessage', messageData, () => prisma.emailMessage.findUnique({ where: { siteId_idempotencyKey: { siteId, idempotencyKey: messageData.idempotencyKey } } }));

	const emailEventData = { siteId, messageId: message.id, type: 'click' as const, url: 'https://roundtrip.example/guide', occurredAt: at };
	const emailEvent = await prisma.emailEvent.create({ data: emailEventData });
	await check('EmailEvent', emailEventData, () => prisma.emailEvent.findUnique({ where: { id: emailEvent.id } }));

	const scoreData = { siteId, leadId: lead.id, rule: 'pageview', delta: 1.5, scoreAfter: 42.5, cause: 'pageview /pricing', causeKey: eventData.eventId, occurredAt: at };
	await prisma.leadScore.create({ data: scoreData });
	await check('LeadScore', scoreData, () => prisma.leadScore.findUnique({ where: { leadId_rule_causeKey: { leadId: lead.id, rule: 'pageview', causeKey: eventData.eventId } } }));

	const tagData = { siteId, leadId: lead.id, tag: 'company-domain', source: 'enricher' };
	await prisma.leadTag.create({ data: tagData });
	await check('LeadTag', tagData, () => prisma.leadTag.findUnique({ where: { leadId_tag: { leadId: lead.id, tag: 'company-domain' } } }));

	const stageData = { siteId, leadId: lead.id, fromStage: 'lead', toStage: 'mql', scoreAt: 42.5, occurredAt: at };
	await prisma.leadStageChange.create({ data: stageData });
	await check('LeadStageChange', stageData, () => prisma.leadStageChange.findUnique({ where: { leadId_fromStage_toStage: { leadId: lead.id, fromStage: 'lead', toStage: 'mql' } } }));

	const suppressionData = { siteId, emailHash: 'b'.repeat(64), channel: 'email', reason: 'erased' as const };
	await prisma.suppression.create({ data: suppressionData });
	await check('Suppression', suppressionData, () => prisma.suppression.findUnique({ where: { siteId_emailHash_channel: { siteId, emailHash: 'b'.repeat(64), channel: 'email' } } }));

	const erasureData = { siteId, emailHash: 'b'.repeat(64), requestedBy: 'admin-key:ops', removed: { leads: 1, visitor_events: 12 }, erasedAt: at };
	const erasure = await prisma.erasureLog.create({ data: erasureData });
	await check('ErasureLog', erasureData, () => prisma.erasureLog.findUnique({ where: { id: erasure.id } }));

	const erasedLeadData = { siteId, leadId: randomUUID(), erasedAt: at };
	await prisma.erasedLead.create({ data: erasedLeadData });
	await check('ErasedLead', erasedLeadData, () => prisma.erasedLead.findUnique({ where: { siteId_leadId: { siteId, leadId: erasedLeadData.leadId } } }));

	const erasedVisitorData = { siteId, anonymousIdHash: 'c'.repeat(64), visitorId: randomUUID(), erasedAt: at };
	await prisma.erasedVisitor.create({ data: erasedVisitorData });
	await check('ErasedVisitor', erasedVisitorData, () => prisma.erasedVisitor.findUnique({ where: { siteId_anonymousIdHash: { siteId, anonymousIdHash: erasedVisitorData.anonymousIdHash } } }));

	const outboxData = { siteId, destination: 'visitor-processor', partitionKey: visitorData.anonymousId, payload: { events: [eventData.eventId] }, status: 'pending' as const, attempts: 2, nextAttemptAt: at, lastError: 'HTTP 500' };
	const outbox = await prisma.outboxMessage.create({ data: outboxData });
	await check('OutboxMessage', outboxData, () => prisma.outboxMessage.findUnique({ where: { id: outbox.id } }));

	const caughtData = {
		siteId,
		emailMessageId: message.id,
		messageId: `<${message.id}@roundtrip.example>`,
		fromAddress: 'hello@roundtrip.example',
		toAddresses: ['ana@roundtrip.example'],
		subject: 'Welcome',
		html: '<p>Hi</p>',
		text: 'Hi',
		headers: [{ name: 'Subject', value: 'Welcome' }],
		rawSize: 512,
		receivedAt: at,
	};
	const caught = await prisma.mailboxMessage.create({ data: caughtData });
	await check('MailboxMessage', caughtData, () => prisma.mailboxMessage.findUnique({ where: { id: caught.id } }));

	const consentData = {
		siteId,
		anonymousId: visitorData.anonymousId,
		emailHash: 'a'.repeat(64),
		purpose: 'marketing' as const,
		state: 'granted' as const,
		source: 'form' as const,
		pageUrl: 'https://roundtrip.example/signup',
		formId: 'newsletter',
		policyVersion: '2026-11',
		messageId: message.id,
		dedupeKey: `lead:${suffix}`,
		occurredAt: at,
	};
	const consent = await prisma.consentRecord.create({ data: consentData });
	await check('ConsentRecord', consentData, () => prisma.consentRecord.findUnique({ where: { id: consent.id } }));

	const secretData = { name: `roundtrip-${suffix}`, value: 'a'.repeat(64), createdAt: at };
	await prisma.receiverSecret.create({ data: secretData });
	await check('ReceiverSecret', secretData, () => prisma.receiverSecret.findUnique({ where: { name: secretData.name } }));

	const factsData = { siteId, segment: 'channel:Email', grain: 'hour', dimension: 'path', bucket: at, value: '/pricing', sessions: 3, bounces: 1, pageviews: 7, durationSeconds: 420n, low: 1, medium: 1, high: 1 };
	await prisma.analyticsSessionFacts.create({ data: factsData });
	await check('AnalyticsSessionFacts', factsData, () => prisma.analyticsSessionFacts.findUnique({ where: { siteId_segment_grain_dimension_bucket_value: { siteId, segment: 'channel:Email', grain: 'hour', dimension: 'path', bucket: at, value: '/pricing' } } }));

	const pairsData = { siteId, segment: 'campaign:spring', kind: 'all', grain: 'hour', bucket: at, prevHour: new Date('2026-11-19T08:00:00.000Z'), sessions: 2 };
	await prisma.analyticsVisitorPairs.create({ data: pairsData });
	await check('AnalyticsVisitorPairs', pairsData, () => prisma.analyticsVisitorPairs.findUnique({ where: { siteId_segment_kind_grain_bucket_prevHour: { siteId, segment: 'campaign:spring', kind: 'all', grain: 'hour', bucket: at, prevHour: pairsData.prevHour } } }));

	const pageSessionData = {
		siteId,
		startedAt: at,
		sessionId: session.id,
		path: '/pricing',
		visitorId: visitor.id,
		views: 2,
		channel: 'Email',
		campaign: 'spring',
		entryPage: '/',
		exitPage: '/pricing',
		referrerDomain: null,
		source: 'newsletter',
		medium: 'email',
		deviceType: 'desktop',
		browser: 'Firefox',
		os: 'Linux',
		country: 'ES',
		durationSeconds: 95,
		maxScrollDepth: 80,
		engagementLevel: 'high' as const,
		isBounce: false,
		pageviews: 3,
		conversions: 1,
	};
	await prisma.analyticsPageSession.create({ data: pageSessionData });
	await check('AnalyticsPageSession', pageSessionData, () =>
		prisma.analyticsPageSession.findUnique({ where: { siteId_startedAt_sessionId_path: { siteId, startedAt: at, sessionId: session.id, path: '/pricing' } } }),
	);

	const pageFactsData = { ...factsData, segment: 'site', path: '/pricing', grain: 'day', dimension: 'channel', value: 'Email', pathViews: 4, conversions: 1, convertingSessions: 1 };
	await prisma.analyticsPageFacts.create({ data: pageFactsData });
	await check('AnalyticsPageFacts', pageFactsData, () =>
		prisma.analyticsPageFacts.findUnique({
			where: { siteId_segment_path_grain_dimension_bucket_value: { siteId, segment: 'site', path: '/pricing', grain: 'day', dimension: 'channel', bucket: at, value: 'Email' } },
		}),
	);

	const dirtyData = { siteId, hour: new Date('2026-11-20T10:00:00.000Z') };
	const dirty = await prisma.analyticsDirtyHour.create({ data: dirtyData });
	await check('AnalyticsDirtyHour', dirtyData, () => prisma.analyticsDirtyHour.findUnique({ where: { id: dirty.id } }));

	// An hour no event above falls in: the event's own count row shares its hour, and a fold (another test's
	// receiver folds every site of a shared database) merges two rows of one hour into a new one.
	const countData = { siteId, hour: new Date('2026-11-19T10:00:00.000Z'), events: 12n };
	const count = await prisma.analyticsEventCount.create({ data: countData });
	await check('AnalyticsEventCount', countData, () => prisma.analyticsEventCount.findUnique({ where: { id: count.id } }));

	const retentionData = { siteId, retentionDays: 30, cutoff: new Date('2026-10-21T10:00:00.000Z'), startedAt: at, finishedAt: at, batches: 3, deletedEvents: 12n, deletedSessions: 4n, deletedOutbox: 2n, error: 'stopped before finishing: interrupted' };
	const retention = await prisma.retentionRun.create({ data: retentionData });
	await check('RetentionRun', retentionData, () => prisma.retentionRun.findUnique({ where: { id: retention.id } }));
	return covered;
}
