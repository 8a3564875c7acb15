/**
 * The Email Orchestrator on a site with privacy.encryptPii: it finds a sealed lead by any spelling
 * of its address, enrolls it, and sends its step through a real SMTP server addressed and greeted
 * in clear, while email_messages keeps the recipient and the subject (which greets by name)
 * sealed; a pg_dump holds neither. Real Postgres, the node's own functions, real SMTP.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import { isSealed, MESSAGE_RECIPIENT_FIELD, MESSAGE_SUBJECT_FIELD, parsePiiKeys, PiiCipher } from '../../lib/pii';
import { enrollLead } from '../../nodes/EmailOrchestrator/actions/enroll.operation';
import { sendDueSteps } from '../../nodes/EmailOrchestrator/actions/sendDue.operation';
import { SequenceResolver } from '../../nodes/EmailOrchestrator/sequences';
import { smtpTransport } from '../../nodes/EmailOrchestrator/transport';
import { compileScoringRules } from '../../nodes/LeadScorer/scoring';
import { prepareLead, upsertLeads } from '../../nodes/LeadScorer/store';
import { findLeadId } from '../../nodes/shared/leads';
import { createTestSite, testDbUrl, testPrisma } from '../helpers/db';
import { SmtpSink } from '../helpers/smtpSink';

jest.setTimeout(60_000);

const run = promisify(execFile);
const newKey = () => randomBytes(32).toString('base64');

describe('the Email Orchestrator on a site with privacy.encryptPii', () => {
	const prisma = testPrisma();
	const keyring = parsePiiKeys(`k1:${newKey()}`, newKey());
	let sink: SmtpSink;

	beforeAll(async () => {
		sink = await SmtpSink.start();
	});

	afterAll(async () => {
		await sink?.stop();
		await prisma.$disconnect();
	});

	it('sends in clear and keeps the recipient and subject sealed', async () => {
		const { id, key } = await createTestSite(prisma, 'mail');
		const config = parseSiteConfig({
			site: { key, name: key, domain: `${key}.example` },
			tracking: { allowedOrigins: [`https://${key}.example`] },
			crm: { emailSequences: [{ name: 'welcome', trigger: { event: 'signup' }, steps: [{ delayMinutes: 0, subject: 'Welcome, {{firstName}}', html: '<p>Hi {{firstName}}</p>' }] }] },
			integrations: { emailProvider: { type: 'smtp', fromEmail: 'hello@mail.example' } },
			privacy: { encryptPii: true },
		});
		const site = { id, key, domain: `${key}.example`, config };
		const tag = randomBytes(4).toString('hex');
		const person = { email: `lena.m${tag}@example.org`, firstName: `Lena${tag}` };
		const rules = compileScoringRules(config.crm, { hashRouting: config.tracking.hashRouting });
		await prisma.$transaction((tx) => upsertLeads(tx, { siteId: id, config, rules, now: Date.now(), keyring }, [prepareLead({ site: key, consent: true, ...person }, new Date())]));

		const cipher = new PiiCipher(keyring, id);
		const leadId = await findLeadId(prisma, id, person.email.toUpperCase(), cipher);
		const sequence = await new SequenceResolver(prisma).byNameIn(site, 'welcome', 'site');
		const now = new Date();
		expect(await enrollLead(prisma, site, sequence, { id: leadId, timezone: null }, now, cipher)).toMatchObject({ created: true, status: 'active' });

		const transport = smtpTransport({ host: '127.0.0.1', port: sink.port, secure: false, disableStartTls: true });
		try {
			const sender = { transport, receiverUrl: 'http://127.0.0.1:3000', tokenSecret: 'token-secret-of-at-least-32-characters', from: { address: 'hello@mail.example' }, keyring };
			expect(await sendDueSteps(prisma, site, sender, () => now, 10)).toEqual([expect.objectContaining({ leadId, outcome: 'sent' })]);
		} finally {
			transport.close();
		}
		const [mail] = await sink.messages(person.email);
		expect(mail.parsed.subject).toBe(`Welcome, ${person.firstName}`);

		const [message] = await prisma.emailMessage.findMany({ where: { siteId: id } });
		expect([isSealed(message.toEmail), isSealed(message.subject)]).toEqual([true, true]);
		expect([cipher.open(message.toEmail, MESSAGE_RECIPIENT_FIELD), cipher.open(message.subject, MESSAGE_SUBJECT_FIELD)]).toEqual([person.email, `Welcome, ${person.firstName}`]);
		const { stdout: dump } = await run('pg_dump', ['--data-only', '--no-owner', '--table=email_messages', '--table=leads', `--dbname=${testDbUrl()}`], { maxBuffer: 512 * 1024 * 1024 });
		// The message's row is in the dump: the search looks where the values would be.
		expect(dump).toContain(message.id);
		expect([person.email, person.firstName].filter((value) => dump.includes(value))).toEqual([]);
	});
});
